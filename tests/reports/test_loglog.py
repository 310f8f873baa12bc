"""reports/loglog.py: the shared log-log figure."""

from __future__ import annotations

import pytest

from marketsim_opt.reports.loglog import plot_log_log


def test_plots_each_non_empty_line_on_log_axes_and_saves_every_path(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (the report extra)")
    import matplotlib.pyplot as plt

    saved = []
    real_savefig = plt.Figure.savefig

    def spy(fig, path, **kwargs):
        ax = fig.axes[0]
        saved.append((path, ax.get_xscale(), ax.get_yscale(), [line.get_label() for line in ax.get_lines()]))
        return real_savefig(fig, path, **kwargs)

    lines = [("a", "o", [6, 200], [1.0, 30.0]), ("empty", "s", [], []), ("b", "s", [6, 200], [2.0, 3.0])]
    paths = [tmp_path / "f.png", tmp_path / "f.svg"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plt.Figure, "savefig", spy)
        plot_log_log(lines, paths, ylabel="ms", title="t")
    assert [s[0] for s in saved] == paths
    assert all(s[1:] == ("log", "log", ["a", "b"]) for s in saved)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in paths[1].read_text()
