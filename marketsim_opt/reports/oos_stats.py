"""The statistics of out-of-sample profit: which methods earn more on the next, unseen day, beyond noise.

Input: the rows of `oos.csv` (`marketsim_opt.oos.OosRow`, or any object with its fields), one series.
Daily profits are autocorrelated and a dozen methods are compared at once, so every figure here comes
from `arch.bootstrap` (the `oos` extra), resampling whole blocks of consecutive test days:

- `paired_series`: next-day profit in bp per label (`method@budget`), in test-date order;
- `differences`: mean (label - benchmark) with a 95 % stationary-bootstrap interval;
- `spa`: Hansen's test of superior predictive ability, "does any method beat the benchmark?";
- `mcs`: the model confidence set, the labels that cannot be told apart from the best;
- `plot`, `to_markdown`, `write_stats`: the picture and the table.

Losses are `-profit` in bp. Seeds are derived from `(seed, strategy, label)`, so one label's interval
never depends on which other labels are in the data.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..files import OutputError, atomic_write
from ..tables import markdown_table
from .extras import MissingExtraError, require_extra

__all__ = [
    "BP",
    "DIRECT_DEFAULT",
    "ZERO",
    "EXACT",
    "MD_TITLE",
    "CONSTANT_BP",
    "Difference",
    "SpaResult",
    "McsResult",
    "OosStats",
    "label_of",
    "paired_series",
    "differences",
    "spa",
    "mcs",
    "compute_stats",
    "plot",
    "to_markdown",
    "write_stats",
]

#: Basis points per unit of fractional profit.
BP = 1e4
#: The historic default: DIRECT at the strategy's default budget (500 entry/exit, 240 always-on).
DIRECT_DEFAULT = "direct@default"
#: Zero offsets (h = l = 0): the baseline every method must beat out of sample.
ZERO = "zero"
#: The third benchmark: the exact in-sample optimum (does any method earn more than the true optimum's offsets?).
EXACT = "exact"
#: The first line of `oos-stats.md`.
MD_TITLE = "# Out-of-sample profit: bootstrap intervals, SPA and MCS"
#: Spread (bp) under which a daily difference counts as constant: float rounding of equal profits, not signal.
CONSTANT_BP = 1e-9
#: Two-sided 95 % normal quantile (used only for the number-of-simulations estimate).
Z95 = 1.959963984540054

Key = tuple[str, str]


def _arch_bootstrap() -> Any:
    """`arch.bootstrap`, or MissingExtraError naming the `oos` extra."""
    require_extra(("arch",), "the out-of-sample statistics", extra="oos")
    try:
        import arch.bootstrap
    except ImportError as exc:  # present but broken (e.g. a numpy it was not built for)
        raise MissingExtraError(
            f"the out-of-sample statistics need arch (the oos extra), which failed to import: {exc}"
        ) from exc
    return arch.bootstrap


def _rng(seed: int, *parts: str) -> np.random.Generator:
    """A generator for `seed` and the names in `parts` (stable across runs and Python versions)."""
    return np.random.default_rng([seed, *(zlib.crc32(p.encode()) for p in parts)])


def label_of(row: Any) -> str:
    """`method@budget` of an oos row: `method` alone for budget `-`, `method@default` for `"<n> (default)"`."""
    budget = str(row.budget).strip()
    if budget == "-":
        return str(row.method)
    if budget.endswith("(default)"):
        return f"{row.method}@default"
    return f"{row.method}@{budget}"


def paired_series(rows: Iterable[Any]) -> dict[Key, np.ndarray]:
    """Next-day profit in bp, `[n_sims]` float64 per `(strategy, label)`, ordered by test date ascending.

    Test-date order is time order (the bootstrap resamples blocks of consecutive days); simulation `k`
    tests on the `k`-th last day, so this is `sim` descending. ValueError when the rows hold several
    series, a `(strategy, label, sim)` twice, a non-finite profit, labels of one strategy that do not
    cover the same simulations (naming the missing ones), or one simulation with two test dates.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("oos rows: none given")
    names = sorted({str(r.series) for r in rows})
    if len(names) > 1:
        raise ValueError(f"oos rows: {len(names)} series ({', '.join(names)}); pass the rows of one series")
    by_key: dict[Key, dict[int, float]] = {}
    test_date: dict[tuple[str, int], str] = {}
    for r in rows:
        key = (str(r.strategy), label_of(r))
        sim = int(r.sim)
        profit = float(r.next_day_profit)
        if not math.isfinite(profit):
            raise ValueError(f"oos rows: next_day_profit of {key[1]} ({key[0]}) sim {sim} is {profit}")
        sims = by_key.setdefault(key, {})
        if sim in sims:
            raise ValueError(f"oos rows: {key[1]} ({key[0]}) has sim {sim} twice")
        sims[sim] = profit
        seen = test_date.setdefault((key[0], sim), str(r.test_date))
        if seen != str(r.test_date):
            raise ValueError(f"oos rows: sim {sim} of strategy {key[0]} has two test dates ({seen} and {r.test_date})")
    out: dict[Key, np.ndarray] = {}
    for strategy in dict.fromkeys(k[0] for k in by_key):
        keys = [k for k in by_key if k[0] == strategy]
        every = set().union(*(by_key[k] for k in keys))
        missing = {k[1]: sorted(every - set(by_key[k])) for k in keys if set(by_key[k]) != every}
        if missing:
            listed = "; ".join(f"{lab} lacks sims {', '.join(map(str, s))}" for lab, s in missing.items())
            raise ValueError(f"oos rows, strategy {strategy}: labels do not cover the same simulations: {listed}")
        order = sorted(every, key=lambda s: (test_date[(strategy, s)], -s))
        for k in keys:
            out[k] = np.array([by_key[k][s] for s in order], dtype=np.float64) * BP
    return out


