"""reports/report.py: the whole report on a small method x budget set."""

from __future__ import annotations

import csv

import pytest

from marketsim_opt.files import MARKER
from marketsim_opt.reports.report import write_report

pytest.importorskip("matplotlib", reason="the report needs matplotlib (the report extra)")


def test_write_report_outputs(tmp_path):
    out = tmp_path / "report"
    rows, points = write_report(
        out,
        budgets=(25, 100),
        backtest_budgets=(25,),
        methods=("direct", "grid", "exact"),
        scaling_sizes=(6,),
        progress=False,
    )
    # profile: 2 strategies x (direct, grid at 2 budgets + exact once); backtest: 2 x (direct, grid at 1 + exact)
    assert len(rows) == 2 * 5 + 2 * 3
    assert {r.n_sims for r in rows if r.workload.startswith("backtest")} == {70}
    assert all(r.regret_bp_mean >= -1e-6 for r in rows)
    assert [(p.mode, p.n_days) for p in points] == [("sequential", 6), ("batched", 6)]
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "index.html",
        "kernel-scaling.csv",
        "kernel-scaling.png",
        "kernel-scaling.svg",
        "tradeoff.csv",
        "tradeoff.md",
        "tradeoff.png",
        "tradeoff.svg",
    ]
    with open(out / "tradeoff.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows) and table[0]["n_sims"] == "1"
    page = (out / "index.html").read_text()
    assert 'src="tradeoff.png"' in page and 'src="kernel-scaling.png"' in page
    assert page.count("<tr>") == len(rows) + len(points) + 2  # two header rows
    assert "yes" in page  # the Pareto column marks at least exact
