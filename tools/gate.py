"""The regression gate: compare two commits on the asv suite and say, by exit code, whether HEAD regressed.

    python tools/gate.py BASE HEAD [--timings] [--no-instructions] [--bench REGEX] [--json FILE] [--all]

Exit codes, which never claim more than was measured:

- 0: every judged metric was measured (a finite value) on both commits, compared, and none regressed (metrics
  skipped on both commits for a reason on the allow-list below are reported and set aside);
- 1: at least one regression, and every other judged metric was measured on both commits;
- 2: the gate cannot decide: a revision that does not exist, asv or git missing, a build or benchmark failure,
  a judged metric that failed (asv recorded None), is missing from one side's results, or was skipped (NaN) on
  one or both commits without an allow-listed reason, an empty judged set, or any other error; one line on
  stderr, `gate: cannot decide: <what>` (KeyboardInterrupt: exit 130).

The gate never imports the code it judges: asv builds each commit into its own managed virtualenv (the
repository's `asv.conf.json`, with results in a temporary folder so `results/` is untouched) and runs the
benchmarks of this checkout's `benchmarks/` (asv's benchmark_dir) on both; this process reads only asv's
files, and needs only asv and git.

The judged set is every parameter combination of every benchmark the run's `--bench` regex selects (read from
the `benchmarks.json` asv writes into the results folder, named as `asv compare` names them) whose metric kind
is judged: deterministic, memory, instructions (unless `--no-instructions`) and, with `--timings`, timings.  By
default (DEFAULT_BENCH) that is OptimizerMetrics' evaluations, host syncs and regret, OutOfSample's next-day
loss, the host syncs of `devices.DeviceOptimize` and `devices.DeviceBacktest`, memray's region peaks, and the
instruction counts.

How each metric is judged (all are lower-is-better, as asv assumes):

- deterministic (`track_host_syncs`, `track_evaluations`, `track_regret_bp`, `track_next_day_loss_bp`): no
  noise, so any increase is a regression (the two in bp, BP_METRICS: beyond REGRET_TOLERANCE_BP); any decrease
  is an improvement.  `track_next_day_loss_bp` is minus the mean next-day profit of a method's answer on the
  backtest's frozen test days (benchmarks/optimizers.py, OutOfSample): a method whose answer earns less out of
  sample regresses, even when its in-sample regret improved.
- memory (`track_region_peak_bytes`, memray's high-water mark of the call under test): a regression above
  MEMORY_FACTOR x BASE and more than MEMORY_MIN_BYTES above it.  asv's `peakmem_*` (whole-process RSS) is too
  noisy to judge and is not.
- instructions (`instructions.*.track_instructions`, callgrind's instruction counts per call; on by default,
  `--no-instructions` to leave them out): nearly deterministic, so a regression above INSTRUCTION_FACTOR x BASE,
  a factor set from their measured A/A spread.  This is the gate's measure of CPU cost.  The gate sets
  MARKETSIM_BENCH_INSTRUCTIONS=1 for its asv run and cannot decide (exit 2) when valgrind is missing or no
  instruction count was measured on either commit, rather than pass without them.
- timings (`time_*`, only with `--timings`; by default the millisecond-scale kernel timings, TIMING_BENCH):
  samples of both commits are taken in interleaved rounds in one
  asv run and recorded; a regression needs all three of: asv's statistical test (`asv compare`'s
  Mann-Whitney U on the samples) calls the two sample sets different, the ratio of medians exceeds
  TIME_FACTOR, and the ratio of the fastest samples exceeds TIME_FACTOR.  A real 2x slowdown moves the whole
  distribution, fastest and median alike; the A/A noise measured here moves one or the other (slow stretches
  of the shared machine lift medians, lucky fast windows lower one side's minimum; see benchmarks/README.md).
  The table shows medians.  `track_wall_time` is one sample and is never judged.

Verdicts of a judged metric: `regression`, `improvement`, `unchanged` (measured on both); otherwise `failed`
(asv recorded None: the benchmark or its setup raised, or the commit did not build or import), `missing`
(absent from one side's results), `skipped on BASE`, `skipped on HEAD`, `skipped on both` (asv's NaN), or
`allowed`.  Every one of those but `allowed` makes the exit code 2.

The allow-list (ALLOWED), used only for metrics skipped on BOTH commits, each with the reason shown in the row:

- `optuna:TPE` rows: the optional `optuna` extra, which the gate's asv environments do not install
  (`asv.conf.json`'s matrix has no optuna);
- OptimizerMetrics rows on the `backtest` workload, and OutOfSample rows (backtest only), whose method is not in
  `BACKTEST_FAST` of `benchmarks/optimizers.py` (read from that file with `ast`, not imported): the slow tier
  (MARKETSIM_BENCH_SLOW=1), which the gate does not run;
- rows whose `device` parameter is `cuda` when this machine has no CUDA (no `nvidia-smi` on PATH).

The frozen references (`benchmarks/ruler/frozen`) are what regret and the next-day loss are measured against:
when they differ between BASE and HEAD the gate says so on its own line before the table (and in the JSON); that
alone does not change the exit code.

The table (GitHub-flavoured markdown, undecided rows first, then regressions) goes to stdout: every row that is
not `unchanged`, allowed rows grouped as one line per reason (`--all`: every row).  `--json FILE` gets
`{"base", "head", "exit_code", "references_changed", "rows"}`, written atomically when the rows were judged.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "tools") not in sys.path:  # the tools' shared _atomic, also when this file is loaded by path (tests)
    sys.path.append(str(REPO / "tools"))

from _atomic import write_text_atomic  # noqa: E402

INSTALL = "pip install -c constraints.txt -e '.[bench]'"

#: Metrics with no noise: any increase is a regression.
DETERMINISTIC = ("track_host_syncs", "track_evaluations", "track_regret_bp", "track_next_day_loss_bp")
#: The deterministic metrics in basis points, float64 sums: an increase counts beyond REGRET_TOLERANCE_BP.
BP_METRICS = ("track_regret_bp", "track_next_day_loss_bp")
REGRET_TOLERANCE_BP = 1e-6
#: Memory metrics and their relative threshold (see benchmarks/README.md for the A/A spread behind it).
#: asv's `peakmem_` (the whole process's peak RSS) is not judged: it moved 13 % between two runs of the
#: same code here (allocator and page reuse); memray's region high-water mark is what the gate trusts.
MEMORY = ("track_region_peak_bytes",)
MEMORY_FACTOR = 1.10
#: ... and the least change in bytes that counts: a region's peak can include one more of Python's 1 MiB object
#: arenas, or not, depending on the process's state before it (one gate run measured exact on `scaling:200` at
#: 5,403,912 and 6,452,488 bytes for code that does not differ there: exactly 1 MiB, 1.19x of a small peak).
#: Twice that is far below the 64 MiB plant.
MEMORY_MIN_BYTES = 2 * 2**20
#: Instruction counts (benchmarks/instructions.py) and their relative threshold, from their measured A/A
#: spread (benchmarks/README.md, "Instruction counts"): through the gate, 10 copies of the same code counted
#: exactly the same (spread 0); with the process state perturbed (hash seed, environment size; 10 more) the
#: largest spread was 0.77 %.  3 % is about four times that, and far below the planted 2x kernel.
INSTRUCTIONS = ("track_instructions",)
INSTRUCTION_FACTOR = 1.03
#: The instruction-count tier: its benchmarks and the switch the gate sets for its asv run.
INSTRUCTION_BENCH = r"instructions\."
INSTRUCTION_ENV = "MARKETSIM_BENCH_INSTRUCTIONS"
INSTRUCTION_TOOLS = ("valgrind", "callgrind_control")
#: Timing threshold on the ratios of medians and of fastest samples, with asv's statistics (benchmarks/README.md):
#: on TIMING_BENCH no A/A comparison was flagged even at 1.3 (60 of them; largest ratios 1.53 of medians, 1.46
#: of fastest samples), and the planted 2x kernel gives them 1.7x to 4.2x.
TIME_FACTOR = 1.5
#: Benchmarks the gate runs by default: the deterministic and memory metrics.  The host syncs of
#: `devices.DeviceOptimize` and `devices.DeviceBacktest` are among them: the one-call backtest's read-back count
#: is a performance target (the whole backtest solved exactly with a fixed, small number of host read-backs),
#: judged like OptimizerMetrics' counts.
#: (asv matches parametrized benchmarks as `name(param, ...)`, hence the `\(` rather than a `$`.)
DEFAULT_BENCH = (
    r"OptimizerMetrics\.track_(host_syncs|evaluations|regret_bp)\("
    r"|OutOfSample\.track_next_day_loss_bp\("
    r"|devices\.Device(Optimize|Backtest)\.track_host_syncs\("
    r"|track_region_peak_bytes"
)
#: Added with --timings: the kernel latencies of a millisecond or more, where the kernel's own work dominates.
#: The sub-millisecond ones (dispatch-bound) moved up to 2.1x between runs of the same code here whenever
#: other work shared the machine, as much as a 2x slowdown moves them, so no factor separates the two; their
#: CPU cost is judged by instruction counts instead (pass --bench to time them anyway).
TIMING_BENCH = r"kernel\.BatchedEval\.time_eval_batched\((200, 4096|2000, 64|2000, 4096),"
TIMING_ROUNDS = 4
MACHINE = "gate"
#: Where the frozen references of the suite's regret live (a change between BASE and HEAD is reported).
REFERENCES = "benchmarks/ruler/frozen"

#: Verdicts that make the gate unable to decide (exit 2), in the table's order.
UNDECIDED = ("failed", "missing", "skipped on BASE", "skipped on HEAD", "skipped on both")
COMPARED = ("regression", "improvement", "unchanged")
ORDER = {v: i for i, v in enumerate((*UNDECIDED, "regression", "improvement", "unchanged", "allowed"))}


class HarnessError(RuntimeError):
    """The gate could not decide (exit 2)."""


@dataclass
class Change:
    """One metric of one benchmark and parameter combination, BASE against HEAD.

    `verdict`: regression | improvement | unchanged | failed | missing | skipped on BASE | skipped on HEAD |
    skipped on both | allowed; `note`: why, for the rows that were not compared (the allow-list's reason, or
    which side failed or lacks the metric).
    """

    benchmark: str
    kind: str  # deterministic | memory | instructions | timing
    base: float | None
    head: float | None
    ratio: float | None
    verdict: str
    note: str = ""


# --- the allow-list -------------------------------------------------------------------------------------------

Matcher = Callable[[str, Mapping[str, str], Path], bool]


@cache
def backtest_fast(optimizers_py: Path) -> tuple[str, ...]:
    """`BACKTEST_FAST` of benchmarks/optimizers.py, read with `ast` (the gate imports neither torch nor the suite)."""
    try:
        tree = ast.parse(optimizers_py.read_text(), filename=str(optimizers_py))
    except (OSError, SyntaxError) as exc:
        raise HarnessError(f"cannot read BACKTEST_FAST from {optimizers_py}: {exc}") from None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "BACKTEST_FAST" for t in targets):
            try:
                fast = ast.literal_eval(value)
            except ValueError:
                break
            if isinstance(fast, tuple) and all(isinstance(v, str) for v in fast):
                return fast
            break
    raise HarnessError(f"{optimizers_py}: no module-level BACKTEST_FAST = (a tuple of method strings)")


def _optuna(benchmark: str, params: Mapping[str, str], repo: Path) -> bool:
    return str(params.get("method", "")).startswith("optuna:")


def _backtest_slow_tier(benchmark: str, params: Mapping[str, str], repo: Path) -> bool:
    on_backtest = (".OptimizerMetrics." in benchmark and params.get("workload") == "backtest") or (
        ".OutOfSample." in benchmark
    )
    return on_backtest and params.get("method") not in backtest_fast(repo / "benchmarks" / "optimizers.py")


def _cuda_without_gpu(benchmark: str, params: Mapping[str, str], repo: Path) -> bool:
    return params.get("device") == "cuda" and shutil.which("nvidia-smi") is None


#: (matcher, reason) pairs, used only for metrics skipped on BOTH commits (see the module docstring).
ALLOWED: tuple[tuple[Matcher, str], ...] = (
    (
        _optuna,
        "optuna:TPE needs the optional optuna extra, which the gate's asv environments do not install "
        "(asv.conf.json's matrix has no optuna)",
    ),
    (
        _backtest_slow_tier,
        "backtest methods outside BACKTEST_FAST (benchmarks/optimizers.py) are the slow tier "
        "(MARKETSIM_BENCH_SLOW=1), which the gate does not run",
    ),
    (_cuda_without_gpu, "no CUDA device on this machine"),
)


def allowed(benchmark: str, params: Mapping[str, str], repo: Path = REPO) -> str | None:
    """The allow-list's reason for a metric skipped on both commits; None when it is not on the list."""
    for matcher, reason in ALLOWED:
        if matcher(benchmark, params, repo):
            return reason
    return None


