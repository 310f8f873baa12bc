"""`marketsim-opt report`: every method x budget on `profile` and `backtest`, their out-of-sample profit, and the
kernel's scaling.

Writes into one output folder (replaced whole, never left half-written):

- `tradeoff.png`, `tradeoff.svg`: regret (bp, log) against wall time per optimization (`tradeoff.py`);
- `tradeoff.csv`, `tradeoff.md`: the same numbers (`comparison.Row` fields);
- `oos.csv`: the walk-forward out-of-sample record (`oos.walk_forward` on the backtest's series, the bundled one
  by default): one row per (simulation, strategy, method, budget), columns in `oos.COLUMNS`;
- `oos-stats.md`, `oos-stats.png`, `oos-stats.svg`: its statistics (bootstrap intervals against `direct@default`,
  `zero` and `exact`, SPA, MCS) and the plot of in-sample regret against next-day profit (`oos_stats.write_stats`);
- `kernel-scaling.png`, `kernel-scaling.svg`, `kernel-scaling.csv`: cost per evaluation against `N`;
- `optimizer-scaling.png`, `optimizer-scaling.svg`, `optimizer-scaling.csv`: one optimization against `N`, exact
  beside DIRECT@500 (`optimizer_scaling.py`);
- `index.html`: the pictures and the tables on one page.
"""

from __future__ import annotations

import csv
import html
import time
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path

import torch

from .. import oos, workloads
from ..comparison import Row, run_trials, to_markdown, trials_for, write_csv
from ..data import OHLC
from ..files import atomic_dir, check_output_dir
from ..optimizers import registry
from . import oos_stats
from .extras import NEEDS, require_extra
from .kernel_scaling import BATCH, ScalingPoint, measure_kernel_scaling, plot_kernel_scaling
from .machine import machine_summary
from .optimizer_scaling import OptimizationPoint, measure_optimizer_scaling, plot_optimizer_scaling
from .tradeoff import panels, pareto_front, plot_tradeoff

__all__ = ["REPORT_BUDGETS", "BACKTEST_BUDGETS", "OOS_BUDGETS", "OOS_SIMS", "OOS_FILES", "write_report"]

#: Budgets on the profile workload: three points per method, the historic default included.
REPORT_BUDGETS: tuple[int | None, ...] = (25, 100, None)
#: Budgets on the backtest (70 simulations x 2 policies per optimization).  nevergrad runs one Python
#: optimizer per simulation: at budget 100 each of its methods took 5 to 20 s per strategy here, and the
#: historic default budgets (240, 500) would cost 2.4 to 5 times that.
BACKTEST_BUDGETS: tuple[int | None, ...] = (25, 100)
#: Budgets of the out-of-sample section: `oos`'s own (100 and the strategy's default, so `direct@default`, the
#: statistics' benchmark, is there).
OOS_BUDGETS: tuple[int | None, ...] = oos.DEFAULT_BUDGETS
#: Walk-forward simulations of the out-of-sample section (the historical 70).
OOS_SIMS: int = oos.DEFAULT_SIMS
#: What the out-of-sample section writes into the report folder.
OOS_FILES = ("oos.csv", "oos-stats.md", "oos-stats.png", "oos-stats.svg")


