"""Per-evaluation cost of the kernel against the number of days `N`: sequential against batched.

*Sequential* is one `(h, l)` evaluation and its `.item()` read-back, as the
historical optimizer made ~500 of them.  *Batched* is one call scoring `K`
candidates at once (`[K, N]`), divided by `K`.  Both on the `scaling:<N>`
workloads (entry/exit, intraday), timed by `timing.seconds_per_call` (the
median over blocks of back-to-back calls, one thread, CUDA synchronized: the
statistic `targets` and the suite's `kernel.SequentialEvalPerCall` give too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..strategies import entry_exit_objective
from ..workloads import SCALING_SIZES, scaling
from .loglog import plot_log_log
from .timing import seconds_per_call

__all__ = ["ScalingPoint", "measure_kernel_scaling", "plot_kernel_scaling", "BATCH", "CANDIDATE_SEED"]

#: Candidates per batched call.
BATCH = 1024
#: Seed of the candidates (append new seeds; never change this one).
CANDIDATE_SEED = 7


@dataclass(frozen=True)
class ScalingPoint:
    """Seconds per evaluated candidate at `n_days` for one mode (`sequential` or `batched`)."""

    mode: str
    n_days: int
    seconds_per_eval: float


def measure_kernel_scaling(
    sizes: Sequence[int] = SCALING_SIZES,
    *,
    batch: int = BATCH,
    device: str = "cpu",
    min_run_time: float = 0.2,
    on_step: Callable[[str], None] | None = None,
) -> list[ScalingPoint]:
    """Median seconds per candidate for each size, sequential then batched."""
    rng = np.random.default_rng(CANDIDATE_SEED)
    hl = torch.as_tensor(rng.uniform(-0.03, 0.03, size=(2, 1, batch)), dtype=torch.float32, device=device)
    h, l = hl[0], hl[1]
    points = []
    for n in sizes:
        objective = entry_exit_objective(scaling(n, device=device).problem)
        calls = (
            ("sequential", lambda: objective.score(0.01, -0.01).item(), 1),  # noqa: B023 - timed before the next n
            ("batched", lambda: objective.score(h, l), batch),  # noqa: B023
        )
        for mode, call, per in calls:
            if on_step is not None:
                on_step(f"kernel {mode} N={n}")
            points.append(ScalingPoint(mode, n, seconds_per_call(call, min_run_time=min_run_time) / per))
    return points


def plot_kernel_scaling(points: Sequence[ScalingPoint], paths: Sequence[str | Path], *, batch: int = BATCH) -> None:
    """Log-log plot of seconds per candidate against `N`, one line per mode, saved to each of `paths`."""
    lines = []
    for mode, marker in (("sequential", "o"), ("batched", "s")):
        mine = sorted((p for p in points if p.mode == mode), key=lambda p: p.n_days)
        label = "sequential (one evaluation + .item())" if mode == "sequential" else f"batched (K={batch}) / K"
        lines.append((label, marker, [p.n_days for p in mine], [1e6 * p.seconds_per_eval for p in mine]))
    title = "Kernel cost per evaluation (entry/exit, 1 thread)"
    plot_log_log(lines, paths, ylabel="microseconds per evaluated candidate", title=title)