def _strategies(series: dict[Key, np.ndarray]) -> list[str]:
    return list(dict.fromkeys(k[0] for k in series))


def _labels(series: dict[Key, np.ndarray], strategy: str) -> list[str]:
    return [k[1] for k in series if k[0] == strategy]


def _benchmark(series: dict[Key, np.ndarray], strategy: str, benchmark: str) -> np.ndarray:
    if (strategy, benchmark) not in series:
        raise ValueError(
            f"strategy {strategy}: no label {benchmark!r} to compare against "
            f"(labels: {', '.join(_labels(series, strategy))})"
        )
    return series[(strategy, benchmark)]


def _constant(x: np.ndarray) -> bool:
    """Every value of `x` (bp) within `CONSTANT_BP` of the others."""
    return bool(np.ptp(x) <= CONSTANT_BP)


#: Fewer simulations than this and the block length is not estimated (arch's `optimal_block_length` fails below 8
#: observations on arch 8.0.0); such a short record has no dependence worth keeping, so blocks of 1 (iid).
MIN_BLOCK_ESTIMATE = 8


def _block_length(x: np.ndarray) -> int:
    """Politis-White optimal stationary block length of `x` (`arch.bootstrap.optimal_block_length`), rounded up.

    1 for a constant series (no dependence to keep), fewer than MIN_BLOCK_ESTIMATE values, or a non-finite
    estimate; at most `len(x)`.
    """
    if len(x) < MIN_BLOCK_ESTIMATE or _constant(x):
        return 1
    boot = _arch_bootstrap()
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = float(boot.optimal_block_length(x)["stationary"].iloc[0])
    if not math.isfinite(estimate):
        return 1
    return int(min(max(math.ceil(estimate), 1), len(x)))


