"""The gate's judging rules on synthetic values and samples (fast; the planted commits are in test_gate.py)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("asv", reason="the timing rule uses asv's statistics (the bench extra)")

REPO = Path(__file__).resolve().parents[2]
GATE = REPO / "tools" / "gate.py"
_spec = importlib.util.spec_from_file_location("tools_gate_rules", GATE)
gate = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gate
_spec.loader.exec_module(gate)
GATE_RUN_ASV = gate.run_asv  # the real one, for tests that fake only what it runs


def unpadded(text: str) -> str:
    """`text` with the table's column padding (tabulate's) squeezed to one space, as the assertions spell rows."""
    return re.sub(r"(?<=\|) {2,}| {2,}(?=\|)", " ", text)


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


NEXT_DAY = "optimizers.OutOfSample.track_next_day_loss_bp('always_on', 'exact')"


@pytest.mark.parametrize(
    ("base", "head", "verdict"),
    [
        (2.5, 2.5 + 5e-7, "unchanged"),  # within REGRET_TOLERANCE_BP
        (2.5, 2.5 - 5e-7, "unchanged"),
        (2.5, 2.5 + 2e-6, "regression"),  # a larger loss out of sample
        (-1.25, -1.25 + 0.1, "regression"),  # a smaller profit (a loss less negative) too
        (2.5, 2.4, "improvement"),
    ],
)
def test_next_day_loss_is_judged_like_regret(base, head, verdict):
    """OutOfSample's next-day loss is deterministic and in bp: an increase beyond REGRET_TOLERANCE_BP regresses."""
    assert gate.kind_of(NEXT_DAY) == "deterministic"
    assert gate.judge(NEXT_DAY, "deterministic", base, head) == verdict
    assert gate.judge(NEXT_DAY, "deterministic", base, head) == gate.judge(
        "optimizers.OptimizerMetrics.track_regret_bp('backtest', 'always_on', 'exact')", "deterministic", base, head
    )


def test_only_bp_metrics_have_the_tolerance():
    """The tolerance comes from the metric's own name, not from a parameter that mentions regret."""
    assert gate.judge("x.Y.track_host_syncs('regret@100')", "deterministic", 3, 3 + 1e-9) == "regression"
    assert set(gate.BP_METRICS) <= set(gate.DETERMINISTIC)


def test_next_day_loss_rows_compare_and_skip_like_regret():
    """Measured on both: compared; skipped on both outside BACKTEST_FAST: allowed (slow tier); one side: undecided."""
    base = {NEXT_DAY: (1.0, None)}
    [row] = gate.compare(base, {NEXT_DAY: (1.5, None)}, timings=False)
    assert (row.kind, row.verdict) == ("deterministic", "regression")
    slow = "optimizers.OutOfSample.track_next_day_loss_bp('entry_exit', 'nevergrad:NGOpt@100')"
    expected = {slow: {"strategy": "entry_exit", "method": "nevergrad:NGOpt@100"}}
    [row] = gate.compare({slow: (math.nan, None)}, {slow: (math.nan, None)}, timings=False, expected=expected)
    assert row.verdict == "allowed" and "slow tier" in row.note
    [row] = gate.compare({NEXT_DAY: (math.nan, None)}, {NEXT_DAY: (1.0, None)}, timings=False)
    assert row.verdict == "skipped on BASE"


def test_memory_threshold():
    """Above MEMORY_FACTOR x BASE and more than MEMORY_MIN_BYTES above it; the same rule down for improvements."""
    mib = 2**20
    judge = lambda base, head: gate.judge("m.track_region_peak_bytes", "memory", base, head)  # noqa: E731
    assert judge(100 * mib, 110 * mib) == "unchanged"
    assert judge(100 * mib, 111 * mib) == "regression"
    assert judge(100 * mib, 89 * mib) == "improvement"
    # one more 1 MiB Python arena on a 5 MiB peak (measured: 5,403,912 -> 6,452,488 bytes) is not a regression
    assert judge(5_403_912, 6_452_488) == "unchanged"
    assert judge(6_452_488, 5_403_912) == "unchanged"
    assert judge(5 * mib, 5 * mib + gate.MEMORY_MIN_BYTES + 1) == "regression"
    assert judge(5 * mib, 5 * mib + 64 * mib) == "regression"  # the planted 64 MiB


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


