"""CPU cost in instructions: valgrind's callgrind counts of the hot paths, per call (noise-free, gated).

Wall-clock timings on the shared 2-core machines move 10 to 40 % between runs (and switch between modes
up to 3.7x apart); the number of instructions a call executes does not.  This module runs the four paths
that matter in **one** valgrind process per commit (`setup_cache`), and each class's `track_instructions`
reads its path's count:

- `SequentialEval`: one objective evaluation, kernel + sum + `.item()` (N = 200, entry/exit);
- `BatchedEvalPerCandidate`: one broadcast call of K = 4096 candidates (N = 200), divided by K;
- `ExactProfile`: the exact solve of the `profile` problem (entry/exit, intraday);
- `ExactBacktest`: the exact solve of the whole `backtest` batch (`workloads.run_stacked`: 70 simulations
  x 2 strategies x 2 policies in one call; skipped at commits without it).

How a count is taken: the child process (this interpreter, `sys.executable`, started under
`valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no`) builds every path from `common`'s
getters, warms each up, switches callgrind's instrumentation on (`callgrind_control --instr=on`), then for
each path collects a loop of CALLS calls between torch's callgrind toggles
(`torch._C._valgrind_toggle` / `_valgrind_toggle_and_dump_stats`, the primitives behind
`torch.utils.benchmark.Timer.collect_callgrind`), each loop followed by the same loop over a no-op
callable: that empty loop's count is the harness's own cost (the toggles, the loop, one Python call per
iteration), measured in the same process and subtracted.  Per call = (loop - empty loop) / calls.
Starting the instrumentation after torch's import, not at exec, is what keeps one collection near a
minute: instrumenting torch's import alone costs about 80 s of CPU here.  GC is off in the loops and
PYTHONHASHSEED is fixed, so the counts do not depend on when a collection runs.  Where
`callgrind_control` cannot reach the process, the collection reruns instrumented from exec (about 80 s
slower).

The tier runs only when asked for (`MARKETSIM_BENCH_INSTRUCTIONS=1`: about a minute per commit) and skips,
with the reason, where valgrind or torch's callgrind bindings are missing.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import common

#: The tier switch: `MARKETSIM_BENCH_INSTRUCTIONS=1` runs this module (one valgrind process per commit).
TIER_ENV = "MARKETSIM_BENCH_INSTRUCTIONS"
#: Candidates per batched call, and the days of the kernel paths (the `profile` recipe at N = 200).
BATCH = 4096
N_DAYS = 200
#: Calls collected per path (counts are per call; more calls only dilute the harness's cost further).
CALLS = {"eval_sequential": 100, "eval_batched": 5, "exact_profile": 5, "exact_backtest": 5}
#: What each path's count is divided by besides the calls (the batched cost is reported per candidate).
PER_CALL_UNITS = {"eval_batched": BATCH}
#: Untimed calls of each path before counting: Python 3.11's adaptive interpreter specializes a function's bytecode
#: only after it has run several times, so with 3 warm-up calls the first counted loop still paid some of that
#: (the sequential evaluation's 20-call loop read up to 1 % above its 40-call loop).
WARMUP_CALLS = 20
#: valgrind's own instrumented run of torch is slow: a whole collection gets this long.
COLLECT_TIMEOUT_S = 1200
TOOLS = ("valgrind", "callgrind_control")


def unavailable() -> str | None:
    """Why the tier cannot run here (not asked for, no valgrind, no callgrind bindings), or None."""
    if os.environ.get(TIER_ENV, "").strip() != "1":
        return f"instruction-count tier: set {TIER_ENV}=1 (one valgrind run, about a minute)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"valgrind not installed ({', '.join(missing)} not on PATH; Debian: apt-get install valgrind)"
    import torch

    if not getattr(torch._C, "_valgrind_supported_platform", lambda: False)():
        return "this torch build has no callgrind bindings (torch._C._valgrind_toggle)"
    return None


def _builders() -> dict[str, Callable[[], Callable[[], object]]]:
    """Path name -> a builder (run in the child, untimed) returning the zero-argument call to count."""

    def eval_sequential():
        objective = common.objective(f"scaling:{N_DAYS}", "entry_exit")
        return lambda: objective(0.01, -0.01).item()

    def eval_batched():
        objective = common.objective(f"scaling:{N_DAYS}", "entry_exit")
        h, l = common.candidates(BATCH)
        return lambda: objective.batch(h, l)

    def exact_profile():
        run, workload = common.api("workloads", "run"), common.workload("profile")
        return lambda: run(workload, "entry_exit", method="exact")

    def exact_backtest():
        run_stacked, workload = common.api("workloads", "run_stacked"), common.workload("backtest")
        return lambda: run_stacked(workload, method="exact")

    return {f.__name__: f for f in (eval_sequential, eval_batched, exact_profile, exact_backtest)}


@dataclass(frozen=True)
class Count:
    """One collected loop: `calls` calls of `path` and the empty loop of the same length, in instructions."""

    path: str
    calls: int
    loop: int
    empty_loop: int

    @property
    def per_call(self) -> float:
        """Instructions per call (per candidate for the batched path), the harness's cost subtracted."""
        return (self.loop - self.empty_loop) / (self.calls * PER_CALL_UNITS.get(self.path, 1))


