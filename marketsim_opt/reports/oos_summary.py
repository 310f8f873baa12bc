"""One table over several `marketsim-opt oos` runs: mean next-day profit per series, strategy and method.

Each run is an output folder of `marketsim-opt oos --out`; its `oos.csv` is read back (`oos.read_oos_csv`) and
summarised per strategy, one row per (series, strategy) in the order the folders are given:

- the mean next-day profit in bp of the previous close of `zero`, `exact`, `exact:centre`, `robust:worst`,
  `robust:mean` and `direct@default` (`-` where the run lacks that method);
- `exact` minus `direct@default` with its 95 % stationary-bootstrap interval, **bold** when the interval excludes
  0: `oos_stats.differences` with the seed and resamples `oos` uses, so it equals the run's `oos-stats.md`.

`exact` and `direct@default` are required for every strategy of every run (the difference column needs both):
`read_run` refuses a folder without them, naming the folder and the missing labels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import DataError
from ..oos import OosRow, read_oos_csv
from ..tables import is_header_row, markdown_table
from . import oos_stats

__all__ = [
    "COLUMNS",
    "METHODS",
    "REQUIRED",
    "REPS",
    "SEED",
    "Run",
    "SummaryRow",
    "read_run",
    "summarise",
    "difference_cell",
    "to_markdown",
    "is_summary_head",
]

#: (label, column header) of the mean next-day profit columns, in order (labels as `oos_stats.label_of` gives them).
METHODS: tuple[tuple[str, str], ...] = (
    (oos_stats.ZERO, "zero"),
    (oos_stats.EXACT, "exact"),
    ("exact:centre", "exact:centre"),
    ("robust:worst", "robust:worst"),
    ("robust:mean", "robust:mean"),
    (oos_stats.DIRECT_DEFAULT, "DIRECT@default"),
)
#: The labels every strategy of a run must have: the two sides of the difference column.
REQUIRED = (oos_stats.EXACT, oos_stats.DIRECT_DEFAULT)
#: The bootstrap's resamples and seed: `oos`'s (the defaults of `oos_stats.compute_stats` and `write_stats`).
REPS = 10000
SEED = 0
#: The table's columns: (header, alignment).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("series", "left"),
    ("strategy", "left"),
    ("sims", "right"),
    *((header, "right") for _, header in METHODS),
    ("exact minus DIRECT@default", "left"),
)


@dataclass(frozen=True)
class Run:
    """The rows of one `oos` output folder (`folder` as given), one series."""

    folder: str
    rows: list[OosRow]


@dataclass(frozen=True)
class SummaryRow:
    """One (series, strategy) of a run: mean next-day profits (bp) per label, and exact minus DIRECT@default.

    `means[label]` is None where the run has no such label.
    """

    series: str
    strategy: str
    n_sims: int
    means: dict[str, float | None]
    difference: oos_stats.Difference


def read_run(folder: str | os.PathLike[str]) -> Run:
    """The rows of `folder`/oos.csv, checked: DataError naming the folder or file and the problem.

    Refused: a missing folder or a file, no `oos.csv`, an unreadable or malformed one (`read_oos_csv`'s message),
    no rows, several series, rows the statistics refuse (`oos_stats.paired_series`), and a strategy without
    `exact` or without `direct` at its default budget.
    """
    shown = os.fspath(folder)
    path = Path(folder)
    if not path.exists():
        raise DataError(f"{shown}: no such folder (expected an output folder of `marketsim-opt oos --out`)")
    if not path.is_dir():
        raise DataError(f"{shown}: a file, not a folder (expected an output folder of `marketsim-opt oos --out`)")
    csv_path = path / "oos.csv"
    if not csv_path.is_file():
        raise DataError(f"{shown}: no oos.csv in this folder (is it an output folder of `marketsim-opt oos --out`?)")
    rows = read_oos_csv(csv_path)
    if not rows:
        raise DataError(f"{csv_path}: no rows")
    try:
        series = oos_stats.paired_series(rows)
    except ValueError as exc:
        raise DataError(f"{csv_path}: {exc}") from None
    for strategy in dict.fromkeys(k[0] for k in series):
        labels = [k[1] for k in series if k[0] == strategy]
        missing = [label for label in REQUIRED if label not in labels]
        if missing:
            named = " and ".join(_describe(label) for label in missing)
            raise DataError(
                f"{csv_path}: strategy {strategy} has no {named} (it has {', '.join(labels)}); the summary's "
                "difference column needs exact and direct at its default budget: run oos with "
                "--methods including exact,direct and --budgets including default"
            )
    return Run(shown, rows)


def _describe(label: str) -> str:
    if label == oos_stats.DIRECT_DEFAULT:
        return "`direct` at its default budget (direct@default)"
    return f"`{label}`"


def summarise(runs: Sequence[Run], *, reps: int = REPS, seed: int = SEED) -> list[SummaryRow]:
    """One `SummaryRow` per run and strategy, in the runs' order and each run's strategy order.

    Means are `oos_stats.paired_series`' (bp); the difference is `oos_stats.differences` of `exact` against
    `direct@default` with `reps` resamples and `seed`, which with `oos`'s defaults is the interval of its
    `oos-stats.md` (an interval depends only on its own label's series, the benchmark's and the seed).
    """
    out = []
    for run in runs:
        series = oos_stats.paired_series(run.rows)
        name = str(run.rows[0].series)
        for strategy in dict.fromkeys(k[0] for k in series):
            pair = {(strategy, label): series[(strategy, label)] for label in REQUIRED}
            (difference,) = oos_stats.differences(pair, benchmark=oos_stats.DIRECT_DEFAULT, reps=reps, seed=seed)
            means = {
                label: (float(np.mean(series[(strategy, label)])) if (strategy, label) in series else None)
                for label, _ in METHODS
            }
            n_sims = len(series[(strategy, oos_stats.EXACT)])
            out.append(SummaryRow(name, strategy, n_sims, means, difference))
    return out


def _bp(x: float) -> str:
    """A bp figure as the table shows it: signed, one decimal."""
    return f"{x:+.1f}"


def difference_cell(d: oos_stats.Difference) -> str:
    """`mean [low, high]` in bp, one decimal, **bold** when the interval excludes 0."""
    text = f"{_bp(d.mean_bp)} [{_bp(d.low_bp)}, {_bp(d.high_bp)}]"
    return text if d.contains_zero else f"**{text}**"


def to_markdown(rows: Sequence[SummaryRow], *, reps: int = REPS, seed: int = SEED) -> str:
    """The table (tabulate's `pipe` format, header row first), a blank line and a line saying what it shows."""
    cells = [
        [r.series, r.strategy, str(r.n_sims)]
        + ["-" if r.means[label] is None else _bp(r.means[label]) for label, _ in METHODS]
        + [difference_cell(r.difference)]
        for r in rows
    ]
    table = markdown_table(cells, COLUMNS)
    legend = (
        "Mean next-day profit in bp of the previous close over the run's simulations (`-`: the run has no such "
        "method); exact minus DIRECT@default: mean [95 % interval] from arch's stationary block bootstrap of the "
        f"daily differences ({reps} resamples, seed {seed}, as in each run's `oos-stats.md`); **bold**: the "
        "interval excludes 0."
    )
    return f"{table}\n\n{legend}\n"


def is_summary_head(line: str) -> bool:
    """Whether `line` is the header row of a `to_markdown` table, whatever its column widths: how `oos-summary
    --out` recognises a file it wrote before (its first line)."""
    return is_header_row(line, COLUMNS)
