"""Measure the gate's A/A spread: the same code under N+1 commits, judged N times against the first.

    python tools/aa_spread.py [--copies 10] [--bench REGEX] [--out FILE.md]

A temporary clone of HEAD gets N commits that change nothing but a comment; one asv run with interleaved
rounds (exactly as `tools/gate.py --timings` runs) measures all of them, and each copy is compared with the
first using the gate's own rules.  It prints, per metric kind, the distribution of HEAD/BASE ratios and how
many comparisons the gate would have flagged: the figures behind TIME_FACTOR and MEMORY_FACTOR.  For
timings it also prints the ratio of asv's medians (the rule the gate used before it judged the fastest
samples) and how many of those would have exceeded TIME_FACTOR.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("tools_gate", HERE / "gate.py")
gate = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gate
_spec.loader.exec_module(gate)


#: The row for timings judged on asv's medians (the ratio alone, without the statistical test).
MEDIANS = "timing, ratio of medians"
LABELS = {"timing": "timing, ratio of fastest samples (the gate's rule)"}


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/aa_spread.py", description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10, help="A/A comparisons (default: 10)")
    parser.add_argument("--bench", default=gate.DEFAULT_BENCH + "|" + gate.TIMING_BENCH, help="asv benchmark regex")
    parser.add_argument("--out", help="also write the markdown summary here")
    parser.add_argument("--env-dir", default=str(gate.REPO / ".asv" / "env"))
    args = parser.parse_args(argv)
    if args.copies < 1:
        parser.error("--copies: must be at least 1")
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
        results = gate.run_asv(clone, commits, work, bench=args.bench, timings=True, env_dir=Path(args.env_dir))
        base = gate.load_values(results, commits[0])
        ratios: dict[str, list[float]] = {"deterministic": [], "memory": [], "timing": [], MEDIANS: []}
        flagged: dict[str, int] = dict.fromkeys(ratios, 0)
        worst: dict[str, tuple[float, str]] = {}
        for head in commits[1:]:
            values = gate.load_values(results, head)
            for c in gate.compare(base, values, timings=True):
                if c.ratio is None:
                    continue
                if c.kind == "timing":
                    median_ratio = values[c.benchmark][0] / base[c.benchmark][0]
                    ratios[MEDIANS].append(median_ratio)
                    flagged[MEDIANS] += median_ratio > gate.TIME_FACTOR
                    if median_ratio > worst.get(MEDIANS, (0.0, ""))[0]:
                        worst[MEDIANS] = (median_ratio, c.benchmark)
                ratios[c.kind].append(c.ratio)
                flagged[c.kind] += c.verdict == "regression"
                if c.ratio > worst.get(c.kind, (0.0, ""))[0]:
                    worst[c.kind] = (c.ratio, c.benchmark)
    lines = [
        f"A/A spread: {args.copies} comparisons of the same code, one interleaved asv run "
        f"({gate.TIMING_ROUNDS} rounds), benchmarks /{args.bench}/",
        "",
        "| kind | metrics compared | median ratio | 1st pct | 99th pct | max ratio (benchmark) | flagged |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for kind, values in ratios.items():
        if not values:
            continue
        values.sort()
        top, name = worst[kind]
        lines.append(
            f"| {LABELS.get(kind, kind)} | {len(values)} | {statistics.median(values):.3f} | {_pct(values, 0.01):.3f} "
            f"| {_pct(values, 0.99):.3f} "
            f"| {top:.3f} (`{name}`) | {flagged[kind]} |"
        )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