@dataclass(frozen=True)
class Difference:
    """Mean next-day profit of `label` minus `benchmark` over `n` simulations, bp, with a 95 % interval.

    `low_bp`, `high_bp`: percentile interval of `reps` stationary-bootstrap means (expected block length
    `block` days); `se_bp`: their standard deviation.
    """

    strategy: str
    label: str
    benchmark: str
    n: int
    mean_bp: float
    low_bp: float
    high_bp: float
    se_bp: float
    block: int
    reps: int

    @property
    def contains_zero(self) -> bool:
        """The interval contains 0: the data cannot tell `label` from `benchmark` at 5 %."""
        return self.low_bp <= 0.0 <= self.high_bp

    @property
    def sims_needed(self) -> int | None:
        """Estimated simulations for the observed mean difference to be significant at 5 % (two-sided).

        An estimate: the same mean and the same per-day dependence, the standard error shrinking as
        `1/sqrt(n)`: `ceil(n * (1.96 * se / |mean|)^2)`. None when the mean difference is 0 (no number
        would do) or the bootstrap spread is 0.
        """
        if self.mean_bp == 0.0 or self.se_bp == 0.0:
            return None
        return math.ceil(self.n * (Z95 * self.se_bp / abs(self.mean_bp)) ** 2)


def differences(
    series: dict[Key, np.ndarray],
    *,
    benchmark: str,
    block: int | None = None,
    reps: int = 10000,
    seed: int = 0,
) -> list[Difference]:
    """Every label but `benchmark` against it, per strategy (`series` from `paired_series`).

    The bootstrap is `arch.bootstrap.StationaryBootstrap` on the daily differences, expected block
    length `block` or, when None, the Politis-White optimal block length of that label's differences
    (rounded up; 1 when they are constant). ValueError when a strategy has no `benchmark` label.
    """
    if reps < 2:
        raise ValueError(f"reps: expected at least 2, got {reps}")
    if block is not None and block < 1:
        raise ValueError(f"block: expected a positive length in days, got {block}")
    boot = _arch_bootstrap()
    out = []
    for strategy in _strategies(series):
        base = _benchmark(series, strategy, benchmark)
        for label in _labels(series, strategy):
            if label == benchmark:
                continue
            d = series[(strategy, label)] - base
            b = block if block is not None else _block_length(d)
            if _constant(d):  # every draw has the same mean
                means = np.full(reps, d.mean())
            else:
                bs = boot.StationaryBootstrap(b, d, seed=_rng(seed, strategy, label, benchmark))
                means = bs.apply(np.mean, reps)[:, 0]
            low, high = np.percentile(means, [2.5, 97.5])
            out.append(
                Difference(
                    strategy=strategy,
                    label=label,
                    benchmark=benchmark,
                    n=len(d),
                    mean_bp=float(d.mean()),
                    low_bp=float(low),
                    high_bp=float(high),
                    se_bp=float(means.std(ddof=1)),
                    block=b,
                    reps=reps,
                )
            )
    return out


@dataclass(frozen=True)
class SpaResult:
    """Hansen's SPA on losses (`-profit`, bp) of `models` against `benchmark` for one strategy.

    Null hypothesis: no model has a lower expected loss than the benchmark. `p_lower`, `p_consistent`,
    `p_upper`: arch's three p-values (a small consistent p-value: some model beats the benchmark).
    `equal`: labels whose loss equals the benchmark's every day (or differs by the same amount each day,
    never lower): they cannot beat it and are left out of the bootstrap, whose studentization divides by
    their zero spread. `better`: labels lower by the same amount every day (they beat it: all p-values 0).
    """

    strategy: str
    benchmark: str
    models: tuple[str, ...]
    equal: tuple[str, ...]
    better: tuple[str, ...]
    n: int
    block: int
    reps: int
    p_lower: float
    p_consistent: float
    p_upper: float


