"""`marketsim-opt memory`: a workload under memray, its flame graph and the peak.

Writes into one output folder (replaced whole, never left half-written):

- `memray.bin`: memray's capture (`memray flamegraph`, `memray table`, `memray stats` read it);
- `flamegraph.html`: memray's flame graph of the allocations live at the peak;
- `summary.txt` and `summary.json`: the peak heap size, the number of allocations and the largest
  allocation sites live at the peak.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..files import atomic_dir, check_output_dir
from ..workloads import Workload, run_all
from .extras import NEEDS, ToolError, require_extra
from .progress import pass_bar

__all__ = ["MemorySummary", "memory_workload"]

#: Allocation sites listed in the summary.
TOP_SITES = 5


@dataclass(frozen=True)
class MemorySummary:
    """memray's view of one run of a workload (both strategies): bytes, counts, and the top sites at the peak."""

    workload: str
    method: str
    budget: str
    peak_bytes: int
    allocations: int
    top_sites: list[tuple[str, int]] = field(default_factory=list)  # (function at file:line, bytes at the peak)

    def to_text(self) -> str:
        lines = [
            f"workload {self.workload}, method {self.method}, budget {self.budget}, both strategies",
            f"peak heap                 {self.peak_bytes / 2**20:10.2f} MiB ({self.peak_bytes} bytes)",
            f"allocations               {self.allocations:10d}",
            f"largest sites live at the peak (top {TOP_SITES}):",
        ]
        lines += [f"  {size / 2**20:10.3f} MiB  {site}" for site, size in self.top_sites]
        return "\n".join(lines)


def memory_workload(
    workload: Workload,
    out_dir: str | Path,
    *,
    method: str = "direct",
    budget: int | None = None,
    seed: int = 0,
    progress: bool = False,
    force: bool = False,
) -> MemorySummary:
    """Run both optimizations of `workload` under memray; write the capture, flame graph and summary.

    `out_dir` and memray are checked before the run (`files.check_output_dir`; `force` replaces a folder
    that is not an earlier `memory` output).
    """
    require_extra(NEEDS["memory"], "the memory command")
    check_output_dir(out_dir, "memory", force=force)
    import memray

    passes = pass_bar(("warm-up", "tracked"), progress)
    kw = dict(method=method, budget=budget, seed=seed, on_strategy=passes.step)
    with passes, atomic_dir(out_dir, command="memory", force=force) as tmp:
        run_all(workload, **kw)  # warm-up: one-time allocations (lazy imports, caches) stay out of the capture
        capture = tmp / "memray.bin"
        with memray.Tracker(capture):
            run_all(workload, **kw)
        reader = memray.FileReader(capture)
        sites: dict[str, int] = {}
        for record in reader.get_high_watermark_allocation_records(merge_threads=True):
            frames = record.stack_trace(max_stacks=1)
            where = f"{frames[0][0]} at {frames[0][1]}:{frames[0][2]}" if frames else "<unknown>"
            sites[where] = sites.get(where, 0) + record.size
        summary = MemorySummary(
            workload=workload.name,
            method=method,
            budget="default" if budget is None else str(budget),
            peak_bytes=int(reader.metadata.peak_memory),
            allocations=int(reader.metadata.total_allocations),
            top_sites=sorted(sites.items(), key=lambda kv: -kv[1])[:TOP_SITES],
        )
        reader.close()
        cmd = [sys.executable, "-m", "memray", "flamegraph", "--output", str(tmp / "flamegraph.html"), str(capture)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ToolError(f"memray flamegraph failed: {proc.stderr.strip() or proc.stdout.strip()}")
        (tmp / "summary.txt").write_text(summary.to_text() + "\n")
        (tmp / "summary.json").write_text(json.dumps(asdict(summary), indent=1) + "\n")
    return summary
