"""The log-log figure of a cost against the number of days, shared by the kernel and optimizer scaling plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["Line", "plot_log_log"]

#: One plotted line: (label, marker, days N, cost in the figure's unit).
Line = tuple[str, str, Sequence[int], Sequence[float]]


def plot_log_log(lines: Sequence[Line], paths: Sequence[str | Path], *, ylabel: str, title: str) -> None:
    """Plot `lines` against days N on log-log axes (empty lines are left out) and save the figure to each of
    `paths` (the format from each suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    for label, marker, days, cost in lines:
        if len(days):
            ax.plot(days, cost, marker=marker, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("days N")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    for path in paths:
        fig.savefig(path, dpi=110)
    plt.close(fig)
