"""Method x budget comparisons on the named workloads: wall time, evaluations, host syncs, regret.

One `Trial` is one optimization (one strategy of one workload, with one method
and budget); `run_trials` runs a list of them with a progress bar and scores
each against the exact optimum, computed once per workload and strategy.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from .files import atomic_write
from .optimizers import registry
from .optimizers.api import check_budget, check_method
from .optimizers.registry import takes_budget
from .quality import exact_optimum, regret_bp
from .tables import is_header_row, markdown_table
from .workloads import STRATEGIES, Workload, run

__all__ = [
    "Trial",
    "Row",
    "DEFAULT_BUDGETS",
    "BACKTEST_METHODS",
    "parse_budget",
    "trials_for",
    "run_trials",
    "to_markdown",
    "is_markdown_head",
    "write_csv",
    "csv_header",
]

#: Budgets every method runs at by default (`exact` and `zero` take none): 100 (MARKETSIM_FAST_OPTIMIZE) and the
#: historic default.
DEFAULT_BUDGETS = ("100", "default")
#: The built-in methods run on a backtest by default (`registry.names(backtest=True)` at import; each method's
#: `backtest` flag).  NGOpt is left out there because it costs about 1.7 s per simulation and policy at budget
#: 100 (~4 min per strategy for 70 simulations), and optuna's TPE because it costs about 0.3 s per simulation
#: and policy at budget 100 (~40 s per strategy) and several seconds at the default budgets (minutes per
#: strategy).  Name them in `methods` to run them anyway.
BACKTEST_METHODS = registry.names(backtest=True)


@dataclass(frozen=True)
class Trial:
    """One optimization to run: `budget=None` is the strategy's default (500 entry/exit, 240 always-on)."""

    workload: str
    strategy: str
    method: str
    budget: int | None


@dataclass(frozen=True)
class Row:
    """What one trial measured.

    `wall_time` is seconds for the whole call (all `n_sims` simulations); `nfev`
    and `syncs` are totals over all simulations and policies; regret is in basis
    points of the previous close, mean and max over simulations.
    """

    workload: str
    strategy: str
    method: str
    budget: str
    wall_time: float
    nfev: int
    syncs: int
    regret_bp_mean: float
    regret_bp_max: float
    n_sims: int = 1

    @property
    def time_per_optimization(self) -> float:
        """Seconds per simulation: the cost of one optimization as the simulator sees it."""
        return self.wall_time / self.n_sims


def parse_budget(text: str) -> int | None:
    """`"default"` -> None (the default), else a positive integer up to `MAX_BUDGET`; ValueError names `budget`."""
    if text.strip().lower() == "default":
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"budget: expected a positive integer or 'default', got {text!r}") from None
    return check_budget(value, "entry_exit")


def trials_for(
    workload: str,
    methods: Sequence[str] | None = None,
    budgets: Sequence[int | None] = (100, None),
    strategies: Sequence[str] = STRATEGIES,
) -> list[Trial]:
    """Every strategy x method x budget of one workload (`methods`: every registered one by default); a
    method without a budget (`exact`, `zero`, ...) once."""
    methods = registry.names() if methods is None else methods
    for method in methods:
        check_method(method)
    trials = []
    for strategy in strategies:
        for method in methods:
            for budget in dict.fromkeys(budgets) if takes_budget(method) else (None,):
                trials.append(Trial(workload, strategy, method, budget))
    return trials


def run_trials(
    trials: Iterable[Trial],
    workloads: dict[str, Workload],
    *,
    seed: int = 0,
    progress: bool = True,
    on_row: Callable[[Row], None] | None = None,
    warm_up: bool = True,
) -> list[Row]:
    """Run each trial once and score its regret against the exact optimum (cached per workload and strategy).

    `warm_up` first runs each method once, untimed, at a budget of 4 (imports and first-call caches).
    """
    from tqdm.auto import tqdm

    trials = list(trials)
    if warm_up:  # first use imports the method's library (scipy, nevergrad, optuna): keep that out of the times
        for method in dict.fromkeys(t.method for t in trials):
            first = next(t for t in trials if t.method == method)
            w = workloads[first.workload]
            one = replace(w, problem=w.problem[0])  # one simulation is enough
            run(one, first.strategy, method=method, budget=4 if takes_budget(method) else None)
    optima: dict[tuple[str, str], np.ndarray] = {}
    rows = []
    bar = tqdm(trials, unit="run", disable=not progress, dynamic_ncols=True)
    for trial in bar:
        budget_text = ("default" if trial.budget is None else str(trial.budget)) if takes_budget(trial.method) else "-"
        bar.set_description(f"{trial.workload} {trial.strategy} {trial.method} {budget_text}")
        workload = workloads[trial.workload]
        result = run(workload, trial.strategy, method=trial.method, budget=trial.budget, seed=seed)
        key = (trial.workload, trial.strategy)
        if key not in optima:
            optima[key] = exact_optimum(result)
        regret = regret_bp(result, optimum=optima[key])
        if trial.budget is None and takes_budget(trial.method):
            budget_text = f"{result.budget} (default)"
        row = Row(
            workload=trial.workload,
            strategy=trial.strategy,
            method=trial.method,
            budget=budget_text,
            wall_time=result.wall_time,
            nfev=int(np.sum(result.nfev)),
            syncs=result.syncs,
            regret_bp_mean=float(regret.mean()),
            regret_bp_max=float(regret.max()),
            n_sims=workload.problem.n_sims,
        )
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


#: The columns of `to_markdown`'s table: (header, alignment); the numbers are right-aligned.
_COLUMNS = (
    ("workload", "left"),
    ("strategy", "left"),
    ("method", "left"),
    ("budget", "left"),
    ("wall s", "right"),
    ("evaluations", "right"),
    ("host syncs", "right"),
    ("regret bp (mean)", "right"),
    ("regret bp (max)", "right"),
)


def to_markdown(rows: Sequence[Row]) -> str:
    """A GitHub-flavoured markdown table of `rows`, in their order (tabulate's `pipe` format)."""
    cells = [
        [r.workload, r.strategy, r.method, r.budget, f"{r.wall_time:.3f}", str(r.nfev), str(r.syncs)]
        + [_bp(r.regret_bp_mean), _bp(r.regret_bp_max)]
        for r in rows
    ]
    return markdown_table(cells, _COLUMNS) + "\n"


def is_markdown_head(line: str) -> bool:
    """Whether `line` is the header row of a `to_markdown` table, whatever its column widths: how `compare --out`
    recognises a file it wrote before (its first line)."""
    return is_header_row(line, _COLUMNS)


def _bp(value: float) -> str:
    # Exact's regret is float64 round-off: show it as 0 rather than as a tiny negative number.
    return "0" if abs(value) < 1e-6 else f"{value:.3g}"


def csv_header() -> str:
    """The first line `write_csv` writes (the `Row` field names)."""
    return ",".join(f.name for f in fields(Row))


def write_csv(rows: Sequence[Row], path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Write `rows` as CSV, atomically (a partial file never appears at `path`).

    An existing file is only replaced when it starts with the same header (an earlier output), or with `force`.
    """
    names = [f.name for f in fields(Row)]
    atomic_write(path, lambda fh: _write_rows(fh, names, rows), first_line=csv_header(), force=force)


def _write_rows(fh, names: list[str], rows: Sequence[Row]) -> None:
    writer = csv.DictWriter(fh, fieldnames=names)
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