def spa(
    series: dict[Key, np.ndarray],
    *,
    benchmark: str = DIRECT_DEFAULT,
    block: int | None = None,
    reps: int = 10000,
    seed: int = 0,
) -> list[SpaResult]:
    """`arch.bootstrap.SPA` per strategy, every other label as a model (stationary bootstrap, studentized).

    Block length `block` or, when None, the mean of the labels' optimal block lengths of their loss
    differences against the benchmark (rounded up). With no model left to test, the p-values are 1.
    """
    if reps < 2:
        raise ValueError(f"reps: expected at least 2, got {reps}")
    boot = _arch_bootstrap()
    out = []
    for strategy in _strategies(series):
        base = -_benchmark(series, strategy, benchmark)
        models, equal, better, blocks = [], [], [], []
        for label in _labels(series, strategy):
            if label == benchmark:
                continue
            d = -series[(strategy, label)] - base
            if _constant(d):
                (better if d.mean() < -CONSTANT_BP else equal).append(label)
            else:
                models.append(label)
                blocks.append(_block_length(d))
        b = block if block is not None else (math.ceil(float(np.mean(blocks))) if blocks else 1)
        if better:
            p = (0.0, 0.0, 0.0)
        elif not models:
            p = (1.0, 1.0, 1.0)
        else:
            losses = np.column_stack([-series[(strategy, m)] for m in models])
            test = boot.SPA(base, losses, block_size=b, reps=reps, seed=_rng(seed, strategy, "spa", benchmark))
            test.compute()
            pv = test.pvalues
            p = (float(pv["lower"]), float(pv["consistent"]), float(pv["upper"]))
        out.append(SpaResult(strategy, benchmark, tuple(models), tuple(equal), tuple(better), len(base), b, reps, *p))
    return out


@dataclass(frozen=True)
class McsResult:
    """The model confidence set at level `size` on losses (bp) for one strategy.

    `included`: labels that cannot be told apart from the best (in the data's label order); `pvalues`:
    each label's MCS p-value (included when above `size`). Labels whose profits agree every day (to
    `CONSTANT_BP`) are one model to the test (its p-value for all of them; arch's statistic divides by
    their zero spread).
    """

    strategy: str
    size: float
    n: int
    block: int
    reps: int
    included: tuple[str, ...]
    pvalues: dict[str, float] = field(hash=False)


def mcs(
    series: dict[Key, np.ndarray],
    *,
    size: float = 0.10,
    block: int | None = None,
    reps: int = 10000,
    seed: int = 0,
) -> list[McsResult]:
    """`arch.bootstrap.MCS` (method "R", stationary bootstrap) on the losses of every label, per strategy.

    Block length `block` or, when None, the mean over labels of the optimal block length of each label's
    loss minus the labels' mean loss that day (rounded up).
    """
    if not 0.0 < size < 1.0:
        raise ValueError(f"size: expected a level in (0, 1), got {size}")
    if reps < 2:
        raise ValueError(f"reps: expected at least 2, got {reps}")
    boot = _arch_bootstrap()
    import pandas as pd  # a dependency of arch

    out = []
    for strategy in _strategies(series):
        labels = _labels(series, strategy)
        groups: dict[str, list[str]] = {}
        for label in labels:
            x = series[(strategy, label)]
            head = next((h for h in groups if np.max(np.abs(series[(strategy, h)] - x)) <= CONSTANT_BP), label)
            groups.setdefault(head, []).append(label)
        heads = list(groups)
        losses = pd.DataFrame({h: -series[(strategy, h)] for h in heads})
        n = len(losses)
        spread = losses.to_numpy() - losses.to_numpy().mean(axis=1, keepdims=True)
        if block is not None:
            b = block
        else:
            b = math.ceil(float(np.mean([_block_length(spread[:, j]) for j in range(spread.shape[1])])))
        if len(heads) == 1:
            p_head = {heads[0]: 1.0}
        else:
            test = boot.MCS(losses, size, reps=reps, block_size=b, method="R", seed=_rng(seed, strategy, "mcs"))
            test.compute()
            p_head = {str(k): float(v) for k, v in test.pvalues["Pvalue"].items()}
        pvalues = {label: p_head[g[0]] for g in groups.values() for label in g}
        pvalues = {label: pvalues[label] for label in labels}
        included = tuple(label for label in labels if pvalues[label] > size)
        out.append(McsResult(strategy, size, n, b, reps, included, pvalues))
    return out