# --- judging --------------------------------------------------------------------------------------------------


def _leaf(name: str) -> str:
    """The metric's method name: `optimizers.X.track_regret_bp('a', 'b')` -> `track_regret_bp`."""
    return name.split("(", 1)[0].rsplit(".", 1)[-1]


def kind_of(name: str) -> str | None:
    """How a benchmark's metric is judged, from its name; None for metrics the gate does not judge."""
    leaf = _leaf(name)
    if leaf in DETERMINISTIC:
        return "deterministic"
    if leaf.startswith(MEMORY):
        return "memory"
    if leaf in INSTRUCTIONS:
        return "instructions"
    if leaf.startswith("time_"):
        return "timing"
    return None


def judged_kinds(*, timings: bool, instructions: bool = True) -> frozenset[str]:
    """The metric kinds a run judges."""
    return frozenset(
        {"deterministic", "memory"} | ({"instructions"} if instructions else set()) | ({"timing"} if timings else set())
    )


def judge(name: str, kind: str, base: float, head: float, base_ss=None, head_ss=None) -> str:
    """`regression`, `improvement` or `unchanged` for one metric measured on both commits."""
    if kind == "deterministic":
        tol = REGRET_TOLERANCE_BP if _leaf(name) in BP_METRICS else 0.0
        if head > base + tol:
            return "regression"
        return "improvement" if head < base - tol else "unchanged"
    factor = {"memory": MEMORY_FACTOR, "instructions": INSTRUCTION_FACTOR}.get(kind, TIME_FACTOR)
    if kind == "timing":
        if base_ss and head_ss and not _statistically_different(base_ss, head_ss):
            return "unchanged"
        fast_b, fast_h = _fastest(base, base_ss), _fastest(head, head_ss)
        if head > base * factor and fast_h > fast_b * factor:
            return "regression"
        return "improvement" if head * factor < base and fast_h * factor < fast_b else "unchanged"
    floor = MEMORY_MIN_BYTES if kind == "memory" else 0.0
    if head > base * factor and head - base > floor:
        return "regression"
    return "improvement" if head * factor < base and base - head > floor else "unchanged"


