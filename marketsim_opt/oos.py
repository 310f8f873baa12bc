"""Walk-forward out-of-sample evaluation: what each method's `(h, l)` and policy earn on the next, unseen day.

Simulation `k` (`0 <= k < sims`) of a bar series is row `k` of `data.backtest_windows(bars, n_sims=sims)`: it
fits on the `FIT_DAYS` scored days that end with moves index `last_k = n_moves - 1 - k` (exclusive) and is tested
on moves index `last_k`, the next bar (bar `last_k + 1`), which is never in its window.  The test day's forecast is
the one the backtest would have used for that day: the CSV's own `high_pred`/`low_pred` when the bars carry them,
else `data.forecast_moves(moves, window)` at that index (a forecast of day `i` uses days `< i` only).

`walk_forward` fits every (strategy, method, budget) on all simulations at once through the public API, and
returns one `OosRow` per (simulation, strategy, method, budget); `write_oos_csv` / `read_oos_csv` store them
(columns documented in `COLUMNS`), `summary` and `to_markdown` give the means per method.  The statistics
(bootstrap intervals, SPA, MCS) and the plot live in `reports.oos_stats`.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields

import numpy as np
import torch

from . import workloads
from .data import OHLC, DataError, Problem, backtest_windows, bars_to_moves, forecast_moves, forecast_source
from .files import atomic_write
from .optimizers.api import check_budget, check_method
from .optimizers.registry import takes_budget
from .quality import exact_optimum, regret_bp, score_f64
from .strategies import Objective, build_objective
from .tables import markdown_table
from .workloads import STRATEGIES, Workload

__all__ = [
    "OosRow",
    "OosSummary",
    "COLUMNS",
    "DEFAULT_METHODS",
    "DEFAULT_BUDGETS",
    "DEFAULT_SIMS",
    "FIT_DAYS",
    "bundled_series",
    "max_sims",
    "check_sims",
    "check_tasks",
    "next_days",
    "walk_forward",
    "summary",
    "to_markdown",
    "write_oos_csv",
    "read_oos_csv",
    "csv_header",
]

#: The methods `walk_forward` runs by default: the ones fast on a backtest (optuna and NGOpt only when named),
#: the robust variants of the exact optimum included.
DEFAULT_METHODS = (
    "zero",
    "exact",
    "exact:centre",
    "robust:worst",
    "robust:mean",
    "direct",
    "grid",
    "gradient",
    "nevergrad:OnePlusOne",
)
#: Budgets of the methods that take one: 100 (MARKETSIM_FAST_OPTIMIZE) and the strategy's historic default.
DEFAULT_BUDGETS: tuple[int | None, ...] = (100, None)
#: The historical number of walk-forward simulations.
DEFAULT_SIMS = 70
#: Days each simulation fits on (the backtest's scored days).
FIT_DAYS = 6


@dataclass(frozen=True)
class OosRow:
    """One simulation of one (strategy, method, budget): the fit and its next day.  Field order = CSV columns.

    Moves and profits are fractions of the previous close; see `COLUMNS` for each field.
    """

    series: str
    sim: int
    fit_first_date: str
    fit_last_date: str
    test_date: str
    strategy: str
    method: str
    budget: str
    h: float
    l: float
    close_at_eod: bool
    fee: float
    in_sample_profit: float
    regret_bp: float
    test_close: float
    test_high: float
    test_low: float
    test_high_pred: float
    test_low_pred: float
    test_positions: str
    next_day_profit: float


#: What each column of `oos.csv` holds.
COLUMNS: dict[str, str] = {
    "series": "the bar series: a CSV's file name without extension, or SYNTH0 for the bundled synthetic series",
    "sim": "the walk-forward simulation k: it fits on the 6 days before bar n_bars - 1 - k and tests on that bar",
    "fit_first_date": "the time of the first bar of the fitted window (as the series gives it)",
    "fit_last_date": "the time of the last bar of the fitted window; always before test_date",
    "test_date": "the time of the test bar, the one right after the fitted window",
    "strategy": "entry_exit or always_on",
    "method": "the optimizer (zero: offsets left at 0)",
    "budget": "candidates per simulation and policy: '-' for methods without one, '<n> (default)' for the default",
    "h": "the fitted offset added to the high forecast (fraction of the previous close)",
    "l": "the fitted offset added to the low forecast (fraction of the previous close)",
    "close_at_eod": "the fitted policy (True: close at the end of the day; False: take-profit intraday)",
    "fee": "the trading fee per unit of position per triggered entry (fraction of the price)",
    "in_sample_profit": "the objective at (h, l, policy) summed over the fitted days, float64 (fraction of the "
    "previous close)",
    "regret_bp": "in-sample: the exact optimum over the same box and policies minus in_sample_profit, in bp",
    "test_close": "the test bar's close relative to the previous close, minus 1",
    "test_high": "the test bar's high relative to the previous close, minus 1",
    "test_low": "the test bar's low relative to the previous close, minus 1",
    "test_high_pred": "the forecast high move of the test bar (before the offset h), made before the bar",
    "test_low_pred": "the forecast low move of the test bar (before the offset l), made before the bar",
    "test_positions": "the legs' positions on the test bar, ';'-joined (entry_exit: 1, -1 or 0; always_on: 1;-1, "
    "crypto 1)",
    "next_day_profit": "the kernel's profit on the test bar at (h, l, policy, fee), summed over the legs (fraction "
    "of the previous close)",
}

#: The columns that are not floats, by type.
_KINDS: dict[str, type] = {
    "sim": int,
    "close_at_eod": bool,
    **dict.fromkeys(
        ("series", "fit_first_date", "fit_last_date", "test_date", "strategy", "method", "budget", "test_positions"),
        str,
    ),
}


def bundled_series() -> OHLC:
    """The bundled seeded synthetic series: the bars `workloads.backtest()` runs on without a CSV."""
    return workloads._bundled_series(workloads.BACKTEST_SERIES_SEED)


def max_sims(bars: OHLC) -> int:
    """The most walk-forward simulations `bars` allow (0 when none).

    Every fitted day and every test day needs a forecast: the trailing run of bars with one must cover
    `sims + FIT_DAYS` moves, and the first fitted day needs a day before it.
    """
    moves = bars_to_moves(bars)
    n = len(moves["close"])
    limit = n - FIT_DAYS - 1
    if bars.has_forecasts:
        missing = np.flatnonzero(np.isnan(moves["high_pred"]))
        run = n - 1 - int(missing[-1]) if len(missing) else n
        limit = min(limit, run - FIT_DAYS)
    return max(0, limit)


def check_sims(sims: object, bars: OHLC, *, what: str = "sims") -> int:
    """`sims` as an int in `[1, max_sims(bars)]`; DataError naming `what` and the maximum otherwise."""
    integral = isinstance(sims, numbers.Integral) and not isinstance(sims, (bool, np.bool_))
    if not integral or sims < 1:
        raise DataError(f"{what}: must be a positive integer, got {sims!r}")
    most = max_sims(bars)
    if sims > most:
        series = bars.symbol or "the series"
        raise DataError(
            f"{what}: {sims} simulations asked, but {series}'s {len(bars)} bars allow at most {most} "
            f"({FIT_DAYS} fitted days and a test day each, every one with a forecast)"
        )
    return int(sims)


def next_days(bars: OHLC, *, sims: int, window: int = 20) -> dict[str, np.ndarray]:
    """The test day of simulations `0 .. sims-1`, each array `[sims]`, float64 moves unless said otherwise.

    `close`, `high`, `low`: the test bar's moves relative to the previous close; `high_pred`, `low_pred`: its
    forecast moves (the bars' own, else `forecast_moves(moves, window)`, from earlier days only); `index`: the
    moves index `last_k` (int; the test bar is bar `index + 1`).
    """
    sims = check_sims(sims, bars)
    moves = bars_to_moves(bars)
    preds = {k: moves[k] for k in ("high_pred", "low_pred")} if bars.has_forecasts else forecast_moves(moves, window)
    index = len(moves["close"]) - 1 - np.arange(sims)
    out = {name: np.asarray(values[index], dtype=np.float64) for name, values in {**moves, **preds}.items()}
    out["index"] = index
    return out


def check_tasks(
    methods: Sequence[str],
    budgets: Sequence[int | None],
    strategies: Sequence[str] = STRATEGIES,
    *,
    budgets_name: str = "budgets",
) -> list[tuple[str, str, int | None]]:
    """(strategy, method, budget) to run, checked: budgetless methods once, with budget None.

    ValueError naming `methods`, `strategies` or the budgets (as `budgets_name`) for what `walk_forward` refuses.
    """
    if isinstance(methods, str) or not methods:
        raise ValueError(f"methods: expected a non-empty sequence of method names, got {methods!r}")
    if isinstance(strategies, str) or not strategies:
        raise ValueError(f"strategies: expected a non-empty sequence of {', '.join(STRATEGIES)}, got {strategies!r}")
    for method in methods:
        check_method(method)
    for strategy in strategies:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategies: expected names from {', '.join(STRATEGIES)}, got {strategy!r}")
    budgets = [None if b is None else check_budget(b, "entry_exit") for b in budgets]
    if not budgets and any(takes_budget(m) for m in methods):
        raise ValueError(f"{budgets_name}: expected at least one budget (an integer, or None for the default)")
    return [
        (strategy, method, budget)
        for strategy in dict.fromkeys(strategies)
        for method in dict.fromkeys(methods)
        for budget in (dict.fromkeys(budgets) if takes_budget(method) else (None,))
    ]


def walk_forward(
    bars: OHLC,
    *,
    sims: int = DEFAULT_SIMS,
    methods: Sequence[str] = DEFAULT_METHODS,
    budgets: Sequence[int | None] = DEFAULT_BUDGETS,
    strategies: Sequence[str] = STRATEGIES,
    is_crypto: bool = False,
    trading_fee: float | None = None,
    window: int = 20,
    seed: int = 0,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> list[OosRow]:
    """One `OosRow` per (strategy, method, budget, simulation), in that order (simulations ascending).

    Each (strategy, method, budget) is fitted on the `[sims, FIT_DAYS]` batch in one call (`workloads.run`, policy
    search, float32 as the backtest runs); `budget=None` is the strategy's default, and `exact`/`zero` run once
    without one.  `in_sample_profit` is the float64 objective at the answer, `regret_bp` is against the exact
    optimum (once per strategy), and `next_day_profit` the float64 kernel on the test day (`next_days`) at the
    answer's `(h, l)`, policy and fee, with the test day's own positions (entry/exit: from its forecast).
    Bad arguments raise ValueError (DataError for `sims` and the data) before any fit runs.
    """
    from tqdm.auto import tqdm

    sims = check_sims(sims, bars)
    tasks = check_tasks(methods, budgets, strategies)
    problem = backtest_windows(
        bars,
        n_sims=sims,
        n_days=FIT_DAYS,
        window=window,
        is_crypto=is_crypto,
        trading_fee=trading_fee,
        device=device,
    )
    workload = Workload(f"oos:{bars.symbol}", problem, close_at_eod=None, forecast=forecast_source(bars, window))
    day = next_days(bars, sims=sims, window=window)
    test = Problem(
        **{
            name: torch.as_tensor(day[name][:, None], dtype=torch.float64, device=problem.device)
            for name in ("close", "high", "low", "high_pred", "low_pred")
        },
        is_crypto=problem.is_crypto,
        trading_fee=problem.trading_fee,
    )  # [sims, 1]: each simulation's test day
    last = day["index"]
    dates = {
        "fit_first_date": [bars.time[i - FIT_DAYS + 1] for i in last],
        "fit_last_date": [bars.time[i] for i in last],
        "test_date": [bars.time[i + 1] for i in last],
    }
    optima: dict[str, np.ndarray] = {}
    tests: dict[str, tuple[Objective, np.ndarray]] = {}
    rows: list[OosRow] = []
    bar = tqdm(tasks, unit="fit", disable=not progress, dynamic_ncols=True)
    for strategy, method, budget in bar:
        shown = ("default" if budget is None else str(budget)) if takes_budget(method) else "-"
        bar.set_description(f"{bars.symbol} {strategy} {method} {shown}")
        result = workloads.run(workload, strategy, method=method, budget=budget, seed=seed)
        if budget is None and takes_budget(method):
            shown = f"{result.budget} (default)"
        if strategy not in optima:
            optima[strategy] = exact_optimum(result)
        h, l, policy = result.h.astype(np.float64), result.l.astype(np.float64), result.close_at_eod
        in_sample = score_f64(result.objective, h, l, policy)
        regret = regret_bp(result, optimum=optima[strategy])
        if strategy not in tests:  # the test day's objective and positions depend on the strategy alone
            objective = build_objective(test, strategy)
            legs = np.stack([leg[:, 0].cpu().numpy() for leg in objective.legs], axis=-1)  # [sims, legs]
            tests[strategy] = objective, legs
        test_objective, legs = tests[strategy]
        next_day = score_f64(test_objective, h, l, policy)
        for k in range(sims):
            rows.append(
                OosRow(
                    series=bars.symbol,
                    sim=k,
                    fit_first_date=dates["fit_first_date"][k],
                    fit_last_date=dates["fit_last_date"][k],
                    test_date=dates["test_date"][k],
                    strategy=strategy,
                    method=method,
                    budget=shown,
                    h=float(h[k]),
                    l=float(l[k]),
                    close_at_eod=bool(policy[k]),
                    fee=float(problem.trading_fee),
                    in_sample_profit=float(in_sample[k]),
                    regret_bp=float(regret[k]),
                    test_close=float(day["close"][k]),
                    test_high=float(day["high"][k]),
                    test_low=float(day["low"][k]),
                    test_high_pred=float(day["high_pred"][k]),
                    test_low_pred=float(day["low_pred"][k]),
                    test_positions=";".join(f"{p:g}" for p in legs[k]),
                    next_day_profit=float(next_day[k]),
                )
            )
    return rows


# --- the means per method -----------------------------------------------------------------------


@dataclass(frozen=True)
class OosSummary:
    """Means over the simulations of one (series, strategy, method, budget), in basis points of the previous close.

    `in_sample_bp` is the fitted days' summed profit; `next_day_bp` the test day's profit.
    """

    series: str
    strategy: str
    method: str
    budget: str
    n_sims: int
    in_sample_bp: float
    regret_bp: float
    next_day_bp: float


_MEANS = ("in_sample_profit", "regret_bp", "next_day_profit")


def summary(rows: Sequence[OosRow]) -> list[OosSummary]:
    """Per (series, strategy, method, budget), in order of first appearance: the means of `rows`."""
    groups: dict[tuple[str, str, str, str], list[OosRow]] = {}
    for row in rows:
        groups.setdefault((row.series, row.strategy, row.method, row.budget), []).append(row)
    out = []
    for key, members in groups.items():
        means = {name: float(np.mean([getattr(r, name) for r in members])) for name in _MEANS}
        out.append(
            OosSummary(
                *key,
                n_sims=len(members),
                in_sample_bp=means["in_sample_profit"] * 1e4,
                regret_bp=means["regret_bp"],
                next_day_bp=means["next_day_profit"] * 1e4,
            )
        )
    return out


#: The columns of `to_markdown`'s table: (header, alignment); the numbers are right-aligned.
_COLUMNS = (
    *((name, "left") for name in ("series", "strategy", "method", "budget")),
    *((name, "right") for name in ("simulations", "in-sample profit bp", "regret bp", "next-day profit bp")),
)


def to_markdown(summaries: Sequence[OosSummary]) -> str:
    """A GitHub-flavoured markdown table of `summaries`, in their order (tabulate's `pipe` format)."""
    rows = [
        [s.series, s.strategy, s.method, s.budget, str(s.n_sims), f"{s.in_sample_bp:+.2f}"]
        + ["0" if abs(s.regret_bp) < 1e-6 else f"{s.regret_bp:.3g}", f"{s.next_day_bp:+.3f}"]  # exact's: round-off
        for s in summaries
    ]
    return markdown_table(rows, _COLUMNS) + "\n"


# --- the CSV ------------------------------------------------------------------------------------


def csv_header() -> str:
    """The first line of `oos.csv`: the `OosRow` field names."""
    return ",".join(f.name for f in fields(OosRow))


def write_oos_csv(rows: Sequence[OosRow], path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Write `rows` as CSV, atomically; floats as Python's shortest round-trip text, so reading gives them back.

    An existing file is only replaced when it starts with the same header (an earlier output), or with `force`.
    """

    def write(fh) -> None:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([f.name for f in fields(OosRow)])
        for row in rows:
            writer.writerow([repr(v) if isinstance(v, float) else v for v in astuple(row)])

    atomic_write(path, write, first_line=csv_header(), force=force)


def _cell(path: str, line: int, name: str, kind: type, text: str):
    if kind is str:
        return text
    if kind is bool:
        if text not in ("True", "False"):
            raise DataError(f"{path}: line {line}: {name}: {text!r} is not True or False")
        return text == "True"
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise DataError(f"{path}: line {line}: {name}: {text!r} is not {what}") from None
    if kind is float and not math.isfinite(value):
        raise DataError(f"{path}: line {line}: {name}: {text!r} is not a finite number")
    return value


def read_oos_csv(path: str | os.PathLike[str]) -> list[OosRow]:
    """The rows of an `oos.csv` written by `write_oos_csv`; DataError naming the file, line and column otherwise."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    names = [f.name for f in fields(OosRow)]
    kinds = [_KINDS.get(n, float) for n in names]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header != names:
            raise DataError(f"{path}: line 1: expected the oos.csv header {csv_header()!r}, got {header}")
        rows = []
        for cells in reader:
            line = reader.line_num
            if not cells:
                continue
            if len(cells) != len(names):
                raise DataError(f"{path}: line {line}: {len(cells)} field(s), but the header has {len(names)}")
            rows.append(OosRow(*(_cell(path, line, n, k, c) for n, k, c in zip(names, kinds, cells))))
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None
    return rows
