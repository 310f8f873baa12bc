"""The passes' progress bar (reports/progress.py): evaluations heard while a pass runs, nothing when disabled."""

from __future__ import annotations

from marketsim_opt.instrument import record_evaluations
from marketsim_opt.reports import progress
from marketsim_opt.reports.progress import pass_bar


def test_bar_counts_the_evaluations_of_the_optimization_under_way(monkeypatch):
    monkeypatch.setattr(progress, "REFRESH_S", 0.0)  # show every count
    with pass_bar(("warm-up",), enabled=True) as bar:
        record_evaluations(7)
        record_evaluations(5)
        assert bar.evaluations == 12 and "12 evaluations" in str(bar._bar)
        bar.step("entry_exit")
        assert bar.evaluations == 0  # the next optimization starts from zero
        record_evaluations(3)
        assert bar.evaluations == 3
    record_evaluations(4)  # after the region: no longer heard
    assert bar.evaluations == 3


def test_a_disabled_bar_listens_to_nothing():
    with pass_bar(("warm-up",), enabled=False) as bar:
        record_evaluations(9)
    assert bar.evaluations == 0