def _statistically_different(base_ss, head_ss) -> bool:
    from asv import _stats  # asv compare's own test (Mann-Whitney U on the samples, or the CIs)

    (stats_a, samples_a), (stats_b, samples_b) = base_ss, head_ss
    if not stats_a or not stats_b:
        return True
    return bool(_stats.is_different(samples_a, samples_b, stats_a, stats_b))


def compare(
    base: dict[str, tuple],
    head: dict[str, tuple],
    *,
    timings: bool,
    expected: Mapping[str, Mapping[str, str]] | None = None,
    instructions: bool = True,
    repo: Path = REPO,
) -> list[Change]:
    """One Change per judged metric, undecided rows first, then regressions (worst first).

    `expected`: `{benchmark(params): {param_name: value}}`, the judged set (expected_metrics); metrics of a judged
    kind found in either side's results are rows too.  None: just those found in the results.
    """
    kinds = judged_kinds(timings=timings, instructions=instructions)
    params = {name: p for name, p in (expected or {}).items() if kind_of(name) in kinds}
    for name in set(base) | set(head):
        if kind_of(name) in kinds:
            params.setdefault(name, {})
    changes = [_row(name, kind_of(name), base, head, params[name], repo) for name in sorted(params)]

    def key(c: Change):
        ratio = c.ratio or 0.0
        return ORDER[c.verdict], ratio if c.verdict == "improvement" else -ratio, c.benchmark

    return sorted(changes, key=key)


