"""The optional tools of the report extra (matplotlib, memray, tuna): checked before any work is done."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from ..errors import MissingExtraError

__all__ = ["MissingExtraError", "ToolError", "install_hint", "require_extra"]

#: Which optional modules each command needs (all from the `report` extra).
NEEDS = {
    "profile": ("tuna",),
    "memory": ("memray",),
    "report": ("matplotlib", "arch", "markdown_it"),
}


class ToolError(RuntimeError):
    """An optional tool ran and failed (its own message is included)."""


def install_hint(extra: str = "report") -> str:
    """The install command for `extra` in this checkout (constraints pinned, editable), and where to run it."""
    command = f"pip install -c constraints.txt -e '.[{extra}]'"
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "constraints.txt").is_file():
        return f"run `{command}` in {root}"
    return f"run `{command}` in the marketsim-opt checkout"


def require_extra(modules: Sequence[str], needed_for: str, extra: str = "report") -> None:
    """MissingExtraError naming every module of `modules` that cannot be imported, with the install command."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        names = ", ".join(missing)
        raise MissingExtraError(
            f"{needed_for} needs {names} (the {extra} extra), which is not installed: {install_hint(extra)}"
        )
