"""The `marketsim-opt` command line (also `python -m marketsim_opt`).

marketsim-opt run       the main job: both optimizations of a workload (default: `profile`, DIRECT)
marketsim-opt compare   method x budget table: wall time, evaluations, host syncs, regret (bp)
marketsim-opt profile   a workload under cProfile: .prof, icicle view, time shares (reports/profile-...)
marketsim-opt memory    a workload under memray: capture, flame graph, peak (reports/memory-...)
marketsim-opt report    regret-vs-time plot with Pareto front, out-of-sample profit, kernel scaling (reports/report)
marketsim-opt targets   the performance targets as ratios measured in one run (reports/targets)
marketsim-opt oos       walk-forward out-of-sample profit of every method: oos.csv, oos.md (reports/oos)
marketsim-opt oos-summary  one table over several oos runs: mean next-day profit, exact minus DIRECT@default
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from collections.abc import Callable, Sequence

from . import workloads
from .comparison import (
    DEFAULT_BUDGETS,
    csv_header,
    is_markdown_head,
    parse_budget,
    run_trials,
    to_markdown,
    trials_for,
    write_csv,
)
from .files import WriteError, atomic_dir, atomic_write, check_output_dir, check_output_file
from .instrument import on_evaluations
from .oos import DEFAULT_METHODS as OOS_METHODS
from .optimizers import registry
from .optimizers.api import check_method, check_seed, default_budget, fast_optimize
from .quality import regret_bp
from .reports.extras import NEEDS, MissingExtraError, ToolError, require_extra
from .reports.report import BACKTEST_BUDGETS, OOS_BUDGETS, OOS_FILES, OOS_SIMS, REPORT_BUDGETS


def _workload(name: str, csv_path: str | None, crypto: bool, device: str) -> workloads.Workload:
    if name == "profile":
        return workloads.profile(device=device)
    return workloads.backtest(csv_path, is_crypto=crypto, device=device)


def _describe(workload: workloads.Workload) -> str:
    """`name: S simulation(s) x N days, forecasts: ...`, the workload as the CLI's headers name it."""
    p = workload.problem
    return f"{workload.name}: {p.n_sims} simulation(s) x {p.n_days} days, forecasts: {workload.forecast}"


def _expected_evaluations(workload: workloads.Workload, method: str, budget: int | None) -> int | None:
    """Roughly how many candidates `run` scores (budget x simulations x policies per strategy); None if budgetless."""
    if not registry.takes_budget(method):
        return None
    policies = 2 if workload.close_at_eod is None else 1
    per_strategy = [budget or default_budget(s, fast=fast_optimize()) for s in workloads.STRATEGIES]
    return sum(per_strategy) * workload.problem.n_sims * policies


def _budget(args: argparse.Namespace) -> int | None:
    """`--budget`: None for the strategy's default (the historical entry points make it 100 under
    MARKETSIM_FAST_OPTIMIZE=1)."""
    return None if args.budget is None else parse_budget(args.budget)


