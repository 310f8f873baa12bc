"""Multi-start `gradient` ascent on the smoothed kernel: the budget plan, no read-back of its own, every start in
one batch, the answer scored on the true kernel, determinism, and regret never below the exact optimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from optimizer_helpers import STRATEGIES, batch_of, solve

from marketsim_opt import count_syncs, regret_bp, strategies
from marketsim_opt.data import synthetic_problem
from marketsim_opt.optimizers import gradient
from marketsim_opt.optimizers.gradient import STEPS, plan, starting_points
from marketsim_opt.strategies import Objective, always_on_objective, entry_exit_objective

INPUT_CHECKS = {"entry_exit": 2, "always_on": 1, "always_on_crypto": 1}

# budget -> (starts, steps): starts = max(1, budget // (2 * STEPS + 1)), steps = (budget // starts - 1) // 2.
PLANS = {1: (1, 0), 2: (1, 0), 3: (1, 1), 10: (1, 4), 25: (1, 12), 100: (1, 49), 162: (2, 40), 240: (2, 59)}
PLANS[500] = (6, 41)


@pytest.mark.parametrize(("budget", "starts_steps"), sorted(PLANS.items()))
def test_plan_follows_the_documented_rule_and_nfev_never_exceeds_the_budget(budget, starts_steps):
    """nfev = starts x (2 steps + 1): a forward and a backward pass per step, one true-kernel score per start."""
    assert plan(budget) == starts_steps
    starts, steps = starts_steps
    res = solve(synthetic_problem(8, seed=2), "entry_exit", method="gradient", budget=budget)
    assert res.nfev.tolist() == [starts * (2 * steps + 1)]
    assert res.scalar.nfev <= budget
    assert res.budget == budget


def test_plan_uses_most_of_every_budget():
    """No budget from 1 to 2000 is overspent, less than two evaluations per start are left over, and a second
    start is only bought once each start gets its STEPS steps."""
    for budget in range(1, 2001):
        starts, steps = plan(budget)
        nfev = starts * (2 * steps + 1)
        assert nfev <= budget
        assert budget - nfev <= 2 * starts - 1
        assert starts == 1 or steps >= STEPS


@pytest.mark.parametrize("budget", [0, -3, 2.5])
def test_bad_budget(budget):
    """The API's budget check applies to gradient too."""
    with pytest.raises(ValueError, match="budget: must be a positive integer"):
        solve(synthetic_problem(6, seed=1), "entry_exit", method="gradient", budget=budget)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_readback_per_call(strategy):
    """gradient reads nothing back itself: the API's single read-back for all policies + the input checks."""
    single = synthetic_problem(30, seed=4)
    batch, _ = batch_of(30, [4, 5, 6])
    for problem in (single, batch):
        for close_at_eod in (False, None):
            res = solve(problem, strategy, method="gradient", budget=60, close_at_eod=close_at_eod)
            assert res.syncs == 1 + INPUT_CHECKS[strategy]


def test_solve_itself_has_no_host_sync():
    """The solver returns device tensors without a single read-back; it records exactly its evaluations."""
    problem, _ = batch_of(20, [1, 2])
    objective = always_on_objective(problem)
    with count_syncs() as counter:
        sol = gradient.solve(objective, ((-0.03, 0.03), (-0.03, 0.03)), 500, 0)
    assert counter.syncs == 0 and counter.by_method == {}
    assert all(isinstance(t, torch.Tensor) and t.shape == (2,) for t in (sol.h, sol.l, sol.profit))
    starts, steps = plan(500)
    assert counter.evaluations == 2 * starts * (2 * steps + 1) == int(sol.nfev.sum())


