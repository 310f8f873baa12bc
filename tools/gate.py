"""The regression gate: compare two commits on the asv suite and say, by exit code, whether HEAD regressed.

    python tools/gate.py BASE HEAD [--timings] [--no-instructions] [--bench REGEX] [--json FILE]

Exit codes: 0 nothing regressed, 1 something regressed, 2 the harness could not decide (a revision that
does not exist, a build or benchmark failure, a commit whose code cannot be imported, missing results).

The gate never imports the code it judges: asv builds each commit into its own managed virtualenv (the
repository's `asv.conf.json`, with results in a temporary folder so `results/` is untouched) and runs the
benchmarks there; this process reads only asv's result files.

How each metric is judged (all are lower-is-better, as asv assumes):

- deterministic (`track_host_syncs`, `track_evaluations`, `track_regret_bp`): no noise, so any increase is a
  regression (regret: beyond REGRET_TOLERANCE_BP); any decrease is an improvement.
- memory (`track_region_peak_bytes`, memray's high-water mark of the call under test): a regression above
  MEMORY_FACTOR x BASE.  asv's `peakmem_*` (whole-process RSS) is too noisy to judge and is not.
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

The table (GitHub-flavoured markdown, worst first) goes to stdout and the same rows as JSON to `--json`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Metrics with no noise: any increase is a regression.
DETERMINISTIC = ("track_host_syncs", "track_evaluations", "track_regret_bp")
REGRET_TOLERANCE_BP = 1e-6
#: Memory metrics and their relative threshold (see benchmarks/README.md for the A/A spread behind it).
#: asv's `peakmem_` (the whole process's peak RSS) is not judged: it moved 13 % between two runs of the
#: same code here (allocator and page reuse); memray's region high-water mark is what the gate trusts.
MEMORY = ("track_region_peak_bytes",)
MEMORY_FACTOR = 1.10
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
#: Benchmarks the gate runs by default: the deterministic and memory metrics.
#: (asv matches parametrized benchmarks as `name(param, ...)`, hence the `\(` rather than a `$`.)
DEFAULT_BENCH = r"OptimizerMetrics\.track_(host_syncs|evaluations|regret_bp)\(|track_region_peak_bytes"
#: Added with --timings: the kernel latencies of a millisecond or more, where the kernel's own work dominates.
#: The sub-millisecond ones (dispatch-bound) moved up to 2.1x between runs of the same code here whenever
#: other work shared the machine, as much as a 2x slowdown moves them, so no factor separates the two; their
#: CPU cost is judged by instruction counts instead (pass --bench to time them anyway).
TIMING_BENCH = r"kernel\.BatchedEval\.time_eval_batched\((200, 4096|2000, 64|2000, 4096),"
TIMING_ROUNDS = 4
MACHINE = "gate"


class HarnessError(RuntimeError):
    """The gate could not decide (exit 2)."""


@dataclass
class Change:
    """One metric of one benchmark and parameter combination, BASE against HEAD."""

    benchmark: str
    kind: str  # deterministic | memory | instructions | timing
    base: float | None
    head: float | None
    ratio: float | None
    verdict: str  # regression | improvement | unchanged | not comparable (new in HEAD) | failed (or skipped in HEAD)


def kind_of(name: str) -> str | None:
    """How a benchmark's metric is judged, from its name; None for metrics the gate does not judge."""
    leaf = name.rsplit(".", 1)[-1].split("(")[0]
    if leaf in DETERMINISTIC:
        return "deterministic"
    if leaf.startswith(MEMORY):
        return "memory"
    if leaf in INSTRUCTIONS:
        return "instructions"
    if leaf.startswith("time_"):
        return "timing"
    return None


def judge(name: str, kind: str, base: float, head: float, base_ss=None, head_ss=None) -> str:
    """`regression`, `improvement` or `unchanged` for one metric."""
    if kind == "deterministic":
        tol = REGRET_TOLERANCE_BP if "regret" in name else 0.0
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
    if head > base * factor:
        return "regression"
    return "improvement" if head * factor < base else "unchanged"


def _statistically_different(base_ss, head_ss) -> bool:
    from asv import _stats  # asv compare's own test (Mann-Whitney U on the samples, or the CIs)

    (stats_a, samples_a), (stats_b, samples_b) = base_ss, head_ss
    if not stats_a or not stats_b:
        return True
    return bool(_stats.is_different(samples_a, samples_b, stats_a, stats_b))


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