def cmd_run(args: argparse.Namespace) -> int:
    """Both optimizations of one workload with one method; one line each, a progress bar on stderr meanwhile."""
    from tqdm.auto import tqdm

    check_method(args.method)
    budget = _budget(args)
    workload = _workload(args.workload, args.csv, args.crypto, args.device)
    print(f"{_describe(workload)}; method {args.method}, device {args.device}", flush=True)
    total_time = total_nfev = total_syncs = 0
    bar = tqdm(
        total=_expected_evaluations(workload, args.method, budget),
        unit="eval",
        disable=args.no_progress,
        dynamic_ncols=True,
        leave=False,
        delay=PROGRESS_DELAY,
    )

    def scored(n: int) -> None:
        if bar.total is not None and bar.n + n > bar.total:
            bar.total = bar.n + n  # methods may score a few more than their budget (DIRECT finishes a round)
        bar.update(n)

    with bar, on_evaluations(scored):
        results = []
        for strategy in workloads.STRATEGIES:
            bar.set_description(strategy, refresh=False)
            results.append(workloads.run(workload, strategy, method=args.method, budget=budget, seed=args.seed))
    for strategy, result in zip(workloads.STRATEGIES, results):
        regret = regret_bp(result)
        total_time += result.wall_time
        nfev = int(result.nfev.sum())
        total_nfev += nfev
        total_syncs += result.syncs
        if result.n_sims > 1:
            where = f"mean profit {result.profit.mean():+.5f}, mean regret {regret.mean():.3g} bp"
        else:
            one = result.scalar
            where = (
                f"h {one.h:+.5f}, l {one.l:+.5f}, close_at_eod {one.close_at_eod}, "
                f"profit {one.profit:+.5f}, regret {regret[0]:.3g} bp"
            )
        print(f"  {strategy:<10} {where}; {result.wall_time:.3f} s, {nfev} evaluations, {result.syncs} host syncs")
    print(f"  total      {total_time:.3f} s, {total_nfev} evaluations, {total_syncs} host syncs")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Method x budget table on the profile workload and, when asked, a backtest."""
    budgets = [parse_budget(b) for b in args.budgets.split(",")]
    for method in args.methods or ():
        check_method(method)
    loaded = {"profile": workloads.profile(device=args.device)}
    trials = trials_for("profile", args.methods or registry.names(), budgets)
    if args.csv is not None or args.backtest:
        backtest = workloads.backtest(args.csv, is_crypto=args.crypto, device=args.device)
        loaded[backtest.name] = backtest
        trials += trials_for(backtest.name, args.methods or registry.names(backtest=True), budgets)
    for workload in loaded.values():
        print(_describe(workload), file=sys.stderr)
    rows = run_trials(trials, loaded, seed=args.seed, progress=not args.no_progress)
    table = to_markdown(rows)
    print(table, end="")
    if args.out is not None:
        _write_table(args, table, first_line=is_markdown_head)
    if args.csv_out is not None:
        write_csv(rows, args.csv_out, force=args.force)
    return 0


def _write_table(args: argparse.Namespace, text: str, *, first_line: Callable[[str], bool]) -> None:
    """`text` and its provenance line (the command as typed, the machine, the date) into `args.out`, atomically;
    an existing file whose first line fails `first_line` is only replaced with `--force`."""
    from .reports.machine import stamp

    written = f"{text}\nMeasured by {stamp(args.command_line)}.\n"
    atomic_write(args.out, lambda fh: fh.write(written), first_line=first_line, force=args.force)


#: Seconds before `run`'s progress bar appears: a run that ends sooner prints no bar at all.
PROGRESS_DELAY = 2.0


def _out_dir(args: argparse.Namespace) -> str:
    """The output folder of a folder-writing command: `--out`, or its default under `reports/`."""
    if args.out is not None:
        return args.out
    if args.command in ("profile", "memory"):
        return f"reports/{args.command}-{args.workload}-{args.method.replace(':', '-')}"
    return f"reports/{args.command}"


def _run_view(args: argparse.Namespace, write, doing: str, files: str) -> int:
    """Shared body of `profile` and `memory`: `write(workload, out, ...)` returns a summary with `to_text()`."""
    check_method(args.method)
    budget = _budget(args)
    workload = _workload(args.workload, args.csv, args.crypto, args.device)
    out = _out_dir(args)
    print(f"{_describe(workload)}", flush=True)
    print(f"{doing.format(workload=workload.name, method=args.method)} ...", flush=True)
    summary = write(
        workload,
        out,
        method=args.method,
        budget=budget,
        seed=args.seed,
        progress=not args.no_progress,
        force=args.force,
    )
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
    """Every method x budget on profile and backtest, plotted; their out-of-sample profit; the kernel's scaling."""
    from .oos import check_sims
    from .reports.report import write_report

    budgets = [parse_budget(b) for b in args.budgets.split(",")]
    backtest_budgets = [parse_budget(b) for b in args.backtest_budgets.split(",")]
    oos_budgets = [parse_budget(b) for b in args.oos_budgets.split(",")]
    for method in args.methods or ():
        check_method(method)
    oos_bars = _oos_bars(args)  # the backtest's series: the CSV's bars, or the bundled series
    oos_sims = check_sims(args.oos_sims, oos_bars, what="--oos-sims")
    backtest = workloads.backtest(args.csv, is_crypto=args.crypto, device=args.device)
    print(_describe(backtest), file=sys.stderr)
    out = _out_dir(args)
    rows, _ = write_report(
        out,
        budgets=budgets,
        backtest_budgets=backtest_budgets,
        methods=args.methods,
        backtest=backtest,
        oos_bars=oos_bars,
        oos_is_crypto=args.crypto,
        oos_sims=oos_sims,
        oos_budgets=oos_budgets,
        seed=args.seed,
        progress=not args.no_progress,
        force=args.force,
    )
    print(to_markdown(rows), end="")
    written = ["index.html", "tradeoff.png/.svg/.csv/.md", *OOS_FILES, "kernel-scaling.png/.svg/.csv"]
    print(f"wrote {out}/: {', '.join(written)}, optimizer-scaling.png/.svg/.csv")
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    """Exact vs DIRECT, the one-call backtest and the batched kernel, side by side in this process."""
    from tqdm.auto import tqdm

    from .reports.targets import measure_targets, to_markdown, write_targets

    out = _out_dir(args)
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
    write_targets(out, targets, force=args.force, command=args.command_line)
    print(f"wrote {out}/: targets.md, targets.json")
    return 0


