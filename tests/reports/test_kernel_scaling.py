"""reports/kernel_scaling.py: per-evaluation cost against N."""

from __future__ import annotations

import pytest

from marketsim_opt.reports.kernel_scaling import measure_kernel_scaling, plot_kernel_scaling


def test_measure_and_plot(tmp_path):
    steps = []
    points = measure_kernel_scaling((6, 200), batch=64, min_run_time=0.01, on_step=steps.append)
    assert [(p.mode, p.n_days) for p in points] == [
        ("sequential", 6),
        ("batched", 6),
        ("sequential", 200),
        ("batched", 200),
    ]
    assert all(p.seconds_per_eval > 0 for p in points)
    assert steps == ["kernel sequential N=6", "kernel batched N=6", "kernel sequential N=200", "kernel batched N=200"]
    pytest.importorskip("matplotlib", reason="plots need matplotlib (the report extra)")
    png = tmp_path / "k.png"
    plot_kernel_scaling(points, [png], batch=64)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seconds_per_call_times_blocks_of_calls():
    """The shared statistic runs `fn` in blocks of back-to-back calls and returns a per-call figure."""
    from marketsim_opt.reports.timing import seconds_per_call

    calls = []
    seconds = seconds_per_call(lambda: calls.append(1), min_run_time=0.01)
    assert len(calls) > 100  # blocks of many calls, not one call per sample
    assert 0.0 < seconds < 0.01
