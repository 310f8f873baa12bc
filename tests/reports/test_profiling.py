"""reports/profiling.py: the profile's time shares, its counts, and its outputs."""

from __future__ import annotations

import cProfile
import json
import pstats
import re

import pytest
import torch

from marketsim_opt import workloads
from marketsim_opt.files import MARKER, OutputError, atomic_dir
from marketsim_opt.instrument import READBACK_METHODS
from marketsim_opt.kernel import profit_per_day
from marketsim_opt.reports import extras, profiling
from marketsim_opt.reports.extras import MissingExtraError


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
        expected_evals += int(result.nfev.sum())
        expected_syncs += result.syncs
    pytest.importorskip("tuna", reason="the icicle view needs tuna (the report extra)")
    out = tmp_path / "prof"
    summary = profiling.profile_workload(workload, out, method="direct", budget=25)
    assert summary.evaluations == expected_evals
    assert summary.syncs == expected_syncs
    assert summary.budget == "25"
    assert summary.kernel_s > 0 and summary.readback_s > 0 and summary.other_s > 0
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "icicle", "profile.prof", "summary.json", "summary.txt"]
    stats = pstats.Stats(str(out / "profile.prof"))
    assert stats.total_calls > 0
    assert summary.profiled_s == pytest.approx(stats.total_tt)
    # The shares recomputed from the .prof file another way: kernel time is the time of the calls that enter
    # kernel.py from outside it (time_shares subtracts the calls made from inside instead); read-back time is
    # that of the torch methods named as cProfile names them.
    entering = sum(
        timing[3]
        for (file, _line, _name), (*_, callers) in stats.stats.items()
        if file.endswith("marketsim_opt/kernel.py")
        for (caller_file, _l, _n), timing in callers.items()
        if not caller_file.endswith("marketsim_opt/kernel.py")
    )
    assert summary.kernel_s == pytest.approx(entering, rel=1e-6)
    readback_names = {f"<method '{m}' of 'torch._C.TensorBase' objects>" for m in READBACK_METHODS}
    readback_names |= {f"TensorBase.{m}" for m in READBACK_METHODS}
    readbacks = sum(
        ct
        for (_file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items()
        if name in readback_names or name.split(" at 0x")[0].removeprefix("<function ") in readback_names
    )
    assert summary.readback_s == pytest.approx(readbacks, rel=1e-6)
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
    with atomic_dir(out, command="profile") as tmp:
        (tmp / "summary.txt").write_text("previous")

    def boom(prof, out_dir):
        raise RuntimeError("planted")

    monkeypatch.setattr(profiling, "write_icicle", boom)
    with pytest.raises(RuntimeError, match="planted"):
        profiling.profile_workload(workloads.profile(), out, method="exact")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "summary.txt"]
    assert (out / "summary.txt").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["prof"]  # no temporary folder left behind


def test_profile_refuses_a_foreign_folder_before_running(tmp_path, monkeypatch):
    """A folder that is not an earlier profile output is refused before the workload runs."""
    out = tmp_path / "prof"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    monkeypatch.setattr(profiling, "run_all", lambda *a, **k: pytest.fail("the workload ran"))
    with pytest.raises(OutputError, match="pass --force"):
        profiling.profile_workload(workloads.profile(), out, method="exact")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_missing_tuna_is_reported_before_running(tmp_path, monkeypatch):
    """Without tuna, the icicle view's install hint comes before any run, and names this checkout's command."""
    monkeypatch.setattr(extras.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(profiling, "run_all", lambda *a, **k: pytest.fail("the workload ran"))
    with pytest.raises(MissingExtraError, match=r"needs tuna .*pip install -c constraints\.txt -e '\.\[report\]'"):
        profiling.profile_workload(workloads.profile(), tmp_path / "p", method="exact")
    assert list(tmp_path.iterdir()) == []
