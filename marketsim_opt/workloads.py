"""The named workloads (docs/workloads.md) that the suite, the tests and the reports share.

Each returns validated `Problem`s; nothing else in the project builds data of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch

from .data import (
    OHLC,
    Problem,
    backtest_windows,
    check_device,
    forecast_source,
    load_ohlc_csv,
    synthetic_ohlc,
    synthetic_problem,
)
from .optimizers import OptimizeResult, optimize, optimize_always_on, optimize_entry_exit
from .strategies import STRATEGIES, always_on_objective, entry_exit_objective, entry_exit_positions, stack_objectives

__all__ = [
    "Workload",
    "profile",
    "backtest",
    "scaling",
    "run",
    "run_all",
    "run_stacked",
    "STRATEGIES",
    "PROFILE_SEED",
    "BACKTEST_SERIES_SEED",
    "SCALING_SIZES",
    "SYNTHETIC_FORECAST",
]

#: `Workload.forecast` of the synthetic workloads (profile, scaling).
SYNTHETIC_FORECAST = "synthetic: drawn with the data (Hp ~ N(0.005, 0.01), Lp ~ N(-0.005, 0.01) per day)"
PROFILE_SEED = 42
PROFILE_DAYS = 200
PROFILE_FEE = 0.0015
BACKTEST_SERIES_SEED = 0  # the bundled synthetic series; seeds are only ever appended
BACKTEST_SERIES_BARS = 400
SCALING_SIZES = (6, 200, 2000, 20000)


@dataclass(frozen=True)
class Workload:
    """A named problem (`[S, N]`; S = 1 for one series) and the policy it is optimized under.

    `close_at_eod=None` means the policy search (both policies, keep the better).
    `forecast` says, for people, where the problem's `high_pred`/`low_pred` came from.
    """

    name: str
    problem: Problem
    close_at_eod: bool | None
    forecast: str = "unspecified"


def profile(*, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> Workload:
    """The historical bottleneck study: N = 200 synthetic days, seed 42, fee 0.0015, intraday."""
    problem = synthetic_problem(PROFILE_DAYS, PROFILE_SEED, dtype=dtype, device=device, trading_fee=PROFILE_FEE)
    return Workload("profile", problem, close_at_eod=False, forecast=SYNTHETIC_FORECAST)


@lru_cache(maxsize=4)
def _bundled_series(seed: int) -> OHLC:
    return synthetic_ohlc(BACKTEST_SERIES_BARS, seed)


def backtest(
    csv_path: str | None = None,
    *,
    is_crypto: bool = False,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Workload:
    """The walk-forward backtest: 70 simulations x 6 scored days as one `[70, 6]` batch, policy search.

    Without `csv_path` it runs on the bundled seeded synthetic series.  A CSV with `high_pred`/`low_pred`
    columns (forecast prices, see `data.OHLC`) runs on those instead of the built-in forecaster;
    `Workload.forecast` says which ran.
    """
    check_device(device)  # before reading the file, so a bad device fails fast
    bars = load_ohlc_csv(csv_path) if csv_path is not None else _bundled_series(BACKTEST_SERIES_SEED)
    problem = backtest_windows(bars, is_crypto=is_crypto, dtype=dtype, device=device)
    return Workload(f"backtest:{bars.symbol}", problem, close_at_eod=None, forecast=forecast_source(bars))


def scaling(n_days: int, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> Workload:
    """The profile recipe at another size (the scaling workload of docs/workloads.md, N in SCALING_SIZES)."""
    problem = synthetic_problem(n_days, PROFILE_SEED, dtype=dtype, device=device, trading_fee=PROFILE_FEE)
    return Workload(f"scaling:{n_days}", problem, close_at_eod=False, forecast=SYNTHETIC_FORECAST)


def run(
    workload: Workload, strategy: str, *, method: str = "direct", budget: int | None = None, seed: int = 0
) -> OptimizeResult:
    """One optimization of `workload` as the simulator calls it: through the historical entry points, whose
    input checks (and their host syncs) are part of the call.

    `strategy` is `"entry_exit"` (positions by the MaxDiff rule) or `"always_on"`;
    `budget=None` takes the method's default for that strategy.
    """
    p = workload.problem
    args = (p.close, p.high, p.high_pred, p.low, p.low_pred)
    common = dict(
        close_at_eod=workload.close_at_eod, trading_fee=p.trading_fee, method=method, budget=budget, seed=seed
    )
    if strategy == "entry_exit":
        positions = entry_exit_positions(p.high_pred, p.low_pred, is_crypto=p.is_crypto)
        return optimize_entry_exit(*args, positions, **common)
    if strategy == "always_on":
        return optimize_always_on(*args, is_crypto=p.is_crypto, **common)
    raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")


def run_all(
    workload: Workload,
    *,
    method: str = "direct",
    budget: int | None = None,
    seed: int = 0,
    on_strategy: Callable[[str], None] | None = None,
) -> list[OptimizeResult]:
    """Both optimizations of `workload` (`STRATEGIES` in order), as the simulator runs them per simulation.

    `on_strategy(name)` is called after each one (e.g. to advance a progress bar).
    """
    results = []
    for strategy in STRATEGIES:
        results.append(run(workload, strategy, method=method, budget=budget, seed=seed))
        if on_strategy is not None:
            on_strategy(strategy)
    return results


def run_stacked(
    workload: Workload, *, method: str = "exact", budget: int | None = None, seed: int = 0
) -> OptimizeResult:
    """Both optimizations of `workload` in one batched call: every simulation x strategy (x policy) at once.

    The result covers `2 S` rows, `STRATEGIES` in order (rows `[0, S)` entry/exit,
    `[S, 2S)` always-on), with one read-back for all of them; `syncs` and
    `wall_time` are the whole workload's.  Methods that take a budget need an
    explicit one (the strategies' defaults differ).
    """
    p = workload.problem
    stacked = stack_objectives([entry_exit_objective(p), always_on_objective(p)])
    return optimize(
        stacked.problem, stacked, method=method, budget=budget, close_at_eod=workload.close_at_eod, seed=seed
    )