def fake_run(monkeypatch, values, expected=None, references=()):
    """gate.main with asv replaced: records each run_asv call and returns `values[commit]` as the results.

    `expected`: the judged set the benchmarks.json reader returns (`{name: params}`; default: every name in
    `values`, without parameters); `references`: the frozen-reference files git reports as changed."""
    runs = []
    names = {name for side in values.values() for name in side}
    judged = {name: {} for name in sorted(names)} if expected is None else expected
    monkeypatch.setattr(gate, "missing_instruction_tools", lambda: [])
    monkeypatch.setattr(gate, "run_asv", lambda repo, commits, work, **kw: runs.append(kw) or work)
    monkeypatch.setattr(gate, "load_values", lambda results, commit: values[commit])
    monkeypatch.setattr(gate, "expected_metrics", lambda results, regexes, *, kinds, benchmark_dir=None: judged)
    monkeypatch.setattr(gate, "resolve", lambda rev, repo: rev)
    monkeypatch.setattr(gate, "references_changed", lambda repo, base, head: list(references))
    return runs


def test_main_judges_instruction_counts_by_default(monkeypatch, capsys):
    """The default run turns the tier on and selects it; a doubled count exits 1 with the metric named."""
    values = {"base": {INSTR: (353_000.0, (None, None))}, "head": {INSTR: (706_000.0, (None, None))}}
    runs = fake_run(monkeypatch, values)
    assert gate.main(["base", "head"]) == 1
    assert len(runs) == 1 and runs[0]["instructions"] is True and gate.INSTRUCTION_BENCH in runs[0]["bench"]
    assert f"| regression | `{INSTR}` | instructions |" in unpadded(capsys.readouterr().out)


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


# --- exit codes that never lie ---------------------------------------------------------------------------------

SYNCS = "optimizers.OptimizerMetrics.track_host_syncs('profile', 'entry_exit', 'direct@100')"
REGRET = "optimizers.OptimizerMetrics.track_regret_bp('profile', 'entry_exit', 'direct@100')"
TPE = "optimizers.OptimizerMetrics.track_regret_bp('profile', 'entry_exit', 'optuna:TPE@100')"
TPE_PARAMS = {"workload": "profile", "strategy": "entry_exit", "method": "optuna:TPE@100"}


def v(value) -> tuple:
    return (value, (None, None))


def gate_main(monkeypatch, capsys, base: dict, head: dict, *args: str, expected=None, references=()):
    """Run gate.main on fake results (`--no-instructions` unless asked): (exit code, stdout unpadded, stderr)."""
    fake_run(monkeypatch, {"base": base, "head": head}, expected, references)
    code = gate.main(["base", "head", *(args or ("--no-instructions",))])
    out, err = capsys.readouterr()
    return code, unpadded(out), err


def test_all_nan_on_base_cannot_decide_and_lists_the_rows(monkeypatch, capsys):
    """Regret skipped (NaN) on every BASE row: once a silent exit 0, now exit 2 with every row in the table."""
    names = [REGRET.replace("direct@100", m) for m in ("direct@100", "grid@100", "exact")]
    code, out, err = gate_main(monkeypatch, capsys, {n: v(NAN) for n in names}, {n: v(0.5) for n in names})
    assert code == 2
    for name in names:
        assert f"| skipped on BASE | `{name}` | deterministic | - | 0.5 |" in out
    assert "3 skipped" in out.splitlines()[0]
    assert err.strip().splitlines() == [
        "gate: cannot decide: 3 judged metric(s) not measured on both commits (see the table)"
    ]


@pytest.mark.parametrize(
    ("base", "head", "verdict"),
    [
        ({}, {SYNCS: v(3)}, "missing"),  # absent from BASE (one-sided)
        ({SYNCS: v(3)}, {}, "missing"),  # absent from HEAD
        ({SYNCS: v(NAN)}, {SYNCS: v(3)}, "skipped on BASE"),  # once "not comparable (new in HEAD)", exit 0
        ({SYNCS: v(3)}, {SYNCS: v(NAN)}, "skipped on HEAD"),
        ({SYNCS: v(NAN)}, {SYNCS: v(NAN)}, "skipped on both"),  # not on the allow-list
        ({SYNCS: v(None)}, {SYNCS: v(3)}, "failed"),
        ({SYNCS: v(3)}, {SYNCS: v(None)}, "failed"),
        ({SYNCS: v(3)}, {SYNCS: v(math.inf)}, "failed"),
    ],
)
def test_a_metric_not_measured_on_both_commits_cannot_decide(monkeypatch, capsys, base, head, verdict):
    """Beside a measured, unchanged metric, one metric not measured on both commits makes the exit code 2."""
    base, head = {REGRET: v(0.5), **base}, {REGRET: v(0.5), **head}
    code, out, _ = gate_main(monkeypatch, capsys, base, head, expected={REGRET: {}, SYNCS: {}})
    assert code == 2
    assert f"| {verdict} | `{SYNCS}` | deterministic |" in out


