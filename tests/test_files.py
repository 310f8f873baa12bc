"""files.py: outputs appear whole or not at all."""

from __future__ import annotations

import pytest

from marketsim_opt.files import atomic_dir, atomic_write


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    atomic_write(target, lambda fh: fh.write("new"))
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_failure_keeps_old(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def boom(fh):
        fh.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_dir_replaces_whole_folder(tmp_path):
    target = tmp_path / "report"
    target.mkdir()
    (target / "stale.png").write_text("stale")
    with atomic_dir(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        (tmp / "fresh.csv").write_text("a,b\n")
    assert sorted(p.name for p in target.iterdir()) == ["fresh.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_atomic_dir_interrupted_keeps_old_folder(tmp_path):
    target = tmp_path / "report"
    target.mkdir()
    (target / "old.csv").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "half.csv").write_text("half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["old.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_atomic_dir_interrupted_leaves_nothing_new(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "a" / "report") as tmp:
        (tmp / "x").write_text("x")
        raise RuntimeError("planted")
    assert list((tmp_path / "a").iterdir()) == []
