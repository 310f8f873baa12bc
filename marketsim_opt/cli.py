"""The `marketsim-opt` command line (also `python -m marketsim_opt`).

marketsim-opt run       the main job: both optimizations of a workload (default: `profile`, DIRECT)
marketsim-opt compare   method x budget table: wall time, evaluations, host syncs, regret (bp)
marketsim-opt profile   a workload under cProfile: .prof, icicle view, time shares (reports/profile-...)
marketsim-opt memory    a workload under memray: capture, flame graph, peak (reports/memory-...)
marketsim-opt report    regret-vs-time plot with Pareto front, CSV/markdown, kernel scaling (reports/report)
marketsim-opt targets   the performance targets as ratios measured in one run (reports/targets)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import workloads
from .comparison import BACKTEST_METHODS, DEFAULT_BUDGETS, parse_budget, run_trials, to_markdown, trials_for, write_csv
from .data import DataError
from .files import atomic_write
from .optimizers import METHODS
from .optimizers.api import check_method
from .quality import regret_bp
from .reports.report import BACKTEST_BUDGETS, REPORT_BUDGETS


def _workload(name: str, csv_path: str | None, crypto: bool, device: str) -> workloads.Workload:
    if name == "profile":
        return workloads.profile(device=device)
    return workloads.backtest(csv_path, is_crypto=crypto, device=device)


def cmd_run(args: argparse.Namespace) -> int:
    """Both optimizations of one workload with one method; one line each."""
    check_method(args.method)
    workload = _workload(args.workload, args.csv, args.crypto, args.device)
    budget = None if args.budget is None else parse_budget(args.budget)
    print(
        f"{workload.name}: {workload.problem.n_sims} simulation(s) x {workload.problem.n_days} days, "
        f"method {args.method}, device {args.device}"
    )
    total_time = total_nfev = total_syncs = 0
    for strategy in workloads.STRATEGIES:
        result = workloads.run(workload, strategy, method=args.method, budget=budget, seed=args.seed)
        regret = regret_bp(result)
        total_time += result.wall_time
        nfev = int(sum(result.nfev) if result.batched else result.nfev)
        total_nfev += nfev
        total_syncs += result.syncs
        if result.batched:
            where = f"mean profit {result.profit.mean():+.5f}, mean regret {regret.mean():.3g} bp"
        else:
            where = (
                f"h {result.h:+.5f}, l {result.l:+.5f}, close_at_eod {result.close_at_eod}, "
                f"profit {result.profit:+.5f}, regret {regret:.3g} bp"
            )
        print(f"  {strategy:<10} {where}; {result.wall_time:.3f} s, {nfev} evaluations, {result.syncs} host syncs")
    print(f"  total      {total_time:.3f} s, {total_nfev} evaluations, {total_syncs} host syncs")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Method x budget table on the profile workload and, when asked, a backtest."""
    budgets = [parse_budget(b) for b in args.budgets.split(",")]
    loaded = {"profile": workloads.profile(device=args.device)}
    trials = trials_for("profile", args.methods or METHODS, budgets)
    if args.csv is not None or args.backtest:
        backtest = workloads.backtest(args.csv, is_crypto=args.crypto, device=args.device)
        loaded[backtest.name] = backtest
        trials += trials_for(backtest.name, args.methods or BACKTEST_METHODS, budgets)
    rows = run_trials(trials, loaded, seed=args.seed, progress=not args.no_progress)
    table = to_markdown(rows)
    print(table, end="")
    if args.out:
        atomic_write(args.out, lambda fh: fh.write(table))
    if args.csv_out:
        write_csv(rows, args.csv_out)
    return 0


def _out_dir(args: argparse.Namespace) -> str:
    if args.out:
        return args.out
    return f"reports/{args.command}-{args.workload}-{args.method.replace(':', '-')}"


