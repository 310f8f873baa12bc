"""Why the suite pins glibc's malloc: one batched call timed in fresh processes, with and without the pin.

    python tools/malloc_modes.py [--processes 6] [--n-days 200] [--batch 4096] [--calls 30]

Each process builds the suite's objective and candidates (`benchmarks.common`), makes the batched call a few
times to warm up, then times `--calls` calls and prints the fastest and the median.  Half the runs leave
glibc's dynamic mmap threshold alone (the benchmarks' module is imported with the pin switched off), half
pin it as the suite does.  Without the pin the medians fall into two modes, a process's history deciding
which; with it they do not.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import os, statistics, sys, time
sys.path.insert(0, {repo!r})
if not {pin}:
    os.environ["MARKETSIM_BENCH_NO_MALLOC_PIN"] = "1"
from benchmarks import common
common.tune_process()  # what the suite's data getters do before a benchmark's setup gets its data
obj = common.objective("scaling:{n}", "entry_exit")
h, l = common.candidates({k})
for _ in range(3):
    obj.batch(h, l)
times = []
for _ in range({calls}):
    start = time.perf_counter()
    obj.batch(h, l)
    times.append(time.perf_counter() - start)
print(common.MALLOC_PINNED, min(times), statistics.median(times))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/malloc_modes.py", description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=6, help="fresh processes per setting (default: 6)")
    parser.add_argument("--n-days", type=int, default=200)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args(argv)
    for name in ("processes", "n_days", "batch", "calls"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be at least 1")
    print(f"BatchedEval N = {args.n_days}, K = {args.batch}: {args.calls} calls per fresh process")
    for pin in (False, True):
        medians = []
        code = _CHILD.format(repo=str(REPO), pin=pin, n=args.n_days, k=args.batch, calls=args.calls)
        for _ in range(args.processes):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            pinned, fastest, median = out.stdout.split()
            medians.append(float(median))
            print(f"  pinned={pinned:5}  fastest {float(fastest) * 1e3:7.2f} ms  median {float(median) * 1e3:7.2f} ms")
        spread = max(medians) / min(medians)
        print(
            f"{'pinned' if pin else 'glibc defaults'}: medians {min(medians) * 1e3:.2f} to "
            f"{max(medians) * 1e3:.2f} ms ({spread:.2f}x), middle {statistics.median(medians) * 1e3:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