@dataclass(frozen=True)
class OosStats:
    """Everything `to_markdown` and `plot` show, for one series.

    `means[(strategy, label)] = (mean in-sample regret bp, mean next-day profit bp)`; `dates[strategy] =
    (first, last test date)`; a comparison against a benchmark the data lacks is an empty list, with a
    line in `notes`.
    """

    series: str
    n_sims: dict[str, int]
    dates: dict[str, tuple[str, str]]
    means: dict[Key, tuple[float, float]]
    against_direct: list[Difference]
    against_zero: list[Difference]
    against_exact: list[Difference]
    spa: list[SpaResult]
    mcs: list[McsResult]
    reps: int
    seed: int
    notes: list[str]


def compute_stats(rows: Sequence[Any], *, reps: int = 10000, seed: int = 0, size: float = 0.10) -> OosStats:
    """Intervals against `direct@default`, `zero` and `exact`, SPA against `direct@default`, the MCS at `size`.

    A benchmark missing for a strategy (e.g. `--methods exact,zero`) leaves its comparisons out, with a
    note; everything else is computed.
    """
    rows = list(rows)
    series = paired_series(rows)
    strategies = _strategies(series)
    n_sims = {s: len(next(v for k, v in series.items() if k[0] == s)) for s in strategies}
    dates = {}
    for s in strategies:
        mine = sorted(str(r.test_date) for r in rows if str(r.strategy) == s)
        dates[s] = (mine[0], mine[-1])
    means = {}
    for key, profit in series.items():
        regrets = [float(r.regret_bp) for r in rows if (str(r.strategy), label_of(r)) == key]
        means[key] = (float(np.mean(regrets)), float(profit.mean()))
    notes = []
    compared = {}
    for bench in (DIRECT_DEFAULT, ZERO, EXACT):
        having = {k: v for k, v in series.items() if (k[0], bench) in series}
        for s in strategies:
            if (s, bench) not in series:
                notes.append(f"{s}: no `{bench}` rows, so nothing is compared against it.")
        compared[bench] = having
    return OosStats(
        series=str(rows[0].series),
        n_sims=n_sims,
        dates=dates,
        means=means,
        against_direct=differences(compared[DIRECT_DEFAULT], benchmark=DIRECT_DEFAULT, reps=reps, seed=seed),
        against_zero=differences(compared[ZERO], benchmark=ZERO, reps=reps, seed=seed),
        against_exact=differences(compared[EXACT], benchmark=EXACT, reps=reps, seed=seed),
        spa=spa(compared[DIRECT_DEFAULT], benchmark=DIRECT_DEFAULT, reps=reps, seed=seed),
        mcs=mcs(series, size=size, reps=reps, seed=seed),
        reps=reps,
        seed=seed,
        notes=notes,
    )


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:+.{digits}f}"


def _p(x: float) -> str:
    return f"{x:.3f}"


#: The columns of `to_markdown`'s tables: (header, alignment); the numbers are right-aligned.
_INTERVAL_COLUMNS = (
    ("label", "left"),
    ("in-sample regret bp (mean)", "right"),
    ("next-day profit bp (mean)", "right"),
    ("minus direct@default bp [95 %]", "left"),
    ("block", "right"),
    ("sims for 5 %", "right"),
    ("minus zero bp [95 %]", "left"),
    ("block", "right"),
    ("minus exact bp [95 %]", "left"),
    ("block", "right"),
)
_MCS_COLUMNS = (("label", "left"), ("MCS p-value", "right"), ("in the set", "left"))


