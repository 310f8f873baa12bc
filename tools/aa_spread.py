"""Measure the gate's A/A spread: the same code under N+1 commits, judged N times against the first.

    python tools/aa_spread.py [--copies 10] [--bench REGEX] [--out FILE.md]
    python tools/aa_spread.py --instructions [--copies 10]      # the instruction counts (callgrind)
    python tools/aa_spread.py --instructions --perturb [--copies 10]

A temporary clone of HEAD gets N commits that change nothing but a comment; one asv run with interleaved
rounds (exactly as `tools/gate.py --timings` runs) measures all of them, and each copy is compared with the
first using the gate's own rules.  It prints, per metric kind, the distribution of HEAD/BASE ratios and how
many comparisons the gate would have flagged: the figures behind TIME_FACTOR and MEMORY_FACTOR.  For
timings it prints the ratio of medians and the ratio of fastest samples separately, each with how many
comparisons it alone would have flagged (with asv's statistical test), next to the gate's rule (both).
`--keep DIR` keeps asv's result files for a closer look.

`--instructions` measures the instruction-count tier instead (benchmarks/instructions.py, one valgrind run per
copy, no rounds: counts have no timing noise to interleave against) and adds a table per benchmark: the
median and the largest relative spread |HEAD/BASE - 1|, the figures behind INSTRUCTION_FACTOR.  With
`--perturb` the copies are not commits but collections by this interpreter (run it with an asv environment's
python to hold the code still), copy i with PYTHONHASHSEED=i and 512 i bytes more environment (which shift
hashing and the process's memory layout, as unrelated changes to a commit can): how far the counts move when
the work does not change.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tabulate import tabulate  # installed with asv; for --perturb, in the asv environment: pip install tabulate

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("tools_gate", HERE / "gate.py")
gate = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gate
_spec.loader.exec_module(gate)


#: Timing rows besides the gate's: each ratio alone, with asv's statistical test.
MEDIANS = "timing, ratio of medians alone"
FASTEST = "timing, ratio of fastest samples alone"
LABELS = {"timing": "timing, the gate's rule (both ratios; table ratio: medians)"}


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def table(rows: list[list[str]], columns: tuple[tuple[str, str], ...]) -> list[str]:
    """`rows` of formatted cells as the lines of a markdown table (tabulate's pipe format); `columns`: (header,
    alignment)."""
    headers, align = zip(*columns, strict=True)
    return tabulate(rows, headers, tablefmt="pipe", disable_numparse=True, colalign=align).splitlines()


def spread_table(per_benchmark: dict[str, list[float]]) -> list[str]:
    """Markdown rows: per benchmark, its ratios' range and the median and largest |ratio - 1|."""
    rows = []
    for name, values in sorted(per_benchmark.items()):
        spread = sorted(abs(r - 1) for r in values)
        rows.append(
            [f"`{name}`", str(len(values)), f"{min(values):.6f}", f"{max(values):.6f}"]
            + [f"{statistics.median(spread):.2e}", f"{spread[-1]:.2e}"]
        )
    numbers = ("comparisons", "min ratio", "max ratio", "median spread", "max spread")
    return table(rows, (("benchmark", "left"), *((n, "right") for n in numbers)))


