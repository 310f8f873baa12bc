"""The GPU check: every CUDA path against the reference, then the suite on CUDA, recorded as its own asv machine.

    python tools/gpu_check.py [--machine gpu-h200] [--bench REGEX] [--full] [--copy-to DIR]

Run it on a machine with an NVIDIA GPU, from the repository root, with torch (a CUDA build) and the bench
extra's asv and nevergrad importable (`tools/gpu_wheels.sh` prepares wheels for a machine that cannot reach
PyPI).  Steps, each printed as it starts:

1. refuse to go on without a CUDA device (exit 2: this check never passes by skipping);
2. `tests/test_cuda.py` with `MARKETSIM_REQUIRE_CUDA=1`: the kernel against the float64 reference on CUDA,
   every optimizer on CUDA with the same read-backs as on CPU and no hidden syncs (torch's sync debug
   mode), the one-call backtest, the compiled path (exit 1 on a failure);
3. the kernel, scaling and device benchmarks (`--bench`) with `asv run --python=same`, results recorded for
   HEAD under asv machine `--machine` in `results/` (a machine name of its own, so GPU series never mix
   with the CPU machines'); `--quick` (one sample each) unless `--full`.  The run is cut at
   `--asv-timeout` seconds so the whole check stays under 10 minutes (exit 1 if it is cut or fails).

Exit 0 only when every step passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MACHINE = "gpu-h200"
#: The CUDA-parametrized benchmarks: kernel latency, batched scaling and the optimizers on each device.
BENCH = r"kernel\.|scaling\.BatchedScaling|devices\."
ASV_TIMEOUT_S = 420


def _step(text: str) -> None:
    print(f"\ngpu_check: {text}", flush=True)


def cuda_summary() -> str | None:
    """'<device name>, torch X, CUDA Y' when torch sees a CUDA device; None when it does not."""
    import torch

    if not torch.cuda.is_available():
        return None
    return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/gpu_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--machine", default=MACHINE, help=f"asv machine name for the results (default: {MACHINE})")
    parser.add_argument("--bench", default=BENCH, help="asv benchmark regex (default: the CUDA-parametrized ones)")
    parser.add_argument("--full", action="store_true", help="asv's full statistics instead of --quick")
    parser.add_argument("--asv-timeout", type=int, default=ASV_TIMEOUT_S, help="seconds allowed for the asv run")
    parser.add_argument("--copy-to", metavar="DIR", help="also copy the machine's results folder here")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    _step("looking for a CUDA device")
    found = cuda_summary()
    if found is None:
        import torch

        print(
            f"gpu_check: no CUDA device: torch {torch.__version__} (CUDA build: {torch.version.cuda or 'no'}) sees "
            "none, so nothing was checked.  Run this on a machine with an NVIDIA GPU.",
            file=sys.stderr,
        )
        return 2
    print(f"gpu_check: {found}")

    _step("CUDA tests (tests/test_cuda.py, MARKETSIM_REQUIRE_CUDA=1)")
    env = {**os.environ, "MARKETSIM_REQUIRE_CUDA": "1"}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "tests/test_cuda.py"], cwd=REPO, env=env)
    if tests.returncode != 0:
        print(f"gpu_check: CUDA tests failed (pytest exit {tests.returncode})", file=sys.stderr)
        return 1

    _step(f"asv on CUDA, machine {args.machine!r}, benchmarks /{args.bench}/")
    asv = [sys.executable, "-m", "asv"]
    subprocess.run([*asv, "machine", "--yes", "--machine", args.machine], cwd=REPO, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    cmd = [*asv, "run", "--python=same", "--set-commit-hash", head.stdout.strip(), "--machine", args.machine]
    cmd += ["--bench", args.bench, "--show-stderr", *([] if args.full else ["--quick"])]
    try:
        bench = subprocess.run(cmd, cwd=REPO, timeout=args.asv_timeout)
    except subprocess.TimeoutExpired:
        print(f"gpu_check: asv run cut after {args.asv_timeout} s; results may be partial", file=sys.stderr)
        return 1
    results = REPO / "results" / args.machine
    if args.copy_to and results.is_dir():
        shutil.copytree(results, Path(args.copy_to) / args.machine, dirs_exist_ok=True)
    if bench.returncode != 0:
        print(f"gpu_check: asv run exited {bench.returncode} (a benchmark failed)", file=sys.stderr)
        return 1
    print(f"\ngpu_check: passed in {time.perf_counter() - start:.0f} s; results in {results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
