"""reports/optimizer_scaling.py: one optimization against N, exact beside DIRECT."""

from __future__ import annotations

import pytest

from marketsim_opt.reports.optimizer_scaling import METHODS, measure_optimizer_scaling, plot_optimizer_scaling


def test_measure_and_plot(tmp_path):
    steps = []
    points = measure_optimizer_scaling((6, 20), min_run_time=0.01, on_step=steps.append)
    assert [(p.method, p.n_days) for p in points] == [(m, n) for n in (6, 20) for m in METHODS]
    assert all(p.seconds > 0 for p in points)
    assert steps == [f"{m} N={n}" for n in (6, 20) for m in METHODS]
    pytest.importorskip("matplotlib", reason="plots need matplotlib (the report extra)")
    png, svg = tmp_path / "o.png", tmp_path / "o.svg"
    plot_optimizer_scaling(points, [png, svg])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "milliseconds per optimization" in svg.read_text()
