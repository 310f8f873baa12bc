"""The README's code runs as written, and the guides' tables match what the code does."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The guides the README sends readers to for the command line and the out-of-sample study.
CLI_DOC = ROOT / "docs" / "cli.md"
OOS_DOC = ROOT / "docs" / "out-of-sample.md"


def test_readme_python_blocks_run():
    """Every ```python block of the README executes without error, and the example's regret is ~0."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python example"
    scope: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), scope)
    assert abs(scope["mo"].regret_bp(scope["res"])) < 1e-6


def _troubleshooting_rows() -> list[tuple[str, str]]:
    """(command, message fragment) of each row of the troubleshooting table (docs/cli.md)."""
    section = CLI_DOC.read_text().split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(marketsim-opt [^`]*)` \| `([^`]*)` \|", section, flags=re.M)
    assert len(rows) >= 15, "the troubleshooting table lost its rows"
    return rows


def _write_troubleshooting_inputs(folder: Path) -> None:
    """The files the troubleshooting commands name: a clean series and one broken copy per row."""
    from marketsim_opt.data import synthetic_ohlc

    bars = synthetic_ohlc(120, 0)
    lines = ["date,open,high,low,close"] + [
        f"{t},{o:.6f},{h:.6f},{lo:.6f},{c:.6f}"
        for t, o, h, lo, c in zip(bars.time, bars.open, bars.high, bars.low, bars.close)
    ]

    def write(name: str, rows: list[str], encoding: str = "utf-8") -> None:
        (folder / name).write_text("\n".join(rows) + "\n", encoding=encoding)

    def with_row(i: int, cells: str) -> list[str]:
        return lines[:i] + [cells] + lines[i + 1 :]

    t, o, h, lo, c = lines[10].split(",")
    write("prices.csv", lines)
    write("utf16.csv", lines, encoding="utf-16")
    write("dates.csv", with_row(2, "02/03/2020,1,1.1,0.9,1"))
    write("close_above_high.csv", with_row(10, ",".join([t, o, h, lo, str(float(h) * 1.01)])))
    write("tiny_price.csv", with_row(10, ",".join([t, "1e-300", h, "1e-300", c])))
    write("one_forecast.csv", [lines[0] + ",high_pred"] + [row + ",1" for row in lines[1:]])
    (folder / "mine").mkdir()
    (folder / "mine" / "thesis.tex").write_text("not ours\n")
    (folder / "results.txt").write_text("not ours\n")
    (folder / "notes.md").write_text("my notes\n")


def test_troubleshooting_table_matches_the_errors(tmp_path, monkeypatch, capsys):
    """Each command in the troubleshooting table (docs/cli.md) exits 2 with one stderr line containing its message,
    before writing anything (the files the rows name are made here)."""
    import shlex

    import torch

    from marketsim_opt.cli import main

    _write_troubleshooting_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    checked = 0
    for command, message in _troubleshooting_rows():
        if "--device cuda" in command and torch.cuda.is_available():
            continue  # only a CPU-only torch refuses it
        argv = shlex.split(command)[1:]
        assert main([*argv, "--no-progress"] if argv[0] in ("run", "compare") else argv) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (command, err)
        checked += 1
    assert checked >= 15
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_oos_columns_are_documented_as_the_code_writes_them():
    """The `oos.csv` column table of docs/out-of-sample.md lists every column, in order, with the meaning
    `oos.COLUMNS` gives."""
    from marketsim_opt.oos import COLUMNS, csv_header

    documented = re.findall(r"^\| `(\w+)` \| (.+) \|$", OOS_DOC.read_text(), flags=re.M)
    table = [(name, meaning) for name, meaning in documented if name in COLUMNS]
    assert table == list(COLUMNS.items())
    assert [name for name, _ in table] == csv_header().split(",")
