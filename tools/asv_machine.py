"""Register this machine with asv under a fixed name, hardware included: cpu model, arch, os, num_cpu, ram.

`asv machine --yes --cpu ...` drops every value equal to what asv detects itself, so its machine file, the
results' `machine.json` and every result's `params` (copied from it) named no CPU.  This writes the entry of
asv's machine file (`~/.asv-machine.json`, or `--path`) directly: only the named machine's entry changes, and
the file is replaced whole (written beside it, then renamed), never left half-written.

    python tools/asv_machine.py NAME [--path FILE]

asv copies these fields into each result's `params`, so a figure names the CPU it was measured on, and the
published site's machine selector offers them; results from two CPUs under one name are two series.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # the tools' shared _atomic, also when loaded by path
    sys.path.append(str(Path(__file__).resolve().parent))

from _atomic import write_text_atomic  # noqa: E402

__all__ = ["hardware", "register", "MACHINE_FILE"]

#: asv's machine file (asv.machine.MachineCollection.get_machine_file_path).
MACHINE_FILE = Path("~/.asv-machine.json").expanduser()
#: The machine file's format version asv 0.6 reads.
API_VERSION = 1


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` says."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(name: str) -> dict[str, str]:
    """asv's machine fields for this machine under `name`: `machine`, `os`, `arch`, `cpu`, `num_cpu`, `ram`."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "machine": name,
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "cpu": _cpu_model(),
        "num_cpu": str(os.cpu_count()),
        "ram": f"{ram // 2**30}GB",
    }


def register(name: str, path: Path = MACHINE_FILE) -> dict[str, str]:
    """Write `hardware(name)` as `name`'s entry of the machine file at `path`; other entries stay as they are."""
    if not name or "/" in name:
        raise ValueError(f"machine name: expected a non-empty name without '/', got {name!r}")
    entries: dict = {"version": API_VERSION}
    if path.is_file():
        try:
            entries = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc}); fix or remove it") from None
        if not isinstance(entries, dict):
            raise ValueError(f"{path}: expected a JSON object of machines, got {type(entries).__name__}")
    info = hardware(name)
    entries[name] = info
    entries.setdefault("version", API_VERSION)
    write_text_atomic(path, json.dumps(entries, indent=4) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the machine name results are recorded under (e.g. cpu-2core)")
    parser.add_argument("--path", type=Path, default=MACHINE_FILE, help="asv's machine file (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        info = register(args.name, args.path)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"asv machine {args.name!r}: {info['cpu']}, {info['num_cpu']} CPUs, {info['ram']} ({args.path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
