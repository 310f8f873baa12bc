"""The method x budget comparison (comparison.py): trials, scoring, the markdown and CSV outputs."""

from __future__ import annotations

import csv

import pytest

from marketsim_opt import workloads
from marketsim_opt.comparison import Row, is_markdown_head, parse_budget, run_trials, to_markdown, trials_for, write_csv


def test_parse_budget():
    """'default' means the strategy default (None); integers pass; anything else names budget."""
    assert parse_budget("default") is None
    assert parse_budget(" Default ") is None
    assert parse_budget("100") == 100
    with pytest.raises(ValueError, match="^budget: expected a positive integer or 'default'"):
        parse_budget("lots")
    with pytest.raises(ValueError, match="^budget: must be a positive integer, got 0"):
        parse_budget("0")
    with pytest.raises(ValueError, match="^budget: 10000000 exceeds the limit of 1000000"):
        parse_budget("10000000")  # the CLI refuses it before any work (and before a progress bar starts)


def test_trials_cover_strategies_methods_budgets_and_exact_once():
    """Each strategy x method x budget once; exact once per strategy (it takes no budget); duplicates dropped."""
    trials = trials_for("profile", ("direct", "exact"), (100, None, 100))
    got = [(t.strategy, t.method, t.budget) for t in trials]
    assert got == [
        ("entry_exit", "direct", 100),
        ("entry_exit", "direct", None),
        ("entry_exit", "exact", None),
        ("always_on", "direct", 100),
        ("always_on", "direct", None),
        ("always_on", "exact", None),
    ]


def test_trials_reject_unknown_method():
    """An unknown method fails before anything runs, naming method."""
    with pytest.raises(ValueError, match="^method: unknown method 'simplex'"):
        trials_for("profile", ("direct", "simplex"))


def test_run_trials_counts_and_regret():
    """Rows carry the exact counts of the runs, exact's regret is ~0 and DIRECT's is the recorded one."""
    loaded = {"profile": workloads.profile()}
    seen = []
    rows = run_trials(
        trials_for("profile", ("direct", "exact", "grid"), (100,)), loaded, progress=False, on_row=seen.append
    )
    assert seen == rows
    by = {(r.strategy, r.method): r for r in rows}
    direct = workloads.run(loaded["profile"], "entry_exit", method="direct", budget=100)
    assert by["entry_exit", "direct"].nfev == direct.nfev
    assert by["entry_exit", "direct"].syncs == direct.syncs == direct.nfev + 2  # + problem and positions checks
    assert by["entry_exit", "direct"].budget == "100"
    assert by["entry_exit", "exact"].budget == "-"
    for strategy in workloads.STRATEGIES:
        assert abs(by[strategy, "exact"].regret_bp_mean) < 1e-6
        assert by[strategy, "direct"].regret_bp_mean > 0
        assert by[strategy, "grid"].regret_bp_max >= by[strategy, "grid"].regret_bp_mean > 0


def test_run_trials_default_budget_is_labelled():
    """A default budget shows the number it resolved to."""
    rows = run_trials(
        trials_for("profile", ("grid",), (None,), ("always_on",)), {"profile": workloads.profile()}, progress=False
    )
    assert [r.budget for r in rows] == ["240 (default)"]


def test_run_trials_backtest_totals_over_simulations():
    """On the [70, 6] backtest, evaluations are summed over simulations and both policies."""
    backtest = workloads.backtest()
    rows = run_trials(
        trials_for(backtest.name, ("grid",), (100,), ("entry_exit",)), {backtest.name: backtest}, progress=False
    )
    assert rows[0].nfev == 70 * 2 * 100
    assert rows[0].regret_bp_max >= rows[0].regret_bp_mean >= 0


