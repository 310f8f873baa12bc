"""tools/_atomic.py: the tools' whole-or-nothing file writes."""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the gate's dataclasses look their module up
    spec.loader.exec_module(module)
    return module


atomic = load("tools_atomic", TOOLS / "_atomic.py")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_writes_and_replaces_whole_with_a_plain_file_s_permissions(tmp_path):
    path = tmp_path / "out.json"
    atomic.write_text_atomic(path, "first\n")
    atomic.write_text_atomic(path, "sécond\r\n")
    assert path.read_bytes() == "sécond\r\n".encode()  # as given: no newline translation
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()  # not mkstemp's private 0600
    atomic.write_bytes_atomic(str(path), b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize("fails", ["fsync", "replace"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, fails):
    path = tmp_path / "out.json"
    path.write_text("old\n")

    def boom(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, fails, boom)
    with pytest.raises(OSError, match="No space left"):
        atomic.write_text_atomic(path, "new\n")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize("tool", ["gate.py", "asv_machine.py", "freeze_references.py"])
def test_the_tools_import_it_when_loaded_by_path(tool):
    """Loaded by path as the tests load them (tools/ not on sys.path beforehand), each finds `_atomic`."""
    module = load(f"tools_atomic_user_{tool[:-3]}", TOOLS / tool)
    assert module.write_text_atomic.__module__ == "_atomic"