def test_all_starts_are_one_batch(monkeypatch):
    """Each step runs the surrogate once per leg on all `[S, M]` starts at once (one `Objective.score(tau=...)`
    call a step), and the true kernel scores all of them in one `Objective.score` call, the last."""
    calls, scored = [], []
    real_smoothed = strategies.smoothed_profit_per_day

    def spy(*args, **kwargs):
        out = real_smoothed(*args, **kwargs)
        calls.append(tuple(out.shape))
        return out

    monkeypatch.setattr(strategies, "smoothed_profit_per_day", spy)
    problem, _ = batch_of(12, [1, 2, 3])
    objective = always_on_objective(problem)  # two legs
    real_score = Objective.score

    def score_spy(self, h, l, **kwargs):
        scored.append((tuple(h.shape), "surrogate" if kwargs.get("tau") is not None else "kernel"))
        return real_score(self, h, l, **kwargs)

    monkeypatch.setattr(Objective, "score", score_spy)
    starts, steps = plan(500)
    gradient.solve(objective, ((-0.03, 0.03), (-0.03, 0.03)), 500, 0)
    assert calls == [(3, starts, 12)] * (2 * steps)
    assert scored == [((3, starts), "surrogate")] * steps + [((3, starts), "kernel")]


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("close_at_eod", [False, True, None])
def test_profit_is_the_true_kernel_at_the_point(strategy, close_at_eod):
    """The reported profit is the true objective (problem dtype) at the returned (h, l), in the box; in a batch,
    each simulation's profit is its own row's objective (`Objective.rows`) at its point."""
    bounds = ((-0.01, 0.03), (-0.02, 0.01))
    problem = synthetic_problem(25, seed=6)
    res = solve(problem, strategy, method="gradient", budget=200, bounds=bounds, close_at_eod=close_at_eod)
    one = res.scalar
    assert bounds[0][0] <= one.h <= bounds[0][1] and bounds[1][0] <= one.l <= bounds[1][1]
    objective = res.objective.with_policy(one.close_at_eod)
    at = objective.score(torch.tensor([[one.h]], dtype=problem.dtype), torch.tensor([[one.l]], dtype=problem.dtype))
    assert at.shape == (1, 1)
    # float32 sums over a [1, M, N] batch and a [1, 1, N] one need not round alike on every CPU: a tolerance
    assert one.profit == pytest.approx(at.item(), rel=1e-6, abs=1e-7)

    batch, _ = batch_of(25, [6, 7, 8, 9])
    many = solve(batch, strategy, method="gradient", budget=200, bounds=bounds, close_at_eod=close_at_eod)
    assert many.n_sims == 4
    for s in range(4):
        row = many.objective.rows(s).with_policy(bool(many.close_at_eod[s]))
        dtype = row.problem.dtype
        at = row.score(torch.tensor([[many.h[s]]], dtype=dtype), torch.tensor([[many.l[s]]], dtype=dtype))
        assert at.shape == (1, 1)
        assert many.profit[s] == pytest.approx(at.item(), rel=1e-6, abs=1e-7)


def test_answers_stay_inside_bounds_that_float32_rounds_outward():
    """float32(0.1) > 0.1 and float32(-0.1) < -0.1: the answer is still inside the float64 box."""
    bounds = ((-0.1, 0.1), (-0.1, 0.1))
    assert float(torch.tensor(0.1)) > 0.1
    problem = synthetic_problem(20, seed=3)
    one = solve(problem, "entry_exit", method="gradient", budget=1, bounds=bounds).scalar  # the corner start
    assert one.h <= 0.1 and one.l >= -0.1
    assert one.h == pytest.approx(0.1, abs=1e-8) and one.l == pytest.approx(-0.1, abs=1e-8)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("close_at_eod", [False, True, None])
