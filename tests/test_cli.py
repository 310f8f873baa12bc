"""The command line (cli.py): `run` and `compare`, their outputs and their errors."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from marketsim_opt import cli, files, oos, workloads
from marketsim_opt.cli import main
from marketsim_opt.files import MARKER
from marketsim_opt.reports import extras, memory, profiling, report, targets


def test_run_profile_exact(capsys):
    """`run --method exact` prints both strategies with ~0 regret and the exact host syncs."""
    assert main(["run", "--method", "exact", "--no-progress"]) == 0
    out = capsys.readouterr().out
    header = f"profile: 1 simulation(s) x 200 days, forecasts: {workloads.profile().forecast}; method exact, device cpu"
    assert out.splitlines()[0] == header
    entry = next(line for line in out.splitlines() if line.strip().startswith("entry_exit"))
    always = next(line for line in out.splitlines() if line.strip().startswith("always_on"))
    assert entry.endswith("3 host syncs")  # problem check, positions check, one read-back
    assert always.endswith("2 host syncs")
    assert "total" in out.splitlines()[-1] and out.splitlines()[-1].endswith("5 host syncs")


def test_run_direct_budget(capsys):
    """`run --budget 100` runs DIRECT at 100 candidates: one read-back per evaluation."""
    assert main(["run", "--budget", "100", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "111 evaluations, 113 host syncs" in lines[1]


def test_run_backtest_sums_simulations(capsys):
    """`run --workload backtest` reports totals over the 70 simulations."""
    assert main(["run", "--workload", "backtest", "--method", "grid", "--budget", "100", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("backtest:SYNTH0: 70 simulation(s) x 6 days")
    assert "14000 evaluations" in out


def test_compare_writes_table_files(tmp_path, capsys):
    """`compare --out --csv-out` prints the table and writes the same table and the rows."""
    md, rows = tmp_path / "t.md", tmp_path / "t.csv"
    code = main(
        [
            "compare",
            "--methods",
            "exact,grid",
            "--budgets",
            "100",
            "--no-progress",
            "--out",
            str(md),
            "--csv-out",
            str(rows),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    table, provenance = md.read_text().split("\nMeasured by ")
    assert table == out  # the printed table, then the line that says where it came from
    assert provenance.startswith("`marketsim-opt compare --methods exact,grid --budgets 100 --no-progress --out ")
    assert provenance.endswith(" UTC.\n") and "torch " in provenance
    assert len(out.splitlines()) == 2 + 4  # header, alignment, 2 strategies x (exact, grid 100)
    assert len(rows.read_text().splitlines()) == 1 + 4


def test_compare_with_csv_adds_backtest(tmp_path, capsys):
    """`compare --csv FILE` adds the backtest of that file."""
    from datetime import date, timedelta

    from marketsim_opt.data import synthetic_ohlc

    bars = synthetic_ohlc(120, 5)
    path = tmp_path / "SYN.csv"
    lines = ["Date,Open,High,Low,Close"] + [
        f"{date(2020, 1, 1) + timedelta(days=i)},{o},{h},{lo},{c}"
        for i, (o, h, lo, c) in enumerate(zip(bars.open, bars.high, bars.low, bars.close))
    ]
    path.write_text("\n".join(lines) + "\n")
    assert main(["compare", "--methods", "exact", "--no-progress", "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\| backtest:SYN +\| entry_exit +\| exact +\|", out, re.MULTILINE)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--method", "simplex"], "bad input: method: unknown method 'simplex'"),
        (["run", "--budget", "-5"], "bad input: budget: must be a positive integer, got -5"),
        (["compare", "--budgets", "x", "--no-progress"], "bad input: budget: expected a positive integer"),
        (["run", "--workload", "backtest", "--csv", "/nonexistent/X.csv"], "/nonexistent/X.csv: cannot read"),
    ],
)
def test_errors_are_one_line_and_exit_2(argv, message, capsys):
    """Bad input exits 2 with one line naming the problem, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_module_entry_point():
    """`python -m marketsim_opt --help` lists every command; a usage error there is one line and exit 2."""
    out = subprocess.run([sys.executable, "-m", "marketsim_opt", "--help"], capture_output=True, text=True, check=True)
    assert "{run,compare,profile,memory,report,targets,oos,oos-summary}" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "marketsim_opt", "run", "--nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "marketsim-opt: bad input: unrecognized arguments: --nope (see marketsim-opt --help)\n"