#: What `oos`'s statistics and plot (`reports.oos_stats`) need: (module, extra).
OOS_STATS_NEEDS = (("arch", "oos"), ("matplotlib", "report"))


def _oos_bars(args: argparse.Namespace):
    from .data import load_ohlc_csv
    from .oos import bundled_series

    return load_ohlc_csv(args.csv) if args.csv is not None else bundled_series()


def cmd_oos(args: argparse.Namespace) -> int:
    """Walk-forward out-of-sample profit of every method x budget: oos.csv, oos.md (and the statistics)."""
    from .data import check_device, forecast_source
    from .oos import DEFAULT_METHODS, check_sims, summary, walk_forward, write_oos_csv
    from .oos import to_markdown as oos_markdown

    budgets = [parse_budget(b) for b in args.budgets.split(",")]
    methods = args.methods or DEFAULT_METHODS
    bars = _oos_bars(args)
    sims = check_sims(args.sims, bars, what="--sims")
    check_device(args.device)
    out = _out_dir(args)
    print(
        f"oos:{bars.symbol}: {len(bars)} bars, {sims} simulation(s) x 6 fitted days + the next day, "
        f"forecasts: {forecast_source(bars)}",
        file=sys.stderr,
        flush=True,
    )
    rows = walk_forward(
        bars,
        sims=sims,
        methods=methods,
        budgets=budgets,
        is_crypto=args.crypto,
        seed=args.seed,
        progress=not args.no_progress,
        device=args.device,
    )
    table = oos_markdown(summary(rows))
    from .reports.oos_stats import write_stats

    written = ["oos.csv", "oos.md"]
    with atomic_dir(out, command="oos", force=args.force) as tmp:
        write_oos_csv(rows, tmp / "oos.csv")
        (tmp / "oos.md").write_text(table)
        written += [os.path.basename(p) for p in write_stats(rows, tmp)]
    print(table, end="")
    print(f"wrote {out}/: {', '.join(written)}")
    return 0


def cmd_oos_summary(args: argparse.Namespace) -> int:
    """One table over the `oos` output folders given: mean next-day profit per series, strategy and method."""
    from .reports.oos_summary import is_summary_head, read_run, summarise, to_markdown

    runs = [read_run(folder) for folder in args.run_dirs]  # every folder checked before any bootstrap runs
    text = to_markdown(summarise(runs))
    print(text, end="")
    if args.out is not None:
        _write_table(args, text, first_line=is_summary_head)
    return 0


_FORCE_HELP = "replace an existing output that is not an earlier output of this command"


def _budgets_text(budgets) -> str:
    return ",".join("default" if b is None else str(b) for b in budgets)