def _row(name: str, kind: str, base: dict, head: dict, params: Mapping[str, str], repo: Path) -> Change:
    if name not in base or name not in head:
        sides = " and ".join(side for side, values in (("BASE", base), ("HEAD", head)) if name not in values)
        b, h = base.get(name, (None, None))[0], head.get(name, (None, None))[0]
        return Change(name, kind, _num(b), _num(h), None, "missing", f"absent from {sides}'s results")
    (b, b_ss), (h, h_ss) = base[name], head[name]
    if b is None or h is None:  # asv records a failed benchmark as None (a skipped one as NaN)
        sides = " and ".join(side for side, v in (("BASE", b), ("HEAD", h)) if v is None)
        return Change(name, kind, _num(b), _num(h), None, "failed", f"failed on {sides} (see the asv log)")
    for side, v in (("BASE", b), ("HEAD", h)):
        if not isinstance(v, int | float) or math.isinf(v):
            return Change(name, kind, _num(b), _num(h), None, "failed", f"not a finite number on {side}: {v!r}")
    if math.isnan(b) and math.isnan(h):
        reason = allowed(name, params, repo)
        if reason is not None:
            return Change(name, kind, None, None, None, "allowed", reason)
        return Change(name, kind, None, None, None, "skipped on both", "skipped on both commits; not allow-listed")
    if math.isnan(b) or math.isnan(h):
        side = "BASE" if math.isnan(b) else "HEAD"
        return Change(name, kind, _num(b), _num(h), None, f"skipped on {side}", "measured on one commit only")
    verdict = judge(name, kind, b, h, b_ss, h_ss)
    ratio = h / b if b else (math.inf if h > b else 1.0)
    return Change(name, kind, b, h, ratio, verdict)


