"""The gate's judging rules on synthetic values and samples (fast; the planted commits are in test_gate.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("asv", reason="the timing rule uses asv's statistics (the bench extra)")

GATE = Path(__file__).resolve().parents[2] / "tools" / "gate.py"
_spec = importlib.util.spec_from_file_location("tools_gate_rules", GATE)
gate = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gate
_spec.loader.exec_module(gate)

WIDE_CI = {"ci_99_a": 0.0, "ci_99_b": 1e9}  # only the samples decide
SAMPLES = [1.0 + 0.005 * i for i in range(40)]  # 1.0 .. 1.195 s


def timing(base: list[float], head: list[float]) -> str:
    med = sorted(base)[len(base) // 2], sorted(head)[len(head) // 2]
    return gate.judge("kernel.X.time_x", "timing", med[0], med[1], (WIDE_CI, base), (WIDE_CI, head))


@pytest.mark.parametrize(
    ("name", "base", "head", "verdict"),
    [
        ("track_host_syncs", 523, 524, "regression"),
        ("track_host_syncs", 523, 3, "improvement"),
        ("track_evaluations", 500, 500, "unchanged"),
        ("track_regret_bp", 0.67, 0.67 + 5e-7, "unchanged"),
        ("track_regret_bp", 0.67, 0.67 + 2e-6, "regression"),
    ],
)
def test_deterministic_metrics_have_no_tolerance(name, base, head, verdict):
    assert gate.judge(f"optimizers.OptimizerMetrics.{name}", "deterministic", base, head) == verdict


def test_memory_threshold():
    assert gate.judge("m.track_region_peak_bytes", "memory", 100, 110) == "unchanged"
    assert gate.judge("m.track_region_peak_bytes", "memory", 100, 111) == "regression"


def test_timing_2x_everywhere_is_a_regression_and_half_an_improvement():
    assert timing(SAMPLES, [2 * x for x in SAMPLES]) == "regression"
    assert timing(SAMPLES, [x / 2 for x in SAMPLES]) == "improvement"


def test_timing_same_distribution_is_unchanged():
    assert timing(SAMPLES, list(reversed(SAMPLES))) == "unchanged"


def test_timing_needs_both_ratios():
    """Slow stretches lift HEAD's median past the factor but not its fastest samples: not a regression."""
    head = [1.0] * 5 + [2.0 + 0.01 * i for i in range(35)]
    assert timing(SAMPLES, head) == "unchanged"
    # a lucky fast window lowers BASE's minimum only: not a regression either
    base = [0.4] + SAMPLES[1:]
    assert timing(base, [1.6 * x for x in SAMPLES][:1] + SAMPLES[1:]) == "unchanged"


def test_timing_without_samples_falls_back_to_medians():
    stats = {"ci_99_a": 1.0, "ci_99_b": 1.1}, {"ci_99_a": 2.0, "ci_99_b": 2.2}
    assert gate.judge("k.time_x", "timing", 1.05, 2.1, (stats[0], None), (stats[1], None)) == "regression"


INSTR = "instructions.SequentialEval.track_instructions"


def test_instruction_counts_are_their_own_kind():
    assert gate.kind_of(INSTR) == "instructions"
    assert gate.kind_of("instructions.BatchedEvalPerCandidate.track_instructions") == "instructions"
    assert gate.kind_of("optimizers.OptimizerMetrics.track_wall_time") is None


def test_instruction_threshold_is_tight_and_catches_2x():
    """Counts barely move (A/A in benchmarks/README.md): past INSTRUCTION_FACTOR regresses, 2x always does."""
    base = 353_000.0
    factor = gate.INSTRUCTION_FACTOR
    assert 1.0 < factor < 1.1
    assert gate.judge(INSTR, "instructions", base, base * (1 + 0.9 * (factor - 1))) == "unchanged"
    assert gate.judge(INSTR, "instructions", base, base * (1 + 1.1 * (factor - 1))) == "regression"
    assert gate.judge(INSTR, "instructions", base, 2 * base) == "regression"
    assert gate.judge(INSTR, "instructions", base, base / 2) == "improvement"


NAN = float("nan")