def to_markdown(stats: OosStats) -> str:
    """`oos-stats.md`: per strategy, the intervals against the three benchmarks, SPA, MCS, sims and block lengths."""
    lines = [
        MD_TITLE,
        "",
        f"Series `{stats.series}`. Next-day profit in bp of the previous close, per simulation (one test day "
        "each). Intervals: 95 %, percentile, from arch's stationary bootstrap of the daily differences "
        f"({stats.reps} resamples, seed {stats.seed}); the block column is its expected block length in days "
        "(Politis-White optimal length of that label's differences, rounded up). **bold**: the interval "
        "excludes 0.",
        "",
        "Sims for 5 %: where the interval against `direct@default` contains 0, an *estimate* of the number of "
        "simulations that would make the observed mean difference significant at 5 %, assuming the same mean "
        "and the standard error shrinking as 1/sqrt(n); `-` where the mean difference is exactly 0.",
        "",
    ]
    lines += [f"Note: {n}" for n in stats.notes]
    if stats.notes:
        lines.append("")
    for strategy, n in stats.n_sims.items():
        first, last = stats.dates[strategy]
        lines += [f"## {strategy}", "", f"{n} simulations, test days {first} to {last}.", ""]
        direct = {d.label: d for d in stats.against_direct if d.strategy == strategy}
        zero = {d.label: d for d in stats.against_zero if d.strategy == strategy}
        exact = {d.label: d for d in stats.against_exact if d.strategy == strategy}
        rows = []
        for (s, label), (regret, profit) in stats.means.items():
            if s != strategy:
                continue
            cells = [f"`{label}`", f"{regret:.2f}", _fmt(profit)]
            for table, bench in ((direct, DIRECT_DEFAULT), (zero, ZERO), (exact, EXACT)):
                d = table.get(label)
                if d is None:
                    present = (strategy, bench) in stats.means
                    cells += ["0 (benchmark)" if label == bench else ("n/a" if not present else ""), ""]
                else:
                    text = f"{_fmt(d.mean_bp)} [{_fmt(d.low_bp)}, {_fmt(d.high_bp)}]"
                    cells += [text if d.contains_zero else f"**{text}**", str(d.block)]
                if bench == DIRECT_DEFAULT:
                    needed = d.sims_needed if d is not None else None
                    cells.append(("-" if needed is None else f"~{needed}") if d is not None and d.contains_zero else "")
            rows.append(cells)
        lines += [markdown_table(rows, _INTERVAL_COLUMNS), ""]
        for r in (r for r in stats.spa if r.strategy == strategy):
            lines.append(
                f"SPA (Hansen), does any label beat `{r.benchmark}` on mean next-day loss? p-values: lower "
                f"{_p(r.p_lower)}, consistent {_p(r.p_consistent)}, upper {_p(r.p_upper)} ({len(r.models)} "
                f"labels, block {r.block}, {r.reps} resamples)."
            )
            if r.equal:
                equal = ", ".join(f"`{x}`" for x in r.equal)
                lines.append(
                    f"Left out of SPA (loss equal to `{r.benchmark}`'s or higher by the same amount each day): {equal}."
                )
            if r.better:
                better = ", ".join(f"`{x}`" for x in r.better)
                lines.append(f"Better than `{r.benchmark}` by the same amount every day (p-values 0): {better}.")
            lines.append("")
        for r in (r for r in stats.mcs if r.strategy == strategy):
            lines += [
                f"Model confidence set at {r.size:.0%} (arch MCS, method R, block {r.block}, {r.reps} resamples): "
                f"{', '.join(f'`{x}`' for x in r.included)} cannot be told apart from the best.",
                "",
                markdown_table(
                    [[f"`{k}`", _p(v), "yes" if k in r.included else "no"] for k, v in r.pvalues.items()], _MCS_COLUMNS
                ),
                "",
            ]
    return "\n".join(lines)


