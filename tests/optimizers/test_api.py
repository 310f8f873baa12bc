"""The public optimizations: the historical entry points (`optimize_entry_exit`, `optimize_always_on`) and the
problem-first `optimize(problem, strategy)` they wrap: argument checks, default budgets, the result contract
(always `[S]` arrays, `.scalar` and `[i]` views) for `[N]` and `[S, N]` inputs, the adapters' equality with
`optimize`, determinism of every method, and the policy search."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from optimizer_helpers import STRATEGIES, batch_of, solve
from torch.overrides import _get_current_function_mode_stack

from marketsim_opt import (
    METHODS,
    OptimizeResult,
    Problem,
    count_syncs,
    optimize_always_on,
    optimize_entry_exit,
    strategies,
)
from marketsim_opt.data import synthetic_problem
from marketsim_opt.instrument import accounting, on_evaluations
from marketsim_opt.optimizers import optimize
from marketsim_opt.optimizers.api import FAST_BUDGET, MAX_BUDGET
from marketsim_opt.strategies import (
    CHUNK_ELEMENTS,
    Objective,
    always_on_objective,
    entry_exit_objective,
    entry_exit_positions,
    stack_objectives,
)

PER_SIM_FIELDS = ("h", "l", "profit", "close_at_eod", "nfev")
CHEAP = ("direct", "grid", "exact", "nevergrad:OnePlusOne")


def args_of(problem):
    """The five day tensors in the historical entry points' argument order (as the problem holds them, `[S, N]`)."""
    return (problem.close, problem.high, problem.high_pred, problem.low, problem.low_pred)


@pytest.fixture
def small():
    """A 6-day synthetic problem (float32, crypto fee)."""
    return synthetic_problem(6, seed=1)


# --- bad arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["foo", "Direct", "nevergrad", "exact ", ""])
def test_unknown_method(small, method):
    """An unknown method raises ValueError naming `method` and listing the known ones."""
    with pytest.raises(ValueError, match=r"method: unknown method .*expected one of direct, grid, exact"):
        solve(small, "entry_exit", method=method)


def test_method_not_a_string(small):
    """A non-string method raises ValueError naming `method`."""
    with pytest.raises(ValueError, match="method: expected a string"):
        solve(small, "always_on", method=None)


@pytest.mark.parametrize("method", ["nevergrad:NoSuch", "nevergrad:", "nevergrad:cma"])
def test_unknown_nevergrad_optimizer(small, method):
    """An optimizer name outside nevergrad's registry raises ValueError naming `method`."""
    with pytest.raises(ValueError, match="method: unknown nevergrad optimizer"):
        solve(small, "entry_exit", method=method, budget=10)


@pytest.mark.parametrize("budget", [0, -1, -100, 2.5, 0.5, True, False, "10", 1e-9])
@pytest.mark.parametrize("method", ["direct", "grid", "nevergrad:OnePlusOne", "exact"])
def test_bad_budget(small, method, budget):
    """A budget that is not a positive integer raises ValueError naming `budget` (also for exact)."""
    with pytest.raises(ValueError, match="budget: must be a positive integer"):
        solve(small, "entry_exit", method=method, budget=budget)


@pytest.mark.parametrize("budget", [float("nan"), float("inf"), "abc", [3]])
def test_unconvertible_budget(small, budget):
    """NaN, infinity, non-numeric strings and lists also raise ValueError naming `budget`."""
    with pytest.raises(ValueError, match="budget"):
        solve(small, "entry_exit", method="grid", budget=budget)


@pytest.mark.parametrize("budget", [7, 7.0, np.int64(7)])
def test_integral_budgets_are_accepted(small, budget):
    """Integer-valued budgets of any numeric type are accepted and stored as int."""
    res = solve(small, "entry_exit", method="nevergrad:OnePlusOne", budget=budget)
    assert res.budget == 7 and type(res.budget) is int and res.nfev.tolist() == [7]


@pytest.mark.parametrize(
    ("bounds", "match"),
    [
        (((-0.03, float("nan")), (-0.03, 0.03)), "bounds: h bounds must be finite"),
        (((-float("inf"), 0.03), (-0.03, 0.03)), "bounds: h bounds must be finite"),
        (((-0.03, 0.03), (-0.03, float("inf"))), "bounds: l bounds must be finite"),
        (((0.03, -0.03), (-0.03, 0.03)), "bounds: h lower bound 0.03 must be below"),
        (((-0.03, 0.03), (0.01, 0.01)), "bounds: l lower bound 0.01 must be below"),
        (((-0.03, 0.03),), r"bounds: expected \(\(h_lo, h_hi\), \(l_lo, l_hi\)\)"),
        ((("a", 0.03), (-0.03, 0.03)), "bounds: expected"),
        (None, "bounds: expected"),
        (((False, True), (-0.03, 0.03)), r"bounds: expected .* of real numbers"),
        ((("-0.03", "0.03"), (-0.03, 0.03)), r"bounds: expected .* of real numbers"),
        (((torch.tensor(-0.03), 0.03), (-0.03, 0.03)), r"bounds: expected .* of real numbers"),
        (((-1e300, 1e300), (-0.03, 0.03)), r"bounds: h bounds must lie within \[-100, 100\]"),
        (((-0.03, 0.03), (-100.5, 0.03)), r"bounds: l bounds must lie within \[-100, 100\]"),
    ],
)
@pytest.mark.parametrize("method", ["direct", "exact"])
def test_bad_bounds(small, bounds, match, method):
    """Non-finite, inverted, empty or malformed bounds raise ValueError naming `bounds` and the axis."""
    with pytest.raises(ValueError, match=match):
        solve(small, "always_on", method=method, bounds=bounds)