def test_import_is_light():
    """Importing the package does not import scipy or nevergrad (they load on first use)."""
    code = "import sys, marketsim_opt; print(sorted(m for m in ('scipy', 'nevergrad') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_profile_command_writes_outputs(tmp_path, capsys):
    """`profile` prints the summary and writes the .prof, the icicle view and the summary files."""
    pytest.importorskip("tuna", reason="the icicle view needs tuna (the report extra)")
    out = tmp_path / "p"
    assert main(["profile", "--method", "grid", "--budget", "100", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "optimizer and glue" in text and f"wrote {out}/" in text
    assert (out / "profile.prof").is_file() and (out / "icicle" / "index.html").is_file()


def test_profile_default_folder_names_workload_and_method(tmp_path, monkeypatch):
    pytest.importorskip("tuna", reason="the icicle view needs tuna (the report extra)")
    monkeypatch.chdir(tmp_path)
    assert main(["profile", "--method", "nevergrad:TwoPointsDE", "--budget", "25", "--no-progress"]) == 0
    assert (tmp_path / "reports" / "profile-profile-nevergrad-TwoPointsDE" / "summary.txt").is_file()


def test_memory_command_writes_outputs(tmp_path, capsys):
    pytest.importorskip("memray", reason="the memory command needs memray (the report extra)")
    out = tmp_path / "m"
    assert main(["memory", "--method", "exact", "--out", str(out)]) == 0
    assert "peak heap" in capsys.readouterr().out
    assert (out / "flamegraph.html").is_file()


def test_report_command_writes_outputs(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the report needs matplotlib (the report extra)")
    out = tmp_path / "r"
    args = ["report", "--methods", "grid,exact", "--budgets", "25", "--backtest-budgets", "25", "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0
    assert re.search(r"^\| profile +\| entry_exit +\| grid +\| 25 +\|", capsys.readouterr().out, re.MULTILINE)
    assert (out / "tradeoff.png").is_file() and (out / "kernel-scaling.png").is_file()


@pytest.mark.parametrize("command", ["profile", "memory", "report"])
def test_new_commands_reject_bad_input(command, tmp_path, capsys):
    """A bad method or budget is exit 2 naming the field; no output folder appears."""
    args = ["--methods", "nope"] if command == "report" else ["--method", "nope"]
    assert main([command, *args, "--out", str(tmp_path / "o")]) == 2
    assert "method: unknown method 'nope'" in capsys.readouterr().err
    bad_budget = ["--budgets", "0"] if command == "report" else ["--budget", "0"]
    assert main([command, *bad_budget, "--out", str(tmp_path / "o")]) == 2
    assert "budget: must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _one_line(err: str) -> str:
    """The single line of `err` (fails on none, several, or a traceback)."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--csv", "X.csv"], "run: bad input: --csv applies to --workload backtest"),
        (["run", "--crypto"], "run: bad input: --crypto applies to --workload backtest"),
        (["profile", "--crypto"], "profile: bad input: --crypto applies to --workload backtest"),
        (["memory", "--csv", "X.csv"], "memory: bad input: --csv applies to --workload backtest"),
        (["run", "--method", "exact", "--budget", "10"], "--budget does not apply to --method exact"),
        (["compare", "--crypto", "--no-progress"], "compare: bad input: --crypto applies to the backtest"),
        (["compare", "--out", "t.md", "--csv-out", "./t.md"], "--out and --csv-out name the same file"),
    ],
)
def test_inapplicable_flags_are_errors(argv, message, tmp_path, monkeypatch, capsys):
    """A flag that would be ignored is refused before any work (nothing printed on stdout, nothing written)."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in _one_line(captured.err)
    assert captured.out == "" and list(tmp_path.iterdir()) == []


def _forbid_work(monkeypatch) -> None:
    """Every command's work fails the test if it starts."""

    def ran(*args, **kwargs):
        pytest.fail("the command started its work")

    monkeypatch.setattr(workloads, "run", ran)
    monkeypatch.setattr(workloads, "run_all", ran)
    monkeypatch.setattr(cli, "run_trials", ran)
    monkeypatch.setattr(profiling, "profile_workload", ran)
    monkeypatch.setattr(memory, "memory_workload", ran)
    monkeypatch.setattr(report, "write_report", ran)
    monkeypatch.setattr(targets, "measure_targets", ran)
    monkeypatch.setattr(oos, "walk_forward", ran)


@pytest.mark.parametrize("command", ["profile", "memory", "report", "targets"])
def test_a_folder_it_did_not_write_is_refused_before_work(command, tmp_path, monkeypatch, capsys):
    """`--out DIR` on someone's folder: exit 2 saying what is there and that --force overrides; nothing touched."""
    _forbid_work(monkeypatch)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    assert main([command, "--out", str(out), "--no-progress"]) == 2
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    assert line.startswith(f"marketsim-opt {command}: bad input: --out '{out}' already exists")
    assert "thesis.tex" in line and "--force" in line
    assert captured.out == ""
    assert [p.name for p in out.iterdir()] == ["thesis.tex"] and [p.name for p in tmp_path.iterdir()] == ["mine"]


@pytest.mark.parametrize("command", ["profile", "memory", "report", "targets"])
def test_a_file_is_never_replaced_by_a_folder(command, tmp_path, monkeypatch, capsys):
    _forbid_work(monkeypatch)
    out = tmp_path / "results.txt"
    out.write_text("keep me")
    assert main([command, "--out", str(out), "--force", "--no-progress"]) == 2
    assert "is a file; refusing to replace a file with a folder" in _one_line(capsys.readouterr().err)
    assert out.read_text() == "keep me" and [p.name for p in tmp_path.iterdir()] == ["results.txt"]


def test_compare_never_replaces_a_folder_or_a_foreign_file(tmp_path, monkeypatch, capsys):
    _forbid_work(monkeypatch)
    (tmp_path / "t.md").mkdir()
    assert main(["compare", "--out", str(tmp_path / "t.md")]) == 2
    assert "is a folder; refusing to replace a folder with a file" in _one_line(capsys.readouterr().err)
    (tmp_path / "notes.csv").write_text("my,own\n1,2\n")
    assert main(["compare", "--csv-out", str(tmp_path / "notes.csv")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--csv-out" in line and "first line is 'my,own'" in line and "--force" in line
    assert (tmp_path / "notes.csv").read_text() == "my,own\n1,2\n"


def test_compare_replaces_its_own_table_whatever_its_column_widths(tmp_path, capsys):
    """An earlier `compare --out` file (its header unpadded, as before tabulate wrote it) is replaced; a foreign
    one is not."""
    from marketsim_opt.comparison import to_markdown

    md = tmp_path / "t.md"
    cells = [c.strip() for c in to_markdown([]).splitlines()[0].strip("|").split("|")]
    md.write_text("| " + " | ".join(cells) + " |\n\nMeasured by someone.\n")
    assert main(["compare", "--methods", "exact", "--no-progress", "--out", str(md)]) == 0
    written = md.read_text()
    assert written.startswith(capsys.readouterr().out) and "Measured by someone" not in written
    notes = tmp_path / "notes.md"
    notes.write_text("| workload | strategy |\n|---|---|\n")
    assert main(["compare", "--methods", "exact", "--no-progress", "--out", str(notes)]) == 2
    assert "first line is '| workload | strategy |'" in _one_line(capsys.readouterr().err)
    assert notes.read_text() == "| workload | strategy |\n|---|---|\n"


@pytest.mark.parametrize("out", [".", "..", "./", "sub/.."])
def test_out_dot_is_refused_up_front(out, tmp_path, monkeypatch, capsys):
    """`--out .` used to fail after the whole run and leave `..*.old` / `..*.tmp` folders behind."""
    _forbid_work(monkeypatch)
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    monkeypatch.chdir(work)
    assert main(["profile", "--out", out, "--force"]) == 2
    assert "is the current folder or one above it" in _one_line(capsys.readouterr().err)
    assert [p.name for p in tmp_path.iterdir()] == ["work"] and [p.name for p in work.iterdir()] == ["sub"]


def _fake_targets(monkeypatch) -> None:
    rows = [targets.Target("k", "what", 0.05, "ratio", 0.1, False, "detail")]
    monkeypatch.setattr(targets, "measure_targets", lambda *, repeats, large, progress: rows)


def test_rerun_replaces_own_output_and_force_replaces_a_foreign_one(tmp_path, monkeypatch, capsys):
    _fake_targets(monkeypatch)
    out = tmp_path / "t"
    assert main(["targets", "--no-progress", "--out", str(out)]) == 0
    (out / "stale.txt").write_text("from an older version")  # inside our own output: replaced with it
    assert main(["targets", "--no-progress", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "targets.json", "targets.md"]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "x").write_text("x")
    assert main(["targets", "--no-progress", "--out", str(theirs), "--force"]) == 0
    assert sorted(p.name for p in theirs.iterdir()) == [MARKER, "targets.json", "targets.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t", "theirs"]


def test_ctrl_c_while_writing_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    """Interrupted while the outputs are written: exit 130, no output folder and no temporary folder."""

    def interrupted(prof, out_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(profiling, "write_icicle", interrupted)
    assert main(["profile", "--method", "exact", "--no-progress", "--out", str(tmp_path / "p")]) == 130
    assert "interrupted; no partial output was left behind" in _one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_write_failure_says_cannot_write_the_final_path(tmp_path, monkeypatch, capsys):
    """A failed write names the file asked for and the OS reason: never `cannot read`, never a temporary file."""

    def denied(dir, prefix, suffix):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.path.join(dir, prefix + "x1y2" + suffix))

    monkeypatch.setattr(files.tempfile, "mkstemp", denied)
    md = tmp_path / "t.md"
    assert main(["compare", "--methods", "exact", "--no-progress", "--out", str(md)]) == 2
    err = capsys.readouterr().err  # the workload's description line, then the error
    assert "Traceback" not in err and "cannot read" not in err and "x1y2" not in err
    assert err.splitlines()[-1] == f"marketsim-opt compare: cannot write {md}: {os.strerror(errno.EACCES)}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "module"),
    [
        ("profile", "tuna"),
        ("memory", "memray"),
        ("report", "matplotlib"),
        ("report", "arch"),
        ("report", "markdown_it"),
    ],
)
def test_missing_extra_is_reported_before_work(command, module, tmp_path, monkeypatch, capsys):
    """Without its optional tool a command says which, and this checkout's install command, before any work."""
    _forbid_work(monkeypatch)
    find_spec = extras.importlib.util.find_spec
    monkeypatch.setattr(extras.importlib.util, "find_spec", lambda name: None if name == module else find_spec(name))
    monkeypatch.chdir(tmp_path)
    assert main([command, "--no-progress"]) == 2
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    assert line.startswith(f"marketsim-opt {command}: marketsim-opt {command} needs {module} (the report extra)")
    assert "pip install -c constraints.txt -e '.[report]'" in line and "marketsim-opt[report]" not in line
    assert captured.out == "" and list(tmp_path.iterdir()) == []  # no empty reports/ left behind


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has CUDA: --device cuda is valid here")
def test_device_cuda_on_a_cpu_torch_is_one_line(capsys):
    assert main(["run", "--device", "cuda", "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert _one_line(captured.err).startswith("marketsim-opt run: bad input: device: 'cuda'")
    assert captured.out == ""


def test_an_internal_error_is_not_reported_as_a_missing_tool(monkeypatch):
    """A RuntimeError from an invariant propagates (a bug to report), it is not turned into an exit-2 hint."""

    def broken(*args, **kwargs):
        raise RuntimeError("planted invariant failure")

    monkeypatch.setattr(workloads, "run", broken)
    with pytest.raises(RuntimeError, match="planted invariant failure"):
        main(["run", "--no-progress"])


def test_run_progress_counts_every_evaluation(monkeypatch, capsys):
    """The progress bar hears every scored candidate (instrument.on_evaluations); --no-progress silences it."""
    import tqdm.auto

    bars = []

    class Recording(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    assert main(["run", "--method", "grid", "--budget", "50"]) == 0
    out = capsys.readouterr().out
    total = int(out.splitlines()[-1].split(" evaluations")[0].split()[-1])
    assert len(bars) == 1 and bars[0].n == total > 0
    assert bars[0].total == 2 * 50  # budget x 1 simulation x 1 policy, for each of the two strategies
    assert main(["run", "--method", "grid", "--budget", "50", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_a_closed_stdout_pipe_is_not_reported_as_a_read_error():
    """`marketsim-opt run | head -1`: the reader leaving is not `cannot read: Broken pipe`; quiet exit 141."""
    argv = [sys.executable, "-m", "marketsim_opt", "run", "--method", "exact", "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the first line is printed
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait() == 141 and err == b""


def test_a_real_ctrl_c_leaves_no_temporary_folder(tmp_path):
    """SIGINT while `memory` works inside its temporary folder: exit 130, and neither output nor temporary remains."""
    pytest.importorskip("memray", reason="the memory command needs memray (the report extra)")
    out = tmp_path / "m"
    argv = [sys.executable, "-m", "marketsim_opt", "memory", "--method", "nevergrad:TwoPointsDE"]
    argv += ["--budget", "100000", "--no-progress", "--out", str(out)]
    # A shell's background job (`cmd &` without job control) starts with SIGINT ignored, and a child inherits that:
    # the interrupt under test needs the default disposition, as a terminal's Ctrl-C finds it.
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".m.*.tmp")):  # the run has started writing into its temporary folder
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be interrupted"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=120)[1].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "marketsim-opt memory: interrupted; no partial output was left behind"
    assert list(tmp_path.iterdir()) == []
