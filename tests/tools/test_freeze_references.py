"""tools/freeze_references.py: regenerates and checks the frozen references."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.ruler import references

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "freeze_references.py"


def _tool():
    spec = importlib.util.spec_from_file_location("tools_freeze_references", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


freeze = _tool()


@pytest.fixture
def copied(tmp_path):
    for name in references.WORKLOADS:
        shutil.copy(references.REFERENCE_DIR / f"{name}.json", tmp_path / f"{name}.json")
    return tmp_path


def test_check_passes_on_the_committed_files():
    """The command line as documented: exit 0, one line saying they agree."""
    proc = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "references agree" in proc.stdout
    # one progress line per workload/strategy/policy, and one for the backtest's test days
    assert proc.stderr.count("\n") == len(references.WORKLOADS) * 4 + len(references.NEXT_DAY_WORKLOADS)
    assert "test days within rtol" in proc.stdout


def test_check_names_an_edited_supremum(copied, capsys):
    path = copied / "backtest.json"
    doc = json.loads(path.read_text())
    old = doc["suprema"]["always_on"]["close_at_eod"][12]
    doc["suprema"]["always_on"]["close_at_eod"][12] = old + 1e-9
    path.write_text(json.dumps(doc))
    assert freeze.main(["--check", "--dir", str(copied)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2, out  # the one difference and the summary
    assert "backtest.json: suprema.always_on.close_at_eod[12]" in out[0]
    assert "strategy always_on, policy close_at_eod, simulation 12" in out[0]
    assert f"frozen {old + 1e-9!r}, now {old!r}" in out[0]


@pytest.mark.parametrize(
    "key, index, new, words",
    [
        ("low_pred", 9, lambda v: v * (1 + 1e-9), "backtest.json (backtest): next_day.low_pred[9]: "),
        ("dates", 0, lambda v: "2021-02-04", "backtest.json (backtest): next_day.dates[0]: '2021-02-03' now, "),
    ],
)
def test_check_names_an_edited_next_day(copied, capsys, key, index, new, words):
    path = copied / "backtest.json"
    doc = json.loads(path.read_text())
    doc["next_day"][key][index] = new(doc["next_day"][key][index])
    path.write_text(json.dumps(doc))
    assert freeze.main(["--check", "--dir", str(copied)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and words in out[0], out


def test_next_day_that_does_not_follow_the_windows_is_refused(monkeypatch, tmp_path, capsys):
    """If the package's test days were not the bars after the backtest's windows, nothing is written (exit 2)."""
    from marketsim_opt import oos

    real = oos.next_days

    def shifted(bars, *, sims, window=20):
        day = real(bars, sims=sims + 1, window=window)
        return {k: v[1:] for k, v in day.items()}  # each simulation gets the next one's test day

    monkeypatch.setattr(oos, "next_days", shifted)
    assert freeze.main(["--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "next_day.close: the test day of simulation k is not the last fitted day" in err
    assert list(tmp_path.iterdir()) == []


def test_check_tolerates_1e13(copied):
    path = copied / "profile.json"
    doc = json.loads(path.read_text())
    doc["suprema"]["entry_exit"]["intraday"][0] += 1e-13
    path.write_text(json.dumps(doc))
    assert freeze.main(["--check", "--dir", str(copied)]) == 0


def test_check_names_changed_data(copied, capsys):
    path = copied / "profile.json"
    doc = json.loads(path.read_text())
    doc["data"]["low"][0][5] *= 1.001
    path.write_text(json.dumps(doc))
    assert freeze.main(["--check", "--dir", str(copied)]) == 1
    assert "profile.json (profile): low[0, 5]: " in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, "{not json", '{"format": 1}'])
def test_check_on_a_missing_or_broken_file_is_exit_2_one_line(copied, capsys, content):
    path = copied / "profile.json"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    assert freeze.main(["--check", "--dir", str(copied)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "profile.json" in captured.err


def test_refuses_to_overwrite_a_foreign_file(tmp_path, capsys):
    foreign = tmp_path / "backtest.json"
    foreign.write_text('{"format": 1, "note": "hand-made"}\n')
    assert freeze.main(["--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to overwrite" in err and "backtest.json" in err
    assert foreign.read_text() == '{"format": 1, "note": "hand-made"}\n'
    assert not (tmp_path / "profile.json").exists()  # nothing written when one target is foreign


def test_regenerates_what_is_committed(tmp_path):
    """Writing into an empty folder gives files that load, agree with the committed ones and pass --check."""
    assert freeze.main(["--dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backtest.json", "profile.json"]  # no temp files left
    for name in references.WORKLOADS:
        new, old = references.load(name, tmp_path), references.load(name)
        assert (new.policies, new.bounds, new.trading_fee, new.is_crypto) == (
            old.policies,
            old.bounds,
            old.trading_fee,
            old.is_crypto,
        )
        for key, values in old.suprema.items():
            assert abs(new.suprema[key] - values).max() <= 1e-12
        assert (new.next_day is None) == (old.next_day is None) == (name not in references.NEXT_DAY_WORKLOADS)
        if old.next_day is not None:
            for f in references.NEXT_DAY_FIELDS:
                np.testing.assert_allclose(getattr(new.next_day, f), getattr(old.next_day, f), rtol=1e-12, atol=0)
            assert new.next_day.dates == old.next_day.dates
        doc = json.loads((tmp_path / f"{name}.json").read_text())
        assert doc["generated_by"] == "tools/freeze_references.py"
        assert doc["regenerate"] == "python tools/freeze_references.py"
        assert (tmp_path / f"{name}.json").stat().st_mode & 0o044 == 0o044  # readable by all, like a checkout
    # It may overwrite its own files.
    assert freeze.main(["--dir", str(tmp_path)]) == 0


def test_dumps_round_trips_floats_exactly():
    value = {"a": [[0.1, 1 / 3, -2.5e-17]], "b": [True, False], "c": {"d": []}}
    assert json.loads(freeze.dumps(value)) == value
