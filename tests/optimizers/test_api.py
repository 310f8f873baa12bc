"""The public optimizations (`optimize_entry_exit`, `optimize_always_on`): argument checks, default budgets,
result fields for `[N]` and `[S, N]` inputs, determinism of every method, and the policy search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from optimizer_helpers import STRATEGIES, batch_of, solve
from torch.overrides import _get_current_function_mode_stack

from marketsim_opt import METHODS, OptimizeResult, count_syncs, optimize_always_on, optimize_entry_exit, strategies
from marketsim_opt.data import synthetic_problem
from marketsim_opt.instrument import accounting, on_evaluations
from marketsim_opt.optimizers.api import MAX_BUDGET
from marketsim_opt.strategies import CHUNK_ELEMENTS, Objective, entry_exit_positions

PER_SIM_FIELDS = ("h", "l", "profit", "close_at_eod", "nfev")
CHEAP = ("direct", "grid", "exact", "nevergrad:OnePlusOne")


def args_of(problem):
    """The five day tensors in the public API's argument order."""
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
    assert res.budget == 7 and type(res.budget) is int and res.nfev == 7


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
    assert got.close_at_eod is bool(close_at_eod) and got.policies == (bool(close_at_eod),)
    assert got.profit == want.profit


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
    assert got.profit == want.profit
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
    assert got.supremum == want.supremum


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
    assert res.nfev == 10


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

    def spy(self, h, l, compiled):
        seen.append(h.numel() * self.problem.n_days)
        return batch(self, h, l, compiled)

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
    monkeypatch.setattr(Objective, "_batch", lambda self, h, l, c: calls.append(h.shape) or batch(self, h, l, c))
    sliced = run()
    assert all(shape[-1] <= 3 for shape in calls)
    # per policy: grid 4 stages x ceil(25 / 3) calls, gradient ceil(6 / 3) calls to score its starts' ends
    assert len(calls) >= {"grid": 2 * 4 * 9, "gradient": 2 * 2}.get(method, 0)
    assert (sliced.syncs, sliced.nfev.tolist()) == (whole.syncs, whole.nfev.tolist())
    np.testing.assert_allclose(sliced.profit, whole.profit, rtol=1e-5, atol=1e-6)


def test_batched_positions_with_another_s():
    """Batched entry/exit whose positions have another S raises ValueError naming `positions`."""
    batch, _ = batch_of(6, [1, 2, 3])
    positions = entry_exit_positions(batch.high_pred[:2], batch.low_pred[:2])
    with pytest.raises(ValueError, match=r"positions: expected a tensor of shape \(3, 6\), got \(2, 6\)"):
        optimize_entry_exit(*args_of(batch), positions, method="exact")
    with pytest.raises(ValueError, match=r"positions: expected a tensor of shape \(3, 6\), got \(6,\)"):
        optimize_entry_exit(*args_of(batch), positions[0], method="exact")


@pytest.mark.parametrize("field", ["low_pred", "high", "close"])
@pytest.mark.parametrize("strategy", ["entry_exit", "always_on"])
def test_batched_tensors_with_another_s(field, strategy):
    """A batched call whose tensors disagree in S raises ValueError naming the odd tensor and its shape."""
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
    assert solve(small, "always_on", method="grid").nfev == 196  # 4 x isqrt(60)^2
    assert solve(small, "always_on", method="exact").budget is None  # exact has no budget unless given one
    monkeypatch.setenv("MARKETSIM_FAST_OPTIMIZE", "1")
    for strategy in ("entry_exit", "always_on"):
        res = solve(small, strategy, method="grid")
        assert (res.budget, res.nfev) == (100, 100)
    assert solve(small, "entry_exit", method="nevergrad:OnePlusOne").nfev == 100
    assert solve(small, "entry_exit", method="exact").budget is None
    assert solve(small, "entry_exit", method="grid", budget=36).budget == 36  # an explicit budget wins
    monkeypatch.setenv("MARKETSIM_FAST_OPTIMIZE", " 1 ")
    assert solve(small, "entry_exit", method="grid").budget == 100
    monkeypatch.setenv("MARKETSIM_FAST_OPTIMIZE", "0")
    assert solve(small, "entry_exit", method="grid").budget == 500


