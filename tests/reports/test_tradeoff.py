"""reports/tradeoff.py: the Pareto front and the regret-versus-time figure."""

from __future__ import annotations

import pytest

from marketsim_opt.comparison import Row
from marketsim_opt.reports.tradeoff import pareto_front, plot_tradeoff


def row(method, budget, wall, regret, n_sims=1, strategy="entry_exit", workload="profile"):
    return Row(workload, strategy, method, budget, wall, 10, 10, regret, regret, n_sims)


def test_pareto_front_keeps_only_unbeaten_points():
    rows = [
        row("grid", "100", 0.01, 5.0),
        row("direct", "100", 0.02, 8.0),  # slower and worse than grid@100: dominated
        row("direct", "500", 0.07, 0.6),
        row("exact", "-", 0.008, 0.0),  # fastest and optimal: dominates everything
        row("nevergrad:CMA", "100", 0.1, 20.0),
    ]
    assert [r.method for r in pareto_front(rows)] == ["exact"]
    assert [(r.method, r.budget) for r in pareto_front(rows[:3])] == [("grid", "100"), ("direct", "500")]


def test_pareto_front_uses_time_per_optimization():
    """A batched backtest's wall time covers all simulations; the front compares seconds per simulation."""
    a = row("grid", "100", 7.0, 1.0, n_sims=70)  # 0.1 s per optimization
    b = row("direct", "100", 0.5, 2.0)  # 0.5 s
    assert pareto_front([a, b]) == [a]


def test_plot_tradeoff_writes_png_and_svg(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (the report extra)")
    rows = [row("grid", "100", 0.01, 5.0), row("exact", "-", 0.008, 0.0), row("direct", "500", 0.07, 0.6)]
    rows += [row("grid", "100", 0.7, 2.0, n_sims=70, workload="backtest:SYNTH0", strategy="always_on")]
    png, svg = tmp_path / "t.png", tmp_path / "t.svg"
    plot_tradeoff(rows, [png, svg], title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert "exact optimum (0 bp)" in text and "Pareto front" in text


def test_plot_tradeoff_refuses_empty(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (the report extra)")
    with pytest.raises(ValueError, match="rows"):
        plot_tradeoff([], [tmp_path / "t.png"])


def test_method_styles_are_distinct_beyond_ten_methods():
    """Every method of the full list gets its own colour (tab20 past 10); markers tell the families apart."""
    pytest.importorskip("matplotlib", reason="plots need matplotlib (the report extra)")
    from marketsim_opt.reports.tradeoff import method_styles

    methods = ["direct", "grid", "exact", "gradient"] + [f"nevergrad:{i}" for i in range(7)] + ["optuna:TPE"]
    styles = method_styles(methods + ["grid"])  # repeats keep their first style
    assert list(styles) == methods
    assert len({colour for colour, _ in styles.values()}) == len(methods)
    assert [styles[m][1] for m in ("exact", "gradient", "optuna:TPE", "direct", "nevergrad:0")] == [
        "*",
        "^",
        "s",
        "o",
        "o",
    ]
    few = method_styles(["direct", "grid"])
    assert few["direct"][0] != few["grid"][0]
