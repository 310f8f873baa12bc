"""reports/profiling.py: the profile's time shares, its counts, and its outputs."""

from __future__ import annotations

import cProfile
import json
import pstats
import re

import pytest
import torch

from marketsim_opt import workloads
from marketsim_opt.kernel import profit_per_day
from marketsim_opt.reports import profiling


def test_time_shares_counts_nested_kernel_calls_once():
    """profit_per_day calls raw_profit_per_day: kernel time is profit_per_day's cumulative time, not the sum."""
    t = torch.rand(2000)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(50):
        profit_per_day(t, t + 1, t + 0.5, t - 1, t - 0.5, torch.ones(2000)).sum().item()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total, kernel, readback = profiling.time_shares(stats)
    outer = next(v for k, v in stats.stats.items() if k[2] == "profit_per_day" and k[0].endswith("kernel.py"))
    assert kernel == pytest.approx(outer[3])
    assert readback > 0
    assert 0 < kernel + readback <= total


def test_profile_workload_counts_and_outputs(tmp_path):
    """Evaluations and syncs are those of the same runs without the profiler; all outputs are written."""
    workload = workloads.profile()
    expected_evals = expected_syncs = 0
    for strategy in workloads.STRATEGIES:
        result = workloads.run(workload, strategy, method="direct", budget=25)
        expected_evals += int(result.nfev)
        expected_syncs += result.syncs
    pytest.importorskip("tuna", reason="the icicle view needs tuna (the report extra)")
    out = tmp_path / "prof"
    summary = profiling.profile_workload(workload, out, method="direct", budget=25)
    assert summary.evaluations == expected_evals
    assert summary.syncs == expected_syncs
    assert summary.budget == "25"
    assert summary.kernel_s > 0 and summary.readback_s > 0 and summary.other_s > 0
    assert summary.kernel_s + summary.readback_s + summary.other_s == pytest.approx(summary.profiled_s)
    assert sorted(p.name for p in out.iterdir()) == ["icicle", "profile.prof", "summary.json", "summary.txt"]
    assert pstats.Stats(str(out / "profile.prof")).total_calls > 0
    page = (out / "icicle" / "index.html").read_text()
    assert page.count("<script") >= 1
    assert "profile.prof" in page and ".tmp" not in page  # titled by the file, not the temporary folder
    assert (out / "icicle" / "static" / "icicle.js").is_file()
    data = json.loads((out / "summary.json").read_text())
    assert data["evaluations"] == expected_evals
    assert data["per_evaluation_us"] == pytest.approx(summary.per_evaluation_us)
    text = (out / "summary.txt").read_text()
    for label in ("kernel", "host read-backs", "optimizer and glue"):
        assert re.search(rf"^  {label} +[0-9.]+ s +[0-9.]+ %$", text, re.M), label
    assert re.search(rf"^host syncs +{expected_syncs}$", text, re.M)
    assert re.search(rf"^evaluations +{expected_evals}$", text, re.M)


def test_failed_icicle_leaves_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "prof"
    out.mkdir()
    (out / "summary.txt").write_text("previous")

    def boom(prof, out_dir):
        raise RuntimeError("planted")

    monkeypatch.setattr(profiling, "write_icicle", boom)
    with pytest.raises(RuntimeError, match="planted"):
        profiling.profile_workload(workloads.profile(), out, method="exact")
    assert [p.name for p in out.iterdir()] == ["summary.txt"]
    assert (out / "summary.txt").read_text() == "previous"
