"""`marketsim-opt oos-summary` (marketsim_opt.reports.oos_summary) on two small `oos` runs of the bundled series:
its cells are what `oos_stats.compute_stats` gives for each run's rows, and its guards and errors."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from marketsim_opt.cli import main
from marketsim_opt.oos import read_oos_csv, write_oos_csv
from marketsim_opt.reports import oos_stats
from marketsim_opt.reports.machine import machine_summary
from marketsim_opt.reports.oos_summary import METHODS, difference_cell, is_summary_head

#: Two runs of the bundled series: (folder name, --sims, --methods); the second has a column the first lacks.
RUNS = (
    ("first", 20, "zero,exact,direct"),
    ("second", 12, "zero,exact,exact:centre,direct"),
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    """The output folders of the `RUNS`, at DIRECT's default budget only (a few seconds each)."""
    root = tmp_path_factory.mktemp("oos-runs")
    folders = []
    for name, sims, methods in RUNS:
        out = root / name
        args = ["oos", "--no-progress", "--sims", str(sims), "--methods", methods, "--budgets", "default"]
        assert main([*args, "--out", str(out)]) == 0
        folders.append(out)
    return folders


def summary(*args: str) -> int:
    return main(["oos-summary", *args])


def table_rows(text: str) -> list[list[str]]:
    """The cells of the table at the top of `text` (header and separator rows left out)."""
    lines = text.split("\n")
    rows = lines[2 : lines.index("")]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in rows]


def expected_rows(folder: Path) -> list[list[str]]:
    """The table's rows for one run, from `compute_stats` on its oos.csv with `oos`'s defaults."""
    stats = oos_stats.compute_stats(read_oos_csv(folder / "oos.csv"))
    rows = []
    for strategy, n in stats.n_sims.items():
        means = [stats.means.get((strategy, label)) for label, _ in METHODS]
        (d,) = [d for d in stats.against_direct if d.strategy == strategy and d.label == oos_stats.EXACT]
        text = f"{d.mean_bp:+.1f} [{d.low_bp:+.1f}, {d.high_bp:+.1f}]"
        rows.append(
            [stats.series, strategy, str(n)]
            + ["-" if m is None else f"{m[1]:+.1f}" for m in means]
            + [text if d.low_bp <= 0 <= d.high_bp else f"**{text}**"]
        )
    return rows


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_cells_are_compute_stats_of_each_run(runs, tmp_path, capsys):
    """One row per run and strategy in the folders' order; means, interval and bold as `compute_stats` gives them."""
    out = tmp_path / "summary.md"
    assert summary(*map(str, runs), "--out", str(out)) == 0
    text = out.read_text()
    assert text.startswith(capsys.readouterr().out)  # the file is the printed table plus the provenance line
    rows = table_rows(text)
    assert rows == expected_rows(runs[0]) + expected_rows(runs[1])
    assert [r[2] for r in rows] == ["20", "20", "12", "12"]
    centre = [label for label, _ in METHODS].index("exact:centre") + 3
    assert [r[centre] == "-" for r in rows] == [True, True, False, False]


def test_first_and_last_lines(runs, tmp_path):
    """The header row comes first (the overwrite guard reads it); the provenance line names command and machine."""
    out = tmp_path / "summary.md"
    assert summary(str(runs[1]), str(runs[0]), "--out", str(out)) == 0
    lines = out.read_text().splitlines()
    assert is_summary_head(lines[0]) and not is_summary_head(lines[2])
    command = f"marketsim-opt oos-summary {runs[1]} {runs[0]} --out {out}"
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    pattern = rf"Measured by `{re.escape(command)}` on {re.escape(machine_summary())}, {when}\."
    assert re.fullmatch(pattern, lines[-1]), lines[-1]
    assert [r[2] for r in table_rows(out.read_text())] == ["12", "12", "20", "20"]


@pytest.mark.parametrize(("low", "high", "bold"), [(-1.0, 2.0, False), (0.0, 2.0, False), (0.01, 2.0, True)])
def test_bold_when_the_interval_excludes_zero(low, high, bold):
    d = oos_stats.Difference("entry_exit", "exact", oos_stats.DIRECT_DEFAULT, 70, 1.0, low, high, 0.5, 1, 100)
    cell = difference_cell(d)
    assert cell.startswith("**") == bold and cell.endswith("**") == bold
    assert cell.strip("*") == f"+1.0 [{low:+.1f}, {high:+.1f}]"


def test_overwrite_guard(runs, tmp_path, capsys):
    """A file that is not an earlier summary is kept unless --force; an earlier summary is replaced without it."""
    out = tmp_path / "notes.md"
    out.write_text("my notes\n")
    assert summary(str(runs[0]), "--out", str(out)) == 2
    assert "pass --force" in one_line_error(capsys)
    assert out.read_text() == "my notes\n"
    assert summary(str(runs[0]), "--out", str(out), "--force") == 0
    assert len(table_rows(out.read_text())) == 2
    assert summary(*map(str, runs), "--out", str(out)) == 0  # its own earlier output: no --force needed
    assert len(table_rows(out.read_text())) == 4
    assert summary(str(runs[0]), "--out", str(tmp_path)) == 2
    assert "is a folder" in one_line_error(capsys)


def without(folder: Path, to: Path, drop) -> Path:
    """A copy of run `folder`'s oos.csv in a new folder `to`, without the rows `drop(row)` picks."""
    to.mkdir()
    write_oos_csv([r for r in read_oos_csv(folder / "oos.csv") if not drop(r)], to / "oos.csv")
    return to


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "{bad}: no such folder"),
        ("file", "{bad}: a file, not a folder"),
        ("no csv", "{bad}: no oos.csv in this folder"),
        ("empty csv", "{bad}/oos.csv: no rows"),
        ("no direct", "{bad}/oos.csv: strategy entry_exit has no `direct` at its default budget (direct@default)"),
        ("no exact", "{bad}/oos.csv: strategy always_on has no `exact` (it has zero, direct@default)"),
        ("two series", "{bad}/oos.csv: oos rows: 2 series (OTHER, SYNTH0)"),
        ("twice", "RUN_DIR: '{bad}' and '{good}' are the same folder"),
    ],
)
def test_bad_folders_are_one_line_errors(runs, tmp_path, capsys, case, message):
    """Each names the folder or file and the problem; nothing is written."""
    good = runs[0]
    bad = tmp_path / "run"
    if case == "file":
        bad.write_text("not a folder\n")
    elif case == "no csv":
        bad.mkdir()
        (bad / "oos.md").write_text("| a |\n")
    elif case == "empty csv":
        without(good, bad, lambda r: True)
    elif case == "no direct":
        without(good, bad, lambda r: r.method == "direct")
    elif case == "no exact":
        without(good, bad, lambda r: r.method == "exact" and r.strategy == "always_on")
    elif case == "two series":
        bad.mkdir()
        rows = read_oos_csv(good / "oos.csv")
        write_oos_csv(rows + [replace(r, series="OTHER") for r in rows], bad / "oos.csv")
    elif case == "twice":
        bad = good / ".." / good.name
    out = tmp_path / "summary.md"
    assert summary(str(good), str(bad), "--out", str(out)) == 2
    err = one_line_error(capsys)
    assert err.startswith("marketsim-opt oos-summary: bad input: ")
    assert message.format(bad=bad, good=good) in err, err
    assert not out.exists()