def test_regret_is_never_negative(strategy, close_at_eod):
    """Against the exact optimum, for one series (an `[1]` regret) and a batch (`[S]`), on random problems of
    several sizes."""
    for n_days, seeds in ((6, [1, 2, 3, 4]), (40, [5, 6, 7]), (200, [8, 9])):
        batch, rows = batch_of(n_days, seeds)
        regrets = regret_bp(solve(batch, strategy, method="gradient", budget=120, close_at_eod=close_at_eod))
        assert regrets.shape == (len(seeds),) and regrets.min() >= -1e-9
        single = regret_bp(solve(rows[0], strategy, method="gradient", budget=120, close_at_eod=close_at_eod))
        assert single.shape == (1,) and single[0] >= -1e-9


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batched_gradient_equals_per_row_calls(strategy):
    """Every simulation starts from the same points, so each batched field matches the one-row call on that row.

    Not bitwise: the surrogate's float32 sums over days round differently in a [S, M, N] batch and a [1, M, N]
    one on some CPUs (AVX-512 against AVX2), and the ascent carries that into the last bits of (h, l).
    """
    batch, rows = batch_of(10, [21, 22, 23])
    res = solve(batch, strategy, method="gradient", budget=170, close_at_eod=None, seed=2)
    for s, row in enumerate(rows):
        one = solve(row, strategy, method="gradient", budget=170, close_at_eod=None, seed=2).scalar
        assert (res.close_at_eod[s], res.nfev[s]) == (one.close_at_eod, one.nfev)
        assert (res.h[s], res.l[s]) == pytest.approx((one.h, one.l), abs=1e-6)
        assert res.profit[s] == pytest.approx(one.profit, rel=1e-5, abs=1e-6)


def test_seed_reaches_the_rotated_starts_only():
    """The corner and the centre start every run; the others are the R2 sequence under a seeded rotation:
    same seed, same points; in the unit square; the problem's dtype and device."""
    a, b, c = starting_points(6, 0), starting_points(6, 1), starting_points(6, 0)
    assert a[:2].tolist() == b[:2].tolist() == [[1.0, 0.0], [0.5, 0.5]]
    assert torch.equal(a, c) and not torch.equal(a[2:], b[2:])
    assert float(a.min()) >= 0.0 and float(a.max()) < 1.0 + 1e-12
    # consecutive R2 points differ by the sequence's steps (mod 1)
    step = torch.remainder(a[3] - a[2], 1.0)
    assert step.tolist() == pytest.approx([1 / 1.324717957244746, 1 / 1.324717957244746**2], abs=1e-12)
    f32 = starting_points(4, 0, dtype=torch.float32)
    assert f32.dtype == torch.float32 and f32.shape == (4, 2) and torch.equal(f32, a[:4].float())
    problem = synthetic_problem(60, seed=11)
    runs = [solve(problem, "entry_exit", method="gradient", budget=500, seed=s).scalar for s in (0, 0, 1)]
    # bitwise: the same computation twice in one process (same shapes, same kernels), not two machines
    assert (runs[0].h, runs[0].l, runs[0].profit) == (runs[1].h, runs[1].l, runs[1].profit)
    assert runs[2].nfev == runs[0].nfev


def test_ascent_improves_the_surrogate_and_moves_off_a_flat_start():
    """The steps climb the smoothed objective: the end points score higher on it than the starts."""
    problem = synthetic_problem(80, seed=12)
    objective = entry_exit_objective(problem)
    bounds = ((-0.03, 0.03), (-0.03, 0.03))
    u = starting_points(5, 0).to(problem.dtype)[None]
    tau = 0.06 * gradient.TAU_END
    before = gradient._smoothed(objective, bounds, u[..., 0], u[..., 1], tau)
    u_h, u_l = gradient.ascend(objective, bounds, u[..., 0], u[..., 1], 40)
    after = gradient._smoothed(objective, bounds, u_h, u_l, tau)
    assert bool((after >= before - 1e-6).all()) and bool((after > before + 1e-4).any())
    assert float(u_h.min()) >= 0.0 and float(u_h.max()) <= 1.0 and float(u_l.min()) >= 0.0 and float(u_l.max()) <= 1.0


def test_profile_regret_is_recorded():
    """The regret on the profile workload at budget 100 and the default budgets (deterministic; README's table)."""
    from marketsim_opt import workloads

    w = workloads.profile()
    regrets = {
        (s, b): regret_bp(workloads.run(w, s, method="gradient", budget=b))
        for s in workloads.STRATEGIES
        for b in (100, None)
    }
    assert all(r.shape == (1,) for r in regrets.values())  # one series: S = 1
    got = {key: round(float(r[0]), 1) for key, r in regrets.items()}
    assert all(np.isfinite(v) and v >= 0 for v in got.values())
    assert got == {
        ("entry_exit", 100): 23.2,
        ("entry_exit", None): 23.8,
        ("always_on", 100): 93.2,
        ("always_on", None): 98.7,
    }