def _fastest(value: float, stats_samples) -> float:
    """The fastest recorded sample of a timing (asv's median `value` when no samples were recorded)."""
    samples = (stats_samples or (None, None))[1] or ()
    finite = [x for x in samples if x is not None and not math.isnan(x)]
    return min(finite) if finite else value


def _skipped(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(value):
    return None if _skipped(value) or not isinstance(value, int | float) or math.isinf(value) else value


def exit_code(changes: list[Change]) -> int:
    """2 when a row is undecided or nothing was compared, else 1 on any regression, else 0."""
    if any(c.verdict in UNDECIDED for c in changes) or not any(c.verdict in COMPARED for c in changes):
        return 2
    return 1 if any(c.verdict == "regression" for c in changes) else 0


#: The table's columns: (header, alignment); the numbers are right-aligned.
COLUMNS = (
    ("verdict", "left"),
    ("benchmark", "left"),
    ("kind", "left"),
    ("BASE", "right"),
    ("HEAD", "right"),
    ("HEAD/BASE", "right"),
    ("note", "left"),
)


def to_markdown(changes: list[Change], base: str, head: str, *, all_rows: bool = False) -> str:
    """The counts line and the table: every row that is not unchanged (allowed ones grouped by reason), or all."""
    count = {v: sum(c.verdict == v for c in changes) for v in ORDER}
    skipped = sum(count[v] for v in UNDECIDED if v.startswith("skipped"))
    counts = (
        f"Gate: {base[:8]} (BASE) -> {head[:8]} (HEAD): {count['regression']} regression(s), "
        f"{count['improvement']} improvement(s), {count['unchanged']} unchanged, {count['failed']} failed, "
        f"{count['missing']} missing, {skipped} skipped, {count['allowed']} allowed"
    )
    rows = [
        [
            c.verdict,
            f"`{c.benchmark}`",
            c.kind,
            _fmt(c.base),
            _fmt(c.head),
            "-" if c.ratio is None else f"{c.ratio:.3g}",
        ]
        + [c.note]
        for c in changes
        if all_rows or c.verdict not in ("allowed", "unchanged")
    ]
    if not all_rows:
        reasons: dict[str, int] = {}
        for c in changes:
            if c.verdict == "allowed":
                reasons[c.note] = reasons.get(c.note, 0) + 1
        rows += [
            ["allowed", f"{n} metric(s) skipped on both commits", "-", "-", "-", "-", r] for r, n in reasons.items()
        ]
    from tabulate import tabulate  # installed with asv, whose absence `main` reports first (exit 2)

    headers, align = zip(*COLUMNS, strict=True)
    table = tabulate(rows, headers, tablefmt="pipe", disable_numparse=True, colalign=align)
    return f"{counts}\n\n{table}\n"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"


# --- asv and git ----------------------------------------------------------------------------------------------


def _git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise HarnessError(f"git {' '.join(args)}: {proc.stderr.strip() or 'failed'}")
    return proc.stdout.strip()


def resolve(rev: str, repo: Path) -> str:
    """The full commit hash of `rev`; HarnessError naming it when it is not a commit."""
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=repo)
    except HarnessError:
        raise HarnessError(f"revision {rev!r} is not a commit of {repo}") from None