@pytest.mark.parametrize("close_at_eod", ["yes", 1, 0, "None", (False, True)])
def test_bad_close_at_eod(small, close_at_eod):
    """close_at_eod other than True, False or None raises ValueError naming it."""
    for strategy in ("entry_exit", "always_on"):
        with pytest.raises(ValueError, match="close_at_eod: expected True, False or None"):
            solve(small, strategy, method="grid", close_at_eod=close_at_eod)


@pytest.mark.parametrize("close_at_eod", [np.True_, np.False_])
def test_numpy_bool_close_at_eod_is_a_bool(small, close_at_eod):
    """A numpy bool is accepted and runs the same policy as the Python bool."""
    got = solve(small, "always_on", method="exact", close_at_eod=close_at_eod)
    want = solve(small, "always_on", method="exact", close_at_eod=bool(close_at_eod))
    assert got.scalar.close_at_eod is bool(close_at_eod) and got.policies == (bool(close_at_eod),)
    assert got.close_at_eod.dtype == bool
    np.testing.assert_array_equal(got.profit, want.profit)


@pytest.mark.parametrize("is_crypto", ["no", "False", "", 0, 1, None, torch.tensor(False)])
def test_is_crypto_must_be_a_bool(small, is_crypto):
    """is_crypto='no' (read as crypto before issue 15), 0/1, None or a tensor raises ValueError naming it."""
    with pytest.raises(ValueError, match="^is_crypto: expected True or False, got"):
        optimize_always_on(*args_of(small), is_crypto=is_crypto, method="exact")


@pytest.mark.parametrize("is_crypto", [np.True_, np.False_])
def test_numpy_bool_is_crypto_is_a_bool(small, is_crypto):
    """A numpy bool is_crypto is the Python bool: same legs and default fee."""
    got = optimize_always_on(*args_of(small), is_crypto=is_crypto, method="exact")
    want = optimize_always_on(*args_of(small), is_crypto=bool(is_crypto), method="exact")
    np.testing.assert_array_equal(got.profit, want.profit)
    assert got.objective.problem.trading_fee == want.objective.problem.trading_fee


@pytest.mark.parametrize("strategy", ["entry_exit", "always_on"])
def test_numpy_float32_fee_is_accepted(small, strategy):
    """trading_fee=np.float32(0.001) (refused before issue 15) runs like the Python float of the same value."""
    args = args_of(small)
    kw = dict(method="exact", close_at_eod=None)
    if strategy == "entry_exit":
        positions = entry_exit_positions(small.high_pred, small.low_pred)
        got = optimize_entry_exit(*args, positions, trading_fee=np.float32(0.001), **kw)
        want = optimize_entry_exit(*args, positions, trading_fee=float(np.float32(0.001)), **kw)
    else:
        got = optimize_always_on(*args, trading_fee=np.float32(0.001), **kw)
        want = optimize_always_on(*args, trading_fee=float(np.float32(0.001)), **kw)
    assert got.objective.problem.trading_fee == pytest.approx(0.001, rel=1e-6)
    assert type(got.objective.problem.trading_fee) is float
    np.testing.assert_array_equal(got.supremum, want.supremum)


@pytest.mark.parametrize("fee", ["0.001", True, np.float64(-0.001), float("nan"), torch.tensor(0.001)])
@pytest.mark.parametrize("strategy", ["entry_exit", "always_on"])
def test_bad_fee_names_trading_fee(small, strategy, fee):
    """A string, bool, negative, NaN or tensor fee raises ValueError naming trading_fee, for both strategies."""
    args = args_of(small)
    with pytest.raises(ValueError, match="^trading_fee: "):
        if strategy == "entry_exit":
            optimize_entry_exit(*args, entry_exit_positions(small.high_pred, small.low_pred), trading_fee=fee)
        else:
            optimize_always_on(*args, trading_fee=fee)


