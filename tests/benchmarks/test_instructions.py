"""The instruction-count tier (benchmarks/instructions.py): its skips, its arithmetic, and one real collection."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from benchmarks import instructions

CLASSES = (
    instructions.SequentialEval,
    instructions.BatchedEvalPerCandidate,
    instructions.ExactProfile,
    instructions.ExactBacktest,
)


def test_tier_off_skips_with_the_switch_named(monkeypatch):
    """Without MARKETSIM_BENCH_INSTRUCTIONS=1 every benchmark skips, saying how to turn the tier on."""
    monkeypatch.delenv(instructions.TIER_ENV, raising=False)
    cache = instructions.SequentialEval().setup_cache()
    assert "MARKETSIM_BENCH_INSTRUCTIONS=1" in cache["skip"]
    for cls in CLASSES:
        with pytest.raises(NotImplementedError, match="MARKETSIM_BENCH_INSTRUCTIONS=1"):
            cls().setup(cache)


def test_missing_valgrind_skips_with_the_reason(monkeypatch, tmp_path):
    """Tier on but no valgrind on PATH: a skip naming valgrind and how to install it, not a failure."""
    monkeypatch.setenv(instructions.TIER_ENV, "1")
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no valgrind, no callgrind_control
    reason = instructions.unavailable()
    assert reason is not None and "valgrind not installed" in reason and "apt-get install valgrind" in reason
    cache = instructions.ExactBacktest().setup_cache()
    with pytest.raises(NotImplementedError, match="valgrind not installed"):
        instructions.ExactBacktest().setup(cache)


def test_path_missing_at_an_older_commit_skips_alone():
    """A path whose API an older commit lacks skips with its reason; the others report their counts."""
    cache = {"per_call": {"eval_sequential": 353000.0}, "skipped": {"exact_backtest": "no run_stacked here"}}
    with pytest.raises(NotImplementedError, match="no run_stacked here"):
        instructions.ExactBacktest().setup(cache)
    bench = instructions.SequentialEval()
    bench.setup(cache)
    assert bench.track_instructions(cache) == 353000.0


def test_every_benchmark_is_in_the_plan_with_its_unit():
    assert {cls.path for cls in CLASSES} == {path for path, _ in instructions.PLAN} == set(instructions._builders())
    assert instructions._Collected.track_instructions.unit == "instructions"
    assert all(calls >= 5 for _, calls in instructions.PLAN)


def test_per_call_subtracts_the_empty_loop_and_divides_by_candidates():
    seq = instructions.Count("eval_sequential", calls=100, loop=35_000_000 + 50_000, empty_loop=50_000)
    assert seq.per_call == 350_000
    batched = instructions.Count("eval_batched", calls=5, loop=5 * 4096 * 17_000 + 4_000, empty_loop=4_000)
    assert batched.per_call == 17_000


def test_callgrind_total_reads_totals_then_summary(tmp_path):
    out = tmp_path / "callgrind.out.1"
    out.write_text("version: 1\ncmd: python\nevents: Ir\nsummary: 1234\n\nfn=(1) f\n3 1234\n\ntotals: 1234\n")
    assert instructions.callgrind_total(out) == 1234
    out.write_text("events: Ir\nsummary: 99\n")
    assert instructions.callgrind_total(out) == 99
    out.write_text("not a callgrind file\n")
    with pytest.raises(ValueError, match="no totals or summary line"):
        instructions.callgrind_total(out)


def test_refused_instrumentation_falls_back_to_instrumenting_from_the_start(monkeypatch):
    """When callgrind_control cannot switch instrumentation on, the collection reruns instrumented from exec."""
    calls = []

    def fake(work, plan, *, instr_atstart, env):
        assert env["PYTHONHASHSEED"] == "0"
        calls.append(instr_atstart)
        if not instr_atstart:
            raise instructions._InstrumentationRefused()
        return [], {}

    monkeypatch.setattr(instructions, "_run_child", fake)
    assert instructions.collect([("eval_sequential", 1)]) == ([], {})
    assert calls == [False, True]


def test_paths_are_built_from_the_shared_getters():
    """Each path runs here, outside valgrind, and computes what it claims (a read-back, K profits, two solves)."""
    paths = {name: build() for name, build in instructions._builders().items()}
    assert isinstance(paths["eval_sequential"](), float)
    assert paths["eval_batched"]().shape == (instructions.BATCH,)
    assert np.isfinite(np.asarray(paths["exact_profile"]().profit)).all()
    backtest = paths["exact_backtest"]()
    assert torch.as_tensor(backtest.profit).numel() == 2 * 70


@pytest.mark.slow
@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in instructions.TOOLS), reason="needs valgrind (apt-get install valgrind)"
)
def test_a_real_collection_is_per_call_and_subtracts_the_harness():
    """One valgrind run (about 45 s): 20 and 40 calls of the sequential evaluation.

    Per call agrees within 1 % at both call counts and with the slope between them (so the harness's
    constant cost is what the empty loop took out); the empty loop grows with the calls and is a sliver.
    """
    counts, skipped = instructions.collect([("eval_sequential", 20), ("eval_sequential", 40)])
    assert not skipped
    short, long = counts
    assert (short.calls, long.calls) == (20, 40)
    slope = (long.loop - short.loop) / (long.calls - short.calls)
    assert 1e4 < long.per_call < 1e8
    assert short.per_call == pytest.approx(long.per_call, rel=0.01)
    assert slope == pytest.approx(long.per_call, rel=0.01)
    assert 0 < short.empty_loop < long.empty_loop < 0.01 * long.loop
