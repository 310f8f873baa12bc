"""Writing output files and folders: whole or not at all, never over something the tool did not write.

- `check_output_dir` / `check_output_file` validate an output path before any work is done;
- `atomic_dir` / `atomic_write` write into a temporary sibling and rename it into place on success.

Every output folder holds a marker file (`MARKER`) naming the command that wrote it: an existing non-empty
folder is only replaced when it is a previous output of the same command, or with `force=True`.  A file is
never replaced by a folder, nor a folder by a file.  Outputs get the user's umask (0644 / 0755 under 022).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "MARKER",
    "OutputError",
    "WriteError",
    "check_output_dir",
    "check_output_file",
    "atomic_write",
    "atomic_dir",
]

#: The file in every output folder that names the command which wrote it.
MARKER = ".marketsim-opt.json"
#: Names of the folder's entries listed when a folder is refused.
_SHOWN = 5


class OutputError(ValueError):
    """An output path that cannot be used, found before any work is done."""


class WriteError(OSError):
    """Writing an output failed: the message names the path asked for (never a temporary one) and the reason."""


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _check_parent(final: Path, what: str, shown: str) -> None:
    """The nearest existing ancestor of `final` must be a folder we may write into."""
    ancestor = _nearest_existing(final.parent)
    if not ancestor.is_dir():
        raise OutputError(f"{what} {shown}: {ancestor} is a file, not a folder, so {final} cannot be created there")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {shown}: cannot write into {ancestor} (permission denied)")


def _marker_command(folder: Path) -> str | None:
    try:
        return json.loads((folder / MARKER).read_text())["command"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_output_dir(
    path: str | os.PathLike[str], command: str, *, force: bool = False, what: str = "output folder"
) -> Path:
    """The resolved output folder `path` for `command`, or OutputError saying why it cannot be used.

    Refused: the current folder or one above it (replacing it whole would move the folder we run in); an
    existing file; an existing non-empty folder whose marker does not name `command` (unless `force`).
    """
    shown = repr(os.fspath(path))
    if not os.fspath(path):
        raise OutputError(f"{what}: expected a folder path, got an empty one")
    final = Path(path).resolve()
    cwd = Path.cwd().resolve()
    if final == cwd or final in cwd.parents:
        raise OutputError(
            f"{what} {shown} is the current folder or one above it ({final}); the output replaces its folder "
            "whole, so name a new subfolder instead (e.g. reports/run1)"
        )
    if final.exists() and not final.is_dir():
        raise OutputError(f"{what} {shown}: {final} is a file; refusing to replace a file with a folder")
    _check_parent(final, what, shown)
    if final.is_dir() and not force:
        entries = sorted(p.name for p in final.iterdir())
        if entries and _marker_command(final) != command:
            listed = ", ".join(entries[:_SHOWN]) + (f", ... ({len(entries)} in all)" if len(entries) > _SHOWN else "")
            owner = _marker_command(final)
            whose = f"the output of `marketsim-opt {owner}`" if owner else f"not an output of `marketsim-opt {command}`"
            raise OutputError(
                f"{what} {shown} already exists and is {whose} (it holds {listed}); it would be replaced whole: "
                "name another folder, or pass --force to replace it"
            )
    return final


def check_output_file(
    path: str | os.PathLike[str],
    *,
    first_line: str | Callable[[str], bool] | None = None,
    force: bool = False,
    what: str = "output file",
) -> Path:
    """The resolved output file `path`, or OutputError saying why it cannot be used.

    Refused: an existing folder; with `first_line` (the line itself, or a test of it), an existing non-empty file
    whose first line differs or fails the test (it is not a previous output of the same kind), unless `force`.
    """
    shown = repr(os.fspath(path))
    if not os.fspath(path):
        raise OutputError(f"{what}: expected a file path, got an empty one")
    final = Path(path).resolve()
    if final.is_dir():
        raise OutputError(f"{what} {shown}: {final} is a folder; refusing to replace a folder with a file")
    _check_parent(final, what, shown)
    if first_line is not None and not force and final.is_file() and final.stat().st_size > 0:
        try:
            with open(final, encoding="utf-8", errors="replace") as fh:
                found = fh.readline().rstrip("\r\n")
        except OSError as exc:
            raise OutputError(f"{what} {shown}: cannot read the existing file to check it: {exc.strerror}") from None
        if not (first_line(found) if callable(first_line) else found == first_line):
            raise OutputError(
                f"{what} {shown} already exists and does not look like an earlier output of this command "
                f"(its first line is {found[:60]!r}); name another file, or pass --force to replace it"
            )
    return final


def _write_error(final: Path, tmp: Path | None, exc: OSError) -> WriteError:
    """`exc` as a WriteError naming `final` (a path inside the temporary `tmp` is mapped onto `final`)."""
    where = final
    if tmp is not None and exc.filename is not None:
        try:
            where = final / Path(os.fsdecode(exc.filename)).relative_to(tmp)
        except ValueError:
            pass
    return WriteError(f"cannot write {where}: {exc.strerror or exc}")


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable,
    *,
    mode: str = "w",
    first_line: str | Callable[[str], bool] | None = None,
    force: bool = False,
) -> None:
    """Call `write(fh)` on a temporary file next to `path`, then rename it into place (see `check_output_file`)."""
    final = check_output_file(path, first_line=first_line, force=force)
    tmp = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
        tmp = Path(name)
        os.chmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, newline="" if "b" not in mode else None) as fh:
            write(fh)
        os.replace(tmp, final)
    except WriteError:
        raise
    except OSError as exc:
        raise _write_error(final, None, exc) from exc
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_dir(path: str | os.PathLike[str], *, command: str, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder next to `path`; on success it replaces `path` whole, on error it vanishes.

    `path` is checked first (`check_output_dir`) and again just before the swap; the folder gets a marker naming
    `command`.  An interrupted run (Ctrl-C included) leaves `path` as it was: the old outputs or nothing.
    """
    final = check_output_dir(path, command, force=force)
    tmp = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        (tmp / MARKER).write_text(json.dumps({"command": command, "tool": "marketsim-opt"}) + "\n")
        check_output_dir(final, command, force=force)  # the run may have taken minutes: look again
        _swap(tmp, final)
    except (WriteError, OutputError):
        raise
    except OSError as exc:
        raise _write_error(final, tmp, exc) from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _swap(tmp: Path, final: Path) -> None:
    """Rename folder `tmp` to `final`, moving an existing `final` aside first and back if the rename fails."""
    if not final.exists():
        os.replace(tmp, final)
        return
    old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".old"))
    try:
        os.replace(final, old / final.name)
        try:
            os.replace(tmp, final)
        except BaseException:
            os.replace(old / final.name, final)  # put the previous output back
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