def callgrind_total(path: Path) -> int:
    """The `totals:` (else `summary:`) instruction count of one callgrind output file."""
    summary = None
    for line in path.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
        if line.startswith("summary:"):
            summary = int(line.split()[1])
    if summary is None:
        raise ValueError(f"{path}: no totals or summary line (not a callgrind output file?)")
    return summary


def collect(
    plan: Sequence[tuple[str, int]], *, hash_seed: int = 0, env: dict[str, str] | None = None
) -> tuple[list[Count], dict[str, str]]:
    """Run `plan` (`(path, calls)` pairs) in one valgrind process: the counts, and `{path: reason}` of skips.

    `hash_seed` (PYTHONHASHSEED) and `env` (added to the environment) only exist to measure how much the
    counts move with incidental process state (`tools/aa_spread.py --instructions --perturb`).
    """
    child_env = dict(os.environ, **(env or {}), PYTHONHASHSEED=str(hash_seed), OMP_NUM_THREADS="1")
    # Compile (or load) the exact solver's numba sweep here, so its on-disk cache is there for the child: a compile
    # under valgrind takes minutes.
    common.warm_compiled()
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        work = Path(tmp)
        try:
            return _run_child(work, plan, instr_atstart=False, env=child_env)
        except _InstrumentationRefused:  # callgrind_control could not reach the process: instrument from exec
            return _run_child(work, plan, instr_atstart=True, env=child_env)


class _InstrumentationRefused(RuntimeError):
    pass


_REFUSED = 3  # the child's exit code when `callgrind_control --instr=on` fails


#: The child's entry: this module imported the way asv imports the suite (only the suite's package from its
#: folder, so `marketsim_opt` is the benchmarked environment's, not a checkout's next to the suite).
_CHILD = """
import importlib.machinery, sys
class _Suite:
    def find_spec(self, name, path=None, target=None):
        if name == {package!r}:
            return importlib.machinery.PathFinder().find_spec(name, [{root!r}], target)
sys.meta_path.insert(0, _Suite())
import {module} as m
m._child({work!r})
"""


def _run_child(
    work: Path, plan: Sequence[tuple[str, int]], *, instr_atstart: bool, env: dict[str, str]
) -> tuple[list[Count], dict]:
    import torch

    import marketsim_opt

    for old in [*work.glob("callgrind.out*"), work / "manifest.json"]:
        old.unlink(missing_ok=True)
    expect = {"marketsim_opt": marketsim_opt.__file__, "torch": torch.__file__}
    (work / "plan.json").write_text(json.dumps({"plan": list(plan), "instr_atstart": instr_atstart, "expect": expect}))
    suite = Path(__file__).resolve().parent
    code = _CHILD.format(package=suite.name, root=str(suite.parent), module=__name__, work=str(work))
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={work / 'callgrind.out'}",
        f"--instr-atstart={'yes' if instr_atstart else 'no'}",
        "--collect-atstart=no",
        "--dump-instr=no",
        "--dump-line=no",
        sys.executable,
        "-P",  # no script or working folder on sys.path
        "-c",
        code,
    ]
    with open(work / "log.txt", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work, timeout=COLLECT_TIMEOUT_S)
    if proc.returncode == _REFUSED and not instr_atstart:
        raise _InstrumentationRefused()
    if proc.returncode != 0:
        tail = (work / "log.txt").read_text()[-3000:]
        raise RuntimeError(f"callgrind collection failed (exit {proc.returncode}):\n{tail}")
    manifest = json.loads((work / "manifest.json").read_text())
    totals = [callgrind_total(work / f"callgrind.out.{i + 1}") for i in range(len(manifest["dumps"]))]
    if len(list(work.glob("callgrind.out.*"))) != len(totals):
        raise RuntimeError("callgrind collection: the dumps do not match the plan")
    by_label = dict(zip((tuple(d) for d in manifest["dumps"]), totals))
    counts = [
        Count(path, calls, by_label[("path", path, calls)], by_label[("empty", "", calls)])
        for path, calls in plan
        if path not in manifest["skipped"]
    ]
    return counts, manifest["skipped"]


