"""The quality-versus-speed picture: regret (bp, log scale) against wall time per optimization.

One point per method and budget, one panel per workload and strategy, the Pareto
front drawn (no other point is both faster and closer to the optimum), the exact
method marked.  Regret 0 cannot sit on a log axis: such points are drawn at
`ZERO_FLOOR_BP` and labelled as exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..comparison import Row

__all__ = ["panels", "pareto_front", "plot_tradeoff", "method_styles", "legend_entries", "ZERO_FLOOR_BP", "MARKERS"]

#: Where a regret of (numerically) zero is drawn on the log axis, in bp.
ZERO_FLOOR_BP = 1e-3
#: Marker by method family (the part before a colon); others are dots.
MARKERS = {"exact": "*", "gradient": "^", "optuna": "s"}


def pareto_front(rows: Sequence[Row]) -> list[Row]:
    """The rows no other row beats on both time per optimization and mean regret, fastest first."""
    front: list[Row] = []
    best = float("inf")
    for row in sorted(rows, key=lambda r: (r.time_per_optimization, r.regret_bp_mean)):
        if row.regret_bp_mean < best:
            front.append(row)
            best = row.regret_bp_mean
    return front


def panels(rows: Sequence[Row]) -> list[tuple[str, str]]:
    """The `(workload, strategy)` pairs of `rows`, in order of first appearance: one plot panel each."""
    return list(dict.fromkeys((r.workload, r.strategy) for r in rows))


def method_styles(methods: Sequence[str]) -> dict[str, tuple[tuple[float, ...], str]]:
    """`(colour, marker)` per method, in order: distinct colours (tab10, or tab20 beyond 10 methods)."""
    import matplotlib

    names = list(dict.fromkeys(methods))
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {m: (cmap(i % cmap.N), MARKERS.get(m.split(":", 1)[0], "o")) for i, m in enumerate(names)}


def legend_entries(axes) -> tuple[list, list[str]]:
    """The legend handles and labels of every panel in `axes`, each label once, in first-seen order (one figure
    legend for all panels)."""
    handles, labels = [], []
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    return handles, labels


def plot_tradeoff(rows: Sequence[Row], paths: Sequence[str | Path], *, title: str = "") -> None:
    """Draw the regret-versus-time panels of `rows` and save the figure to each of `paths` (PNG, SVG, ...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = panels(rows)
    if not shown:
        raise ValueError("rows: nothing to plot")
    styles = method_styles([r.method for r in rows])
    ncols = min(2, len(shown))
    nrows = -(-len(shown) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 4.6 * nrows), squeeze=False)
    for ax, (workload, strategy) in zip(axes.flat, shown):
        mine = [r for r in rows if (r.workload, r.strategy) == (workload, strategy)]
        for r in mine:
            y = max(r.regret_bp_mean, ZERO_FLOOR_BP)
            exact = r.method == "exact"
            colour, marker = styles[r.method]
            ax.scatter(
                r.time_per_optimization,
                y,
                color=colour,
                marker=marker,
                s=220 if exact else 40,
                edgecolors="black" if exact else "none",
                zorder=3,
                label=r.method,
            )
            text = "exact optimum (0 bp)" if exact else r.budget.split(" ")[0]
            ax.annotate(text, (r.time_per_optimization, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        front = pareto_front(mine)
        ax.step(
            [r.time_per_optimization for r in front],
            [max(r.regret_bp_mean, ZERO_FLOOR_BP) for r in front],
            where="post",
            color="grey",
            linestyle="--",
            linewidth=1,
            zorder=2,
            label="Pareto front",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("wall time per optimization (s)")
        ax.set_ylabel("mean regret (bp of previous close)")
        n_sims = mine[0].n_sims
        ax.set_title(f"{workload}, {strategy}" + (f" ({n_sims} simulations)" if n_sims > 1 else ""), fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    handles, labels = legend_entries(axes)
    fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.04 + 0.02 * (len(labels) // 5), 1, 0.97 if title else 1))
    for path in paths:
        fig.savefig(path, dpi=110)
    plt.close(fig)
