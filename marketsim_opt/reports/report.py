"""`marketsim-opt report`: every method x budget on `profile` and `backtest`, and the kernel's scaling.

Writes into one output folder (replaced whole, never left half-written):

- `tradeoff.png`, `tradeoff.svg`: regret (bp, log) against wall time per optimization (`tradeoff.py`);
- `tradeoff.csv`, `tradeoff.md`: the same numbers (`comparison.Row` fields);
- `kernel-scaling.png`, `kernel-scaling.svg`, `kernel-scaling.csv`: cost per evaluation against `N`;
- `index.html`: the pictures and the table on one page.
"""

from __future__ import annotations

import csv
import html
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path

import torch

from .. import workloads
from ..comparison import BACKTEST_METHODS, Row, run_trials, to_markdown, trials_for, write_csv
from ..files import atomic_dir, check_output_dir
from ..optimizers import METHODS
from .extras import NEEDS, require_extra
from .kernel_scaling import BATCH, ScalingPoint, measure_kernel_scaling, plot_kernel_scaling
from .tradeoff import panels, pareto_front, plot_tradeoff

__all__ = ["REPORT_BUDGETS", "BACKTEST_BUDGETS", "write_report"]

#: Budgets on the profile workload: three points per method, the historic default included.
REPORT_BUDGETS: tuple[int | None, ...] = (25, 100, None)
#: Budgets on the backtest (70 simulations x 2 policies per optimization).  nevergrad runs one Python
#: optimizer per simulation: at budget 100 each of its methods took 5 to 20 s per strategy here, and the
#: historic default budgets (240, 500) would cost 2.4 to 5 times that.
BACKTEST_BUDGETS: tuple[int | None, ...] = (25, 100)


def write_report(
    out_dir: str | Path,
    *,
    budgets: Sequence[int | None] = REPORT_BUDGETS,
    backtest_budgets: Sequence[int | None] = BACKTEST_BUDGETS,
    methods: Sequence[str] | None = None,
    backtest: workloads.Workload | None = None,
    scaling_sizes: Sequence[int] = workloads.SCALING_SIZES,
    seed: int = 0,
    progress: bool = True,
    force: bool = False,
) -> tuple[list[Row], list[ScalingPoint]]:
    """Run the comparison and the scaling measurement; write every output into `out_dir` (replaced whole).

    matplotlib and `out_dir` are checked before the runs (`force` replaces a folder that is not an earlier
    `report` output).
    """
    from tqdm.auto import tqdm

    require_extra(NEEDS["report"], "the report")
    check_output_dir(out_dir, "report", force=force)

    started = time.time()
    backtest = backtest if backtest is not None else workloads.backtest()
    loaded = {"profile": workloads.profile(), backtest.name: backtest}
    trials = trials_for("profile", methods or METHODS, budgets)
    trials += trials_for(backtest.name, methods or BACKTEST_METHODS, backtest_budgets)
    rows = run_trials(trials, loaded, seed=seed, progress=progress)
    steps = tqdm(total=2 * len(scaling_sizes), unit="step", disable=not progress, dynamic_ncols=True)

    def step(what: str) -> None:
        steps.set_description(what)
        steps.update(1)

    with steps:
        points = measure_kernel_scaling(scaling_sizes, on_step=step)
    with atomic_dir(out_dir, command="report", force=force) as tmp:
        plot_tradeoff(rows, [tmp / "tradeoff.png", tmp / "tradeoff.svg"], title="Regret against time per optimization")
        write_csv(rows, tmp / "tradeoff.csv")
        (tmp / "tradeoff.md").write_text(to_markdown(rows))
        plot_kernel_scaling(points, [tmp / "kernel-scaling.png", tmp / "kernel-scaling.svg"])
        with open(tmp / "kernel-scaling.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(ScalingPoint)])
            writer.writeheader()
            writer.writerows(asdict(p) for p in points)
        (tmp / "index.html").write_text(_index_html(rows, points, time.time() - started))
    return rows, points


def _index_html(rows: Sequence[Row], points: Sequence[ScalingPoint], seconds: float) -> str:
    on_front = set()
    for panel in panels(rows):
        on_front |= {id(r) for r in pareto_front([r for r in rows if (r.workload, r.strategy) == panel])}
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "workload",
            "strategy",
            "method",
            "budget",
            "s per optimization",
            "evaluations",
            "host syncs",
            "regret bp (mean)",
            "regret bp (max)",
            "Pareto",
        )
    )
    body = "\n".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                r.workload,
                r.strategy,
                r.method,
                r.budget,
                f"{r.time_per_optimization:.4g}",
                r.nfev,
                r.syncs,
                f"{r.regret_bp_mean:.3g}",
                f"{r.regret_bp_max:.3g}",
                "yes" if id(r) in on_front else "",
            )
        )
        + "</tr>"
        for r in rows
    )
    scaling_rows = "\n".join(
        f"<tr><td>{p.mode}</td><td>{p.n_days}</td><td>{1e6 * p.seconds_per_eval:.4g}</td></tr>" for p in points
    )
    machine = html.escape(f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>marketsim-opt report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1300px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}img{{max-width:100%}}</style></head>
<body>
<h1>marketsim-opt report</h1>
<p>Generated {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} by <code>marketsim-opt report</code> in
{seconds:.0f} s ({machine}). Data: <a href="tradeoff.csv">tradeoff.csv</a>, <a href="tradeoff.md">tradeoff.md</a>,
<a href="kernel-scaling.csv">kernel-scaling.csv</a>.</p>
<h2>Regret against wall time per optimization</h2>
<img id="tradeoff" src="tradeoff.png" alt="regret (bp, log) against wall time per optimization">
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
<h2>Kernel cost per evaluation against N</h2>
<img id="kernel-scaling" src="kernel-scaling.png" alt="per-evaluation cost against N, sequential and batched">
<p>Batched: {BATCH} candidates per call, divided by {BATCH}.</p>
<table><thead><tr><th>mode</th><th>N</th><th>us per candidate</th></tr></thead><tbody>
{scaling_rows}
</tbody></table>
</body></html>
"""
