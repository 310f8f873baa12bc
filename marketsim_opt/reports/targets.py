"""The performance targets of the exact solver, the batched backtest and the batched kernel, measured side by
side in one process: ratios of times taken on the same machine in the same run, never absolute times across runs.

Each `Target` is one row of the table `marketsim-opt targets` prints (and the
asv benchmark `targets.Targets` tracks): what was measured, the goal, whether
it is met, and the two times behind a ratio.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import compiled, workloads
from ..files import atomic_dir
from ..strategies import entry_exit_objective
from .machine import stamp
from .timing import seconds_per_call

__all__ = ["Target", "measure_targets", "to_markdown", "write_targets", "BATCH", "LARGE_N"]

#: Candidates per batched call in the per-candidate target.
BATCH = 4096
#: The largest size, only measured with `large=True`.
LARGE_N = 20000
#: profile's exact / DIRECT@500 goal: 1/50 (issue 19).
PROFILE_LIMIT = 0.02


@dataclass(frozen=True)
class Target:
    """One measured target: `value` (a ratio, seconds or a count) against `goal` (`<= limit` or `>= limit`)."""

    key: str
    what: str
    value: float
    unit: str
    limit: float | None
    at_least: bool
    detail: str

    @property
    def goal(self) -> str:
        return "report" if self.limit is None else f"{'>=' if self.at_least else '<='} {self.limit:g}"

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        return self.value >= self.limit if self.at_least else self.value <= self.limit


def _best_time(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` wall-clock runs of `fn`, in seconds (noise only ever adds time)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def measure_targets(
    *, repeats: int = 5, large: bool = False, progress: Callable[[str], None] | None = None
) -> list[Target]:
    """Measure every target once, in this process, single-threaded torch; `progress(label)` before each step.

    The paths run once untimed first (imports, caches, compilation); then each whole optimization takes the
    best of `repeats` runs (N = 2000: half as many), except N = 20000 and the backtest's 280 sequential DIRECT
    runs (seconds), timed once.  The short calls (the backtest's one exact call, one sequential evaluation, a
    batch) are `timing.seconds_per_call`: the median over blocks of back-to-back calls, the report's statistic.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats: must be a positive integer, got {repeats!r}")
    say = progress or (lambda label: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(repeats, large, say)
    finally:
        torch.set_num_threads(threads)


def _measure(repeats: int, large: bool, say: Callable[[str], None]) -> list[Target]:
    out = []
    profile = dataclasses.replace(workloads.profile(), close_at_eod=None)  # both policies
    say("profile: exact, both strategies and policies")
    workloads.run_all(profile, method="exact")
    exact = _best_time(lambda: workloads.run_all(profile, method="exact"), repeats)
    say("profile: DIRECT at budget 500, both strategies and policies")
    workloads.run(profile, "entry_exit", method="direct", budget=10)  # scipy's import stays out of the timing
    direct = _best_time(lambda: workloads.run_all(profile, method="direct", budget=500), repeats)
    out.append(
        Target(
            "profile_exact_vs_direct",
            "profile (N = 200, entry/exit + always-on, both policies): exact time / DIRECT@500 time",
            exact / direct,
            "ratio",
            PROFILE_LIMIT,
            False,
            f"exact {_ms(exact)}, DIRECT {_ms(direct)}",
        )
    )

    say("N = 2000: exact and DIRECT at budget 500")
    big = workloads.scaling(2000)
    n2000 = _best_time(lambda: workloads.run(big, "entry_exit", method="exact"), max(1, repeats // 2))
    direct2000 = _best_time(lambda: workloads.run(big, "entry_exit", method="direct", budget=500), max(1, repeats // 2))
    out.append(
        Target("exact_n2000_seconds", "N = 2000 entry/exit (intraday), exact", n2000, "s", 1.0, False, _ms(n2000))
    )
    out.append(
        Target(
            "exact_n2000_vs_direct",
            "N = 2000 entry/exit (intraday): exact time / DIRECT@500 time",
            n2000 / direct2000,
            "ratio",
            1.0,
            False,
            f"exact {_ms(n2000)}, DIRECT {_ms(direct2000)}",
        )
    )
    if large:
        say(f"N = {LARGE_N}: exact")
        huge = workloads.scaling(LARGE_N)
        t = _best_time(lambda: workloads.run(huge, "entry_exit", method="exact"), 1)
        out.append(
            Target(
                f"exact_n{LARGE_N}_seconds", f"N = {LARGE_N} entry/exit (intraday), exact", t, "s", 5.0, False, _ms(t)
            )
        )

    backtest = workloads.backtest()
    say("backtest: exact, the whole workload in one call")
    stacked = workloads.run_stacked(backtest, method="exact")
    # Under a millisecond: the median over blocks of back-to-back calls, not the best of a few single calls.
    one_call = seconds_per_call(lambda: workloads.run_stacked(backtest, method="exact"))
    say("backtest: 280 sequential DIRECT runs")
    sequential = _best_time(lambda: workloads.run_all(backtest, method="direct"), 1)
    out.append(
        Target(
            "backtest_exact_vs_direct",
            "backtest (70 sims x 2 strategies x 2 policies): one exact call / 280 DIRECT runs",
            one_call / sequential,
            "ratio",
            1e-4,
            False,
            f"exact {_ms(one_call)}, DIRECT {_ms(sequential)}",
        )
    )
    out.append(
        Target(
            "backtest_syncs",
            "backtest: host syncs for the whole workload (one exact call)",
            stacked.syncs,
            "syncs",
            1,
            False,
            f"{stacked.syncs}",
        )
    )

    say("batched kernel: sequential evaluation, eager and compiled batches")
    objective = entry_exit_objective(workloads.scaling(200).problem)
    gen = torch.Generator().manual_seed(7)
    h, l = (torch.rand(1, BATCH, generator=gen).mul(0.06).sub(0.03) for _ in "hl")  # [S = 1, K]
    # Short calls: the median over blocks of back-to-back calls (timing.seconds_per_call), the report's statistic.
    sequential_eval = seconds_per_call(lambda: objective.score(0.01, -0.01).item())
    eager = seconds_per_call(lambda: objective.score(h, l)) / BATCH
    compile_seconds = compiled.warm_up(objective, BATCH)
    fused = seconds_per_call(lambda: objective.score(h, l, compiled=True)) / BATCH
    reason = compiled.fallback_reason(h.device)
    path = f"eager fallback: {reason}" if reason else "torch.compile"
    out.append(
        Target(
            "batched_vs_sequential",
            f"N = 200, K = {BATCH}: one sequential evaluation / per-candidate batched cost ({path})",
            sequential_eval / fused,
            "x",
            100,
            True,
            f"sequential {sequential_eval * 1e6:.3g} us, batched {fused * 1e6:.3g} us/candidate",
        )
    )
    out.append(
        Target(
            "batched_eager_vs_sequential",
            f"N = 200, K = {BATCH}: the same, eager torch (the fallback)",
            sequential_eval / eager,
            "x",
            None,
            True,
            f"eager {eager * 1e6:.3g} us/candidate",
        )
    )
    out.append(
        Target(
            "compile_seconds",
            "torch.compile of the batched path (kept out of the timings above)",
            compile_seconds,
            "s",
            None,
            False,
            _ms(compile_seconds),
        )
    )
    return out


def to_markdown(targets: list[Target]) -> str:
    """The targets as a GitHub-flavoured markdown table (tabulate's `github` format)."""
    rows = [
        [t.what, f"{t.value:.3g} {t.unit}", t.goal, {True: "yes", False: "**no**", None: "-"}[t.met], t.detail]
        for t in targets
    ]
    from tabulate import tabulate  # here, not at the top: asv's environments install the package --no-deps

    headers = ("target", "measured", "goal", "met", "behind it")
    return tabulate(rows, headers, tablefmt="github", disable_numparse=True) + "\n"


def write_targets(
    out: str, targets: list[Target], *, force: bool = False, command: str = "marketsim-opt targets"
) -> None:
    """`targets.md` (the table, then a provenance line naming `command`, the machine and the date) and
    `targets.json` in folder `out`, written whole or not at all (`files.atomic_dir`)."""
    with atomic_dir(out, command="targets", force=force) as tmp:
        (tmp / "targets.md").write_text(f"{to_markdown(targets)}\nMeasured by {stamp(command)}.\n")
        rows = [{**dataclasses.asdict(t), "goal": t.goal, "met": t.met} for t in targets]
        (tmp / "targets.json").write_text(json.dumps(rows, indent=2) + "\n")
