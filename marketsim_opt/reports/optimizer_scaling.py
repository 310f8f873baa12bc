"""One whole optimization against the number of days `N`: the exact solver beside DIRECT at the historic budget.

Both on the `scaling:<N>` workloads (entry/exit, intraday), through `workloads.run` (the historical entry
point, its input checks included), timed by `timing.seconds_per_call` (the median over blocks of back-to-back
calls, one thread).  DIRECT's cost grows with its 500 sequential evaluations of an `N`-day kernel; exact's
with its `(2N + 1)^2` corners, so the two lines cross where the sweep's cells outweigh DIRECT's evaluations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..workloads import SCALING_SIZES, run, scaling
from .loglog import plot_log_log
from .timing import seconds_per_call

__all__ = ["OptimizationPoint", "measure_optimizer_scaling", "plot_optimizer_scaling", "METHODS", "DIRECT_BUDGET"]

#: DIRECT's budget: the historic entry/exit default.
DIRECT_BUDGET = 500
#: What is timed at each N, by label: `(method, budget)`.
METHODS: dict[str, tuple[str, int | None]] = {
    "exact": ("exact", None),
    f"direct@{DIRECT_BUDGET}": ("direct", DIRECT_BUDGET),
}


@dataclass(frozen=True)
class OptimizationPoint:
    """Seconds per whole optimization of `method` (a `METHODS` label) at `n_days`."""

    method: str
    n_days: int
    seconds: float


def measure_optimizer_scaling(
    sizes: Sequence[int] = SCALING_SIZES,
    *,
    min_run_time: float = 0.2,
    on_step: Callable[[str], None] | None = None,
) -> list[OptimizationPoint]:
    """Median seconds per optimization for each size and method; every path runs once untimed first."""
    points = []
    for n in sizes:
        workload = scaling(n)
        for label, (method, budget) in METHODS.items():
            if on_step is not None:
                on_step(f"{label} N={n}")

            def call() -> None:
                run(workload, "entry_exit", method=method, budget=budget)  # noqa: B023 - timed before the next

            call()  # imports (scipy), numba's cache, first-call allocations
            points.append(OptimizationPoint(label, n, seconds_per_call(call, min_run_time=min_run_time)))
    return points


def plot_optimizer_scaling(points: Sequence[OptimizationPoint], paths: Sequence[str | Path]) -> None:
    """Log-log plot of seconds per optimization against `N`, one line per method, saved to each of `paths`."""
    lines = []
    for label, marker in zip(METHODS, "os", strict=True):
        mine = sorted((p for p in points if p.method == label), key=lambda p: p.n_days)
        lines.append((label, marker, [p.n_days for p in mine], [1e3 * p.seconds for p in mine]))
    plot_log_log(
        lines, paths, ylabel="milliseconds per optimization", title="One optimization (entry/exit, intraday, 1 thread)"
    )