@pytest.mark.parametrize("seed", [-1, 2**32, -(2**40), True, 1.5, 1.0, "0", None, np.float64(3)])
@pytest.mark.parametrize("method", ["nevergrad:OnePlusOne", "grid", "direct", "exact", "gradient"])
def test_bad_seed(small, method, seed):
    """A seed outside [0, 2**32 - 1] or not an integer raises ValueError naming `seed`, for every method.

    nevergrad's seed -1 used to reach numpy, whose message does not name `seed`.
    """
    with pytest.raises(ValueError, match=r"^seed: expected an integer in \[0, 4294967295\], got"):
        solve(small, "entry_exit", method=method, budget=10, seed=seed)


@pytest.mark.parametrize("seed", [0, 2**32 - 1, np.int64(7), np.uint32(9)])
def test_edge_seeds_are_accepted(small, seed):
    """The smallest and largest seeds and numpy integers run nevergrad."""
    res = solve(small, "entry_exit", method="nevergrad:OnePlusOne", budget=10, seed=seed)
    assert res.nfev.tolist() == [10]


@pytest.mark.parametrize("method", ["grid", "direct", "gradient", "nevergrad:TwoPointsDE", "exact"])
def test_budget_over_the_limit_is_refused_before_any_work(small, method):
    """budget 10**7 (8.6 GB and an allocator error for grid before issue 15) is refused, scoring nothing."""
    heard: list[int] = []
    with on_evaluations(heard.append):
        with pytest.raises(ValueError, match=r"^budget: 10000000 exceeds the limit of 1000000 candidates"):
            solve(small, "entry_exit", method=method, budget=10**7)
        with pytest.raises(ValueError, match=r"^budget: 1000001 exceeds the limit of 1000000"):
            solve(small, "always_on", method=method, budget=MAX_BUDGET + 1)
    assert heard == []


def test_grid_at_the_budget_limit_scores_in_bounded_slices(monkeypatch):
    """At MAX_BUDGET the grid finishes, and no kernel call sees more than CHUNK_ELEMENTS candidate-days."""
    problem = batch_of(50, [1, 2])[0]
    seen = []
    batch = Objective._batch

    def spy(self, h, l, tau, compiled, policy):
        seen.append(h.numel() * self.problem.n_days)
        return batch(self, h, l, tau, compiled, policy)

    monkeypatch.setattr(Objective, "_batch", spy)
    res = solve(problem, "entry_exit", method="grid", budget=MAX_BUDGET)
    assert np.all(res.nfev == 4 * 500 * 500)
    assert len(seen) > 4 and max(seen) <= CHUNK_ELEMENTS


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("method", ["grid", "gradient", "nevergrad:OnePlusOne", "direct"])
def test_scoring_in_slices_changes_no_count_and_no_answer(method, monkeypatch):
    """With CHUNK_ELEMENTS forced tiny (3 candidates a kernel call) every count is the same and the answer
    agrees within float32 tolerance: slicing adds no host sync and no evaluation."""
    problem = batch_of(10, [3, 4])[0]
    budget = 500 if method == "gradient" else 120  # gradient: 6 starts (two slices); grid: 4 stages of 5 x 5
    run = lambda: solve(problem, "always_on", method=method, budget=budget, close_at_eod=None, seed=2)  # noqa: E731
    whole = run()
    calls = []
    batch = Objective._batch
    monkeypatch.setattr(strategies, "CHUNK_ELEMENTS", 3 * 2 * 10)
    monkeypatch.setattr(
        Objective, "_batch", lambda self, h, l, tau, c, p: calls.append(h.shape) or batch(self, h, l, tau, c, p)
    )
    sliced = run()
    assert all(shape[-1] <= 3 for shape in calls)
    # per policy: grid 4 stages x ceil(25 / 3) calls, gradient ceil(6 / 3) calls to score its starts' ends
    assert len(calls) >= {"grid": 2 * 4 * 9, "gradient": 2 * 2}.get(method, 0)
    assert (sliced.syncs, sliced.nfev.tolist()) == (whole.syncs, whole.nfev.tolist())
    np.testing.assert_allclose(sliced.profit, whole.profit, rtol=1e-5, atol=1e-6)


def test_batched_positions_with_another_s():
    """Entry/exit on `[S, N]` tensors whose positions have another S (or are `[N]`) raises ValueError naming
    `positions`."""
    batch, _ = batch_of(6, [1, 2, 3])
    positions = entry_exit_positions(batch.high_pred[:2], batch.low_pred[:2])
    with pytest.raises(ValueError, match=r"positions: expected a tensor of shape \(3, 6\), got \(2, 6\)"):
        optimize_entry_exit(*args_of(batch), positions, method="exact")
    with pytest.raises(ValueError, match=r"positions: expected a tensor of shape \(3, 6\), got \(6,\)"):
        optimize_entry_exit(*args_of(batch), positions[0], method="exact")


