"""Whole-or-nothing file writes for the tools (the package's own, `marketsim_opt.files.atomic_write`, is not
theirs to import: the ruler stays outside the code it measures).

`write_bytes_atomic(path, data)` / `write_text_atomic(path, text)` write into a temporary file beside `path`,
flush it to disk (fsync), then `os.replace` it onto `path`: a reader sees the old file or the new one, never a
half-written one, and an interrupted or failed write (Ctrl-C included) leaves no temporary file behind.  The file
gets the permissions a plain `open(path, "w")` would give it (0644 under the usual umask 022), not mkstemp's
private 0600.  The folder must exist.

A tool run as `python tools/x.py` has `tools/` on `sys.path` and imports this as `_atomic`; one loaded by path
(the tests' `importlib.util.spec_from_file_location`) appends its own folder to `sys.path` first.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_bytes_atomic", "write_text_atomic"]


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` with `data` whole: a temporary file in the same folder, fsync, then `os.replace`."""
    final = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o666 & ~_umask())
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, final)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """`write_bytes_atomic` of `text` encoded (no newline translation: the text is written as given)."""
    write_bytes_atomic(path, text.encode(encoding))
