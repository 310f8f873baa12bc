"""benchmarks/kernel.py: the steady-state sequential evaluation is the statistic targets and the report give."""

from __future__ import annotations

import torch.utils.benchmark

from benchmarks import common, kernel
from marketsim_opt.reports import timing


def test_sequential_eval_per_call_measures_one_evaluation():
    bench = kernel.SequentialEvalPerCall()
    bench.setup(6, "entry_exit", "cpu")
    seconds = bench.track_seconds_per_eval(6, "entry_exit", "cpu")
    assert isinstance(seconds, float) and seconds > 0.0
    assert kernel.SequentialEvalPerCall.track_seconds_per_eval.unit == "seconds"


def test_the_suite_and_the_package_take_the_same_statistic(monkeypatch):
    """The harness's copy and `reports.timing` build the same Timer (one thread) and read the same median of
    blocked_autorange at the same minimum run time, so asv, `targets` and the report give one figure."""
    made = []

    class Recording:
        def __init__(self, stmt, globals, num_threads):
            made.append((stmt, num_threads))

        def blocked_autorange(self, min_run_time):
            made.append(min_run_time)
            return type("Measurement", (), {"median": 1.5e-5})()

    monkeypatch.setattr(torch.utils.benchmark, "Timer", Recording)
    assert common.seconds_per_call(lambda: None) == timing.seconds_per_call(lambda: None) == 1.5e-5
    assert made[:2] == made[2:] == [("fn()", 1), timing.MIN_RUN_TIME]