def _row(**kw) -> Row:
    base = dict(
        workload="profile",
        strategy="entry_exit",
        method="exact",
        budget="-",
        wall_time=0.01,
        nfev=5,
        syncs=3,
        regret_bp_mean=-1e-12,
        regret_bp_max=2e-12,
    )
    base.update(kw)
    return Row(**base)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_markdown_table():
    """One header, one alignment line (numbers right-aligned) and one line per row; round-off regret prints as 0."""
    table = to_markdown([_row(), _row(method="direct", budget="100", regret_bp_mean=3.5216, regret_bp_max=3.5216)])
    lines = table.splitlines()
    assert len(lines) == 4 and table.endswith("|\n")
    assert _cells(lines[0])[:5] == ["workload", "strategy", "method", "budget", "wall s"]
    assert [c.endswith(":") for c in _cells(lines[1])] == [False] * 4 + [True] * 5
    assert _cells(lines[2]) == ["profile", "entry_exit", "exact", "-", "0.010", "5", "3", "0", "0"]
    assert _cells(lines[3])[-2:] == ["3.52", "3.52"]
    assert len({len(line) for line in lines}) == 1  # the columns line up


def test_markdown_head_is_recognised_whatever_the_widths():
    """`compare --out` recognises its earlier output by the header's cells, not by the padding of the columns."""
    wide = to_markdown([_row(method="nevergrad:ScrHammersleySearch")]).splitlines()[0]
    narrow = to_markdown([]).splitlines()[0]
    assert wide != narrow and is_markdown_head(wide) and is_markdown_head(narrow)
    assert is_markdown_head("| " + " | ".join(_cells(narrow)) + " |")  # the unpadded header of older files
    assert not is_markdown_head("| workload | strategy |") and not is_markdown_head("# my notes")


def test_write_csv_roundtrip_and_no_partial_file(tmp_path):
    """The CSV holds every field; a failing write leaves no file and no temporary behind."""
    path = tmp_path / "out" / "rows.csv"
    write_csv([_row(), _row(method="grid")], path)
    with open(path, newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [r["method"] for r in got] == ["exact", "grid"]
    assert got[0]["syncs"] == "3"

    class Boom(Row):
        def __getattribute__(self, name):
            raise RuntimeError("interrupted")

    bad = tmp_path / "bad.csv"
    with pytest.raises(RuntimeError):
        write_csv([_row(), object.__new__(Boom)], bad)
    assert not bad.exists()
    assert list(tmp_path.glob(".bad.csv.*")) == []


def test_new_methods_in_the_defaults():
    """gradient runs everywhere by default; optuna:TPE (when installed) and NGOpt are left out of the backtest."""
    from marketsim_opt.comparison import BACKTEST_METHODS
    from marketsim_opt.optimizers import METHODS

    assert "gradient" in METHODS and "gradient" in BACKTEST_METHODS
    assert "optuna:TPE" not in BACKTEST_METHODS and "nevergrad:NGOpt" not in BACKTEST_METHODS
    assert set(METHODS) - set(BACKTEST_METHODS) <= {"optuna:TPE", "nevergrad:NGOpt"}


def test_run_trials_gradient_rows():
    """A gradient row carries its plan's evaluations (1 start x 49 steps at 100: 99 a policy) and one read-back."""
    rows = run_trials(trials_for("profile", ("gradient",), (100,)), {"profile": workloads.profile()}, progress=False)
    by = {r.strategy: r for r in rows}
    assert by["entry_exit"].nfev == by["always_on"].nfev == 99
    assert (by["entry_exit"].syncs, by["always_on"].syncs) == (3, 2)  # + the input checks
    assert all(r.regret_bp_mean >= 0 for r in rows)


def test_warm_up_runs_each_method_once_untimed(monkeypatch):
    """Each method runs once at budget 4 on one simulation before the timed trials; the rows are the same."""
    from marketsim_opt import comparison

    calls = []
    real = comparison.run

    def counting(workload, strategy, **kwargs):
        calls.append((workload.problem.n_sims, strategy, kwargs["method"], kwargs["budget"]))
        return real(workload, strategy, **kwargs)

    monkeypatch.setattr(comparison, "run", counting)
    trials = [comparison.Trial("backtest", s, "grid", 100) for s in ("entry_exit", "always_on")]
    loads = {"backtest": workloads.backtest()}
    warm = comparison.run_trials(trials, loads, progress=False)
    assert calls[0] == (1, "entry_exit", "grid", 4) and len(calls) == 3
    cold = comparison.run_trials(trials, loads, progress=False, warm_up=False)
    assert [(r.nfev, r.syncs, r.regret_bp_mean) for r in warm] == [(r.nfev, r.syncs, r.regret_bp_mean) for r in cold]