@pytest.mark.parametrize("field", ["low_pred", "high", "close"])
@pytest.mark.parametrize("strategy", ["entry_exit", "always_on"])
def test_batched_tensors_with_another_s(field, strategy):
    """An `[S, N]` call whose tensors disagree in S raises ValueError naming the odd tensor and its shape."""
    batch, _ = batch_of(6, [1, 2, 3])
    tensors = dict(zip(("close", "high", "high_pred", "low", "low_pred"), args_of(batch)))
    positions = entry_exit_positions(batch.high_pred, batch.low_pred)
    tensors[field] = tensors[field][:2]
    with pytest.raises(ValueError, match=rf"^{field}: shape \(2, 6\) differs from the other fields' \(3, 6\)"):
        if strategy == "entry_exit":
            optimize_entry_exit(*tensors.values(), positions, method="grid")
        else:
            optimize_always_on(*tensors.values(), method="grid")


def test_positions_of_another_dtype(small):
    """Positions in another dtype than the day tensors raise ValueError naming `positions`."""
    positions = entry_exit_positions(small.high_pred, small.low_pred).double()
    with pytest.raises(ValueError, match="positions: torch.float64"):
        optimize_entry_exit(*args_of(small), positions, method="grid")


# --- default budgets --------------------------------------------------------------------------


def test_default_budgets_and_fast_switch(small, monkeypatch):
    """Defaults are 500 (entry/exit) and 240 (always-on); MARKETSIM_FAST_OPTIMIZE=1, read per call, makes
    both 100; exact keeps budget None."""
    monkeypatch.delenv("MARKETSIM_FAST_OPTIMIZE", raising=False)
    assert solve(small, "entry_exit", method="grid").budget == 500
    assert solve(small, "always_on", method="grid").budget == 240
    assert solve(small, "always_on", method="grid").nfev.tolist() == [196]  # 4 x isqrt(60)^2
    assert solve(small, "always_on", method="exact").budget is None  # exact has no budget unless given one
    monkeypatch.setenv("MARKETSIM_FAST_OPTIMIZE", "1")
    for strategy in ("entry_exit", "always_on"):
        res = solve(small, strategy, method="grid")
        assert (res.budget, res.nfev.tolist()) == (100, [100])
    assert solve(small, "entry_exit", method="nevergrad:OnePlusOne").nfev.tolist() == [100]
    assert solve(small, "entry_exit", method="exact").budget is None
    assert solve(small, "entry_exit", method="grid", budget=36).budget == 36  # an explicit budget wins
    monkeypatch.setenv("MARKETSIM_FAST_OPTIMIZE", " 1 ")
    assert solve(small, "entry_exit", method="grid").budget == 100
    monkeypatch.setenv("MARKETSIM_FAST_OPTIMIZE", "0")
    assert solve(small, "entry_exit", method="grid").budget == 500


# --- result fields -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", CHEAP)
@pytest.mark.parametrize("close_at_eod", [False, True, None])
def test_one_series_result_fields(small, method, close_at_eod):
    """One series gives [1] arrays; `.scalar` holds Python scalars; supremum only for exact; x is [1, 2] (the
    scalar view's [2]); metadata is filled in."""
    bounds = ((-0.02, 0.01), (-0.01, 0.02))
    res = solve(small, "entry_exit", method=method, budget=20, close_at_eod=close_at_eod, bounds=bounds)
    assert isinstance(res, OptimizeResult) and res.n_sims == 1
    for field in PER_SIM_FIELDS + ("success",):
        value = getattr(res, field)
        assert isinstance(value, np.ndarray) and value.shape == (1,), field
    one = res.scalar
    assert type(one.h) is float and type(one.l) is float and type(one.profit) is float
    assert type(one.close_at_eod) is bool and type(one.nfev) is int and type(res.syncs) is int
    assert (one.h, one.l, one.profit, one.nfev) == (res.h[0], res.l[0], res.profit[0], res.nfev[0])
    assert bounds[0][0] <= one.h <= bounds[0][1] and bounds[1][0] <= one.l <= bounds[1][1]
    assert res.x.shape == (1, 2) and res.x.tolist() == [[one.h, one.l]]
    assert one.x.shape == (2,) and one.x.tolist() == [one.h, one.l]
    assert res.method == method and res.strategy == "entry_exit"
    assert res.bounds == bounds
    assert res.policies == ((False, True) if close_at_eod is None else (close_at_eod,))
    if close_at_eod is not None:
        assert one.close_at_eod is close_at_eod
    assert res.budget == 20  # checked and recorded, though exact does not use it
    if method == "exact":
        assert res.supremum.shape == (1,) and type(one.supremum) is float and one.supremum == res.supremum[0]
    else:
        assert res.supremum is None and one.supremum is None


