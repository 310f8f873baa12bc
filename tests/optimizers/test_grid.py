"""The zooming `grid`: its evaluation count per budget, one read-back per call, that zooming never loses
the first stage's best point, per-simulation batching and determinism."""

from __future__ import annotations

import math

import pytest
import torch
from optimizer_helpers import STRATEGIES, batch_of, solve

from marketsim_opt.data import synthetic_problem
from marketsim_opt.optimizers.grid import STAGES
from marketsim_opt.strategies import Objective

INPUT_CHECKS = {"entry_exit": 2, "always_on": 1, "always_on_crypto": 1}

# budget -> candidates scored: STAGES x G^2 with G = isqrt(budget // STAGES); one stage of isqrt(budget)^2
# points when the budget is under STAGES * 4.
GRID_NFEV = {1: 1, 3: 1, 4: 4, 15: 9, 16: 16, 19: 16, 36: 36, 40: 36, 100: 100, 240: 196, 500: 484}


@pytest.mark.parametrize(("budget", "stage_sizes"), [(100, [25] * 4), (500, [121] * 4), (15, [9]), (16, [4] * 4)])
def test_each_stage_is_one_batched_call_zooming_in(budget, stage_sizes, monkeypatch):
    """The grid makes one batched call per stage, of G x G points (4 stages; one under 16), and each stage's
    points lie in a box no wider than the previous stage's (it zooms onto the best point; G = 2 cannot)."""
    calls = []
    score = Objective.score
    monkeypatch.setattr(
        Objective, "score", lambda self, h, l, **kw: calls.append((h, l, kw)) or score(self, h, l, **kw)
    )
    solve(synthetic_problem(6, seed=2), "entry_exit", method="grid", budget=budget)
    assert all(kw == {} for *_, kw in calls)  # the true kernel, not the surrogate or the compiled path
    assert [tuple(h.shape) for h, *_ in calls] == [(1, size) for size in stage_sizes]  # [S, K], S = 1
    assert len(stage_sizes) == (STAGES if budget >= 4 * STAGES else 1)
    widths = [float(h.max() - h.min()) + float(l.max() - l.min()) for h, l, _ in calls]
    assert all(later <= earlier for earlier, later in zip(widths, widths[1:]))
    if stage_sizes[0] >= 9:  # G >= 3: one spacing either side of the best point is narrower than the box
        assert all(later < earlier for earlier, later in zip(widths, widths[1:]))


@pytest.mark.parametrize(("budget", "nfev"), sorted(GRID_NFEV.items()))
def test_grid_nfev_follows_the_documented_budget_rule(budget, nfev):
    """nfev = STAGES * floor(sqrt(budget / STAGES))^2 (one stage of floor(sqrt(budget))^2 under 16), <= budget."""
    problem = synthetic_problem(6, seed=2)
    res = solve(problem, "entry_exit", method="grid", budget=budget)
    assert res.nfev.tolist() == [nfev] and nfev <= budget
    assert res.budget == budget
    stages = STAGES if budget >= 4 * STAGES else 1
    assert nfev == stages * math.isqrt(budget // stages) ** 2


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_grid_reads_back_once_per_call(strategy):
    """One read-back for the whole call (all stages, both policies, all simulations) + the input checks.

    The module docstring says so ("read back once, at the end"); it is not one read-back per stage.
    """
    single = synthetic_problem(30, seed=4)
    batch, _ = batch_of(30, [4, 5, 6, 7])
    for problem in (single, batch):
        for close_at_eod in (False, None):
            for budget in (9, 100):
                res = solve(problem, strategy, method="grid", budget=budget, close_at_eod=close_at_eod)
                assert res.syncs == 1 + INPUT_CHECKS[strategy]


@pytest.mark.cpu_dependent
def test_grid_budget_one_scores_the_box_centre():
    """A 1-point grid is the centre of the box."""
    problem = synthetic_problem(6, seed=2)
    res = solve(problem, "always_on", method="grid", budget=1, bounds=((-0.01, 0.03), (-0.02, 0.0)))
    one = res.scalar
    assert (one.h, one.l) == pytest.approx((0.01, -0.01), abs=1e-9)
    at = res.objective.score(one.h, one.l)  # two numbers: one candidate for every simulation, [S, 1]
    assert at.shape == (1, 1)
    # a tolerance: a [1, 1, N] batch and a numbers call may sum float32 days in another order on another CPU
    assert one.profit == pytest.approx(at.item(), rel=1e-6, abs=1e-7)


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("close_at_eod", [False, True])
def test_zooming_never_loses_the_first_stage_best(strategy, close_at_eod):
    """The answer scores at least the best point of the first (full-box) G x G grid, and is in the box."""
    problem = synthetic_problem(40, seed=9)
    bounds = ((-0.02, 0.03), (-0.03, 0.01))
    res = solve(problem, strategy, method="grid", budget=100, bounds=bounds, close_at_eod=close_at_eod)
    one = res.scalar
    g = 5  # isqrt(100 // 4)
    unit = torch.linspace(0.0, 1.0, g, dtype=problem.dtype)
    hs = bounds[0][0] + unit * (bounds[0][1] - bounds[0][0])
    ls = bounds[1][0] + unit * (bounds[1][1] - bounds[1][0])
    hh, ll = torch.meshgrid(hs, ls, indexing="ij")
    objective = res.objective.with_policy(close_at_eod)
    first_stage = objective.score(hh.reshape(1, -1), ll.reshape(1, -1))  # [S, K], S = 1
    assert first_stage.shape == (1, g * g)
    assert one.profit >= first_stage.max().item()
    at = objective.score(torch.tensor([[one.h]], dtype=problem.dtype), torch.tensor([[one.l]], dtype=problem.dtype))
    assert one.profit == pytest.approx(at.item(), rel=1e-6, abs=1e-7)
    assert bounds[0][0] <= one.h <= bounds[0][1] and bounds[1][0] <= one.l <= bounds[1][1]


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batched_grid_equals_per_row_calls(strategy):
    """Every batched field matches the one-row call on that row; nfev is the same for every simulation.

    Grid points are the same on every row, so (h, l), the policy and nfev agree exactly; profits are float32
    sums over days in a [S, K, N] batch against a [1, K, N] one, compared with a tolerance.
    """
    batch, rows = batch_of(10, [21, 22, 23, 24])
    res = solve(batch, strategy, method="grid", budget=64, close_at_eod=None)
    assert res.nfev.tolist() == [2 * 64] * 4
    for s, row in enumerate(rows):
        one = solve(row, strategy, method="grid", budget=64, close_at_eod=None).scalar
        assert (res.h[s], res.l[s], res.close_at_eod[s], res.nfev[s]) == (one.h, one.l, one.close_at_eod, one.nfev)
        assert res.profit[s] == pytest.approx(one.profit, rel=1e-6, abs=1e-7)


def test_grid_ignores_seed():
    """The grid is deterministic: the seed changes nothing."""
    problem = synthetic_problem(12, seed=8)
    a = solve(problem, "entry_exit", method="grid", budget=100, seed=0).scalar
    b = solve(problem, "entry_exit", method="grid", budget=100, seed=5).scalar
    # bitwise: the same computation twice in one process
    assert (a.h, a.l, a.profit, a.nfev) == (b.h, b.l, b.profit, b.nfev)
