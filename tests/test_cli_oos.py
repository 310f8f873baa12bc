"""`marketsim-opt oos` end to end: the bundled series and a shared CSV, its files, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketsim_opt import oos
from marketsim_opt.cli import main
from marketsim_opt.files import MARKER

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: Enough simulations for the statistics' block-length estimate (arch's needs more than 5 observations).
SIMS = 8


def run_oos(*args: str) -> int:
    return main(["oos", "--no-progress", *args])


def test_bundled_series_end_to_end(tmp_path, capsys):
    """oos.csv holds a row per (simulation, strategy, method, budget); oos.md and the printed table are its summary."""
    out = tmp_path / "oos"
    assert run_oos("--sims", str(SIMS), "--methods", "zero,exact,grid", "--budgets", "100", "--out", str(out)) == 0
    captured = capsys.readouterr()
    rows = oos.read_oos_csv(out / "oos.csv")
    assert len(rows) == SIMS * 2 * 3
    assert {(r.method, r.budget) for r in rows} == {("zero", "-"), ("exact", "-"), ("grid", "100")}
    assert {r.series for r in rows} == {"SYNTH0"}
    table = oos.to_markdown(oos.summary(rows))
    assert (out / "oos.md").read_text() == table
    assert table in captured.out
    assert captured.out.splitlines()[-1].startswith(f"wrote {out}/: oos.csv, oos.md")
    assert json.loads((out / MARKER).read_text())["command"] == "oos"
    assert f"oos:SYNTH0: 400 bars, {SIMS} simulation(s)" in captured.err
    assert (out / "oos-stats.md").is_file() and "oos-stats.md" in captured.out
    # A second run replaces its own earlier output without --force.
    assert run_oos("--sims", str(SIMS), "--methods", "zero", "--out", str(out)) == 0
    assert {r.method for r in oos.read_oos_csv(out / "oos.csv")} == {"zero"}


@pytest.mark.parametrize(("name", "crypto"), [("NIO.csv", False), ("SUIUSDT.csv", True)])
def test_a_shared_csv(tmp_path, capsys, name, crypto):
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared data folder beside the repository)")
    out = tmp_path / "oos"
    args = ["--csv", str(path), "--sims", str(SIMS), "--methods", "zero,exact", "--out", str(out)]
    assert run_oos(*args, *(["--crypto"] if crypto else [])) == 0
    rows = oos.read_oos_csv(out / "oos.csv")
    assert {r.series for r in rows} == {path.stem} and len(rows) == SIMS * 2 * 2
    assert {r.fee for r in rows} == {0.0015 if crypto else 0.0005}
    assert all(r.fit_last_date < r.test_date for r in rows)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("sims", ["0", "-3"])
def test_non_positive_sims(tmp_path, capsys, sims):
    out = tmp_path / "oos"
    assert run_oos("--sims", sims, "--out", str(out)) == 2
    assert one_line_error(capsys) == f"marketsim-opt oos: bad input: --sims: must be a positive integer, got {sims}\n"
    assert not out.exists()


def test_too_many_sims_name_the_maximum(tmp_path, capsys):
    out = tmp_path / "oos"
    assert run_oos("--sims", "393", "--methods", "zero", "--out", str(out)) == 2
    err = one_line_error(capsys)
    assert err.startswith("marketsim-opt oos: bad input: --sims: 393 simulations asked") and "at most 392" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--crypto"], "--crypto applies to --csv FILE"),
        (["--methods", "zero,nope"], "method: unknown method 'nope'"),
        (["--budgets", "100,lots"], "budget: expected a positive integer or 'default', got 'lots'"),
        (["--csv", "/nonexistent/bars.csv"], "/nonexistent/bars.csv: cannot read the file"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, message):
    assert run_oos(*args, "--out", str(tmp_path / "oos")) == 2
    assert message in one_line_error(capsys)


def test_a_foreign_folder_is_refused_without_force(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert run_oos("--sims", "3", "--methods", "zero", "--out", str(out)) == 2
    assert "pass --force" in one_line_error(capsys)
    assert (out / "notes.txt").read_text() == "keep me"


def test_run_refuses_a_budget_for_zero(capsys):
    assert main(["run", "--method", "zero", "--budget", "10"]) == 2
    assert "--budget does not apply to --method zero" in one_line_error(capsys)


def test_run_zero(capsys):
    """`run --method zero` on the backtest: 70 simulations x 2 policies, one evaluation each, per strategy."""
    assert main(["run", "--workload", "backtest", "--method", "zero", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "140 evaluations" in lines[1] and "140 evaluations" in lines[2]