def _methods(text: str) -> list[str]:
    """A comma-separated list of method names (checked later); argparse's error for one without any name."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods:
        raise argparse.ArgumentTypeError(f"expected at least one method name, got {text!r}")
    return methods


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: `marketsim-opt run: bad input: argument --workload: ...`."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: bad input: {message} (see {self.prog} --help)\n")


def check_args(args: argparse.Namespace) -> None:
    """ValueError (or MissingExtraError) for options that do not apply, bad outputs or missing tools.

    Runs right after parsing, before any workload is loaded or any optimization runs.
    """
    if hasattr(args, "seed"):
        check_seed(args.seed)
    workload = getattr(args, "workload", None)
    if workload == "profile":
        for flag, given in (("--csv", args.csv is not None), ("--crypto", args.crypto)):
            if given:
                raise ValueError(f"{flag} applies to --workload backtest; the profile workload is synthetic")
    method = getattr(args, "method", None)
    if method is not None and args.budget is not None and not registry.takes_budget(method):
        about = registry.get(method).about
        raise ValueError(f"--budget does not apply to --method {method} (it takes no budget: {about})")
    if args.command == "compare":
        if args.crypto and args.csv is None and not args.backtest:
            raise ValueError("--crypto applies to the backtest: add --csv FILE or --backtest")
        if args.out is not None and args.csv_out is not None:
            if check_output_file(args.out, what="--out") == check_output_file(args.csv_out, what="--csv-out"):
                raise ValueError(f"--out and --csv-out name the same file ({args.out!r}); name two files")
        if args.out is not None:  # an existing file not headed by a compare table is only replaced with --force
            check_output_file(args.out, first_line=is_markdown_head, force=args.force, what="--out")
        if args.csv_out is not None:
            check_output_file(args.csv_out, first_line=csv_header(), force=args.force, what="--csv-out")
    if args.command == "oos":
        _check_oos_args(args)
    if args.command == "oos-summary":
        _check_oos_summary_args(args)
    if args.command in NEEDS:
        require_extra(NEEDS[args.command], f"marketsim-opt {args.command}")
    if args.command in ("profile", "memory", "report", "targets", "oos"):
        check_output_dir(_out_dir(args), args.command, force=args.force, what="--out")


def _check_oos_args(args: argparse.Namespace) -> None:
    """`oos`'s options, before the series is read (the upper bound of --sims needs the series: `cmd_oos`)."""
    if args.crypto and args.csv is None:
        raise ValueError("--crypto applies to --csv FILE; the bundled series is not crypto")
    if args.sims < 1:
        raise ValueError(f"--sims: must be a positive integer, got {args.sims}")
    for method in args.methods or ():
        check_method(method)
    for budget in args.budgets.split(","):
        parse_budget(budget)
    for module, extra in OOS_STATS_NEEDS:
        require_extra((module,), "marketsim-opt oos's statistics and plot", extra=extra)


