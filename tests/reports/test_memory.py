"""reports/memory.py: memray capture, flame graph and peak of a workload."""

from __future__ import annotations

import json

import pytest

from marketsim_opt import workloads
from marketsim_opt.files import MARKER
from marketsim_opt.reports.memory import TOP_SITES, memory_workload

memray = pytest.importorskip("memray", reason="the memory command needs memray (the report extra)")


def test_memory_workload_writes_flamegraph_and_peak(tmp_path):
    out = tmp_path / "mem"
    summary = memory_workload(workloads.profile(), out, method="grid", budget=500)
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "flamegraph.html",
        "memray.bin",
        "summary.json",
        "summary.txt",
    ]
    assert summary.peak_bytes == memray.FileReader(out / "memray.bin").metadata.peak_memory
    # grid scores its candidates as [K, N] float32 tensors: at least one 500 x 200 x 4-byte temporary is live
    assert summary.peak_bytes >= 500 * 200 * 4
    assert 0 < len(summary.top_sites) <= TOP_SITES
    assert sum(size for _, size in summary.top_sites) <= summary.peak_bytes
    assert summary.allocations > 0
    assert "d3-flamegraph" in (out / "flamegraph.html").read_text()
    assert json.loads((out / "summary.json").read_text())["peak_bytes"] == summary.peak_bytes