def perturbed(copies: int, out: str | None) -> int:
    """`copies` + 1 collections of the instruction tier in this environment, process state varied; the table."""
    sys.path.append(str(gate.REPO))  # last: the interpreter's own marketsim_opt wins over the checkout's
    from benchmarks import instructions

    runs = []
    for i in range(copies + 1):
        counts, _ = instructions.collect(instructions.PLAN, hash_seed=i, env={"MARKETSIM_AA_PAD": "x" * (512 * i)})
        runs.append({c.path: c.per_call for c in counts})
        print(f"aa_spread: collection {i}: {runs[-1]}", file=sys.stderr, flush=True)
    per_benchmark = {path: [run[path] / runs[0][path] for run in runs[1:]] for path in runs[0]}
    lines = [
        f"Instruction counts, {copies} comparisons with the first of {copies + 1} collections of the same code "
        "(copy i: PYTHONHASHSEED=i, 512 i bytes more environment):",
        "",
        *spread_table(per_benchmark),
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if out:
        Path(out).write_text(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/aa_spread.py", description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10, help="A/A comparisons (default: 10)")
    parser.add_argument("--bench", help="asv benchmark regex (default: the gate's default and timing benchmarks)")
    parser.add_argument(
        "--instructions", action="store_true", help="measure the instruction counts (default bench: that tier)"
    )
    parser.add_argument("--out", help="also write the markdown summary here")
    parser.add_argument("--keep", metavar="DIR", help="copy asv's result files here")
    parser.add_argument(
        "--perturb", action="store_true", help="with --instructions: collections here, each with other process state"
    )
    parser.add_argument("--env-dir", default=str(gate.REPO / ".asv" / "env"))
    args = parser.parse_args(argv)
    if args.copies < 1:
        parser.error("--copies: must be at least 1")
    if args.bench is None:
        args.bench = gate.INSTRUCTION_BENCH if args.instructions else gate.DEFAULT_BENCH + "|" + gate.TIMING_BENCH
    timings = not args.instructions
    if args.perturb:
        if not args.instructions:
            parser.error("--perturb: only with --instructions")
        return perturbed(args.copies, args.out)
    with tempfile.TemporaryDirectory(prefix="aa-") as tmp:
        clone = Path(tmp) / "repo"
        _git("clone", "-q", str(gate.REPO), str(clone), cwd=gate.REPO)
        _git("config", "user.email", "aa@spread", cwd=clone)
        _git("config", "user.name", "aa spread", cwd=clone)
        commits = [_git("rev-parse", "HEAD", cwd=clone)]
        for i in range(args.copies):
            with open(clone / "README.md", "a") as fh:
                fh.write(f"\n<!-- A/A copy {i} -->\n")
            _git("commit", "-q", "-am", f"A/A copy {i}", cwd=clone)
            commits.append(_git("rev-parse", "HEAD", cwd=clone))
        work = Path(tmp) / "work"
        work.mkdir()
        results = gate.run_asv(
            clone,
            commits,
            work,
            bench=args.bench,
            timings=timings,
            env_dir=Path(args.env_dir),
            instructions=args.instructions,
        )
        if args.keep:
            shutil.copytree(results, args.keep, dirs_exist_ok=True)
            Path(args.keep, "commits.txt").write_text("\n".join(commits) + "\n")
        base = gate.load_values(results, commits[0])
        ratios: dict[str, list[float]] = {
            "deterministic": [],
            "memory": [],
            "instructions": [],
            "timing": [],
            MEDIANS: [],
            FASTEST: [],
        }
        per_benchmark: dict[str, list[float]] = {}
        flagged: dict[str, int] = dict.fromkeys(ratios, 0)
        worst: dict[str, tuple[float, str]] = {}
        undecided: list[str] = []
        for head in commits[1:]:
            values = gate.load_values(results, head)
            for c in gate.compare(base, values, timings=timings):
                if c.verdict in gate.UNDECIDED:  # a failed or one-sided metric is no A/A figure: say so, stop
                    undecided.append(f"{c.benchmark} ({c.verdict}: {c.note})")
                if c.ratio is None:
                    continue
                if c.kind == "instructions":
                    per_benchmark.setdefault(c.benchmark, []).append(c.ratio)
                if c.kind == "timing":
                    (b, b_ss), (h, h_ss) = base[c.benchmark], values[c.benchmark]
                    different = gate._statistically_different(b_ss, h_ss)
                    for row, ratio in ((MEDIANS, h / b), (FASTEST, gate._fastest(h, h_ss) / gate._fastest(b, b_ss))):
                        ratios[row].append(ratio)
                        flagged[row] += different and ratio > gate.TIME_FACTOR
                        if ratio > worst.get(row, (0.0, ""))[0]:
                            worst[row] = (ratio, c.benchmark)
                ratios[c.kind].append(c.ratio)
                flagged[c.kind] += c.verdict == "regression"
                if c.ratio > worst.get(c.kind, (0.0, ""))[0]:
                    worst[c.kind] = (c.ratio, c.benchmark)
    if undecided:
        print(
            f"aa_spread: cannot measure: {len(undecided)} metric(s) not measured on both commits, e.g. {undecided[0]}",
            file=sys.stderr,
        )
        return 2
    how = f"one interleaved asv run ({gate.TIMING_ROUNDS} rounds)" if timings else "one asv run"
    rows = []
    for kind, values in ratios.items():
        if not values:
            continue
        values.sort()
        top, name = worst[kind]
        rows.append(
            [LABELS.get(kind, kind), str(len(values)), f"{statistics.median(values):.3f}", f"{_pct(values, 0.01):.3f}"]
            + [f"{_pct(values, 0.99):.3f}", f"{top:.3f} (`{name}`)", str(flagged[kind])]
        )
    columns = (
        ("kind", "left"),
        ("metrics compared", "right"),
        ("median ratio", "right"),
        ("1st pct", "right"),
        ("99th pct", "right"),
        ("max ratio (benchmark)", "left"),
        ("flagged", "right"),
    )
    lines = [
        f"A/A spread: {args.copies} comparisons of the same code, {how}, benchmarks /{args.bench}/",
        "",
        *table(rows, columns),
    ]
    if per_benchmark:
        lines += [
            "",
            f"Per benchmark (relative spread |HEAD/BASE - 1|; INSTRUCTION_FACTOR = {gate.INSTRUCTION_FACTOR}):",
            "",
            *spread_table(per_benchmark),
        ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
