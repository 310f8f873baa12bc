"""The performance-target table (`marketsim_opt.reports.targets`, `marketsim-opt targets`)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from marketsim_opt.cli import main
from marketsim_opt.reports import targets
from marketsim_opt.reports.targets import Target, measure_targets, to_markdown, write_targets
from marketsim_opt.strategies import entry_exit_objective


def _target(value, limit, at_least):
    return Target("k", "what", value, "ratio", limit, at_least, "detail")


@pytest.mark.parametrize(
    ("value", "limit", "at_least", "met", "goal"),
    [
        (0.05, 0.1, False, True, "<= 0.1"),
        (0.1, 0.1, False, True, "<= 0.1"),
        (0.2, 0.1, False, False, "<= 0.1"),
        (150.0, 100, True, True, ">= 100"),
        (99.0, 100, True, False, ">= 100"),
        (3.0, None, False, None, "report"),
    ],
)
def test_goal_and_met(value, limit, at_least, met, goal):
    t = _target(value, limit, at_least)
    assert t.met is met and t.goal == goal


def test_markdown_and_files(tmp_path):
    """The markdown marks an unmet goal in bold; the JSON carries goal and verdict; the folder is whole."""
    rows = [_target(0.05, 0.1, False), _target(99.0, 100, True), _target(3.0, None, False)]
    text = to_markdown(rows)
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()]
    assert cells[0] == ["target", "measured", "goal", "met", "behind it"] and text.endswith("|\n")
    assert [row[3] for row in cells[2:]] == ["yes", "**no**", "-"]
    write_targets(str(tmp_path / "t"), rows, command="marketsim-opt targets --repeats 3")
    *table, blank, last = (tmp_path / "t" / "targets.md").read_text().splitlines(keepends=True)
    assert "".join(table) == text and blank == "\n"
    # The provenance line: the command, this machine (its CPU count and torch) and the date.
    assert last.startswith("Measured by `marketsim-opt targets --repeats 3` on ") and "torch " in last
    assert re.search(r", \d{4}-\d\d-\d\d \d\d:\d\d UTC\.\n$", last), last
    data = json.loads((tmp_path / "t" / "targets.json").read_text())
    assert [(r["met"], r["goal"]) for r in data] == [(True, "<= 0.1"), (False, ">= 100"), (None, "report")]


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True])
def test_repeats_must_be_positive(repeats):
    with pytest.raises(ValueError, match="^repeats: must be a positive integer"):
        measure_targets(repeats=repeats)


def test_cli_rejects_bad_repeats(tmp_path, capsys):
    assert main(["targets", "--repeats", "0", "--no-progress", "--out", str(tmp_path / "o")]) == 2
    assert "repeats: must be a positive integer, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_measure_targets_rows(monkeypatch):
    """One real measurement: every target present, in order, the deterministic one exact (syncs)."""
    steps = []
    rows = measure_targets(repeats=1, progress=steps.append)
    keys = [t.key for t in rows]
    assert keys == [
        "profile_exact_vs_direct",
        "exact_n2000_seconds",
        "exact_n2000_vs_direct",
        "backtest_exact_vs_direct",
        "backtest_syncs",
        "batched_vs_sequential",
        "batched_eager_vs_sequential",
        "compile_seconds",
    ]
    assert len(steps) == 6
    syncs = next(t for t in rows if t.key == "backtest_syncs")
    assert syncs.value == 1 and syncs.met  # the whole 280-problem backtest: one read-back
    assert all(t.value > 0 for t in rows if t.unit != "syncs")
    batched = [t for t in rows if t.key.startswith("batched_")]
    assert len(batched) == 2 and all(f"K = {targets.BATCH}:" in t.what for t in batched)  # the batch it timed


def test_batched_target_times_batch_candidates_per_call(monkeypatch):
    """The per-candidate cost divides one batched call's time by BATCH, and that call scores BATCH candidates."""
    monkeypatch.setattr(targets, "BATCH", 64)
    calls = []

    class Counting:
        def __init__(self, objective):
            self.objective = objective

        def score(self, h, l, **kwargs):
            if isinstance(h, torch.Tensor):
                calls.append((h.shape, l.shape))
            return self.objective.score(h, l)

    monkeypatch.setattr(targets, "entry_exit_objective", lambda problem: Counting(entry_exit_objective(problem)))
    monkeypatch.setattr(targets.compiled, "warm_up", lambda objective, batch: 0.0)
    monkeypatch.setattr(targets.compiled, "fallback_reason", lambda device=None: "")
    for skipped in ("run_all", "run_stacked", "run"):  # the other targets are not under test here
        monkeypatch.setattr(targets.workloads, skipped, lambda *a, **k: _FakeResult())
    best_time = targets._best_time
    monkeypatch.setattr(targets, "_best_time", lambda fn, repeats: max(best_time(fn, repeats), 1e-9))  # no 0 / 0
    rows = {t.key: t for t in measure_targets(repeats=1)}
    assert calls and all(shapes == ((1, 64), (1, 64)) for shapes in calls)
    assert "K = 64:" in rows["batched_vs_sequential"].what


class _FakeResult:
    syncs = 1


@pytest.mark.parametrize("no_progress", [True, False])
def test_cli_prints_and_writes(tmp_path, capsys, monkeypatch, no_progress):
    """`targets` prints the table and writes both files, with or without its progress bar."""
    rows = [_target(0.05, 0.1, False)]

    def fake_measure(*, repeats, large, progress):
        assert (repeats, large) == (2, False)
        for label in ("one", "two"):
            progress(label)
        return rows

    monkeypatch.setattr(targets, "measure_targets", fake_measure)
    out = tmp_path / "t"
    argv = ["targets", "--repeats", "2", "--out", str(out)] + (["--no-progress"] if no_progress else [])
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(to_markdown(rows)) and f"wrote {out}/" in printed
    written = (out / "targets.md").read_text()
    assert written.startswith(to_markdown(rows) + "\nMeasured by `marketsim-opt targets --repeats 2 --out ")