@pytest.mark.parametrize("method", CHEAP)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batched_fields_are_per_simulation(method, strategy):
    """`[S, N]` results hold numpy arrays of shape [S] for every per-simulation field (x is [S, 2])."""
    batch, _ = batch_of(6, [1, 2, 3, 4])
    res = solve(batch, strategy, method=method, budget=20, close_at_eod=None)
    for field in PER_SIM_FIELDS + (("supremum",) if method == "exact" else ()):
        value = getattr(res, field)
        assert isinstance(value, np.ndarray) and value.shape == (4,), field
    assert res.close_at_eod.dtype == bool
    assert res.nfev.dtype.kind == "i"
    assert res.x.shape == (4, 2) and res.n_sims == 4
    assert type(res.syncs) is int
    assert res.supremum is None or method == "exact"


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("method", ["exact", "grid", "direct"])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("close_at_eod", [False, True, None])
def test_batched_rows_equal_one_row_calls(method, strategy, close_at_eod):
    """For the deterministic methods, simulation s of an [S, N] call equals the one-row call on row s.

    The point, the policy and nfev agree exactly; profit and supremum are sums over days, which an S = 3 batch
    and an S = 1 one may round apart in the last bits on another CPU (vector width), so a tolerance.
    """
    batch, rows = batch_of(9, [41, 42, 43])
    res = solve(batch, strategy, method=method, budget=25, close_at_eod=close_at_eod)
    for s, row in enumerate(rows):
        one = solve(row, strategy, method=method, budget=25, close_at_eod=close_at_eod).scalar
        for field in PER_SIM_FIELDS:
            got, want = getattr(res, field), getattr(one, field)
            if field == "profit":
                assert got[s] == pytest.approx(want, rel=1e-6, abs=1e-7), field
            else:
                assert got[s] == want, field
        if method == "exact":
            assert res.supremum[s] == pytest.approx(one.supremum, rel=1e-12, abs=1e-15)
        else:
            assert res.supremum is None and one.supremum is None


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_sims", [1, 2])
def test_same_seed_same_result(method, n_sims):
    """Two runs with the same seed give identical results (every field but wall_time), for every method."""
    problem = batch_of(6, [5, 6])[0] if n_sims == 2 else synthetic_problem(6, seed=5)
    runs = [solve(problem, "always_on", method=method, budget=10, close_at_eod=None, seed=3) for _ in range(2)]
    assert runs[0].n_sims == n_sims
    for field in PER_SIM_FIELDS + ("success", "supremum"):
        a, b = (getattr(r, field) for r in runs)
        assert (a is None and b is None) or np.array_equal(a, b), field
    for field in ("syncs", "budget", "message"):
        assert getattr(runs[0], field) == getattr(runs[1], field), field


# --- policy search ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["grid", "direct", "nevergrad:OnePlusOne"])
def test_policy_search_keeps_the_better_profit(method):
    """close_at_eod=None keeps per simulation the single-policy answer with the higher profit
    (intraday on ties) and adds both policies' evaluations."""
    batch, _ = batch_of(10, range(6))
    kw = dict(method=method, budget=16)
    both = solve(batch, "entry_exit", close_at_eod=None, **kw)
    runs = {eod: solve(batch, "entry_exit", close_at_eod=eod, **kw) for eod in (False, True)}
    pick = runs[True].profit > runs[False].profit
    assert both.close_at_eod.tolist() == pick.tolist()
    for field in ("h", "l", "profit"):
        want = np.where(pick, getattr(runs[True], field), getattr(runs[False], field))
        assert getattr(both, field).tolist() == want.tolist(), field
    assert both.nfev.tolist() == (runs[False].nfev + runs[True].nfev).tolist()


def test_float64_inputs(small):
    """float64 inputs are optimized in float64: the reported profit is the float64 objective at (h, l)."""
    p64 = small.to(dtype=torch.float64)
    res = solve(p64, "always_on", method="grid", budget=36)
    assert res.objective.problem.dtype == torch.float64
    one = res.scalar
    assert one.profit == res.objective.score(one.h, one.l).item()


@pytest.mark.parametrize("method", CHEAP)
def test_caller_sync_region_sees_the_calls_counts(small, method):
    """A caller's `count_syncs` region around an optimization (nested regions) sees exactly its evaluations
    and syncs: `.item()` per candidate for direct, one `.tolist()` per round for nevergrad (10 at budget 10),
    one final `.numpy()` (`read_array`) for grid and exact; plus one `.tolist()` per input check (Problem,
    positions)."""
    with count_syncs() as counter:
        res = solve(small, "entry_exit", method=method, budget=10)
    assert res.nfev.tolist() == [counter.evaluations]
    assert counter.syncs == res.syncs
    expected = {
        "direct": {"item": res.scalar.nfev, "tolist": 2},
        "grid": {"tolist": 2, "numpy": 1},
        "exact": {"tolist": 2, "numpy": 1},
        "nevergrad:OnePlusOne": {"tolist": 12},
    }[method]
    assert counter.by_method == expected