def test_a_judged_metric_missing_from_both_results_is_a_row(monkeypatch, capsys):
    """The judged set comes from benchmarks.json: a metric neither side's results hold is `missing`, exit 2."""
    code, out, _ = gate_main(monkeypatch, capsys, {REGRET: v(0.5)}, {REGRET: v(0.5)}, expected={REGRET: {}, SYNCS: {}})
    assert code == 2
    assert f"| missing | `{SYNCS}` | deterministic | - | - | - | absent from BASE and HEAD's results |" in out


def test_regression_beside_a_failure_cannot_decide(monkeypatch, capsys):
    """A regression does not hide a failed metric: exit 2, both rows listed, the undecided one first."""
    base, head = {REGRET: v(0.5), SYNCS: v(3)}, {REGRET: v(0.9), SYNCS: v(None)}
    code, out, _ = gate_main(monkeypatch, capsys, base, head)
    assert code == 2
    rows = [line for line in out.splitlines() if line.startswith("| failed") or line.startswith("| regression")]
    assert [r.split(" | ")[0] for r in rows] == ["| failed", "| regression"]


def test_skipped_on_both_and_allowed_passes_with_the_reason(monkeypatch, capsys):
    """optuna:TPE skipped on both commits is on the allow-list: exit 0, the reason in one grouped line."""
    base, head = {REGRET: v(0.5), TPE: v(NAN)}, {REGRET: v(0.5), TPE: v(NAN)}
    code, out, _ = gate_main(monkeypatch, capsys, base, head, expected={REGRET: {}, TPE: TPE_PARAMS})
    assert code == 0
    assert "| allowed | 1 metric(s) skipped on both commits |" in out and "optuna" in out
    assert "0 skipped, 1 allowed" in out.splitlines()[0]
    code, out, _ = gate_main(
        monkeypatch, capsys, base, head, "--no-instructions", "--all", expected={REGRET: {}, TPE: TPE_PARAMS}
    )
    assert f"| allowed | `{TPE}` | deterministic |" in out and f"| unchanged | `{REGRET}` |" in out


def test_allowed_only_when_skipped_on_both(monkeypatch, capsys):
    """An allow-listed metric skipped on one commit only is still undecided (exit 2)."""
    base, head = {REGRET: v(0.5), TPE: v(0.2)}, {REGRET: v(0.5), TPE: v(NAN)}
    code, out, _ = gate_main(monkeypatch, capsys, base, head, expected={REGRET: {}, TPE: TPE_PARAMS})
    assert code == 2
    assert f"| skipped on HEAD | `{TPE}` |" in out


def test_only_allowed_rows_compare_nothing(monkeypatch, capsys):
    """Every judged metric allow-listed and skipped: nothing was compared, exit 2."""
    code, _, err = gate_main(monkeypatch, capsys, {TPE: v(NAN)}, {TPE: v(NAN)}, expected={TPE: TPE_PARAMS})
    assert code == 2
    assert "nothing compared" in err


def test_empty_judged_set_cannot_decide(monkeypatch, capsys):
    """No judged metric selected (e.g. a --bench matching only wall times): exit 2, one line."""
    wall = "optimizers.OptimizerMetrics.track_wall_time('profile', 'entry_exit', 'exact')"
    code, out, err = gate_main(monkeypatch, capsys, {wall: v(1.0)}, {wall: v(1.0)}, expected={})
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "no judged metric" in err


def test_regression_and_unchanged_exit_codes(monkeypatch, capsys):
    assert gate_main(monkeypatch, capsys, {SYNCS: v(3)}, {SYNCS: v(4)})[0] == 1
    assert gate_main(monkeypatch, capsys, {SYNCS: v(3)}, {SYNCS: v(3)})[0] == 0
    assert gate_main(monkeypatch, capsys, {SYNCS: v(3)}, {SYNCS: v(2)})[0] == 0  # an improvement


