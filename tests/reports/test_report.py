"""reports/report.py: the whole report on a small method x budget set, its out-of-sample section included."""

from __future__ import annotations

import csv
import re

import pytest

from marketsim_opt import oos
from marketsim_opt.files import MARKER
from marketsim_opt.reports import oos_stats
from marketsim_opt.reports.report import _markdown_html, write_report

pytest.importorskip("matplotlib", reason="the report needs matplotlib (the report extra)")
pytest.importorskip("arch", reason="the report's out-of-sample statistics need arch (the oos extra)")

#: Walk-forward simulations of the out-of-sample section here (enough for arch's block-length estimate).
OOS_SIMS = 12


def test_write_report_outputs(tmp_path):
    out = tmp_path / "report"
    rows, points = write_report(
        out,
        budgets=(25, 100),
        backtest_budgets=(25,),
        methods=("direct", "grid", "exact", "zero"),
        oos_sims=OOS_SIMS,
        oos_budgets=(25, None),
        scaling_sizes=(6,),
        progress=False,
    )
    # profile: 2 strategies x (direct, grid at 2 budgets + exact, zero once); backtest: 2 x (direct, grid + 2)
    assert len(rows) == 2 * 6 + 2 * 4
    assert {r.n_sims for r in rows if r.workload.startswith("backtest")} == {70}
    assert all(r.regret_bp_mean >= -1e-6 for r in rows)
    assert [(p.mode, p.n_days) for p in points] == [("sequential", 6), ("batched", 6)]
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "index.html",
        "kernel-scaling.csv",
        "kernel-scaling.png",
        "kernel-scaling.svg",
        "oos-stats.md",
        "oos-stats.png",
        "oos-stats.svg",
        "oos.csv",
        "optimizer-scaling.csv",
        "optimizer-scaling.png",
        "optimizer-scaling.svg",
        "tradeoff.csv",
        "tradeoff.md",
        "tradeoff.png",
        "tradeoff.svg",
    ]
    with open(out / "tradeoff.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows) and table[0]["n_sims"] == "1"
    # Exact beside DIRECT@500 at every N: one optimization each, positive seconds.
    with open(out / "optimizer-scaling.csv") as fh:
        optimizations = list(csv.DictReader(fh))
    assert [(r["method"], r["n_days"]) for r in optimizations] == [("exact", "6"), ("direct@500", "6")]
    assert all(float(r["seconds"]) > 0 for r in optimizations)

    # Out of sample: the report's methods, the oos budgets, the bundled series; the same rows oos would write.
    oos_rows = oos.read_oos_csv(out / "oos.csv")
    labels = ["direct@25", "direct@default", "grid@25", "grid@default", "exact", "zero"]
    assert {oos_stats.label_of(r) for r in oos_rows} == set(labels)
    assert len(oos_rows) == 2 * len(labels) * OOS_SIMS
    assert {r.series for r in oos_rows} == {"SYNTH0"} and {r.sim for r in oos_rows} == set(range(OOS_SIMS))
    assert all(r.fit_last_date < r.test_date for r in oos_rows)
    stats_md = (out / "oos-stats.md").read_text()
    assert stats_md.startswith(oos_stats.MD_TITLE) and "Note:" not in stats_md  # both benchmarks present
    assert (out / "oos-stats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page = (out / "index.html").read_text()
    for image in ("tradeoff.png", "oos-stats.png", "kernel-scaling.png", "optimizer-scaling.png"):
        assert f'src="{image}"' in page, image
    assert 'href="oos.csv"' in page and 'href="oos-stats.md"' in page
    section = page.split("<h2>Out of sample", 1)[1].split("<h2>Kernel", 1)[0]
    assert f"in each of\n{OOS_SIMS} simulations" in section and "<code>SYNTH0</code>" in section
    # Every table row of oos-stats.md is a table row of the page: the comparison, the oos statistics, the scaling.
    md_rows = [line for line in stats_md.splitlines() if line.startswith("|") and not re.fullmatch(r"[|:\- ]+", line)]
    assert section.count("<tr>") == len(md_rows)
    # three header rows outside oos
    assert page.count("<tr>") == len(rows) + len(md_rows) + len(points) + len(optimizations) + 3
    for label in labels:
        assert re.search(rf"<td[^>]*><code>{re.escape(label)}</code></td>", section), label  # aligned left
    assert "yes" in page  # the Pareto column marks at least exact


def test_markdown_html_renders_oos_stats_markup():
    text = "\n".join(
        [
            oos_stats.MD_TITLE,
            "",
            "Series `S`. An *estimate* of sims, **bold**: <tag> & co.",
            "Note: a second line.",
            "",
            "## entry_exit",
            "",
            "| label | mean |",
            "|---|---:|",
            "| `zero` | **+1.00 [+0.50, +1.50]** |",
            "",
        ]
    )
    got = _markdown_html(text)
    assert "<h1" not in got and oos_stats.MD_TITLE[2:] not in got  # the title is the page's own heading
    assert (
        "<p>Series <code>S</code>. An <em>estimate</em> of sims, <strong>bold</strong>: &lt;tag&gt; &amp; co.\n"
        "Note: a second line.</p>" in got
    )
    assert "<h3>entry_exit</h3>" in got
    assert re.search(r"<thead>\s*<tr>\s*<th>label</th>\s*<th[^>]*>mean</th>\s*</tr>\s*</thead>", got)
    row = r"<tr>\s*<td><code>zero</code></td>\s*<td[^>]*><strong>\+1.00 \[\+0.50, \+1.50\]</strong></td>"
    assert re.search(row, got)
    assert "---" not in got


def test_bad_oos_options_are_refused_before_any_run(tmp_path, monkeypatch):
    """`oos_sims` beyond the series and a bad out-of-sample budget fail before the comparison starts."""
    from marketsim_opt.reports import report

    def ran(*args, **kwargs):
        pytest.fail("the report started its runs")

    monkeypatch.setattr(report, "run_trials", ran)
    with pytest.raises(ValueError, match=r"oos_sims: 393 simulations asked, .* at most 392"):
        write_report(tmp_path / "r", methods=("zero",), oos_sims=393, progress=False)
    with pytest.raises(ValueError, match="budget: must be a positive integer, got 0"):
        write_report(tmp_path / "r", methods=("grid",), oos_budgets=(0,), progress=False)
    with pytest.raises(ValueError, match="oos_budgets: expected at least one budget"):
        write_report(tmp_path / "r", methods=("grid",), oos_budgets=(), progress=False)
    assert not (tmp_path / "r").exists()


def _bars_csv(path, n_bars: int) -> str:
    """A valid daily OHLC CSV of `n_bars` bars (deterministic moves of -2 % .. +2 %)."""
    import datetime

    lines, close = ["date,open,high,low,close"], 100.0
    for i in range(n_bars):
        new = close * (1 + 0.01 * ((i * 7) % 5 - 2))
        day = datetime.date(2024, 1, 1) + datetime.timedelta(days=i)
        lines.append(f"{day},{close:.4f},{max(close, new) * 1.01:.4f},{min(close, new) * 0.99:.4f},{new:.4f}")
        close = new
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_cli_report_passes_the_backtest_series_and_oos_options(tmp_path, monkeypatch, capsys):
    """`report --csv F --crypto`: the out-of-sample section walks F's bars as crypto, with --oos-sims/--oos-budgets."""
    from marketsim_opt.cli import main
    from marketsim_opt.reports import report

    seen = {}

    def fake(out, **kwargs):
        seen.update(kwargs)
        return [], []

    monkeypatch.setattr(report, "write_report", fake)
    path = _bars_csv(tmp_path / "bars.csv", 90)
    argv = ["report", "--csv", path, "--crypto", "--oos-sims", "5", "--oos-budgets", "7,default", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    assert seen["oos_bars"].symbol == "bars" and len(seen["oos_bars"]) == 90
    assert seen["oos_is_crypto"] is True and seen["oos_sims"] == 5 and seen["oos_budgets"] == [7, None]
    assert "oos.csv, oos-stats.md, oos-stats.png, oos-stats.svg" in capsys.readouterr().out

    most = oos.max_sims(seen["oos_bars"])
    assert main([*argv[:4], "--oos-sims", str(most + 1), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--oos-sims: {most + 1} simulations asked" in err and f"at most {most}" in err
    assert not (tmp_path / "r2").exists()