def test_instructions_asked_for_but_never_measured_cannot_decide():
    """Skipped on both commits (no valgrind in the benchmark env, the switch lost): exit 2, not a silent pass."""
    skipped = {INSTR: (NAN, (None, None)), "optimizers.X.track_host_syncs": (3, (None, None))}
    with pytest.raises(gate.HarnessError, match="none was measured on either commit.*--no-instructions"):
        gate.check_instructions(skipped, skipped, required=False)
    with pytest.raises(gate.HarnessError, match="none was measured"):
        gate.check_instructions({}, {}, required=True)  # the default benchmarks without the tier's results
    gate.check_instructions({}, {}, required=False)  # --bench without the tier: nothing to check
    measured = dict(skipped, **{"instructions.ExactProfile.track_instructions": (2.7e7, (None, None))})
    gate.check_instructions(skipped, measured, required=True)  # one measured: the tier ran (others: old API)


def fake_run(monkeypatch, values):
    """gate.main with asv replaced: records each run_asv call and returns `values[commit]` as the results."""
    runs = []
    monkeypatch.setattr(gate, "missing_instruction_tools", lambda: [])
    monkeypatch.setattr(gate, "run_asv", lambda repo, commits, work, **kw: runs.append(kw) or work)
    monkeypatch.setattr(gate, "load_values", lambda results, commit: values[commit])
    monkeypatch.setattr(gate, "resolve", lambda rev, repo: rev)
    return runs


def test_main_judges_instruction_counts_by_default(monkeypatch, capsys):
    """The default run turns the tier on and selects it; a doubled count exits 1 with the metric named."""
    values = {"base": {INSTR: (353_000.0, (None, None))}, "head": {INSTR: (706_000.0, (None, None))}}
    runs = fake_run(monkeypatch, values)
    assert gate.main(["base", "head"]) == 1
    assert len(runs) == 1 and runs[0]["instructions"] is True and gate.INSTRUCTION_BENCH in runs[0]["bench"]
    assert f"| regression | `{INSTR}` | instructions |" in capsys.readouterr().out


def test_main_with_timings_runs_the_tier_once_apart(monkeypatch):
    """With --timings the tier is its own asv run without rounds (one valgrind run per commit, not per round)."""
    values = {"base": {INSTR: (1.0, (None, None))}, "head": {INSTR: (1.0, (None, None))}}
    runs = fake_run(monkeypatch, values)
    assert gate.main(["base", "head", "--timings"]) == 0
    assert [(r["bench"], r["timings"]) for r in runs][0] == (gate.INSTRUCTION_BENCH, False)
    assert runs[1]["timings"] is True and gate.INSTRUCTION_BENCH not in runs[1]["bench"]


def test_main_without_valgrind_cannot_decide(monkeypatch, capsys):
    """No valgrind: exit 2 before anything runs, saying so; --no-instructions gates without the tier."""
    monkeypatch.setattr(gate, "missing_instruction_tools", lambda: ["valgrind", "callgrind_control"])
    monkeypatch.setattr(gate, "run_asv", lambda *a, **k: pytest.fail("asv must not run"))
    assert gate.main(["HEAD", "HEAD"]) == 2
    err = capsys.readouterr().err
    assert "instruction counts need valgrind" in err and "--no-instructions" in err
    values = {"c": {"optimizers.X.track_host_syncs": (3, (None, None))}}
    runs = fake_run(monkeypatch, values)
    monkeypatch.setattr(gate, "missing_instruction_tools", lambda: pytest.fail("not checked when off"))
    assert gate.main(["c", "c", "--no-instructions"]) == 0
    assert runs[0]["instructions"] is False and gate.INSTRUCTION_BENCH not in runs[0]["bench"]


def test_asv_environments_install_through_the_repository_pins(tmp_path, monkeypatch):
    """run_asv hands asv (and so pip in its environments) the repository's constraints.txt; a caller's own
    PIP_CONSTRAINT wins."""
    (tmp_path / "asv.conf.json").write_text('{"version": 1, "project": "x"}')
    seen = []

    class Done:
        returncode, stdout = 0, ""

    def fake_run(cmd, **kwargs):
        seen.append(kwargs.get("env"))
        return Done()

    monkeypatch.setattr(gate.subprocess, "run", fake_run)
    monkeypatch.delenv("PIP_CONSTRAINT", raising=False)
    gate.run_asv(tmp_path, ["abc"], tmp_path, bench="x", timings=False, env_dir=tmp_path / "env")
    assert seen[-1]["PIP_CONSTRAINT"] == str(tmp_path / "constraints.txt")
    monkeypatch.setenv("PIP_CONSTRAINT", "/elsewhere/pins.txt")
    gate.run_asv(tmp_path, ["abc"], tmp_path, bench="x", timings=False, env_dir=tmp_path / "env")
    assert seen[-1]["PIP_CONSTRAINT"] == "/elsewhere/pins.txt"