@pytest.mark.parametrize("method", CHEAP)
def test_optimization_counts_its_syncs_without_a_torch_function_mode(small, method):
    """The library's own count costs nothing per torch call: while the objective scores candidates inside an
    optimization (and while the inputs are checked) no torch function mode is on this thread's stack."""
    depths: list[int] = []
    with on_evaluations(lambda n: depths.append(len(_get_current_function_mode_stack()))):
        res = solve(small, "entry_exit", method=method, budget=10)
    assert depths and set(depths) == {0}
    assert res.syncs >= 3  # the two input checks and the answer's read-back


@pytest.mark.parametrize("method", CHEAP)
def test_caller_accounting_region_gets_the_calls_account(small, method):
    """A caller's `accounting` region around an optimization (nested accounts) gets exactly the call's declared
    syncs and its evaluations."""
    with accounting() as account:
        res = solve(small, "always_on", method=method, budget=10, close_at_eod=None)
    assert account.syncs == res.syncs and account.hidden_syncs == 0
    assert res.nfev.tolist() == [account.evaluations]


@pytest.mark.parametrize("offset", [3, -2])
def test_reported_nfev_that_differs_from_the_count_is_returned_as_reported(small, offset):
    """The library reports what its solvers did and never raises over two counts: a solver whose nfev is off by
    `offset` from the candidates it scored (each policy's run) returns normally, with the solver's nfev."""
    import dataclasses

    from marketsim_opt.optimizers import registry

    real = registry.get("direct")

    def misreporting(objective, bounds, budget, seed):
        solution = real.solve(objective, bounds, budget, seed)
        solution.nfev = np.asarray(solution.nfev) + offset
        return solution

    with registry.registered(dataclasses.replace(real, solve=misreporting), replace=True), count_syncs() as counter:
        res = solve(small, "entry_exit", method="direct", budget=10, close_at_eod=None)
    assert registry.get("direct") is real  # restored
    assert res.nfev.tolist() == [counter.evaluations + 2 * offset]  # two policies, each off by `offset`
    assert type(res.scalar.nfev) is int and res.syncs == counter.syncs
    assert np.isfinite(res.scalar.profit)


# --- success and message -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["exact", "grid", "direct", "zero", "robust:mean"])
def test_success_and_message_of_a_normal_run(method):
    """Every simulation returned a finite point in the box: success per simulation ([S] bools; a Python bool in
    the scalar view of one series)."""
    batch, _ = batch_of(8, range(3))
    budget = None if method in ("exact", "zero", "robust:mean") else 16
    res = solve(batch, "entry_exit", method=method, budget=budget)
    assert res.success.dtype == bool and res.success.tolist() == [True] * 3
    assert res.message == f"{method}: a finite point in the box for all 3 simulation(s)"
    one = solve(batch[0], "entry_exit", method=method, budget=budget)
    assert one.success.tolist() == [True] and one.scalar.success is True
    assert one.message == f"{method}: a finite point in the box for all 1 simulation(s)"


def test_failed_simulations_are_named():
    """A method that returns a non-finite profit for one simulation and a point outside the box for another:
    those two are unsuccessful, and the message names them with the reason."""
    from marketsim_opt.optimizers import registry
    from marketsim_opt.optimizers.result import Solution

    def broken(objective, bounds, budget, seed):
        s = objective.problem.n_sims
        h = torch.zeros(s, dtype=torch.float64)
        h[2] = 0.5  # outside the default box
        profit = torch.zeros(s, dtype=torch.float64)
        profit[1] = float("nan")
        return Solution(h, torch.zeros(s, dtype=torch.float64), profit, np.full(s, 1))

    toy = registry.Method("toy:broken", broken, batched=True, budgeted=False)
    batch, _ = batch_of(8, range(4))
    with registry.registered(toy):
        res = solve(batch, "entry_exit", method="toy:broken", close_at_eod=False)
    assert res.success.tolist() == [True, False, False, True]
    assert res.message == (
        "toy:broken: 2 of 4 simulation(s) failed: 1 (non-finite profit), 2 ((h, l) outside the bounds)"
    )


# --- optimize(problem, strategy) and the historical adapters ------------------------------------

#: Methods the adapters are compared on: sequential (direct), batched (grid), exact, seeded (nevergrad), budgetless.
ADAPTER_METHODS = ("direct", "exact", "grid", "nevergrad:OnePlusOne", "zero")
#: What the adapters and `optimize` must agree on, bitwise (per-simulation fields and the message).
COMPARED_FIELDS = ("h", "l", "profit", "close_at_eod", "nfev", "success", "message", "supremum")


