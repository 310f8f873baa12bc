"""`marketsim-opt profile`: a workload under cProfile, its icicle view, and the bottleneck study's answers.

Writes into one output folder (replaced whole, never left half-written):

- `profile.prof`: the cProfile stats (`python -m pstats`, snakeviz, tuna all read it);
- `icicle/index.html`: tuna's interactive icicle view of it (static files, works offline);
- `summary.txt` and `summary.json`: the share of time in the kernel, in host read-backs and in the rest
  (the optimizer's own code and the glue), evaluations, host syncs and the cost per evaluation.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..files import atomic_dir, check_output_dir
from ..instrument import READBACK_METHODS, count_syncs
from ..workloads import Workload, run_all
from .extras import NEEDS, ToolError, require_extra
from .progress import pass_bar

__all__ = ["ProfileSummary", "profile_workload", "time_shares"]

KERNEL_FILE = "marketsim_opt/kernel.py"
#: How cProfile names a torch.Tensor C method: `<method 'item' of 'torch._C.TensorBase' objects>`, or for the
#: methods torch wraps in Python, `<function TensorBase.item at 0x...>`.
_TENSOR_METHOD = re.compile(
    r"^<(?:method '(\w+)' of 'torch\._C\.TensorBase' objects|function TensorBase\.(\w+) at 0x\w+)>$"
)


@dataclass(frozen=True)
class ProfileSummary:
    """What one profiled run of a workload (both strategies) measured.

    Seconds under the profiler (`profiled_s`, and its split into kernel, read-backs
    and the rest) are inflated by cProfile's per-call overhead, most for Python-heavy
    code; `wall_s` is the same run without the profiler.
    """

    workload: str
    method: str
    budget: str
    wall_s: float
    profiled_s: float
    kernel_s: float
    readback_s: float
    other_s: float
    evaluations: int
    syncs: int

    @property
    def per_evaluation_us(self) -> float:
        """Microseconds of wall time (no profiler) per scored candidate."""
        return 1e6 * self.wall_s / max(self.evaluations, 1)

    def to_text(self) -> str:
        """The summary as a few aligned lines."""

        def share(s: float) -> str:
            return f"{s:8.3f} s  {100 * s / self.profiled_s:5.1f} %" if self.profiled_s > 0 else f"{s:8.3f} s"

        return "\n".join(
            [
                f"workload {self.workload}, method {self.method}, budget {self.budget}, both strategies",
                f"wall time (no profiler)   {self.wall_s:8.3f} s",
                f"under cProfile            {self.profiled_s:8.3f} s  (cProfile's overhead inflates Python code)",
                f"  kernel                  {share(self.kernel_s)}",
                f"  host read-backs         {share(self.readback_s)}",
                f"  optimizer and glue      {share(self.other_s)}",
                f"evaluations               {self.evaluations:8d}",
                f"host syncs                {self.syncs:8d}",
                f"per evaluation            {self.per_evaluation_us:8.2f} us (wall time / evaluations)",
            ]
        )


def time_shares(stats: pstats.Stats) -> tuple[float, float, float]:
    """`(total, kernel, readback)` seconds of a profile.

    Kernel time is the cumulative time of the functions in `marketsim_opt/kernel.py` counted at the calls made
    from outside that file (so a kernel function calling another is not counted twice).  Read-back time is the
    time inside torch's read-back methods (`.item()`, `.cpu()`, ...; `instrument.READBACK_METHODS`).
    """
    raw = stats.stats  # {(file, line, name): (primitive calls, calls, own time, cumulative time, callers)}
    kernel = readback = 0.0
    for (file, _line, name), (_cc, _nc, _tt, ct, callers) in raw.items():
        if _in_kernel(file):
            # all of its time but what it spent as a callee of another kernel function (counted there)
            kernel += ct - sum(c[3] for (caller_file, _l, _n), c in callers.items() if _in_kernel(caller_file))
        elif (found := _TENSOR_METHOD.match(name)) and (found.group(1) or found.group(2)) in READBACK_METHODS:
            readback += ct
    return float(stats.total_tt), kernel, readback


def _in_kernel(file: str) -> bool:
    return file.replace("\\", "/").endswith(KERNEL_FILE)


def profile_workload(
    workload: Workload,
    out_dir: str | Path,
    *,
    method: str = "direct",
    budget: int | None = None,
    seed: int = 0,
    icicle: bool = True,
    progress: bool = False,
    force: bool = False,
) -> ProfileSummary:
    """Profile both optimizations of `workload` with `method`; write the outputs into `out_dir` (replaced whole).

    The workload runs three times: once to warm up (first-call costs stay out of the figures), once under
    `count_syncs` without the profiler (wall time, evaluations, host syncs) and once under cProfile.
    `out_dir` and tuna (for `icicle`) are checked before the first run (`force` replaces a folder that is not
    an earlier `profile` output).
    """
    if icicle:
        require_extra(NEEDS["profile"], "the icicle view")
    check_output_dir(out_dir, "profile", force=force)
    passes = pass_bar(("warm-up", "timed", "profiled"), progress)
    kw = dict(method=method, budget=budget, seed=seed, on_strategy=passes.step)
    with passes:
        run_all(workload, **kw)  # warm-up: first-call costs stay out of the figures
        with count_syncs() as counter:
            start = time.perf_counter()
            run_all(workload, **kw)
            wall = time.perf_counter() - start
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            run_all(workload, **kw)
        finally:
            profiler.disable()
    stats = pstats.Stats(profiler)
    total, kernel, readback = time_shares(stats)
    summary = ProfileSummary(
        workload=workload.name,
        method=method,
        budget="default" if budget is None else str(budget),
        wall_s=wall,
        profiled_s=total,
        kernel_s=kernel,
        readback_s=readback,
        other_s=max(total - kernel - readback, 0.0),
        evaluations=counter.evaluations,
        syncs=counter.syncs,
    )
    with atomic_dir(out_dir, command="profile", force=force) as tmp:
        prof = tmp / "profile.prof"
        stats.dump_stats(prof)
        (tmp / "summary.txt").write_text(summary.to_text() + "\n")
        data = asdict(summary) | {"per_evaluation_us": summary.per_evaluation_us}
        (tmp / "summary.json").write_text(json.dumps(data, indent=1) + "\n")
        if icicle:
            write_icicle(prof, tmp / "icicle")
    return summary


def write_icicle(prof: Path, out_dir: Path) -> Path:
    """tuna's static icicle view of a `.prof` file: `out_dir/index.html` and its `static/` assets.

    tuna titles the page with the path it was given, so it runs in the `.prof`'s folder and is given the
    file name (not the temporary folder's path).
    """
    require_extra(NEEDS["profile"], "the icicle view")
    cmd = [sys.executable, "-m", "tuna", prof.name, "--outdir", str(out_dir.resolve()), "--no-browser"]
    proc = subprocess.run(cmd, cwd=prof.parent, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolError(f"tuna failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return out_dir / "index.html"