# --- result fields -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", CHEAP)
@pytest.mark.parametrize("close_at_eod", [False, True, None])
def test_unbatched_result_fields(small, method, close_at_eod):
    """Unbatched results hold Python scalars; supremum only for exact; x is [2]; metadata is filled in."""
    bounds = ((-0.02, 0.01), (-0.01, 0.02))
    res = solve(small, "entry_exit", method=method, budget=20, close_at_eod=close_at_eod, bounds=bounds)
    assert isinstance(res, OptimizeResult)
    assert type(res.h) is float and type(res.l) is float and type(res.profit) is float
    assert type(res.close_at_eod) is bool and type(res.nfev) is int and type(res.syncs) is int
    assert bounds[0][0] <= res.h <= bounds[0][1] and bounds[1][0] <= res.l <= bounds[1][1]
    assert res.x.shape == (2,) and res.x.tolist() == [res.h, res.l]
    assert not res.batched
    assert res.method == method and res.strategy == "entry_exit"
    assert res.bounds == bounds
    assert res.policies == ((False, True) if close_at_eod is None else (close_at_eod,))
    if close_at_eod is not None:
        assert res.close_at_eod is close_at_eod
    assert res.budget == 20  # checked and recorded, though exact does not use it
    if method == "exact":
        assert type(res.supremum) is float
    else:
        assert res.supremum is None


@pytest.mark.parametrize("method", CHEAP)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batched_fields_are_per_simulation(method, strategy):
    """Batched results hold numpy arrays of shape [S] for every per-simulation field (x is [S, 2])."""
    batch, _ = batch_of(6, [1, 2, 3, 4])
    res = solve(batch, strategy, method=method, budget=20, close_at_eod=None)
    for field in PER_SIM_FIELDS + (("supremum",) if method == "exact" else ()):
        value = getattr(res, field)
        assert isinstance(value, np.ndarray) and value.shape == (4,), field
    assert res.close_at_eod.dtype == bool
    assert res.nfev.dtype.kind == "i"
    assert res.x.shape == (4, 2) and res.batched
    assert type(res.syncs) is int
    assert res.supremum is None or method == "exact"


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("method", ["exact", "grid", "direct"])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("close_at_eod", [False, True, None])
def test_batched_rows_equal_unbatched_calls(method, strategy, close_at_eod):
    """For the deterministic methods, simulation s of a batched call equals the unbatched call on row s.

    The point, the policy and nfev agree exactly; profit and supremum are sums over days, which a [S, K, N]
    batch and a [K, N] one may round apart in the last bits on another CPU (vector width), so a tolerance.
    """
    batch, rows = batch_of(9, [41, 42, 43])
    res = solve(batch, strategy, method=method, budget=25, close_at_eod=close_at_eod)
    for s, row in enumerate(rows):
        one = solve(row, strategy, method=method, budget=25, close_at_eod=close_at_eod)
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
@pytest.mark.parametrize("batched", [False, True])
def test_same_seed_same_result(method, batched):
    """Two runs with the same seed give identical results (every field but wall_time), for every method."""
    problem = batch_of(6, [5, 6])[0] if batched else synthetic_problem(6, seed=5)
    runs = [solve(problem, "always_on", method=method, budget=10, close_at_eod=None, seed=3) for _ in range(2)]
    for field in PER_SIM_FIELDS + ("supremum", "syncs", "budget"):
        a, b = (getattr(r, field) for r in runs)
        assert np.array_equal(a, b) if batched and a is not None else a == b, field


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
    assert res.profit == res.objective(res.h, res.l).item()


@pytest.mark.parametrize("method", CHEAP)
def test_caller_sync_region_sees_the_calls_counts(small, method):
    """A caller's `count_syncs` region around an optimization (nested regions) sees exactly its evaluations
    and syncs: `.item()` per candidate for direct, one `.tolist()` per round for nevergrad (10 at budget 10),
    one final `.tolist()` for grid and exact; plus one `.tolist()` per input check (Problem, positions)."""
    with count_syncs() as counter:
        res = solve(small, "entry_exit", method=method, budget=10)
    assert counter.evaluations == res.nfev
    assert counter.syncs == res.syncs
    expected = {
        "direct": {"item": res.nfev, "tolist": 2},
        "grid": {"tolist": 3},
        "exact": {"tolist": 3},
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
    assert account.evaluations == res.nfev


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
    assert res.nfev == counter.evaluations + 2 * offset  # two policies, each off by `offset`
    assert type(res.nfev) is int and res.syncs == counter.syncs
    assert np.isfinite(res.profit)


# --- success and message -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["exact", "grid", "direct", "zero", "robust:mean"])
def test_success_and_message_of_a_normal_run(method):
    """Every simulation returned a finite point in the box: success per simulation (a bool unbatched)."""
    batch, _ = batch_of(8, range(3))
    budget = None if method in ("exact", "zero", "robust:mean") else 16
    res = solve(batch, "entry_exit", method=method, budget=budget)
    assert res.success.tolist() == [True] * 3
    assert res.message == f"{method}: a finite point in the box for all 3 simulation(s)"
    assert solve(batch[0], "entry_exit", method=method, budget=budget).success is True


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