def plot(rows: Sequence[Any], paths: Sequence[str | Path], *, stats: OosStats | None = None, **kwargs: Any) -> None:
    """In-sample regret (bp, symlog x) against mean next-day profit (bp, y), one panel per strategy.

    Error bars: the 95 % interval of (label - zero) placed around zero's mean, so a bar clear of the
    dashed zero-offsets line is a difference beyond noise. `stats` from `compute_stats(rows, **kwargs)`
    when not given. Each of `paths` (PNG, SVG, ...) is written atomically.
    """
    require_extra(("matplotlib",), "the out-of-sample plot")
    if stats is None:
        stats = compute_stats(rows, **kwargs)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .tradeoff import legend_entries, method_styles

    strategies = list(stats.n_sims)
    styles = method_styles([k[1].split("@", 1)[0] for k in stats.means])
    fig, axes = plt.subplots(1, len(strategies), figsize=(6.4 * len(strategies), 4.8), squeeze=False)
    for ax, strategy in zip(axes.flat, strategies):
        zero = {d.label: d for d in stats.against_zero if d.strategy == strategy}
        base = stats.means.get((strategy, ZERO))
        if base is not None:
            ax.axhline(base[1], color="grey", linestyle="--", linewidth=1, zorder=1, label="zero offsets")
        for (s, label), (regret, profit) in stats.means.items():
            if s != strategy:
                continue
            method = label.split("@", 1)[0]
            colour, marker = styles[method]
            d = zero.get(label)
            yerr = None
            if d is not None and base is not None:
                yerr = [[max(profit - (base[1] + d.low_bp), 0.0)], [max(base[1] + d.high_bp - profit, 0.0)]]
            ax.errorbar(
                regret,
                profit,
                yerr=yerr,
                color=colour,
                marker=marker,
                markersize=9 if method == "exact" else 6,
                capsize=3,
                linestyle="none",
                zorder=3,
                label=method,
            )
            ax.annotate(
                label.split("@", 1)[1] if "@" in label else label,
                (regret, profit),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=7,
            )
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("mean in-sample regret (bp, symlog)")
        ax.set_ylabel("mean next-day profit (bp of previous close)")
        ax.set_title(f"{stats.series}, {strategy} ({stats.n_sims[strategy]} simulations)", fontsize=10)
        ax.grid(True, alpha=0.3)
    handles, labels = legend_entries(axes)
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False)
    fig.suptitle("Out of sample: next-day profit against in-sample regret (bars: 95 % vs zero offsets)", fontsize=11)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(labels) // 6), 1, 0.95))
    try:
        for path in paths:
            fmt = Path(path).suffix.lstrip(".").lower() or "png"
            atomic_write(path, lambda fh, fmt=fmt: fig.savefig(fh, format=fmt, dpi=110), mode="wb")
    finally:
        plt.close(fig)


def write_stats(
    rows: Sequence[Any],
    out_dir: str | Path,
    *,
    reps: int = 10000,
    seed: int = 0,
    size: float = 0.10,
    force: bool = False,
) -> list[Path]:
    """Write `oos-stats.md`, `oos-stats.png` and `oos-stats.svg` into the existing folder `out_dir`.

    Each file is written atomically; an existing `oos-stats.md` whose first line is not `MD_TITLE` is
    refused (OutputError) unless `force`. Returns the paths written.
    """
    folder = Path(out_dir)
    if not folder.is_dir():
        raise OutputError(f"out_dir {str(out_dir)!r}: not an existing folder")
    _arch_bootstrap()
    require_extra(("matplotlib",), "the out-of-sample plot")
    stats = compute_stats(rows, reps=reps, seed=seed, size=size)
    md = folder / "oos-stats.md"
    text = to_markdown(stats)
    atomic_write(md, lambda fh: fh.write(text), first_line=MD_TITLE, force=force)
    pictures = [folder / "oos-stats.png", folder / "oos-stats.svg"]
    plot(rows, pictures, stats=stats)
    return [md, *pictures]
