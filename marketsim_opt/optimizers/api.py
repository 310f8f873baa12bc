"""The two public optimizations and the method dispatch behind them.

`optimize_entry_exit` and `optimize_always_on` validate their inputs into a
`Problem`, build the strategy's `Objective`, run the method once per policy
(both for `close_at_eod=None`, keeping the better per simulation) and report
the host syncs of the whole call: `instrument.accounting`, this thread's
declared read-backs (every read-back the package makes goes through
`instrument.read_item` / `read_list` / `read_array`) plus, on CUDA, the synchronizations
torch reports outside them.  It costs nothing per torch call, unlike the
observing `count_syncs`.  `nfev` is what the solvers report (the candidates
they scored).  Neither is checked against any count: a benchmark harness that
needs counts it can trust counts them itself.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Callable

import numpy as np
from torch import Tensor

from ..data import DEFAULT_FEE, Problem, check_values
from ..instrument import accounting, read_array
from ..kernel import check_flag
from ..strategies import Objective, build_objective, entry_exit_objective
from . import registry
from .result import OptimizeResult, Solution

__all__ = [
    "optimize_entry_exit",
    "optimize_always_on",
    "optimize",
    "default_budget",
    "fast_optimize",
    "FAST_BUDGET",
    "check_method",
    "check_budget",
    "check_seed",
    "DEFAULT_BOUNDS",
    "MAX_BUDGET",
    "MAX_SEED",
    "MAX_OFFSET",
    "METHODS",
    "BUDGETLESS_METHODS",
    "POLICY_TIE",
]

DEFAULT_BOUNDS = ((-0.03, 0.03), (-0.03, 0.03))
#: The built-in method names (`registry.names()` at import: nevergrad's take the optimizer after a colon, e.g.
#: "nevergrad:NGOpt", optuna's the sampler, "optuna:TPE", listed only where the optional `optuna` extra is
#: installed).  `registry.names()` also lists methods registered later.
METHODS = registry.names()
#: The built-in methods that take no budget: `budget=None` stays None (the result's `budget`); a given one is
#: checked, unused.  `registry.takes_budget(name)` answers for any method.
BUDGETLESS_METHODS = tuple(name for name in METHODS if not registry.takes_budget(name))
#: Policies whose values differ by less than this (fraction of the previous close, 1e-8 bp) tie.
POLICY_TIE = 1e-12
#: The most candidates per simulation and policy one call may ask for.  The batched methods score in bounded
#: slices (`strategies.CHUNK_ELEMENTS`), so memory is not the limit; time is: at 10**6 the grid takes seconds
#: on the 200-day profile problem, DIRECT (one read-back per candidate) minutes.  Beyond it, use `exact`.
MAX_BUDGET = 10**6
#: Seeds are what numpy's legacy RandomState (nevergrad) takes: integers in [0, 2**32 - 1].
MAX_SEED = 2**32 - 1
#: The widest offset bound: the kernel clamps the targets to [0, 10] and [-1, 0] times the previous close, so a
#: wider box only adds points that all score alike (and float32 cannot hold much wider ones).
MAX_OFFSET = 100.0
_HISTORIC_BUDGETS = {"entry_exit": 500, "always_on": 240}
#: The default budget of both strategies under MARKETSIM_FAST_OPTIMIZE=1.
FAST_BUDGET = 100


def default_budget(strategy: str, *, fast: bool = False) -> int:
    """500 (entry/exit) or 240 (always-on); FAST_BUDGET (100) for both with `fast`."""
    return FAST_BUDGET if fast else _HISTORIC_BUDGETS[strategy]


def fast_optimize() -> bool:
    """Whether MARKETSIM_FAST_OPTIMIZE=1 is set (read per call).

    Only the historical entry points (`optimize_entry_exit`, `optimize_always_on`) and the CLI read it: there it
    makes a budgeted method's default budget FAST_BUDGET.  `optimize` and everything below it never look.
    """
    return os.environ.get("MARKETSIM_FAST_OPTIMIZE", "").strip() == "1"


def _historical_budget(budget, method) -> int | None:
    """The historical entry points' budget: FAST_BUDGET for None under MARKETSIM_FAST_OPTIMIZE=1 (budgeted
    methods only), else `budget` as given (checked by `optimize`)."""
    if budget is None and fast_optimize() and registry.get(method).budgeted:
        return FAST_BUDGET
    return budget


def check_method(method: str) -> Callable[..., Solution]:
    """The solver of a registered method (`registry.get(method).solve`); ValueError naming `method` when
    unknown, `errors.MissingExtraError` (an ImportError) naming the extra to install when it needs a missing one."""
    return registry.get(method).solve


def _check_bounds(bounds) -> tuple[tuple[float, float], tuple[float, float]]:
    try:
        (h_lo, h_hi), (l_lo, l_hi) = bounds
    except (TypeError, ValueError):
        raise ValueError(f"bounds: expected ((h_lo, h_hi), (l_lo, l_hi)), got {bounds!r}") from None
    values = (h_lo, h_hi, l_lo, l_hi)
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) for v in values):
        raise ValueError(f"bounds: expected ((h_lo, h_hi), (l_lo, l_hi)) of real numbers, got {bounds!r}")
    pairs = ((float(h_lo), float(h_hi)), (float(l_lo), float(l_hi)))
    for axis, (lo, hi) in zip("hl", pairs):
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"bounds: {axis} bounds must be finite, got ({lo}, {hi})")
        if max(abs(lo), abs(hi)) > MAX_OFFSET:
            raise ValueError(
                f"bounds: {axis} bounds must lie within [-{MAX_OFFSET:g}, {MAX_OFFSET:g}] (fractions of the "
                f"previous close), got ({lo}, {hi})"
            )
        if lo >= hi:
            raise ValueError(f"bounds: {axis} lower bound {lo} must be below its upper bound {hi}")
    return pairs


def check_budget(budget, strategy: str) -> int:
    """The budget to run: `strategy`'s default for None (ValueError for a strategy without one), else a positive
    integer <= MAX_BUDGET (ValueError)."""
    if budget is None:
        if strategy not in _HISTORIC_BUDGETS:
            raise ValueError(
                f"budget: strategy {strategy!r} has no default budget (only {', '.join(_HISTORIC_BUDGETS)} do); "
                "give one"
            )
        return default_budget(strategy)
    integral = isinstance(budget, numbers.Integral) or (isinstance(budget, float) and budget.is_integer())
    if isinstance(budget, bool) or not integral or budget <= 0:
        raise ValueError(f"budget: must be a positive integer, got {budget!r}")
    if budget > MAX_BUDGET:
        raise ValueError(
            f"budget: {int(budget)} exceeds the limit of {MAX_BUDGET} candidates per simulation and policy; "
            "for the optimum itself use method='exact'"
        )
    return int(budget)


def check_seed(seed) -> int:
    """`seed` as an int in [0, MAX_SEED] (what numpy's legacy RandomState takes); ValueError naming `seed`."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed: expected an integer in [0, {MAX_SEED}], got {type(seed).__name__} {seed!r}")
    return int(seed)


def _check_policy(close_at_eod) -> tuple[bool, ...]:
    """The policies to run: both for None (policy search), else the one given (a real bool)."""
    policy = check_flag("close_at_eod", close_at_eod, allow_none=True)
    return (False, True) if policy is None else (policy,)


_FIELDS = ("h", "l", "profit", "supremum", "criterion")


def _read_back(solutions: list[Solution]) -> dict[str, np.ndarray | None]:
    """Every field of the policies' solutions on the host, `[P, S]` (None where the method leaves it None),
    with one read-back for all device tensors (as float64)."""
    import torch

    values = {f: [getattr(sol, f) for sol in solutions] for f in _FIELDS}
    tensors = [v for f in _FIELDS for v in values[f] if isinstance(v, Tensor)]
    host = iter(read_array(torch.stack([t.double() for t in tensors]))) if tensors else iter(())
    out = {}
    for f in _FIELDS:
        if values[f][0] is None:
            out[f] = None
        else:  # np.array, not np.stack: a fifth of its cost on the backtest's 140-value rows
            out[f] = np.array([next(host) if isinstance(v, Tensor) else v for v in values[f]])
    return out


def optimize(
    problem: Problem,
    strategy: str | Objective,
    *,
    method: str = "direct",
    budget: int | None = None,
    bounds=DEFAULT_BOUNDS,
    close_at_eod: bool | None = False,
    seed: int = 0,
) -> OptimizeResult:
    """Find `(h, l)` maximising `strategy`'s profit on `problem`, per simulation (the result's fields are `[S]`).

    `strategy`: `"entry_exit"` (positions by the MaxDiff rule of the problem's forecasts), `"always_on"`, or
    an `Objective` built on `problem` (any positions, legs or label).  `close_at_eod=None` searches both
    policies and keeps the better per simulation.  `budget` is candidates per simulation and policy (default
    500 for entry/exit, 240 for always-on; at most MAX_BUDGET; None and unused for the methods without one);
    `seed` an integer in [0, 2**32 - 1].  Bad arguments raise ValueError naming them.

    `nfev` is the sum over policies of the solvers' reported `nfev`; `syncs` the host syncs the call declared
    (`instrument.accounting`, this thread's).
    """
    start = time.perf_counter()
    objective = _check_strategy(problem, strategy)
    spec = registry.get(method)
    budget = None if not spec.budgeted and budget is None else check_budget(budget, objective.strategy)
    bounds = _check_bounds(bounds)
    policies = _check_policy(close_at_eod)
    seed = check_seed(seed)
    with accounting() as counter:
        if spec.solve_policies is not None:  # e.g. exact: both policies share the candidates and thresholds
            solutions = spec.solve_policies(objective, bounds, policies)
        else:
            solutions = [spec.solve(objective.with_policy(policy), bounds, budget, seed) for policy in policies]
        host = _read_back(solutions)
    # The policy search compares what the method maximised: its criterion, else the supremum, else the profit.
    values = next(host[f] for f in ("criterion", "supremum", "profit") if host[f] is not None)  # [P, S]
    # The first policy within POLICY_TIE of the best wins: closer than that is float64 rounding, not a better policy.
    pick = np.argmax(values >= values.max(axis=0) - POLICY_TIE, axis=0)
    sims = np.arange(values.shape[1])

    def picked(field: str) -> np.ndarray | None:
        return None if host[field] is None else host[field][pick, sims]  # [S]: policy pick[s]'s value

    h, l, profit = picked("h"), picked("l"), picked("profit")
    ok, message = _outcome(method, h, l, profit, bounds)
    return OptimizeResult(
        h=h,
        l=l,
        profit=profit,
        close_at_eod=np.array(policies)[pick],
        method=method,
        nfev=sum(np.asarray(sol.nfev) for sol in solutions),  # as the solvers report it, never checked
        syncs=counter.syncs,
        wall_time=time.perf_counter() - start,
        budget=budget,
        success=ok,
        message=message,
        supremum=picked("supremum"),
        strategy=objective.strategy,
        policies=policies,
        bounds=bounds,
        objective=objective,
    )


def _check_strategy(problem: Problem, strategy: str | Objective) -> Objective:
    """The objective to maximise: `strategy`'s on `problem` (a name), or `strategy` itself (an Objective on it)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected a marketsim_opt.Problem, got {type(problem).__name__}")
    if isinstance(strategy, Objective):
        if strategy.problem is not problem:
            raise ValueError("strategy: the Objective was built on another problem than `problem`")
        return strategy
    return build_objective(problem, strategy)


#: How far outside the box a returned point may lie and still count as inside (float32 rounding of the bounds).
BOX_TOLERANCE = 1e-6


def _outcome(method: str, h: np.ndarray, l: np.ndarray, profit: np.ndarray, bounds) -> tuple[np.ndarray, str]:
    """Per simulation `[S]`, whether the method returned a finite point inside the box with a finite profit, and a
    one-line message (scipy's `success` / `message`), naming up to five simulations that failed and why."""
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    finite = np.isfinite(h) & np.isfinite(l)
    inside = (h >= h_lo - BOX_TOLERANCE) & (h <= h_hi + BOX_TOLERANCE) & (l >= l_lo - BOX_TOLERANCE)
    inside &= l <= l_hi + BOX_TOLERANCE
    scored = np.isfinite(profit)
    ok = finite & inside & scored
    n = len(ok)
    if ok.all():
        return ok, f"{method}: a finite point in the box for all {n} simulation(s)"
    reasons = np.where(~inside, "(h, l) outside the bounds", "non-finite profit")
    reasons = np.where(~finite, "non-finite (h, l)", reasons)
    bad = np.flatnonzero(~ok)
    listed = ", ".join(f"{i} ({reasons[i]})" for i in bad[:5]) + (f", and {len(bad) - 5} more" if len(bad) > 5 else "")
    return ok, f"{method}: {len(bad)} of {n} simulation(s) failed: {listed}"


def _include_input_checks(result: OptimizeResult, syncs: int, start: float) -> OptimizeResult:
    """Count the input validation's host syncs and time in the public call's result."""
    result.syncs += syncs
    result.wall_time = time.perf_counter() - start
    return result


def optimize_entry_exit(
    close: Tensor,
    high: Tensor,
    high_pred: Tensor,
    low: Tensor,
    low_pred: Tensor,
    positions: Tensor,
    *,
    close_at_eod: bool | None = False,
    trading_fee: float = DEFAULT_FEE,
    bounds=DEFAULT_BOUNDS,
    method: str = "direct",
    budget: int | None = None,
    seed: int = 0,
) -> OptimizeResult:
    """The historical entry point: `optimize(Problem(...), entry_exit_objective(problem, positions), ...)`, with
    the original simulator's argument order, for `[N]` or `[S, N]` tensors.

    The same result as `optimize` on that problem and objective (the input checks' syncs and time added);
    `budget` defaults to 500, or FAST_BUDGET (100) with MARKETSIM_FAST_OPTIMIZE=1.  Bad arguments raise
    ValueError (DataError for the tensors) naming them.
    """
    start = time.perf_counter()
    with accounting() as counter:
        problem = Problem(
            close=close, high=high, low=low, high_pred=high_pred, low_pred=low_pred, trading_fee=trading_fee
        )
        if not isinstance(positions, Tensor) or positions.shape != close.shape:
            shape = tuple(positions.shape) if isinstance(positions, Tensor) else type(positions).__name__
            raise ValueError(f"positions: expected a tensor of shape {tuple(close.shape)}, got {shape}")
        if positions.device != problem.device or positions.dtype != problem.dtype:
            raise ValueError(
                f"positions: {positions.dtype} on {positions.device}, expected {problem.dtype} on {problem.device}"
            )
        check_values({"positions": positions})
    result = optimize(
        problem,
        entry_exit_objective(problem, positions),
        close_at_eod=close_at_eod,
        bounds=bounds,
        method=method,
        budget=_historical_budget(budget, method),
        seed=seed,
    )
    return _include_input_checks(result, counter.syncs, start)


def optimize_always_on(
    close: Tensor,
    high: Tensor,
    high_pred: Tensor,
    low: Tensor,
    low_pred: Tensor,
    *,
    is_crypto: bool = False,
    close_at_eod: bool | None = False,
    trading_fee: float | None = None,
    bounds=DEFAULT_BOUNDS,
    method: str = "direct",
    budget: int | None = None,
    seed: int = 0,
) -> OptimizeResult:
    """The historical entry point: `optimize(Problem(...), "always_on", ...)` with the original simulator's
    argument order (buy leg + sell leg; buy only for crypto).

    The fee defaults to 0.0015 for crypto and 0.0005 otherwise; `budget` defaults to 240 (100 with
    MARKETSIM_FAST_OPTIMIZE=1).  `is_crypto` must be a bool; the other arguments follow `optimize_entry_exit`.
    """
    start = time.perf_counter()
    with accounting() as counter:  # Problem checks is_crypto and the fee, and picks the default fee for None
        problem = Problem(
            close=close,
            high=high,
            low=low,
            high_pred=high_pred,
            low_pred=low_pred,
            is_crypto=is_crypto,
            trading_fee=trading_fee,
        )
    result = optimize(
        problem,
        "always_on",
        close_at_eod=close_at_eod,
        bounds=bounds,
        method=method,
        budget=_historical_budget(budget, method),
        seed=seed,
    )
    return _include_input_checks(result, counter.syncs, start)
