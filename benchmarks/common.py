"""Shared inputs of the suite: cached getters over `marketsim_opt.workloads`, devices, timers' helpers.

Every benchmark asks this module for its data, and this module asks
`marketsim_opt.workloads`; nothing here builds data of its own.  Seeds are
fixed and only ever appended (`CANDIDATE_SEED`), so a series never changes
meaning across the history.

torch runs single-threaded in the suite: on these shared 2-core machines a
second thread adds more noise than speed, and the ratios the project tracks
are per-thread costs.

`tune_process()` sets both (threads, then the malloc pin below) for the whole
process, once.  Importing this module changes nothing: the getters of data and
of the package's API (`api`, `workload`, `objective`, `candidates`) call
`tune_process()` first (then `warm_compiled()`), so the tuning happens in the setup of the benchmark
that first asks for them, in the process asv times it in, before anything is
timed.  Calling it from the getters rather than from each benchmark's `setup`
keeps the benchmarks' code, and so the version asv hashes from it and the
history in `results/`, as it was.  A tool that times the suite's code without
its getters calls `tune_process()` itself.

glibc's malloc is pinned to keep freed memory (`pin_malloc`): by default it
hands blocks above a *dynamic* threshold straight back to the kernel, so the
same batched call either reuses its `[K, N]` temporaries or page-faults fresh
zeroed ones on every call, depending on what the process freed before.  That
made the memory-heavy timings bimodal (3x to 4x apart, one mode lasting a whole
process); see benchmarks/README.md.

`MARKETSIM_BENCH_SLOW=1` adds the slow tier (large N, every nevergrad
optimizer on the backtest).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

import numpy as np
import torch

#: glibc's malloc keeps and reuses blocks up to this size instead of mapping and unmapping them per call.
MALLOC_KEEP_BYTES = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt(3) parameter numbers


def pin_malloc(keep_bytes: int = MALLOC_KEEP_BYTES) -> bool:
    """Fix glibc's mmap and trim thresholds at `keep_bytes` (turning off their dynamic adjustment).

    Allocations below `keep_bytes` then come from the heap and freed memory stays there for the next call,
    whatever the process did before.  True when glibc took both settings; False elsewhere (musl, macOS),
    where the suite runs with the platform's allocator as it is.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, keep_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, keep_bytes))


#: Whether `tune_process` pinned malloc in this process: False until it runs, where glibc is absent, or with
#: `MARKETSIM_BENCH_NO_MALLOC_PIN=1` (glibc's defaults kept, `tools/malloc_modes.py`'s baseline).
MALLOC_PINNED = False
_tuned = False


def tune_process() -> bool:
    """Run torch on one thread and pin glibc's malloc (unless opted out) for this whole process, once.

    Idempotent: later calls change nothing.  Returns `MALLOC_PINNED`.
    """
    global MALLOC_PINNED, _tuned
    if not _tuned:
        _tuned = True
        torch.set_num_threads(1)
        MALLOC_PINNED = os.environ.get("MARKETSIM_BENCH_NO_MALLOC_PIN", "").strip() != "1" and pin_malloc()
    return MALLOC_PINNED


#: The optimizers' libraries, imported with this module (so once, in asv's forkserver, before any benchmark
#: process is forked): a whole-optimization timing never pays for an import, whatever asv's flags (`--quick`
#: makes no warm-up call).  Importing them changes no process state.
PRELOADED = ("scipy.optimize", "nevergrad")


def _preload(names: tuple[str, ...]) -> None:
    import importlib
    import importlib.util

    for name in names:
        if importlib.util.find_spec(name.split(".")[0]) is not None:
            importlib.import_module(name)


_preload(PRELOADED)

#: Devices every device-aware benchmark is parametrized over; `cuda` is skipped where there is none.
DEVICES = ("cpu", "cuda")
#: The slow tier runs only when asked for.
SLOW = os.environ.get("MARKETSIM_BENCH_SLOW", "").strip() == "1"
#: Seed of the candidate batches (append new seeds; never change this one).
CANDIDATE_SEED = 7


_warmed = False


def warm_compiled() -> None:
    """Load the exact solver's compiled sweep in this process, once, where the commit has one
    (`marketsim_opt.optimizers.exact_fused`, issue 19): numba reads its cache (about 0.3 s) or compiles.

    The getters call it after `tune_process`, so it happens in a benchmark's setup, never in a timing, whatever
    asv's flags (`--quick` makes no warm-up call).  Not at import: the forkserver would then start numba's
    OpenMP threads before forking every benchmark process.
    """
    global _warmed
    if _warmed:
        return
    _warmed = True
    import importlib.util

    if importlib.util.find_spec("marketsim_opt.optimizers.exact_fused") is None:
        return
    from marketsim_opt import workloads

    workloads.run(workloads.scaling(6), "entry_exit", method="exact")


def _first_use() -> None:
    tune_process()
    warm_compiled()


def skip(reason: str) -> None:
    """Skip the benchmark at hand (asv treats NotImplementedError raised in setup as 'skipped')."""
    raise NotImplementedError(reason)


def require(device: str) -> None:
    """Skip unless `device` is usable here."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        skip("no CUDA device")


def require_slow() -> None:
    """Skip unless the slow tier was asked for."""
    if not SLOW:
        skip("slow tier: set MARKETSIM_BENCH_SLOW=1")


def synchronize(device: str) -> None:
    """Wait for queued device work, so a timer does not stop before the GPU does."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def api(module: str, name: str):
    """`marketsim_opt.<module>.<name>`, or a skip on an older commit that does not have it yet."""
    import importlib

    _first_use()

    qualified = f"marketsim_opt.{module}"
    try:
        found = importlib.import_module(qualified)
    except ModuleNotFoundError as exc:
        if exc.name != qualified:
            raise  # a package that fails to import is a failure, not a skip
        skip(f"{qualified}.{name} does not exist at this commit")
    if not hasattr(found, name):
        skip(f"{qualified}.{name} does not exist at this commit")
    return getattr(found, name)