def day_tensors(n_sims: int) -> dict[str, torch.Tensor]:
    """Synthetic day tensors as a caller passes them: `[N]` for one series (n_sims=1), else `[S, N]`."""
    problem = synthetic_problem(7, seed=8) if n_sims == 1 else batch_of(7, [8, 9, 10])[0]
    tensors = {f: getattr(problem, f) for f in ("close", "high", "high_pred", "low", "low_pred")}
    return {f: t[0] for f, t in tensors.items()} if n_sims == 1 else tensors


@pytest.mark.parametrize("close_at_eod", [False, True, None])
@pytest.mark.parametrize("n_sims", [1, 3])
@pytest.mark.parametrize("method", ADAPTER_METHODS)
def test_adapters_equal_optimize_on_the_problem(method, n_sims, close_at_eod):
    """`optimize_entry_exit(close, high, high_pred, low, low_pred, positions, ...)` is
    `optimize(Problem(...), entry_exit_objective(problem, positions), ...)` and `optimize_always_on(...)` is
    `optimize(problem, "always_on", ...)`: same process, same inputs, so every per-simulation field and the
    message are bitwise equal, for `[N]` and `[S, N]` inputs and every policy choice."""
    t = day_tensors(n_sims)
    fee = 0.001
    problem = Problem(**t, trading_fee=fee)
    positions = entry_exit_positions(t["high_pred"], t["low_pred"])
    kw = dict(method=method, budget=None if method in ("exact", "zero") else 12, close_at_eod=close_at_eod, seed=5)
    args = (t["close"], t["high"], t["high_pred"], t["low"], t["low_pred"])
    pairs = {
        "entry_exit": (
            optimize_entry_exit(*args, positions, trading_fee=fee, **kw),
            optimize(problem, entry_exit_objective(problem, positions), **kw),
        ),
        "always_on": (
            optimize_always_on(*args, trading_fee=fee, **kw),
            optimize(problem, "always_on", **kw),
        ),
    }
    for strategy, (old, new) in pairs.items():
        assert old.n_sims == new.n_sims == n_sims, strategy
        for field in COMPARED_FIELDS:
            a, b = getattr(old, field), getattr(new, field)
            if a is None or b is None:
                assert a is None and b is None and field == "supremum" and method != "exact", (strategy, field)
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"{strategy}: {field}")
        same = ("strategy", "budget", "policies", "bounds", "method")
        assert [getattr(old, f) for f in same] == [getattr(new, f) for f in same], strategy
        assert old.strategy == strategy


def test_optimize_rejects_what_is_not_a_problem(small):
    """A first argument that is not a `Problem` (the removed objective-first form, bare tensors, None) raises
    TypeError naming `problem`, before any scoring."""
    heard: list[int] = []
    with on_evaluations(heard.append):
        for bad in (entry_exit_objective(small), args_of(small), small.close, None):
            with pytest.raises(TypeError, match="^problem: expected a marketsim_opt.Problem"):
                optimize(bad, "entry_exit", method="grid", budget=9)
    assert heard == []


@pytest.mark.parametrize("strategy", ["entry-exit", "always on", "custom", "entry_exit+always_on", "", None, 3])
def test_optimize_rejects_an_unknown_strategy_name(small, strategy):
    """A strategy that is neither a name in `STRATEGIES` nor an Objective raises ValueError naming `strategy`."""
    with pytest.raises(ValueError, match="^strategy: expected one of entry_exit, always_on or an Objective"):
        optimize(small, strategy, method="exact")


def test_optimize_rejects_an_objective_of_another_problem(small):
    """An Objective built on another problem object, even an equal-valued copy or a row view of `problem`'s
    batch, raises ValueError naming `strategy`; on the very problem it runs."""
    batch, _ = batch_of(6, [1, 2])
    twin = synthetic_problem(6, seed=1)  # the same values as `small`, another object
    cases = [
        (small, entry_exit_objective(twin)),
        (small, always_on_objective(batch[0])),
        (batch[0], always_on_objective(batch).rows(0)),
        (batch, entry_exit_objective(batch[0])),
    ]
    for problem, objective in cases:
        with pytest.raises(ValueError, match="^strategy: the Objective was built on another problem"):
            optimize(problem, objective, method="exact")
    res = optimize(twin, entry_exit_objective(twin), method="exact")
    assert res.objective.problem is twin and res.strategy == "entry_exit"