def references_changed(repo: Path, base: str, head: str) -> list[str]:
    """The files under REFERENCES that differ between the two commits (paths relative to the repository)."""
    out = _git("diff", "--name-only", base, head, "--", REFERENCES, cwd=repo)
    return [line for line in out.splitlines() if line]


def _tail(text: str, lines: int = 5) -> str:
    return " / ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip()) or "no output"


def run_asv(
    repo: Path, commits: list[str], work: Path, *, bench: str, timings: bool, env_dir: Path, instructions: bool = False
) -> Path:
    """Run the selected benchmarks on `commits` in managed environments; the results folder.

    `instructions` turns the instruction-count tier on (INSTRUCTION_ENV) for the benchmark processes; off, it
    is unset.  Called again with the same `work`, results accumulate.  A benchmark that fails (asv's exit 2,
    with results written) is left to the results, where it is a `failed` row; HarnessError when `asv machine`
    or `asv run` fails otherwise.
    """
    from asv.util import load_json

    conf = load_json(str(repo / "asv.conf.json"), js_comments=True)
    conf.update(
        repo=str(repo),
        benchmark_dir=str(repo / conf.get("benchmark_dir", "benchmarks")),
        results_dir=str(work / "results"),
        html_dir=str(work / "html"),
        env_dir=str(env_dir),
    )
    conf_path = work / "asv.conf.json"
    conf_path.write_text(json.dumps(conf, indent=2))
    hashes = work / "hashes.txt"
    hashes.write_text("\n".join(commits) + "\n")
    asv = [sys.executable, "-m", "asv"]
    machine = [*asv, "machine", "--yes", "--machine", MACHINE, "--config", str(conf_path)]
    proc = subprocess.run(machine, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise HarnessError(f"`{' '.join(machine)}` exited {proc.returncode}: {_tail(proc.stdout or '')}")
    cmd = [
        *asv,
        "run",
        f"HASHFILE:{hashes}",
        "--config",
        str(conf_path),
        "--machine",
        MACHINE,
        "--bench",
        bench,
        "--show-stderr",
    ]
    if timings:
        cmd += ["--interleave-rounds", "--record-samples", "-a", f"rounds={TIMING_ROUNDS}"]
    env = {k: v for k, v in os.environ.items() if k != INSTRUCTION_ENV}
    # asv's environments install the matrix with pip, which reads PIP_CONSTRAINT: the repository's pins (scipy,
    # cma, ... that the deterministic figures depend on) without naming versions in the matrix.
    env.setdefault("PIP_CONSTRAINT", str(repo / "constraints.txt"))
    if instructions:
        env[INSTRUCTION_ENV] = "1"
    print(f"gate: asv run on {len(commits)} commit(s), benchmarks /{bench}/", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if proc.returncode == 0:
        log = work / f"asv-run-{len(list(work.glob('asv-run*.log')))}.log"
        log.write_text(proc.stdout or "")
    else:  # kept after the gate's own folder is gone, so the failure can be read
        with tempfile.NamedTemporaryFile("w", prefix="gate-asv-run-", suffix=".log", delete=False) as kept:
            kept.write(proc.stdout or "")
        log = Path(kept.name)
    if proc.returncode == 2 and (work / "results" / MACHINE).is_dir():  # benchmarks failed: None in the results
        print(f"gate: asv reported failed benchmarks (log: {log})", file=sys.stderr, flush=True)
    elif proc.returncode != 0:
        failed = [line.strip() for line in (proc.stdout or "").splitlines() if "failed" in line][:5]
        raise HarnessError(
            f"asv run exited {proc.returncode}; log: {log}; " + ("; ".join(failed) or _tail(proc.stdout or ""))
        )
    return work / "results"


def load_values(results_dir: Path, commit: str) -> dict[str, tuple]:
    """`{benchmark(params): (value, (stats, samples))}` for one commit, from asv's result files."""
    from asv.commands.compare import unroll_result
    from asv.results import iter_results_for_machine_and_hash

    out: dict[str, tuple] = {}
    for result in iter_results_for_machine_and_hash(str(results_dir), MACHINE, commit):
        for key in result.get_all_result_keys():
            params = result.get_result_params(key)
            rows = unroll_result(
                key,
                params,
                result.get_result_value(key, params),
                result.get_result_stats(key, params),
                result.get_result_samples(key, params),
            )
            for name, value, stats, samples in rows:
                out[name] = (value, (stats, samples))
    if not out:
        raise HarnessError(f"no results for commit {commit[:8]} in {results_dir}")
    return out


def expected_metrics(
    results_dir: Path, regexes: Iterable[str], *, kinds: Iterable[str], benchmark_dir: Path | None = None
) -> dict[str, dict[str, str]]:
    """The judged set: `{benchmark(params): {param_name: value}}` for every parameter combination the regexes
    select (asv's own selection) among the benchmarks in the results folder's `benchmarks.json`, whose kind is
    in `kinds`; names formatted by asv compare's `unroll_result`, as load_values names them."""
    from types import SimpleNamespace

    from asv.benchmarks import Benchmarks
    from asv.commands.compare import unroll_result

    conf = SimpleNamespace(results_dir=str(results_dir), benchmark_dir=str(benchmark_dir or results_dir))
    try:
        benchmarks = Benchmarks.load(conf, regex=list(regexes))
    except Exception as exc:  # asv's UserError: the file is missing or from another asv
        raise HarnessError(f"cannot read asv's benchmarks.json in {results_dir}: {_tail(str(exc), 2)}") from None
    kinds = set(kinds)
    out: dict[str, dict[str, str]] = {}
    for name, benchmark in benchmarks.items():
        params, names = benchmark.get("params") or [], benchmark.get("param_names") or []
        selection = benchmarks.benchmark_selection.get(name)
        combos = list(itertools.product(*params))  # the order unroll_result and asv's selection indices use
        for (row, idx), values in zip(unroll_result(name, params, list(range(len(combos)))), combos):
            if kind_of(row) in kinds and (selection is None or idx in selection):
                out[row] = {str(k): _unquote(v) for k, v in zip(names, values)}
    return out


def _unquote(value: str) -> str:
    """asv stores parameter values as their repr: `'cuda'` -> `cuda`; anything else as written."""
    try:
        literal = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    return literal if isinstance(literal, str) else value


def missing_instruction_tools() -> list[str]:
    """The valgrind commands the instruction-count tier needs that are not on PATH."""
    return [tool for tool in INSTRUCTION_TOOLS if shutil.which(tool) is None]


def check_instructions(base: dict[str, tuple], head: dict[str, tuple], *, required: bool) -> None:
    """HarnessError when instruction counts were asked for but none was measured on either commit.

    `required`: the default benchmarks were run, so the tier must be in the results; otherwise only the
    instruction benchmarks that are there must have been measured somewhere.
    """
    names = [n for n in set(base) | set(head) if kind_of(n) == "instructions"]
    if not names and not required:
        return
    if not any(not _skipped(side.get(n, (None,))[0]) for n in names for side in (base, head)):
        raise HarnessError(
            f"instruction counts were asked for, but none was measured on either commit ({len(names)} skipped: "
            f"valgrind missing in the benchmark environment, or {INSTRUCTION_ENV} did not reach it; see the asv "
            "log); install valgrind or pass --no-instructions"
        )


def judge_results(
    results: Path,
    base: str,
    head: str,
    regexes: Iterable[str],
    *,
    timings: bool,
    instructions: bool = True,
    repo: Path = REPO,
) -> list[Change]:
    """The rows of BASE against HEAD from one results folder: the judged set of `regexes` and both sides' values."""
    kinds = judged_kinds(timings=timings, instructions=instructions)
    expected = expected_metrics(results, regexes, kinds=kinds, benchmark_dir=repo / "benchmarks")
    base_values, head_values = load_values(results, base), load_values(results, head)
    return compare(base_values, head_values, timings=timings, expected=expected, instructions=instructions, repo=repo)


def write_json(path: Path, payload: dict) -> None:
    """Write `payload` to `path` atomically (`_atomic.write_text_atomic`: a temporary file beside it, then
    os.replace)."""
    write_text_atomic(path.resolve(), json.dumps(payload, indent=1) + "\n")


def _strict(row: dict) -> dict:
    """A row with non-finite numbers (a ratio against a BASE of 0) as None: strict JSON has no Infinity."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


# --- the command ----------------------------------------------------------------------------------------------


def describe(exc: BaseException) -> str:
    """One line naming what stopped the gate."""
    if isinstance(exc, ModuleNotFoundError):
        return f"module {exc.name!r} is not installed for {sys.executable}; install it with {INSTALL}"
    text = str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def preflight() -> None:
    """HarnessError when the gate's own tools are missing: asv in this Python, git on PATH."""
    if importlib.util.find_spec("asv") is None:
        raise HarnessError(f"asv is not installed for {sys.executable}; install it with {INSTALL}")
    if shutil.which("git") is None:
        raise HarnessError("git is not on PATH")


def main(argv: list[str] | None = None) -> int:
    """Run the gate; the exit code (0 nothing regressed, 1 a regression, 2 cannot decide, 130 interrupted)."""
    parser = argparse.ArgumentParser(prog="tools/gate.py", description=__doc__.splitlines()[0])
    parser.add_argument("base", metavar="BASE", help="the revision to compare against")
    parser.add_argument("head", metavar="HEAD", help="the revision under judgement")
    parser.add_argument("--timings", action="store_true", help="also judge timings (interleaved rounds)")
    parser.add_argument(
        "--no-instructions",
        dest="instructions",
        action="store_false",
        help="leave out the instruction counts (callgrind; judged by default, need valgrind)",
    )
    parser.add_argument("--bench", help="asv benchmark regex (default: the deterministic and memory metrics)")
    parser.add_argument("--json", metavar="FILE", help="write the verdict and the rows as JSON here")
    parser.add_argument("--all", action="store_true", help="list unchanged and allowed metrics one by one too")
    parser.add_argument("--repo", default=str(REPO), help="the repository (default: this one)")
    parser.add_argument(
        "--env-dir",
        default=os.environ.get("MARKETSIM_GATE_ENV_DIR"),
        help="asv environments folder, reused between runs (default: <repo>/.asv/env)",
    )
    args = parser.parse_args(argv)
    try:
        return _gate(args)
    except KeyboardInterrupt:
        print("gate: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # whatever it is, the gate has not decided: never exit 0 or 1 on it
        print(f"gate: cannot decide: {describe(exc)}", file=sys.stderr)
        return 2


def _gate(args: argparse.Namespace) -> int:
    preflight()
    repo = Path(args.repo).resolve()
    bench = args.bench or (DEFAULT_BENCH + ("|" + TIMING_BENCH if args.timings else ""))
    # The instruction tier costs one valgrind run per commit: with --timings it runs apart, not once per round.
    separate = args.instructions and args.bench is None and args.timings
    if args.instructions and args.bench is None and not separate:
        bench += "|" + INSTRUCTION_BENCH
    env_dir = Path(args.env_dir) if args.env_dir else repo / ".asv" / "env"
    base, head = resolve(args.base, repo), resolve(args.head, repo)
    changed = references_changed(repo, base, head)
    missing = missing_instruction_tools() if args.instructions else []
    if missing and args.bench is None:
        raise HarnessError(
            f"instruction counts need valgrind ({', '.join(missing)} not on PATH; Debian: apt-get install "
            "valgrind); pass --no-instructions to gate without them"
        )
    commits = list(dict.fromkeys([base, head]))
    regexes = [INSTRUCTION_BENCH, bench] if separate else [bench]
    with tempfile.TemporaryDirectory(prefix="gate-") as tmp:
        run = dict(env_dir=env_dir, instructions=args.instructions)
        if separate:
            run_asv(repo, commits, Path(tmp), bench=INSTRUCTION_BENCH, timings=False, **run)
        results = run_asv(repo, commits, Path(tmp), bench=bench, timings=args.timings, **run)
        if args.instructions:
            check_instructions(load_values(results, base), load_values(results, head), required=args.bench is None)
        changes = judge_results(
            results, base, head, regexes, timings=args.timings, instructions=args.instructions, repo=repo
        )
    if not changes:
        raise HarnessError(f"no judged metric among the benchmarks selected by /{'|'.join(regexes)}/")
    code = exit_code(changes)
    if changed:
        print(f"gate: the frozen references changed between BASE and HEAD: {', '.join(changed)}")
    print(to_markdown(changes, base, head, all_rows=args.all), end="")
    if args.json:
        payload = {
            "base": base,
            "head": head,
            "exit_code": code,
            "references_changed": changed,
            "rows": [_strict(asdict(c)) for c in changes],
        }
        write_json(Path(args.json), payload)
    if code == 2:
        undecided = [c for c in changes if c.verdict in UNDECIDED]
        what = f"{len(undecided)} judged metric(s) not measured on both commits" if undecided else "nothing compared"
        print(f"gate: cannot decide: {what} (see the table)", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