def _check_oos_summary_args(args: argparse.Namespace) -> None:
    """`oos-summary`'s folders given once each, its `--out` (refused unless new, an earlier output or `--force`)
    and arch; the folders' contents are checked by `cmd_oos_summary`, before any statistics run."""
    from .reports.oos_summary import is_summary_head

    seen: dict[str, str] = {}
    for folder in args.run_dirs:
        key = os.path.realpath(folder)
        if key in seen:
            raise ValueError(f"RUN_DIR: {folder!r} and {seen[key]!r} are the same folder; name each run once")
        seen[key] = folder
    if args.out is not None:
        check_output_file(args.out, first_line=is_summary_head, force=args.force, what="--out")
    require_extra(("arch",), "marketsim-opt oos-summary's bootstrap intervals", extra="oos")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="marketsim-opt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--csv", metavar="PATH", help="an OHLC CSV for the backtest workload")
        p.add_argument("--crypto", action="store_true", help="the backtest's series is crypto (fee 0.0015, no shorts)")
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        p.add_argument("--seed", type=int, default=0, help="optimizer seed (default: 0)")

    run = sub.add_parser("run", help="both optimizations of a workload (default: profile with DIRECT)")
    run.add_argument("--workload", choices=("profile", "backtest"), default="profile")
    run.add_argument("--method", default="direct", help=f"one of {', '.join(registry.names())} (default: direct)")
    run.add_argument("--budget", help="candidates per optimization, or 'default' (500 entry/exit, 240 always-on)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
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
    compare.add_argument("--force", action="store_true", help=_FORCE_HELP)
    common(compare)
    compare.set_defaults(func=cmd_compare)

    for name, func, what in (
        ("profile", cmd_profile, "cProfile .prof, tuna icicle view and time shares"),
        ("memory", cmd_memory, "memray capture, flame graph and peak"),
    ):
        p = sub.add_parser(name, help=f"a workload's {what} (default: profile with DIRECT)")
        p.add_argument("--workload", choices=("profile", "backtest"), default="profile")
        p.add_argument("--method", default="direct", help=f"one of {', '.join(registry.names())} (default: direct)")
        p.add_argument("--budget", help="candidates per optimization, or 'default'")
        p.add_argument("--out", metavar="DIR", help="output folder (default: reports/<command>-<workload>-<method>)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--force", action="store_true", help=_FORCE_HELP)
        common(p)
        p.set_defaults(func=func)

    report = sub.add_parser(
        "report", help="regret-vs-time plot, out-of-sample profit, tables and kernel scaling over every method x budget"
    )
    report.add_argument(
        "--methods",
        type=_methods,
        help="comma-separated methods, for every section (default: all on profile, the fast ones on the backtest "
        "and out of sample)",
    )
    report.add_argument("--budgets", default=_budgets_text(REPORT_BUDGETS), help="on profile (default: %(default)s)")
    report.add_argument(
        "--backtest-budgets", default=_budgets_text(BACKTEST_BUDGETS), help="on the backtest (default: %(default)s)"
    )
    report.add_argument(
        "--oos-budgets",
        default=_budgets_text(OOS_BUDGETS),
        help="out of sample, for the methods that take one (default: %(default)s)",
    )
    report.add_argument(
        "--oos-sims",
        type=int,
        default=OOS_SIMS,
        help="out-of-sample walk-forward simulations, up to what the series allows (default: %(default)s)",
    )
    report.add_argument("--out", metavar="DIR", default=None, help="output folder (default: reports/report)")
    report.add_argument("--no-progress", action="store_true", help="no progress bars")
    report.add_argument("--force", action="store_true", help=_FORCE_HELP)
    common(report)
    report.set_defaults(func=cmd_report)

    targets = sub.add_parser("targets", help="exact vs DIRECT, one-call backtest, batched kernel: ratios in one run")
    targets.add_argument("--repeats", type=int, default=5, help="best of this many runs of each fast path (default: 5)")
    targets.add_argument("--large", action="store_true", help="also time exact at N = 20000 (about 1.5 min)")
    targets.add_argument("--out", metavar="DIR", default=None, help="output folder (default: reports/targets)")
    targets.add_argument("--no-progress", action="store_true", help="no progress bar")
    targets.add_argument("--force", action="store_true", help=_FORCE_HELP)
    targets.set_defaults(func=cmd_targets)

    oos = sub.add_parser("oos", help="walk-forward out-of-sample profit of every method (oos.csv, oos.md)")
    oos.add_argument(
        "--sims", type=int, default=70, help="walk-forward simulations, up to what the series allows (default: 70)"
    )
    oos.add_argument(
        "--methods",
        type=_methods,
        help=f"comma-separated methods (default: {', '.join(OOS_METHODS)})",
    )
    oos.add_argument(
        "--budgets",
        default=",".join(DEFAULT_BUDGETS),
        help="comma-separated budgets or 'default', for the methods that take one (default: %(default)s)",
    )
    oos.add_argument("--out", metavar="DIR", default=None, help="output folder (default: reports/oos)")
    oos.add_argument("--no-progress", action="store_true", help="no progress bar")
    oos.add_argument("--force", action="store_true", help=_FORCE_HELP)
    common(oos)
    oos.set_defaults(func=cmd_oos)

    oos_summary = sub.add_parser(
        "oos-summary",
        help="one table over several oos output folders: mean next-day profit, exact minus DIRECT@default",
    )
    oos_summary.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="output folders of `marketsim-opt oos --out`, in table order"
    )
    oos_summary.add_argument(
        "--out", metavar="FILE.md", help="also write the table, with a provenance line (command, machine, date), here"
    )
    oos_summary.add_argument("--force", action="store_true", help=_FORCE_HELP)
    oos_summary.set_defaults(func=cmd_oos_summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status.

    0 ok; 2 bad input or environment (one line on stderr); 130 on Ctrl-C; 141 when stdout's reader left.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    name = f"marketsim-opt {args.command}"
    # As typed, for the provenance line of the tables a command writes (`reports.machine.stamp`).
    args.command_line = shlex.join(["marketsim-opt", *(sys.argv[1:] if argv is None else argv)])
    try:
        check_args(args)
        return args.func(args)
    except (MissingExtraError, ToolError, WriteError) as exc:  # their messages say what and how to fix it
        print(f"{name}: {exc}", file=sys.stderr)
    except ValueError as exc:  # bad input: DataError and friends name the field
        print(f"{name}: bad input: {exc}", file=sys.stderr)
    except BrokenPipeError:  # stdout's reader went away (`| head`): stop quietly, as a SIGPIPE'd tool would
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 128 + 13
    except OSError as exc:  # writes raise WriteError, so one naming a file is a file we read
        if exc.filename is not None:
            print(f"{name}: cannot read {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        else:
            print(f"{name}: {exc.strerror or exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; no partial output was left behind", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
