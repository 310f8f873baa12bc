"""The command line (cli.py): `run` and `compare`, their outputs and their errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from marketsim_opt import workloads
from marketsim_opt.cli import main


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
    assert md.read_text() == out
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
    assert "| backtest:SYN | entry_exit | exact |" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--method", "simplex"], "bad input: method: unknown method 'simplex'"),
        (["run", "--budget", "-5"], "bad input: budget: must be positive, got -5"),
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
    assert "{run,compare,profile,memory,report,targets}" in out.stdout
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
    assert main(["profile", "--method", "nevergrad:CMA", "--budget", "25"]) == 0
    assert (tmp_path / "reports" / "profile-profile-nevergrad-CMA" / "summary.txt").is_file()


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
    assert "| profile | entry_exit | grid | 25 |" in capsys.readouterr().out
    assert (out / "tradeoff.png").is_file() and (out / "kernel-scaling.png").is_file()


@pytest.mark.parametrize("command", ["profile", "memory", "report"])
def test_new_commands_reject_bad_input(command, tmp_path, capsys):
    """A bad method or budget is exit 2 naming the field; no output folder appears."""
    args = ["--methods", "nope"] if command == "report" else ["--method", "nope"]
    assert main([command, *args, "--out", str(tmp_path / "o")]) == 2
    assert "method: unknown method 'nope'" in capsys.readouterr().err
    bad_budget = ["--budgets", "0"] if command == "report" else ["--budget", "0"]
    assert main([command, *bad_budget, "--out", str(tmp_path / "o")]) == 2
    assert "budget: must be positive" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