def _child(work_dir: str) -> None:
    """The process under valgrind: build, warm up, instrument, then collect each path and its empty loop."""
    import torch

    import marketsim_opt

    common.tune_process()  # as the getters do in asv's setup: one thread, malloc pinned, before building
    # The parent loaded the compiled sweep (`collect`); each path's warm-up calls below load it here too, so the
    # getters' own warm-up solve (`common.warm_compiled`) is left out of this process.
    common._warmed = True
    toggle, dump = torch._C._valgrind_toggle, torch._C._valgrind_toggle_and_dump_stats
    work = Path(work_dir)
    spec = json.loads((work / "plan.json").read_text())
    found = {"marketsim_opt": marketsim_opt.__file__, "torch": torch.__file__}
    if found != spec["expect"]:
        raise SystemExit(f"the process under valgrind imports {found}, not the benchmarked {spec['expect']}")
    builders, fns = _builders(), {}
    skipped: dict[str, str] = {}
    for path in dict.fromkeys(path for path, _ in spec["plan"]):
        try:
            fns[path] = builders[path]()
        except NotImplementedError as why:  # an older commit without the API: this path skips
            skipped[path] = str(why)
            continue
        for _ in range(WARMUP_CALLS):
            fns[path]()
    if not spec["instr_atstart"]:
        _instrumentation_on()

    def empty() -> None:
        pass

    dumps = []

    def loop(fn: Callable[[], object], calls: int, label: tuple[str, str, int]) -> None:
        gc.collect()
        gc.disable()
        toggle()
        for _ in range(calls):
            fn()
        dump()
        gc.enable()
        dumps.append(label)

    for path, calls in spec["plan"]:
        if path in skipped:
            continue
        loop(fns[path], calls, ("path", path, calls))
        loop(empty, calls, ("empty", "", calls))
    (work / "manifest.json").write_text(json.dumps({"dumps": dumps, "skipped": skipped}))


def _instrumentation_on() -> None:
    """`callgrind_control --instr=on` on this process, busy meanwhile (valgrind answers while guest code runs)."""
    proc = subprocess.Popen(
        ["callgrind_control", "--instr=on", str(os.getpid())], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    spin = 0
    while proc.poll() is None:
        spin += sum(range(1000)) & 1
    out = proc.stdout.read().decode(errors="replace")
    if proc.returncode != 0 or "OK" not in out:
        sys.stderr.write(f"callgrind_control --instr=on failed ({proc.returncode}): {out}\n")
        raise SystemExit(_REFUSED)


#: The plan of the suite's collection: every path once.
PLAN = tuple(CALLS.items())


class _Collected:
    """One callgrind collection per commit (`setup_cache`, shared by every subclass), read per path."""

    path = ""
    timeout = 60

    def setup_cache(self):
        reason = unavailable()
        if reason is not None:
            return {"skip": reason}
        counts, skipped = collect(PLAN)
        return {"per_call": {c.path: c.per_call for c in counts}, "skipped": skipped}

    setup_cache.timeout = COLLECT_TIMEOUT_S

    def setup(self, cache):
        if "skip" in cache:
            common.skip(cache["skip"])
        if self.path in cache["skipped"]:
            common.skip(cache["skipped"][self.path])

    def track_instructions(self, cache):
        return cache["per_call"][self.path]

    track_instructions.unit = "instructions"


class SequentialEval(_Collected):
    """One objective evaluation and its `.item()` (N = 200, entry/exit), instructions per call."""

    path = "eval_sequential"


class BatchedEvalPerCandidate(_Collected):
    """One broadcast call of K = 4096 candidates (N = 200, entry/exit), instructions per candidate."""

    path = "eval_batched"


class ExactProfile(_Collected):
    """The exact solve of the `profile` problem (entry/exit, intraday), instructions per solve."""

    path = "exact_profile"


class ExactBacktest(_Collected):
    """The exact solve of the whole `backtest` batch (`run_stacked`), instructions per solve."""

    path = "exact_backtest"