def test_a_custom_objective_needs_a_budget_for_budgeted_methods(small):
    """A custom-label Objective (or the stacked "entry_exit+always_on") has no default budget: a budgeted method
    without one raises ValueError naming `budget` and scores nothing; with a budget it runs, and a budgetless
    method needs none."""
    positions = entry_exit_positions(small.high_pred, small.low_pred)
    custom = Objective(small, (positions,))
    assert custom.strategy == "custom"
    batch, _ = batch_of(6, [1, 2])
    stacked = stack_objectives([entry_exit_objective(batch), always_on_objective(batch)])
    heard: list[int] = []
    with on_evaluations(heard.append):
        for problem, objective in ((small, custom), (stacked.problem, stacked)):
            label = re.escape(objective.strategy)
            for method in ("grid", "direct", "nevergrad:OnePlusOne"):
                with pytest.raises(ValueError, match=rf"^budget: strategy '{label}' has no default budget"):
                    optimize(problem, objective, method=method)
    assert heard == []
    res = optimize(small, custom, method="grid", budget=16)
    assert (res.strategy, res.budget, res.nfev.tolist()) == ("custom", 16, [16])
    res = optimize(stacked.problem, stacked, method="exact")
    assert (res.strategy, res.budget, res.n_sims) == ("entry_exit+always_on", None, 4)


@pytest.mark.parametrize("method", ["exact", "grid"])
@pytest.mark.parametrize("n_sims", [1, 3])
def test_result_contract(method, n_sims):
    """Per-simulation fields are [S] numpy arrays for S = 1 and S = 3; `result[i]` holds simulation i's values as
    Python scalars (negative i too) and out-of-range i raises IndexError; `result.scalar` is `result[0]` for
    S = 1 and a ValueError naming S otherwise; `result.x` is [S, 2]."""
    problem = synthetic_problem(6, seed=2) if n_sims == 1 else batch_of(6, [2, 3, 4])[0]
    res = optimize(problem, "always_on", method=method, budget=16, close_at_eod=None)
    assert res.n_sims == n_sims
    fields = PER_SIM_FIELDS + ("success",) + (("supremum",) if method == "exact" else ())
    for field in fields:
        value = getattr(res, field)
        assert isinstance(value, np.ndarray) and value.shape == (n_sims,), field
    assert res.close_at_eod.dtype == bool and res.success.dtype == bool and res.nfev.dtype.kind == "i"
    assert (res.supremum is None) == (method != "exact")
    assert isinstance(res.x, np.ndarray) and res.x.shape == (n_sims, 2)
    np.testing.assert_array_equal(res.x, np.stack([res.h, res.l], axis=-1))
    types = {"h": float, "l": float, "profit": float, "close_at_eod": bool, "nfev": int, "success": bool}
    types["supremum"] = float if method == "exact" else type(None)
    for i in range(-n_sims, n_sims):
        sim = res[i]
        for field, kind in types.items():
            value = getattr(sim, field)
            assert type(value) is kind, (i, field)
            if value is not None:
                assert value == getattr(res, field)[i], (i, field)
        assert sim.x.shape == (2,) and sim.x.tolist() == res.x[i].tolist()
    for i in (n_sims, -n_sims - 1, 10):
        with pytest.raises(IndexError, match=f"simulation {i} out of range for S = {n_sims}"):
            res[i]
    with pytest.raises(TypeError, match="indices are simulation numbers"):
        res[0:1]
    if n_sims == 1:
        one = res.scalar
        assert one == res[0]
        for field, kind in types.items():
            value = getattr(one, field)
            assert type(value) is kind and (value is None or value == getattr(res, field)[0]), field
    else:
        with pytest.raises(ValueError, match=f"^scalar: the result holds S = {n_sims} simulations"):
            _ = res.scalar


def test_fast_switch_changes_the_adapters_default_budget_only(monkeypatch):
    """MARKETSIM_FAST_OPTIMIZE=1 is read by the historical entry points only: their default budget becomes
    FAST_BUDGET, while `optimize(problem, ...)` keeps the strategy's historic default (by name or with the
    strategy's Objective); an explicit budget wins everywhere."""
    batch, _ = batch_of(10, range(2))
    positions = entry_exit_positions(batch.high_pred, batch.low_pred)

    def adapters(**kw):
        ee = optimize_entry_exit(*args_of(batch), positions, trading_fee=batch.trading_fee, method="grid", **kw)
        ao = optimize_always_on(*args_of(batch), trading_fee=batch.trading_fee, method="grid", **kw)
        return ee, ao

    monkeypatch.setenv("MARKETSIM_FAST_OPTIMIZE", "1")
    for res in adapters():
        assert (res.budget, res.nfev.tolist()) == (FAST_BUDGET, [FAST_BUDGET] * 2)
    assert [res.budget for res in adapters(budget=36)] == [36, 36]
    assert optimize(batch, "entry_exit", method="grid").budget == 500
    assert optimize(batch, entry_exit_objective(batch, positions), method="grid").budget == 500
    assert optimize(batch, "always_on", method="grid").budget == 240
    assert optimize(batch, always_on_objective(batch), method="grid").budget == 240
    monkeypatch.delenv("MARKETSIM_FAST_OPTIMIZE")
    assert [res.budget for res in adapters()] == [500, 240]