def test_exit_code_of_no_rows_is_2():
    assert gate.exit_code([]) == 2


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (KeyError("base"), ["KeyError", "'base'"]),
        (ValueError("bad\nmultiline\nmessage"), ["ValueError", "bad multiline message"]),
        (gate.HarnessError("asv run exited 1; log: x\n  a failed\n  b failed"), ["asv run exited 1", "b failed"]),
        (ModuleNotFoundError("No module named 'asv'", name="asv"), ["'asv'", "pip install -c constraints.txt"]),
    ],
)
def test_any_exception_in_main_is_exit_2_with_one_line(monkeypatch, capsys, exc, words):
    """Whatever raises inside the gate (not only HarnessError): exit 2, exactly one line on stderr naming it."""
    fake_run(monkeypatch, {})

    def boom(rev, repo):
        raise exc

    monkeypatch.setattr(gate, "resolve", boom)
    assert gate.main(["base", "head", "--no-instructions"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("gate: cannot decide: ")
    assert all(w in err for w in words), err


def test_keyboard_interrupt_is_exit_130(monkeypatch, capsys):
    fake_run(monkeypatch, {})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gate, "run_asv", interrupted)
    assert gate.main(["base", "head", "--no-instructions"]) == 130
    assert capsys.readouterr().err.splitlines() == ["gate: interrupted"]


def test_asv_machine_failing_cannot_decide(tmp_path, monkeypatch, capsys):
    """`asv machine` exiting non-zero: exit 2, one line naming the command and the end of its output."""
    (tmp_path / "asv.conf.json").write_text('{"version": 1, "project": "x"}')
    fake_run(monkeypatch, {})
    monkeypatch.setattr(gate, "run_asv", GATE_RUN_ASV)

    class Failed:
        returncode, stdout = 3, "line 1\nasv: machine name refused\n"

    monkeypatch.setattr(gate.subprocess, "run", lambda cmd, **kw: Failed())
    assert gate.main(["base", "head", "--no-instructions", "--repo", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "machine --yes --machine gate" in err and "exited 3" in err and "machine name refused" in err


@pytest.mark.parametrize(("code", "raises"), [(2, False), (1, True)])
def test_asv_run_failures(tmp_path, monkeypatch, code, raises):
    """asv's exit 2 with results written (a benchmark failed): the results go on to become `failed` rows;
    any other failure of `asv run` is a HarnessError naming the log.  Either way the log is kept where it can be
    read after the gate's temporary folder is gone."""
    kept = tmp_path / "kept"
    kept.mkdir()
    monkeypatch.setattr(gate.tempfile, "tempdir", str(kept))
    (tmp_path / "asv.conf.json").write_text('{"version": 1, "project": "x"}')
    (tmp_path / "results" / gate.MACHINE).mkdir(parents=True)

    class Proc:
        returncode, stdout = 0, ""

    def fake(cmd, **kwargs):
        proc = Proc()
        if "run" in cmd:
            proc.returncode, proc.stdout = code, "x.y failed\n"
        return proc

    monkeypatch.setattr(gate.subprocess, "run", fake)
    if raises:
        with pytest.raises(gate.HarnessError, match=r"asv run exited 1; log: .*gate-asv-run-\w+\.log; x\.y failed"):
            gate.run_asv(tmp_path, ["abc"], tmp_path, bench="x", timings=False, env_dir=tmp_path / "env")
    else:
        assert gate.run_asv(tmp_path, ["abc"], tmp_path, bench="x", timings=False, env_dir=tmp_path / "env")
    (log,) = kept.glob("gate-asv-run-*.log")
    assert log.read_text() == "x.y failed\n"


def _system_python() -> str:
    for candidate in ("/usr/bin/python3", shutil.which("python3", path=os.defpath), sys.executable):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("no python3 to make a virtual environment from")


def test_a_python_without_asv_cannot_decide(tmp_path):
    """The gate run by a Python that lacks asv (a bare venv): exit 2 before anything runs, one line naming asv,
    that Python and the install command."""
    venv = tmp_path / "bare"
    subprocess.run([_system_python(), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    proc = subprocess.run([str(python), str(GATE), "HEAD", "HEAD"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "asv is not installed" in proc.stderr and str(venv) in proc.stderr and "pip install -c" in proc.stderr


def test_git_missing_cannot_decide(monkeypatch, capsys):
    fake_run(monkeypatch, {})
    monkeypatch.setattr(gate.shutil, "which", lambda name, *a, **k: None if name == "git" else "/bin/" + name)
    assert gate.main(["base", "head", "--no-instructions"]) == 2
    assert capsys.readouterr().err.splitlines() == ["gate: cannot decide: git is not on PATH"]


# --- the judged set and the allow-list -------------------------------------------------------------------------


def test_default_bench_judges_the_device_host_syncs():
    """DEFAULT_BENCH selects both device classes' host syncs (asv matches `name(params)`), not their timings."""
    pattern = re.compile(gate.DEFAULT_BENCH)
    assert pattern.search("devices.DeviceOptimize.track_host_syncs('profile', 'direct@100', 'cpu')")
    assert pattern.search("devices.DeviceBacktest.track_host_syncs('cpu')")
    assert not pattern.search("devices.DeviceBacktest.time_run_stacked('cpu')")
    assert not pattern.search("optimizers.OptimizerMetrics.track_wall_time('profile', 'entry_exit', 'exact')")


def test_default_bench_judges_the_next_day_loss():
    """DEFAULT_BENCH selects OutOfSample's next-day loss for every strategy and method."""
    pattern = re.compile(gate.DEFAULT_BENCH)
    assert pattern.search("optimizers.OutOfSample.track_next_day_loss_bp('entry_exit', 'direct@100')")
    assert pattern.search("optimizers.OutOfSample.track_next_day_loss_bp('always_on', 'robust:mean')")
    assert "track_next_day_loss_bp" in gate.DETERMINISTIC and "track_next_day_loss_bp" in gate.__doc__


def write_benchmarks_json(results: Path) -> None:
    """A benchmarks.json in asv's own format: one parametrized benchmark per judged kind, and others."""
    from asv.util import write_json

    def bench(name, params, names):
        return {"name": name, "params": params, "param_names": names, "type": "track", "version": "1"}

    opt = [["'profile'", "'backtest'"], ["'entry_exit'"], ["'direct@100'", "'optuna:TPE@100'"]]
    benchmarks = [
        bench("optimizers.OptimizerMetrics.track_host_syncs", opt, ["workload", "strategy", "method"]),
        bench("optimizers.OptimizerMetrics.track_wall_time", opt, ["workload", "strategy", "method"]),
        bench("devices.DeviceBacktest.track_host_syncs", [["'cpu'", "'cuda'"]], ["device"]),
        bench("devices.DeviceBacktest.time_run_stacked", [["'cpu'", "'cuda'"]], ["device"]),
        bench("memory.BatchedEvalMemory.track_region_peak_bytes", [["200", "2000"], ["4096"]], ["n_days", "batch"]),
        bench("instructions.SequentialEval.track_instructions", [], []),
    ]
    results.mkdir(parents=True, exist_ok=True)
    write_json(str(results / "benchmarks.json"), {b["name"]: b for b in benchmarks}, api_version=2)


def test_expected_metrics_reads_asvs_selection(tmp_path):
    """Every selected combination of a judged kind, named as asv compare's unroll_result names results."""
    from asv.commands.compare import unroll_result

    write_benchmarks_json(tmp_path)
    kinds = gate.judged_kinds(timings=False)
    got = gate.expected_metrics(tmp_path, [gate.DEFAULT_BENCH + "|" + gate.INSTRUCTION_BENCH], kinds=kinds)
    syncs = "optimizers.OptimizerMetrics.track_host_syncs"
    opt = [["'profile'", "'backtest'"], ["'entry_exit'"], ["'direct@100'", "'optuna:TPE@100'"]]
    names = [row[0] for row in unroll_result(syncs, opt, [0, 1, 2, 3])]
    assert set(names) <= set(got) and len(names) == 4
    assert got[f"{syncs}('backtest', 'entry_exit', 'optuna:TPE@100')"] == {
        "workload": "backtest",
        "strategy": "entry_exit",
        "method": "optuna:TPE@100",
    }
    assert got["devices.DeviceBacktest.track_host_syncs('cuda')"] == {"device": "cuda"}
    assert "memory.BatchedEvalMemory.track_region_peak_bytes(2000, 4096)" in got
    assert got["instructions.SequentialEval.track_instructions"] == {}
    assert not any("wall_time" in n or "time_run_stacked" in n for n in got)  # not selected / not judged
    assert len(got) == 4 + 2 + 2 + 1
    # a regex that picks some parameter combinations only: asv's own selection
    only = gate.expected_metrics(tmp_path, [r"track_host_syncs\('profile'"], kinds=kinds)
    assert sorted(only) == [
        f"{syncs}('profile', 'entry_exit', 'direct@100')",
        f"{syncs}('profile', 'entry_exit', 'optuna:TPE@100')",
    ]
    # timings only with --timings; instructions not without them
    timed = gate.expected_metrics(
        tmp_path, ["time_run_stacked|instructions"], kinds=gate.judged_kinds(timings=True, instructions=False)
    )
    assert sorted(timed) == [
        "devices.DeviceBacktest.time_run_stacked('cpu')",
        "devices.DeviceBacktest.time_run_stacked('cuda')",
    ]


def test_expected_metrics_without_benchmarks_json_cannot_decide(tmp_path):
    with pytest.raises(gate.HarnessError, match="benchmarks.json"):
        gate.expected_metrics(tmp_path, ["x"], kinds={"deterministic"})


def test_backtest_fast_is_read_without_importing_the_suite():
    """The gate reads BACKTEST_FAST with ast: the same tuple the suite imports."""
    optimizers = pytest.importorskip("benchmarks.optimizers")
    assert gate.backtest_fast(REPO / "benchmarks" / "optimizers.py") == optimizers.BACKTEST_FAST


def test_backtest_fast_unreadable_names_the_file(tmp_path):
    bad = tmp_path / "optimizers.py"
    bad.write_text("BACKTEST_FAST = tuple(x for x in 'ab')\n")
    with pytest.raises(gate.HarnessError, match="optimizers.py: no module-level BACKTEST_FAST"):
        gate.backtest_fast(bad)


def test_allow_list_matchers(monkeypatch):
    """Each entry matches its rows and no others; reasons are the documented ones."""
    fast = gate.backtest_fast(REPO / "benchmarks" / "optimizers.py")
    metrics = "optimizers.OptimizerMetrics.track_evaluations(...)"
    tpe = {"workload": "profile", "strategy": "entry_exit", "method": "optuna:TPE@default"}
    assert "optuna" in gate.allowed(metrics, tpe)
    slow = {"workload": "backtest", "strategy": "always_on", "method": "nevergrad:NGOpt@100"}
    assert "slow tier" in gate.allowed(metrics, slow)
    for method in fast:
        assert gate.allowed(metrics, dict(slow, method=method)) is None
    assert gate.allowed(metrics, dict(slow, workload="profile")) is None
    # OutOfSample runs on the backtest only (no workload parameter): the same slow tier
    next_day = "optimizers.OutOfSample.track_next_day_loss_bp(...)"
    assert "slow tier" in gate.allowed(next_day, {"strategy": "always_on", "method": "nevergrad:NGOpt@100"})
    for method in fast:
        assert gate.allowed(next_day, {"strategy": "always_on", "method": method}) is None
    assert {"zero", "exact:centre", "robust:worst", "robust:mean"} <= set(fast)
    # the slow-tier entry is about OptimizerMetrics and OutOfSample only
    assert gate.allowed("devices.DeviceOptimize.track_host_syncs(...)", {**slow, "device": "cpu"}) is None
    monkeypatch.setattr(gate.shutil, "which", lambda name, *a, **k: None)
    assert gate.allowed("devices.DeviceBacktest.track_host_syncs('cuda')", {"device": "cuda"}) == (
        "no CUDA device on this machine"
    )
    assert gate.allowed("devices.DeviceBacktest.track_host_syncs('cpu')", {"device": "cpu"}) is None
    monkeypatch.setattr(gate.shutil, "which", lambda name, *a, **k: "/usr/bin/" + name)
    assert gate.allowed("devices.DeviceBacktest.track_host_syncs('cuda')", {"device": "cuda"}) is None


def test_allow_list_is_documented():
    """Every reason's subject is in the module docstring, which documents the list."""
    for words in ("optuna", "BACKTEST_FAST", "MARKETSIM_BENCH_SLOW=1", "nvidia-smi"):
        assert words in gate.__doc__


# --- references and the JSON -----------------------------------------------------------------------------------


def test_changed_references_are_reported_but_do_not_decide(monkeypatch, capsys, tmp_path):
    """A change of the frozen references: its own stdout line before the table and a JSON field; exit unchanged."""
    out_json = tmp_path / "gate.json"
    files = ["benchmarks/ruler/frozen/profile.json"]
    code, out, _ = gate_main(
        monkeypatch,
        capsys,
        {SYNCS: v(3)},
        {SYNCS: v(3)},
        "--no-instructions",
        "--json",
        str(out_json),
        references=files,
    )
    assert code == 0
    assert out.splitlines()[0] == f"gate: the frozen references changed between BASE and HEAD: {files[0]}"
    payload = json.loads(out_json.read_text())
    assert payload["references_changed"] == files and payload["exit_code"] == 0
    assert list(tmp_path.iterdir()) == [out_json]  # written atomically: no temporary file left beside it


def test_json_holds_the_verdict_and_every_row(monkeypatch, capsys, tmp_path):
    out_json = tmp_path / "gate.json"
    base, head = {SYNCS: v(3), REGRET: v(NAN)}, {SYNCS: v(4), REGRET: v(0.5)}
    code, _, _ = gate_main(monkeypatch, capsys, base, head, "--no-instructions", "--json", str(out_json))
    payload = json.loads(out_json.read_text())
    assert code == 2 and payload["exit_code"] == 2
    assert (payload["base"], payload["head"], payload["references_changed"]) == ("base", "head", [])
    rows = {r["benchmark"]: r for r in payload["rows"]}
    assert rows[SYNCS]["verdict"] == "regression" and rows[SYNCS]["ratio"] == pytest.approx(4 / 3)
    assert rows[REGRET]["verdict"] == "skipped on BASE" and rows[REGRET]["base"] is None


def test_references_changed_uses_git(tmp_path):
    """git diff --name-only between the commits, limited to the references folder."""

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    refs = tmp_path / gate.REFERENCES
    refs.mkdir(parents=True)
    (refs / "profile.json").write_text("{}")
    (tmp_path / "other.txt").write_text("a")
    git("add", ".")
    git("commit", "-qm", "a")
    base = gate.resolve("HEAD", tmp_path)
    (refs / "profile.json").write_text('{"x": 1}')
    (tmp_path / "other.txt").write_text("b")
    git("commit", "-qam", "b")
    head = gate.resolve("HEAD", tmp_path)
    assert gate.references_changed(tmp_path, base, head) == [f"{gate.REFERENCES}/profile.json"]
    assert gate.references_changed(tmp_path, base, base) == []


def test_json_is_strict(monkeypatch, capsys, tmp_path):
    """A ratio against a BASE of 0 is infinite: None in the JSON, which has no Infinity or NaN."""
    out_json = tmp_path / "gate.json"
    gate_main(monkeypatch, capsys, {SYNCS: v(0)}, {SYNCS: v(2)}, "--no-instructions", "--json", str(out_json))

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    payload = json.loads(out_json.read_text(), parse_constant=refuse)
    assert payload["exit_code"] == 1 and payload["rows"][0]["ratio"] is None


def test_the_table_is_markdown_with_the_numbers_right_aligned():
    """Header, alignment line (BASE, HEAD and the ratio right-aligned), one line per row, the columns lined up."""
    changes = [
        gate.Change(SYNCS, "deterministic", 3, 4, 4 / 3, "regression"),
        gate.Change(REGRET, "deterministic", None, 0.5, None, "skipped on BASE", "NaN on BASE"),
    ]
    counts, blank, *table = gate.to_markdown(changes, "a" * 40, "b" * 40).splitlines()
    assert counts.startswith("Gate: aaaaaaaa (BASE) -> bbbbbbbb (HEAD): 1 regression(s)") and blank == ""
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table]
    assert cells[0] == [name for name, _ in gate.COLUMNS]
    assert [c.endswith(":") for c in cells[1]] == [align == "right" for _, align in gate.COLUMNS]
    assert cells[2] == ["regression", f"`{SYNCS}`", "deterministic", "3", "4", "1.33", ""]
    assert cells[3][3:6] == ["-", "0.5", "-"] and len({len(line) for line in table}) == 1
