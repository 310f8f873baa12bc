"""How the reports time a short call: one figure per call, the same in `targets`, the report and the suite.

`seconds_per_call` is the median, over blocks of back-to-back calls, of a block's time divided by its calls
(`torch.utils.benchmark.Timer.blocked_autorange`: it sizes the blocks, runs on one thread and synchronizes
CUDA).  A steady-state cost: no timer overhead per call and no cold start, unlike a timing of single calls.
The asv suite's `kernel.SequentialEvalPerCall` measures the same statistic with its own copy of these lines
(the harness's ruler stays outside the package it judges).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["seconds_per_call", "MIN_RUN_TIME"]

#: Seconds of calls each measurement runs at least (blocked_autorange's `min_run_time`).
MIN_RUN_TIME = 0.2


def seconds_per_call(fn: Callable[[], object], *, min_run_time: float = MIN_RUN_TIME) -> float:
    """Median seconds per call of `fn()` over blocks of back-to-back calls, on one torch thread."""
    from torch.utils.benchmark import Timer

    return Timer("fn()", globals={"fn": fn}, num_threads=1).blocked_autorange(min_run_time=min_run_time).median