def _run_view(args: argparse.Namespace, write, doing: str, files: str) -> int:
    """Shared body of `profile` and `memory`: `write(workload, out, ...)` returns a summary with `to_text()`."""
    check_method(args.method)
    workload = _workload(args.workload, args.csv, args.crypto, args.device)
    budget = None if args.budget is None else parse_budget(args.budget)
    out = _out_dir(args)
    print(f"{doing.format(workload=workload.name, method=args.method)} ...", flush=True)
    summary = write(workload, out, method=args.method, budget=budget, seed=args.seed, progress=not args.no_progress)
    print(summary.to_text())
    print(f"wrote {out}/: {files}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """cProfile + tuna icicle + summary of one workload and method."""
    from .reports.profiling import profile_workload

    doing = "profiling {workload} with {method} (warm-up, a timed run, a profiled run)"
    return _run_view(args, profile_workload, doing, "profile.prof, icicle/index.html, summary.txt, summary.json")


def cmd_memory(args: argparse.Namespace) -> int:
    """memray capture + flame graph + peak of one workload and method."""
    from .reports.memory import memory_workload

    doing = "tracking {workload} with {method} under memray (warm-up, then the captured run)"
    return _run_view(args, memory_workload, doing, "memray.bin, flamegraph.html, summary.txt, summary.json")


def cmd_report(args: argparse.Namespace) -> int:
    """Every method x budget on profile and backtest, plotted; the kernel's scaling."""
    from .reports.report import write_report

    budgets = [parse_budget(b) for b in args.budgets.split(",")]
    backtest_budgets = [parse_budget(b) for b in args.backtest_budgets.split(",")]
    for method in args.methods or ():
        check_method(method)
    backtest = workloads.backtest(args.csv, is_crypto=args.crypto, device=args.device)
    out = args.out or "reports/report"
    rows, _ = write_report(
        out,
        budgets=budgets,
        backtest_budgets=backtest_budgets,
        methods=args.methods,
        backtest=backtest,
        seed=args.seed,
        progress=not args.no_progress,
    )
    print(to_markdown(rows), end="")
    print(f"wrote {out}/: index.html, tradeoff.png/.svg/.csv/.md, kernel-scaling.png/.svg/.csv")
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    """Exact vs DIRECT, the one-call backtest and the batched kernel, side by side in this process."""
    from tqdm.auto import tqdm

    from .reports.targets import measure_targets, to_markdown, write_targets

    out = args.out or "reports/targets"
    steps = 7 if args.large else 6
    started = []  # labels of the steps begun so far; each new one completes the previous
    with tqdm(total=steps, unit="step", disable=args.no_progress, dynamic_ncols=True) as bar:

        def progress(label: str) -> None:
            if started:
                bar.update(1)
            started.append(label)
            bar.set_description(label)

        targets = measure_targets(repeats=args.repeats, large=args.large, progress=progress)
        if started:
            bar.update(1)  # the last step
    print(to_markdown(targets), end="")
    write_targets(out, targets)
    print(f"wrote {out}/: targets.md, targets.json")
    return 0


def _budgets_text(budgets) -> str:
    return ",".join("default" if b is None else str(b) for b in budgets)


def _methods(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marketsim-opt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--csv", metavar="PATH", help="an OHLC CSV for the backtest workload")
        p.add_argument("--crypto", action="store_true", help="the CSV is crypto (fee 0.0015, no shorts)")
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        p.add_argument("--seed", type=int, default=0, help="optimizer seed (default: 0)")

    run = sub.add_parser("run", help="both optimizations of a workload (default: profile with DIRECT)")
    run.add_argument("--workload", choices=("profile", "backtest"), default="profile")
    run.add_argument("--method", default="direct", help=f"one of {', '.join(METHODS)} (default: direct)")
    run.add_argument("--budget", help="candidates per optimization, or 'default' (500 entry/exit, 240 always-on)")
    common(run)
    run.set_defaults(func=cmd_run)

    compare = sub.add_parser("compare", help="method x budget table with wall time, evaluations, syncs, regret")
    compare.add_argument("--methods", type=_methods, help="comma-separated methods (default: all)")
    compare.add_argument(
        "--budgets",
        default=",".join(DEFAULT_BUDGETS),
        help="comma-separated budgets or 'default' (default: %(default)s)",
    )
    compare.add_argument("--backtest", action="store_true", help="also run the backtest on the bundled series")
    compare.add_argument("--out", metavar="FILE.md", help="also write the markdown table here")
    compare.add_argument("--csv-out", metavar="FILE.csv", help="also write the rows as CSV here")
    compare.add_argument("--no-progress", action="store_true", help="no progress bar")
    common(compare)
    compare.set_defaults(func=cmd_compare)

    for name, func, what in (
        ("profile", cmd_profile, "cProfile .prof, tuna icicle view and time shares"),
        ("memory", cmd_memory, "memray capture, flame graph and peak"),
    ):
        p = sub.add_parser(name, help=f"a workload's {what} (default: profile with DIRECT)")
        p.add_argument("--workload", choices=("profile", "backtest"), default="profile")
        p.add_argument("--method", default="direct", help=f"one of {', '.join(METHODS)} (default: direct)")
        p.add_argument("--budget", help="candidates per optimization, or 'default'")
        p.add_argument("--out", metavar="DIR", help="output folder (default: reports/<command>-<workload>-<method>)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        common(p)
        p.set_defaults(func=func)

    report = sub.add_parser("report", help="regret-vs-time plot, tables and kernel scaling over every method x budget")
    report.add_argument("--methods", type=_methods, help="comma-separated methods (default: all)")
    report.add_argument("--budgets", default=_budgets_text(REPORT_BUDGETS), help="on profile (default: %(default)s)")
    report.add_argument(
        "--backtest-budgets", default=_budgets_text(BACKTEST_BUDGETS), help="on the backtest (default: %(default)s)"
    )
    report.add_argument("--out", metavar="DIR", default=None, help="output folder (default: reports/report)")
    report.add_argument("--no-progress", action="store_true", help="no progress bars")
    common(report)
    report.set_defaults(func=cmd_report)

    targets = sub.add_parser("targets", help="exact vs DIRECT, one-call backtest, batched kernel: ratios in one run")
    targets.add_argument("--repeats", type=int, default=5, help="best of this many runs of each fast path (default: 5)")
    targets.add_argument("--large", action="store_true", help="also time exact at N = 20000 (about 1.5 min)")
    targets.add_argument("--out", metavar="DIR", default=None, help="output folder (default: reports/targets)")
    targets.add_argument("--no-progress", action="store_true", help="no progress bar")
    targets.set_defaults(func=cmd_targets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:  # bad input: DataError and friends name the field
        kind = "bad input" if isinstance(exc, (ValueError, DataError)) else "cannot read"
        print(f"marketsim-opt {args.command}: {kind}: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a missing optional tool (tuna, memray, matplotlib) or its failure
        print(f"marketsim-opt {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"marketsim-opt {args.command}: interrupted; no output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