def write_report(
    out_dir: str | Path,
    *,
    budgets: Sequence[int | None] = REPORT_BUDGETS,
    backtest_budgets: Sequence[int | None] = BACKTEST_BUDGETS,
    methods: Sequence[str] | None = None,
    backtest: workloads.Workload | None = None,
    oos_bars: OHLC | None = None,
    oos_is_crypto: bool = False,
    oos_sims: int = OOS_SIMS,
    oos_budgets: Sequence[int | None] = OOS_BUDGETS,
    scaling_sizes: Sequence[int] = workloads.SCALING_SIZES,
    seed: int = 0,
    progress: bool = True,
    force: bool = False,
) -> tuple[list[Row], list[ScalingPoint]]:
    """Run the comparison, the out-of-sample walk-forward and the scaling measurement; write every output into
    `out_dir` (replaced whole).  Returns the comparison's rows and the scaling points (the out-of-sample rows are
    in `oos.csv`).

    `methods` narrows every section (default: every registered method on profile, those with the `backtest`
    flag on the backtest,
    `oos.DEFAULT_METHODS` out of sample); each section has its own budgets.  The out-of-sample section walks
    forward `oos_sims` simulations of `oos_bars` (default: the bundled series, the one `workloads.backtest()` runs
    on; pass the bars of a CSV backtest, with `oos_is_crypto`, to match it).  matplotlib, arch, the
    out-of-sample options and `out_dir` are checked before the runs (`force` replaces a folder that is not an
    earlier `report` output).
    """
    from tqdm.auto import tqdm

    require_extra(NEEDS["report"], "the report")
    check_output_dir(out_dir, "report", force=force)
    oos_methods = tuple(methods or oos.DEFAULT_METHODS)
    bars = oos_bars if oos_bars is not None else oos.bundled_series()
    oos_sims = oos.check_sims(oos_sims, bars, what="oos_sims")
    oos.check_tasks(oos_methods, oos_budgets, budgets_name="oos_budgets")

    started = time.time()
    backtest = backtest if backtest is not None else workloads.backtest()
    loaded = {"profile": workloads.profile(), backtest.name: backtest}
    trials = trials_for("profile", methods or registry.names(), budgets)
    trials += trials_for(backtest.name, methods or registry.names(backtest=True), backtest_budgets)
    rows = run_trials(trials, loaded, seed=seed, progress=progress)
    oos_rows = oos.walk_forward(
        bars,
        sims=oos_sims,
        methods=oos_methods,
        budgets=oos_budgets,
        is_crypto=oos_is_crypto,
        seed=seed,
        progress=progress,
        device=backtest.problem.device,
    )
    steps = tqdm(total=4 * len(scaling_sizes), unit="step", disable=not progress, dynamic_ncols=True)

    def step(what: str) -> None:
        steps.set_description(what)
        steps.update(1)

    with steps:
        points = measure_kernel_scaling(scaling_sizes, on_step=step)
        optimizations = measure_optimizer_scaling(scaling_sizes, on_step=step)
    with atomic_dir(out_dir, command="report", force=force) as tmp:
        plot_tradeoff(rows, [tmp / "tradeoff.png", tmp / "tradeoff.svg"], title="Regret against time per optimization")
        write_csv(rows, tmp / "tradeoff.csv")
        (tmp / "tradeoff.md").write_text(to_markdown(rows))
        oos.write_oos_csv(oos_rows, tmp / "oos.csv")
        with tqdm(total=1, unit="step", disable=not progress, dynamic_ncols=True) as bar:
            bar.set_description("out-of-sample statistics (bootstrap, SPA, MCS) and plot")
            oos_stats.write_stats(oos_rows, tmp, seed=seed)
            bar.update(1)
        oos_md = (tmp / "oos-stats.md").read_text()
        plot_kernel_scaling(points, [tmp / "kernel-scaling.png", tmp / "kernel-scaling.svg"])
        with open(tmp / "kernel-scaling.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(ScalingPoint)])
            writer.writeheader()
            writer.writerows(asdict(p) for p in points)
        plot_optimizer_scaling(optimizations, [tmp / "optimizer-scaling.png", tmp / "optimizer-scaling.svg"])
        with open(tmp / "optimizer-scaling.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(OptimizationPoint)])
            writer.writeheader()
            writer.writerows(asdict(p) for p in optimizations)
        oos_part = _oos_html(oos_rows, oos_md, is_crypto=oos_is_crypto)
        page = _index_html(rows, points, optimizations, oos_part, time.time() - started)
        (tmp / "index.html").write_text(page)
    return rows, points


def _markdown_html(text: str) -> str:
    """`oos-stats.md` as HTML (markdown-it, tables on, raw HTML escaped), without its `#` title (the page has its
    own heading) and with its `##` sections one level down (`<h3>`)."""
    from markdown_it import MarkdownIt

    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    shifted = ["#" + line if line.startswith("#") else line for line in lines]
    return MarkdownIt("commonmark", {"html": False}).enable("table").render("\n".join(shifted))


def _oos_html(rows: Sequence[oos.OosRow], stats_md: str, *, is_crypto: bool) -> str:
    """The out-of-sample section of `index.html`: what was run, the plot, and `oos-stats.md` as tables."""
    series = html.escape(rows[0].series) if rows else "?"
    sims = len({r.sim for r in rows})
    fee = html.escape(", ".join(sorted({f"{r.fee:g}" for r in rows})))
    methods = html.escape(", ".join(dict.fromkeys(oos_stats.label_of(r) for r in rows)))
    return f"""<h2>Out of sample: next-day profit against in-sample regret</h2>
<p>Walk-forward on the series <code>{series}</code>{" (crypto)" if is_crypto else ""}, fee {fee}: in each of
{sims} simulations every method fits <code>(h, l)</code> and the policy on {oos.FIT_DAYS} days and is scored on
the next, unseen day. The plot puts each method's mean in-sample regret (bp, symlog x) against its mean next-day
profit (bp of the previous close, y), one panel per strategy; the bars are the 95 % stationary-bootstrap interval
of its difference from zero offsets, placed around zero's mean (dashed line), so a bar clear of that line is a
difference beyond noise. The tables give the means, the intervals against <code>direct@default</code> (the
historic default), <code>zero</code> and <code>exact</code>, Hansen's SPA and the model confidence set.
Methods: {methods}.
Data: <a href="oos.csv">oos.csv</a> (one row per simulation, strategy, method and budget),
<a href="oos-stats.md">oos-stats.md</a>.</p>
<img id="oos-stats" src="oos-stats.png" alt="mean next-day profit (bp) against mean in-sample regret (bp) per method">
<div id="oos-statistics">
{_markdown_html(stats_md)}
</div>
"""


def _index_html(
    rows: Sequence[Row],
    points: Sequence[ScalingPoint],
    optimizations: Sequence[OptimizationPoint],
    oos_part: str,
    seconds: float,
) -> str:
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
    optimization_rows = "\n".join(
        f"<tr><td>{p.method}</td><td>{p.n_days}</td><td>{1e3 * p.seconds:.4g}</td></tr>" for p in optimizations
    )
    machine = html.escape(f"{machine_summary()}, {torch.get_num_threads()} threads")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>marketsim-opt report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1300px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}img{{max-width:100%}}</style></head>
<body>
<h1>marketsim-opt report</h1>
<p>Generated {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} by <code>marketsim-opt report</code> in
{seconds:.0f} s ({machine}). Data: <a href="tradeoff.csv">tradeoff.csv</a>, <a href="tradeoff.md">tradeoff.md</a>,
<a href="oos.csv">oos.csv</a>, <a href="oos-stats.md">oos-stats.md</a>,
<a href="kernel-scaling.csv">kernel-scaling.csv</a>, <a href="optimizer-scaling.csv">optimizer-scaling.csv</a>.</p>
<h2>Regret against wall time per optimization</h2>
<img id="tradeoff" src="tradeoff.png" alt="regret (bp, log) against wall time per optimization">
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
{oos_part}<h2>Kernel cost per evaluation against N</h2>
<img id="kernel-scaling" src="kernel-scaling.png" alt="per-evaluation cost against N, sequential and batched">
<p>Batched: {BATCH} candidates per call, divided by {BATCH}.</p>
<table><thead><tr><th>mode</th><th>N</th><th>us per candidate</th></tr></thead><tbody>
{scaling_rows}
</tbody></table>
<h2>One optimization against N: exact beside DIRECT@500</h2>
<img id="optimizer-scaling" src="optimizer-scaling.png" alt="seconds per optimization against N, exact and DIRECT">
<p>Entry/exit, intraday, one thread; the median over blocks of back-to-back calls.</p>
<table><thead><tr><th>method</th><th>N</th><th>ms per optimization</th></tr></thead><tbody>
{optimization_rows}
</tbody></table>
</body></html>
"""