def run_asv(
    repo: Path, commits: list[str], work: Path, *, bench: str, timings: bool, env_dir: Path, instructions: bool = False
) -> Path:
    """Run the selected benchmarks on `commits` in managed environments; the results folder.

    `instructions` turns the instruction-count tier on (INSTRUCTION_ENV) for the benchmark processes; off, it
    is unset.  Called again with the same `work`, results accumulate.
    Raises HarnessError when asv itself fails or any benchmark fails on any commit.
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
    subprocess.run(
        [*asv, "machine", "--yes", "--machine", MACHINE, "--config", str(conf_path)], check=True, capture_output=True
    )
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
    log = work / f"asv-run-{len(list(work.glob('asv-run*.log')))}.log"
    log.write_text(proc.stdout)
    if proc.returncode != 0:
        failed = [line.strip() for line in proc.stdout.splitlines() if "failed" in line][:10]
        raise HarnessError(
            f"asv run exited {proc.returncode} (a build or benchmark failed); log: {log}\n  " + "\n  ".join(failed)
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


def compare(base: dict[str, tuple], head: dict[str, tuple], *, timings: bool) -> list[Change]:
    """One Change per judged metric present on either side, worst first."""
    changes = []
    for name in sorted(set(base) | set(head)):
        kind = kind_of(name)
        if kind is None or (kind == "timing" and not timings):
            continue
        b, b_ss = base.get(name, (None, None))
        h, h_ss = head.get(name, (None, None))
        if b is None or h is None:  # asv records a failed benchmark as None (a skipped one as NaN)
            changes.append(Change(name, kind, _num(b), _num(h), None, "failed"))
            continue
        if _skipped(h) and not _skipped(b):  # ran on BASE, skipped on HEAD: the gate cannot vouch for it
            changes.append(Change(name, kind, _num(b), None, None, "failed"))
            continue
        if _skipped(b) or _skipped(h):
            if not _skipped(h):  # new in HEAD (e.g. an API that BASE lacks): nothing to compare with
                changes.append(Change(name, kind, None, _num(h), None, "not comparable"))
            continue
        verdict = judge(name, kind, b, h, b_ss, h_ss)
        ratio = h / b if b else (math.inf if h > b else 1.0)
        changes.append(Change(name, kind, b, h, ratio, verdict))
    order = {"failed": 0, "regression": 1, "improvement": 2, "not comparable": 3, "unchanged": 4}
    changes.sort(key=lambda c: (order[c.verdict], -(c.ratio or 0) if c.verdict != "improvement" else c.ratio))
    return changes


def _fastest(value: float, stats_samples) -> float:
    """The fastest recorded sample of a timing (asv's median `value` when no samples were recorded)."""
    samples = (stats_samples or (None, None))[1] or ()
    finite = [x for x in samples if x is not None and not math.isnan(x)]
    return min(finite) if finite else value


def _skipped(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(value):
    return None if _skipped(value) else value


def missing_instruction_tools() -> list[str]:
    """The valgrind commands the instruction-count tier needs that are not on PATH."""
    import shutil

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


def exit_code(changes: list[Change]) -> int:
    if any(c.verdict == "failed" for c in changes):
        return 2
    return 1 if any(c.verdict == "regression" for c in changes) else 0


def to_markdown(changes: list[Change], base: str, head: str, *, all_rows: bool = False) -> str:
    """The changed metrics (all with `all_rows`), worst first."""
    shown = [c for c in changes if all_rows or c.verdict != "unchanged"]
    lines = [
        f"Gate: {base[:8]} (BASE) -> {head[:8]} (HEAD): "
        f"{sum(c.verdict == 'regression' for c in changes)} regression(s), "
        f"{sum(c.verdict == 'improvement' for c in changes)} improvement(s), "
        f"{sum(c.verdict == 'unchanged' for c in changes)} unchanged, {sum(c.verdict == 'failed' for c in changes)} "
        "failed",
        "",
        "| verdict | benchmark | kind | BASE | HEAD | HEAD/BASE |",
        "|---|---|---|---:|---:|---:|",
    ]
    for c in shown:
        ratio = "-" if c.ratio is None else f"{c.ratio:.3g}"
        lines.append(f"| {c.verdict} | `{c.benchmark}` | {c.kind} | {_fmt(c.base)} | {_fmt(c.head)} | {ratio} |")
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def main(argv: list[str] | None = None) -> int:
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
    parser.add_argument("--json", metavar="FILE", help="write the rows as JSON here")
    parser.add_argument("--all", action="store_true", help="list unchanged metrics too")
    parser.add_argument("--repo", default=str(REPO), help="the repository (default: this one)")
    parser.add_argument(
        "--env-dir",
        default=os.environ.get("MARKETSIM_GATE_ENV_DIR"),
        help="asv environments folder, reused between runs (default: <repo>/.asv/env)",
    )
    args = parser.parse_args(argv)
    repo = Path(args.repo).resolve()
    bench = args.bench or (DEFAULT_BENCH + ("|" + TIMING_BENCH if args.timings else ""))
    # The instruction tier costs one valgrind run per commit: with --timings it runs apart, not once per round.
    separate = args.instructions and args.bench is None and args.timings
    if args.instructions and args.bench is None and not separate:
        bench += "|" + INSTRUCTION_BENCH
    env_dir = Path(args.env_dir) if args.env_dir else repo / ".asv" / "env"
    try:
        base, head = resolve(args.base, repo), resolve(args.head, repo)
        missing = missing_instruction_tools() if args.instructions else []
        if missing and args.bench is None:
            raise HarnessError(
                f"instruction counts need valgrind ({', '.join(missing)} not on PATH; Debian: apt-get install "
                "valgrind); pass --no-instructions to gate without them"
            )
        commits = list(dict.fromkeys([base, head]))
        with tempfile.TemporaryDirectory(prefix="gate-") as tmp:
            run = dict(env_dir=env_dir, instructions=args.instructions)
            if separate:
                run_asv(repo, commits, Path(tmp), bench=INSTRUCTION_BENCH, timings=False, **run)
            results = run_asv(repo, commits, Path(tmp), bench=bench, timings=args.timings, **run)
            base_values, head_values = load_values(results, base), load_values(results, head)
            if args.instructions:
                check_instructions(base_values, head_values, required=args.bench is None)
            changes = compare(base_values, head_values, timings=args.timings)
    except HarnessError as exc:
        print(f"gate: cannot decide: {exc}", file=sys.stderr)
        return 2
    if not changes:
        print("gate: cannot decide: no judged metric in the results", file=sys.stderr)
        return 2
    print(to_markdown(changes, base, head, all_rows=args.all), end="")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(c) for c in changes], indent=1) + "\n")
    return exit_code(changes)


if __name__ == "__main__":
    raise SystemExit(main())