def split_method(method: str) -> tuple[str, int | None]:
    """`"name@budget"` -> `(name, budget)`; `@default` or no `@` -> budget None (the strategy's default)."""
    name, _, budget = method.partition("@")
    return name, (None if budget in ("", "default") else int(budget))


@functools.cache
def workload(name: str, device: str = "cpu"):
    """A named workload: `profile`, `backtest` (bundled series) or `scaling:<N>`."""
    _first_use()
    if name == "profile":
        return api("workloads", "profile")(device=device)
    if name == "backtest":
        return api("workloads", "backtest")(device=device)
    if name.startswith("scaling:"):
        return api("workloads", "scaling")(int(name.split(":", 1)[1]), device=device)
    raise ValueError(f"workload: unknown name {name!r}")


class Evaluations:
    """A commit's objective behind the suite's two evaluation calls, whichever scoring API the commit has.

    `evaluations(h, l)` scores one candidate (numbers) as the historical optimizer did: a one-element tensor,
    not read back.  `evaluations.batch(h, l)` scores `[K]` candidates of a one-series problem in one broadcast
    call: `[K]` profits.  Since
    issue 18 both are `Objective.score` (`[S, K]` in and out); before, they were `Objective.__call__` and
    `Objective.batch`.  The benchmarks' own code calls these two, so it (and asv's versions) stays the same
    across the change.
    """

    __slots__ = ("objective", "_one", "_many")

    def __init__(self, objective) -> None:
        self.objective = objective
        score = getattr(objective, "score", None)
        if score is None:  # before issue 18
            self._one, self._many = objective.__call__, objective.batch
        else:
            self._one, self._many = score, lambda h, l: score(h.unsqueeze(0), l.unsqueeze(0))[0]

    def __call__(self, h: float, l: float) -> torch.Tensor:
        return self._one(h, l)

    def batch(self, h: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
        return self._many(h, l)


@functools.cache
def objective(workload_name: str, strategy: str, device: str = "cpu", close_at_eod: bool = False) -> Evaluations:
    """The strategy's objective on a workload's problem, for one policy, behind `Evaluations`."""
    problem = workload(workload_name, device).problem
    if strategy == "entry_exit":
        positions = api("strategies", "entry_exit_positions")(problem.high_pred, problem.low_pred)
        built = api("strategies", "entry_exit_objective")(problem, positions, close_at_eod=close_at_eod)
    else:
        built = api("strategies", "always_on_objective")(problem, close_at_eod=close_at_eod)
    return Evaluations(built)


@functools.cache
def candidates(k: int, device: str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """`k` seeded `(h, l)` candidates uniform in the default box, as two `[K]` tensors."""
    _first_use()
    rng = np.random.default_rng(CANDIDATE_SEED)
    hl = rng.uniform(-0.03, 0.03, size=(2, k))
    return torch.as_tensor(hl[0], dtype=dtype, device=device), torch.as_tensor(hl[1], dtype=dtype, device=device)


@functools.cache
def reference(name: str):
    """The frozen reference of a named workload (`benchmarks/ruler/frozen/<name>.json`), checked against the data
    this commit builds for it (`ruler.references.check_same_data`: a ReferenceError naming the field otherwise)."""
    from .ruler import references

    frozen = references.load(name)
    p = workload(name).problem
    data = {k: getattr(p, k).detach().double().cpu().numpy() for k in ("close", "high", "low", "high_pred", "low_pred")}
    references.check_same_data(frozen, **data, trading_fee=float(p.trading_fee), is_crypto=bool(p.is_crypto))
    return frozen


def warm_up(workload_name: str, strategy: str, method: str) -> None:
    """Run `method` once, untimed and uncounted, on one simulation of a workload at a budget of 4 (exact: none).

    The first use of a method imports its library (scipy, nevergrad, optuna) and fills first-call caches; a
    measured run should not pay for that.
    """
    import dataclasses

    w = workload(workload_name)
    # A problem is [S, N] since issue 18 (indexing keeps one row); before, only a batched one could be indexed.
    one = dataclasses.replace(w, problem=w.problem[0]) if getattr(w.problem, "batched", True) else w
    api("workloads", "run")(one, strategy, method=method, budget=None if method == "exact" else 4)


def seconds_per_call(fn, min_run_time: float = 0.2) -> float:
    """Median seconds per call of `fn()` over blocks of back-to-back calls, on one thread
    (`torch.utils.benchmark.Timer.blocked_autorange`, which also synchronizes CUDA).

    The statistic `marketsim_opt.reports.timing.seconds_per_call` gives `targets` and the report, taken here by
    the harness itself, so a commit cannot change how its own figure is measured.
    """
    from torch.utils.benchmark import Timer

    return Timer("fn()", globals={"fn": fn}, num_threads=1).blocked_autorange(min_run_time=min_run_time).median


def region_peak_bytes(fn) -> int:
    """memray's high-water mark (bytes) of heap memory allocated while `fn()` runs, and nothing before it."""
    import tempfile

    import memray

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "region.bin")
        with memray.Tracker(path):
            fn()
        return int(memray.FileReader(path).metadata.peak_memory)
