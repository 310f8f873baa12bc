"""files.py: outputs appear whole or not at all, never over what the tool did not write, with the user's umask."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest

from marketsim_opt import files
from marketsim_opt.files import MARKER, OutputError, WriteError, atomic_dir, atomic_write, check_output_dir


def _names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    atomic_write(target, lambda fh: fh.write("new"))
    assert target.read_text() == "new"
    assert _names(tmp_path) == ["out.txt"]


def test_atomic_write_failure_keeps_old(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def boom(fh):
        fh.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert _names(tmp_path) == ["out.txt"]


def test_atomic_write_refuses_a_file_of_another_kind_unless_forced(tmp_path):
    """With `first_line`, an existing file that starts otherwise is kept; `force=True` replaces it."""
    target = tmp_path / "notes.md"
    target.write_text("my notes\n")
    with pytest.raises(OutputError, match=r"'.*notes\.md' already exists .*first line is 'my notes'.*--force"):
        atomic_write(target, lambda fh: fh.write("| a |\n"), first_line="| a |")
    assert target.read_text() == "my notes\n"
    atomic_write(target, lambda fh: fh.write("| a |\n"), first_line="| a |", force=True)
    assert target.read_text() == "| a |\n"


def test_atomic_write_replaces_its_own_kind_of_file(tmp_path):
    target = tmp_path / "t.md"
    target.write_text("| a |\r\nold row\n")
    atomic_write(target, lambda fh: fh.write("| a |\nnew row\n"), first_line="| a |")
    assert target.read_text() == "| a |\nnew row\n"


def test_atomic_write_never_replaces_a_folder(tmp_path):
    (tmp_path / "t.md").mkdir()
    (tmp_path / "t.md" / "keep").write_text("keep")
    with pytest.raises(OutputError, match=r"is a folder; refusing to replace a folder with a file"):
        atomic_write(tmp_path / "t.md", lambda fh: fh.write("x"), force=True)
    assert (tmp_path / "t.md" / "keep").read_text() == "keep"


def test_atomic_write_failure_names_the_final_path(tmp_path):
    """An OS error while writing says `cannot write <the path asked for>: <reason>`, never the temporary file."""
    target = tmp_path / "out.txt"

    def full(fh):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), fh.name)

    with pytest.raises(WriteError) as info:
        atomic_write(target, full)
    assert str(info.value) == f"cannot write {target}: {os.strerror(errno.ENOSPC)}"
    assert _names(tmp_path) == []


def test_atomic_dir_replaces_its_own_previous_output(tmp_path):
    target = tmp_path / "report"
    with atomic_dir(target, command="report") as tmp:
        assert tmp.parent == tmp_path and tmp != target
        (tmp / "stale.png").write_text("stale")
    assert json.loads((target / MARKER).read_text())["command"] == "report"
    with atomic_dir(target, command="report") as tmp:
        (tmp / "fresh.csv").write_text("a,b\n")
    assert _names(target) == [MARKER, "fresh.csv"]
    assert _names(tmp_path) == ["report"]


def test_atomic_dir_refuses_a_folder_it_did_not_write(tmp_path):
    """A non-empty folder without our marker is refused before the body runs; `force=True` replaces it."""
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    ran = []
    with pytest.raises(OutputError, match=r"'.*mine' already exists .*holds thesis\.tex.*pass --force"):
        with atomic_dir(target, command="profile"):
            ran.append(True)
    assert ran == [] and (target / "thesis.tex").read_text() == "years of work"
    assert _names(tmp_path) == ["mine"]
    with atomic_dir(target, command="profile", force=True) as tmp:
        (tmp / "summary.txt").write_text("s")
    assert _names(target) == [MARKER, "summary.txt"]


def test_atomic_dir_refuses_another_commands_output(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target, command="memory") as tmp:
        (tmp / "memray.bin").write_bytes(b"x")
    with pytest.raises(OutputError, match=r"is the output of `marketsim-opt memory`"):
        check_output_dir(target, "profile")
    assert check_output_dir(target, "memory") == target.resolve()


def test_atomic_dir_accepts_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic_dir(tmp_path / "empty", command="targets") as tmp:
        (tmp / "targets.md").write_text("t")
    assert _names(tmp_path / "empty") == [MARKER, "targets.md"]


@pytest.mark.parametrize("force", [False, True])
def test_atomic_dir_never_replaces_a_file(tmp_path, force):
    target = tmp_path / "report"
    target.write_text("a file")
    with pytest.raises(OutputError, match=r"is a file; refusing to replace a file with a folder"):
        with atomic_dir(target, command="report", force=force):
            pass
    assert target.read_text() == "a file" and _names(tmp_path) == ["report"]


def test_atomic_dir_under_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match=r"is a file, not a folder, so .* cannot be created"):
        check_output_dir(tmp_path / "f" / "out", "report")


@pytest.mark.parametrize("path", [".", "..", "./", "sub/..", "sub/../..", "{cwd}"])
def test_the_current_folder_and_above_are_refused(tmp_path, monkeypatch, path):
    """`--out .` and friends: refused up front (replacing them would move the folder we run in)."""
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    monkeypatch.chdir(work)
    with pytest.raises(OutputError, match=r"is the current folder or one above it"):
        with atomic_dir(path.format(cwd=work), command="profile", force=True):
            pass
    assert _names(tmp_path) == ["work"] and _names(work) == ["sub"]


def test_atomic_dir_interrupted_keeps_old_folder(tmp_path):
    target = tmp_path / "report"
    with atomic_dir(target, command="report") as tmp:
        (tmp / "old.csv").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target, command="report") as tmp:
        (tmp / "half.csv").write_text("half")
        raise KeyboardInterrupt
    assert _names(target) == [MARKER, "old.csv"]
    assert _names(tmp_path) == ["report"]


def test_atomic_dir_interrupted_leaves_nothing_new(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "a" / "report", command="report") as tmp:
        (tmp / "x").write_text("x")
        raise RuntimeError("planted")
    assert list((tmp_path / "a").iterdir()) == []


def test_atomic_dir_interrupted_during_the_swap_restores_the_old_output(tmp_path, monkeypatch):
    """Ctrl-C between moving the old folder aside and renaming the new one in: the old one comes back."""
    target = tmp_path / "report"
    with atomic_dir(target, command="report") as tmp:
        (tmp / "old.csv").write_text("old")
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the new folder's rename
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt), atomic_dir(target, command="report") as tmp:
        (tmp / "new.csv").write_text("new")
    assert len(calls) == 3  # aside, (interrupted) in, back
    assert _names(target) == [MARKER, "old.csv"] and _names(tmp_path) == ["report"]


def test_atomic_dir_looks_again_before_the_swap(tmp_path):
    """A folder that appears (with someone's files) while the run works is not replaced."""
    target = tmp_path / "out"
    with pytest.raises(OutputError, match="already exists"), atomic_dir(target, command="report") as tmp:
        (tmp / "x").write_text("x")
        target.mkdir()
        (target / "theirs.txt").write_text("theirs")
    assert _names(target) == ["theirs.txt"] and _names(tmp_path) == ["out"]


def test_atomic_dir_write_error_names_the_final_path(tmp_path):
    """An OS error inside the temporary folder is reported at the path the user asked for."""
    target = tmp_path / "out"
    with pytest.raises(WriteError) as info, atomic_dir(target, command="report") as tmp:
        (tmp / "missing" / "x.txt").write_text("x")
    message = str(info.value)
    assert message.startswith(f"cannot write {target / 'missing' / 'x.txt'}: ")
    assert ".tmp" not in message and _names(tmp_path) == []


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_outputs_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "t.md", lambda fh: fh.write("t"))
        with atomic_dir(tmp_path / "d", command="report") as tmp:
            (tmp / "inner.txt").write_text("i")
            (tmp / "sub").mkdir()
    finally:
        os.umask(old)

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(tmp_path / "t.md") == file_mode
    assert mode(tmp_path / "d") == dir_mode and mode(tmp_path / "d" / "sub") == dir_mode
    assert mode(tmp_path / "d" / MARKER) == file_mode and mode(tmp_path / "d" / "inner.txt") == file_mode
