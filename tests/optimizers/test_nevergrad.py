"""Batched nevergrad (`nevergrad:<Name>`): exact budget use, one read-back per ask/score/tell round, seeding,
per-simulation batching and the optimizer-name check."""

from __future__ import annotations

import math

import pytest
import torch
from optimizer_helpers import STRATEGIES, assert_batched_rows_equal_per_row_calls, batch_of, solve

from marketsim_opt.data import synthetic_problem
from marketsim_opt.optimizers.nevergrad import OPTIMIZERS, ROUNDS
from marketsim_opt.optimizers.rounds import MAX_ROUND_SIZE, round_size

INPUT_CHECKS = {"entry_exit": 2, "always_on": 1, "always_on_crypto": 1}

# budget -> rounds: batches of ceil(budget / ROUNDS) candidates until the budget is spent.
NG_ROUNDS = {1: 1, 7: 7, 10: 10, 15: 8, 23: 8, 30: 10, 101: 10}


def test_round_sizes():
    """ceil(budget / ROUNDS) per round, never more than MAX_ROUND_SIZE (a huge budget runs more rounds)."""
    for budget, rounds in NG_ROUNDS.items():
        assert math.ceil(budget / round_size(budget)) == rounds
    assert round_size(ROUNDS * MAX_ROUND_SIZE) == MAX_ROUND_SIZE
    assert round_size(ROUNDS * MAX_ROUND_SIZE + 1) == MAX_ROUND_SIZE


def test_a_huge_budget_reports_progress_round_by_round(monkeypatch):
    """With rounds capped (MAX_ROUND_SIZE shrunk to 3 here), budget 100 runs 34 rounds, not 10 of 10, one
    read-back each, and the progress hook hears each round as it is scored (so a budget of 10**6 shows progress
    instead of minutes of silence)."""
    from marketsim_opt.instrument import on_evaluations
    from marketsim_opt.optimizers import rounds as rounds_module

    monkeypatch.setattr(rounds_module, "MAX_ROUND_SIZE", 3)
    heard = []
    with on_evaluations(heard.append):
        res = solve(synthetic_problem(6, seed=1), "entry_exit", method="nevergrad:OnePlusOne", budget=100)
    assert res.nfev.tolist() == [100] and heard == [3] * 33 + [1]
    assert res.syncs == 34 + INPUT_CHECKS["entry_exit"]


@pytest.mark.parametrize(("budget", "rounds"), sorted(NG_ROUNDS.items()))
def test_nfev_is_the_budget_and_one_readback_per_round(budget, rounds):
    """nfev equals the budget exactly; syncs = one `.tolist()` per round + the input checks.

    The number of rounds is ceil(budget / batch) with batch = ceil(budget / ROUNDS): ROUNDS (10) only when
    the budget splits evenly enough; e.g. 15 -> batches of 2 -> 8 rounds, 7 -> 7 rounds of 1.
    """
    problem = synthetic_problem(6, seed=1)
    res = solve(problem, "entry_exit", method="nevergrad:OnePlusOne", budget=budget)
    assert res.nfev.tolist() == [budget]
    assert res.syncs == rounds + INPUT_CHECKS["entry_exit"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batched_readbacks_do_not_grow_with_simulations(strategy):
    """A batch of S simulations still reads back once per round (all simulations together), per policy."""
    batch, _ = batch_of(6, [1, 2, 3, 4, 5])
    res = solve(batch, strategy, method="nevergrad:TwoPointsDE", budget=20, close_at_eod=None)
    assert res.nfev.tolist() == [2 * 20] * 5
    assert res.syncs == 2 * 10 + INPUT_CHECKS[strategy]


@pytest.mark.parametrize("name", ["TwoPointsDE", "CMA", "PSO", "OnePlusOne", "DiagonalCMA"])
def test_seed_changes_stochastic_optimizers(name):
    """The seed reaches the optimizer: seeds 0 and 1 give different points, seed 0 twice the same."""
    problem = synthetic_problem(6, seed=3)
    a, b, c = (solve(problem, "entry_exit", method=f"nevergrad:{name}", budget=10, seed=s).scalar for s in (0, 1, 0))
    assert (a.h, a.l) != (b.h, b.l)
    assert (a.h, a.l, a.profit) == (c.h, c.l, c.profit)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batched_nevergrad_rows_equal_per_row_calls(strategy, monkeypatch):
    """Each simulation gets its own optimizer, seeded alike, and only its own row's scores."""
    assert_batched_rows_equal_per_row_calls(monkeypatch, strategy, "nevergrad:OnePlusOne", budget=20)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_profit_is_the_objective_at_the_point(strategy):
    """The reported profit is the objective (problem dtype) at the returned (h, l), which is in the bounds."""
    problem = synthetic_problem(15, seed=6)
    bounds = ((0.0, 0.02), (-0.02, 0.0))
    res = solve(problem, strategy, method="nevergrad:CMA", budget=30, bounds=bounds)
    one = res.scalar
    assert bounds[0][0] <= one.h <= bounds[0][1] and bounds[1][0] <= one.l <= bounds[1][1]
    at = res.objective.score(torch.tensor([[one.h]], dtype=problem.dtype), torch.tensor([[one.l]], dtype=problem.dtype))
    assert at.shape == (1, 1)
    assert one.profit == at.item()


def test_registry_names_beyond_the_tracked_list_work():
    """Any name in nevergrad's registry is accepted, not only OPTIMIZERS."""
    assert "RandomSearch" not in OPTIMIZERS
    res = solve(synthetic_problem(6, seed=1), "always_on", method="nevergrad:RandomSearch", budget=10)
    assert res.method == "nevergrad:RandomSearch" and res.nfev.tolist() == [10]


@pytest.mark.parametrize(("name", "hint"), [("ngopt", "did you mean 'NGOpt'"), ("NoSuchOptimizer", "e.g. one of")])
def test_unknown_optimizer_name(name, hint):
    """An unknown optimizer name raises ValueError naming `method`, with a hint."""
    with pytest.raises(ValueError, match=rf"method: unknown nevergrad optimizer '{name}'.*{hint}"):
        solve(synthetic_problem(6, seed=1), "entry_exit", method=f"nevergrad:{name}", budget=10)
