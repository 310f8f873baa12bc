"""Bayesian `optuna:TPE`: exact budget use, one read-back per ask/score/tell round, seeding, per-simulation
studies, the answer scored on the kernel, regret never below the exact optimum, and the optional extra."""

from __future__ import annotations

import importlib.util
import math
import re
import sys

import pytest
import torch
from optimizer_helpers import STRATEGIES, assert_batched_rows_equal_per_row_calls, batch_of, solve

from marketsim_opt import METHODS, regret_bp
from marketsim_opt.cli import main
from marketsim_opt.data import synthetic_problem
from marketsim_opt.errors import MissingExtraError
from marketsim_opt.optimizers import optuna_tpe
from marketsim_opt.optimizers.api import check_method
from marketsim_opt.optimizers.optuna_tpe import ROUNDS

INPUT_CHECKS = {"entry_exit": 2, "always_on": 1, "always_on_crypto": 1}
# budget -> rounds: batches of ceil(budget / ROUNDS) candidates until the budget is spent.
TPE_ROUNDS = {1: 1, 7: 7, 15: 8, 30: 10, 101: 10}

needs_optuna = pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="needs the optuna extra")


def test_missing_optuna_names_the_extra(monkeypatch, capsys):
    """Without optuna, the method fails before anything runs with a MissingExtraError naming the extra, and the
    CLI says so in one line (exit 2), not a traceback."""
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now raises ImportError
    want = r"method optuna:TPE needs optuna: pip install -c constraints.txt -e '\.\[optuna\]'"
    with pytest.raises(MissingExtraError, match=want):
        check_method("optuna:TPE")
    with pytest.raises(MissingExtraError, match=want):
        solve(synthetic_problem(6, seed=1), "entry_exit", method="optuna:TPE", budget=10)
    assert main(["run", "--method", "optuna:TPE", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"marketsim-opt run: " + want + r"\n", err), err


def test_methods_list_optuna_only_where_it_is_installed():
    """`METHODS` (the compare/report defaults) names optuna:TPE exactly when optuna can be imported."""
    assert ("optuna:TPE" in METHODS) == (importlib.util.find_spec("optuna") is not None)
    assert "gradient" in METHODS


@pytest.mark.parametrize(("name", "hint"), [("tpe", "did you mean 'TPE'"), ("NoSuch", "expected one of TPE"), ("", "")])
def test_unknown_sampler(name, hint):
    """An unknown sampler raises ValueError naming `method` (whether optuna is installed or not)."""
    with pytest.raises(ValueError, match=rf"method: unknown optuna sampler '{name}'.*{hint}"):
        solve(synthetic_problem(6, seed=1), "entry_exit", method=f"optuna:{name}", budget=10)


def test_rounds_constant():
    """The round arithmetic below assumes the module's 10 rounds."""
    assert ROUNDS == 10
    for budget, rounds in TPE_ROUNDS.items():
        assert math.ceil(budget / math.ceil(budget / ROUNDS)) == rounds


@needs_optuna
@pytest.mark.parametrize(("budget", "rounds"), sorted(TPE_ROUNDS.items()))
def test_nfev_is_the_budget_and_one_readback_per_round(budget, rounds):
    """nfev equals the budget exactly; syncs = one `.tolist()` per round + the input checks."""
    res = solve(synthetic_problem(6, seed=1), "entry_exit", method="optuna:TPE", budget=budget)
    assert res.nfev.tolist() == [budget]
    assert res.syncs == rounds + INPUT_CHECKS["entry_exit"]


@needs_optuna
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batched_readbacks_do_not_grow_with_simulations(strategy):
    """A batch of S simulations reads back once per round (all simulations together), per policy."""
    batch, _ = batch_of(6, [1, 2, 3, 4, 5])
    res = solve(batch, strategy, method="optuna:TPE", budget=20, close_at_eod=None)
    assert res.nfev.tolist() == [2 * 20] * 5
    assert res.syncs == 2 * 10 + INPUT_CHECKS[strategy]


@needs_optuna
def test_one_kernel_call_per_round_for_all_studies(monkeypatch):
    """Every round scores all simulations' asks in one `Objective.score` call of shape [S, k] (the true kernel)."""
    from marketsim_opt.strategies import Objective

    shapes = []
    real = Objective.score
    monkeypatch.setattr(
        Objective, "score", lambda self, h, l, **kw: shapes.append((tuple(h.shape), kw)) or real(self, h, l, **kw)
    )
    batch, _ = batch_of(6, [1, 2, 3])
    solve(batch, "entry_exit", method="optuna:TPE", budget=25)
    assert shapes == [((3, 3), {})] * 8 + [((3, 1), {})]  # ceil(25 / 10) = 3 a round: 8 rounds of 3, then 1


@needs_optuna
def test_seed_reaches_the_sampler():
    """Seeds 0 and 1 give different points, seed 0 twice the same."""
    problem = synthetic_problem(6, seed=3)
    a, b, c = (solve(problem, "entry_exit", method="optuna:TPE", budget=20, seed=s).scalar for s in (0, 1, 0))
    assert (a.h, a.l) != (b.h, b.l)
    assert (a.h, a.l, a.profit) == (c.h, c.l, c.profit)


@needs_optuna
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batched_tpe_rows_equal_per_row_calls(strategy, monkeypatch):
    """Each simulation gets its own study, seeded alike, and only its own row's scores."""
    assert_batched_rows_equal_per_row_calls(monkeypatch, strategy, "optuna:TPE", budget=30)


@needs_optuna
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("close_at_eod", [False, True])
def test_profit_is_the_objective_at_the_point(strategy, close_at_eod):
    """The reported profit is exactly the objective (problem dtype) at the returned (h, l), in the bounds."""
    problem = synthetic_problem(15, seed=6)
    bounds = ((0.0, 0.02), (-0.02, 0.0))
    res = solve(problem, strategy, method="optuna:TPE", budget=40, bounds=bounds, close_at_eod=close_at_eod)
    one = res.scalar
    assert bounds[0][0] <= one.h <= bounds[0][1] and bounds[1][0] <= one.l <= bounds[1][1]
    objective = res.objective.with_policy(one.close_at_eod)
    at = objective.score(torch.tensor([[one.h]], dtype=problem.dtype), torch.tensor([[one.l]], dtype=problem.dtype))
    assert at.shape == (1, 1)
    assert one.profit == at.item()


@needs_optuna
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("close_at_eod", [False, None])
def test_regret_is_never_negative(strategy, close_at_eod):
    """Against the exact optimum, for one series (an `[1]` regret) and a batch (`[S]`), on random problems."""
    batch, rows = batch_of(30, [5, 6, 7])
    regrets = regret_bp(solve(batch, strategy, method="optuna:TPE", budget=30, close_at_eod=close_at_eod))
    assert regrets.shape == (3,) and regrets.min() >= -1e-9
    single = regret_bp(solve(rows[0], strategy, method="optuna:TPE", budget=30, close_at_eod=close_at_eod))
    assert single.shape == (1,) and single[0] >= -1e-9


@needs_optuna
def test_optuna_logging_is_silenced():
    """optuna's per-trial INFO lines are off once the method has run."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO)
    solve(synthetic_problem(6, seed=1), "always_on", method="optuna:TPE", budget=5)
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING
    assert optuna_tpe.SAMPLERS == ("TPE",)
