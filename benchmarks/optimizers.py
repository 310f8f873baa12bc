"""Optimizers on the named workloads: wall time, evaluations, host syncs and regret, method x budget.

Following scipy's optimize benchmarks, every optimization runs once in
`setup_cache` and each metric is its own `track_` (so the suite does not
repeat expensive work per metric).  A method is written `name@budget`
(`default` = 500 for entry/exit, 240 for always-on); `exact` takes no budget.
Evaluations, host syncs and regret are deterministic; `track_wall_time` is a
single measurement, and `OptimizeTime` times a few of them with asv's
statistics.

The ruler is the harness's, not the commit's (`benchmarks/ruler`, see
benchmarks/README.md): evaluations and host read-backs are counted by
`ruler.counting` around each optimization, and regret is the frozen
supremum of `ruler/frozen/<workload>.json` minus the float64 score of
the returned `(h, l)` and policy by `ruler.scorer`.  The package's own
`nfev`, `syncs`, exact solver and regret are not consulted, so a commit
cannot move the figures that judge it.

`OutOfSample` tracks what each method's answer earns out of sample on the backtest: `track_next_day_loss_bp`
is minus the mean, over the 70 simulations, of the profit on each simulation's test day (the bar after its
fitted window), in bp of the previous close, scored by `ruler.scorer.next_day_profit` on the frozen test days
of `ruler/frozen/backtest.json` at the returned `(h, l)` and policy.  It has its own `setup_cache` over the
backtest only (the profile has no next day, so no skipped rows), which re-runs the backtest's optimizations
(about 15 s on one core) rather than changing OptimizerMetrics' (its benchmarks' versions, and so their
history, would change with it).

The gate runs this file against older commits too: a method such a commit does
not know (`check_method` rejects it, e.g. `gradient` before it existed, or
`optuna:TPE` where the optuna extra is not installed) is left out of
`setup_cache` and its metrics are skipped there, rather than failing the run.
"""

from __future__ import annotations

import time

import numpy as np

from . import common
from .ruler import references
from .ruler.counting import counting

NEVERGRAD = ("NGOpt", "TwoPointsDE", "CMA", "PSO", "OnePlusOne", "DiagonalCMA", "ScrHammersleySearch")
#: Methods without a budget (written without `@`): the exact optimum, zero offsets, the exact cell's centre and
#: the robust points (`marketsim_opt.optimizers`; a commit without one skips it, see `_unknown`).
BUDGETLESS = ("exact", "zero", "exact:centre", "robust:worst", "robust:mean")
METHODS = (
    ("direct@100", "direct@default", "grid@100", "grid@default", "exact")
    + tuple(f"nevergrad:{name}@{budget}" for name in NEVERGRAD for budget in (100, "default"))
    + ("gradient@100", "gradient@default", "optuna:TPE@100", "optuna:TPE@default")
    + BUDGETLESS[1:]
)
#: nevergrad and optuna run one Python optimizer per simulation and policy: on the 70-simulation backtest
#: only OnePlusOne at 100 is in the default tier (NGOpt alone takes minutes there; optuna:TPE about 40 s
#: per strategy at 100 and several minutes at the default budgets).  gradient is batched like the grid.
BACKTEST_FAST = (
    "direct@100",
    "direct@default",
    "grid@100",
    "grid@default",
    "exact",
    "nevergrad:OnePlusOne@100",
    "gradient@100",
    "gradient@default",
    "zero",
    "exact:centre",
    "robust:worst",
    "robust:mean",
)
WORKLOADS = ("profile", "backtest")
STRATEGIES = ("entry_exit", "always_on")


def _selected(workload: str, method: str) -> bool:
    return workload == "profile" or method in BACKTEST_FAST or common.SLOW


def _unknown(methods) -> dict[str, str]:
    """`method@budget` labels whose method this commit's `check_method` rejects, with its reason."""
    check_method = common.api("optimizers.api", "check_method")
    unknown = {}
    for label in methods:
        name = common.split_method(label)[0]
        try:
            check_method(name)
        except (ValueError, RuntimeError, ImportError) as exc:  # unknown here, or an optional extra not installed
            # (RuntimeError before issue 18, MissingExtraError, an ImportError, since)
            unknown[label] = f"{name} is not available at this commit: {exc}"
    return unknown


class OptimizerMetrics:
    """One optimization per workload x strategy x method, counted by the harness, scored against the frozen optimum."""

    params = (WORKLOADS, STRATEGIES, METHODS)
    param_names = ("workload", "strategy", "method")
    timeout = 3600

    def setup_cache(self):
        try:
            run = common.api("workloads", "run")
            unknown = _unknown(METHODS)
        except NotImplementedError as missing:  # an older commit: asv fails (not skips) a raising setup_cache
            return {"missing": str(missing)}
        frozen = {w: common.reference(w) for w in WORKLOADS}  # ReferenceError if this commit's data differ
        labels = [
            (w, s, m) for w in WORKLOADS for s in STRATEGIES for m in METHODS if _selected(w, m) and m not in unknown
        ]
        for m in dict.fromkeys(m for _, _, m in labels):  # imports and first-call caches, outside every figure
            common.warm_up(WORKLOADS[0], STRATEGIES[0], common.split_method(m)[0])
        cache = {"unknown": unknown}
        for w, s, m in labels:
            name, budget = common.split_method(m)
            with counting() as tally:
                start = time.perf_counter()
                result = run(common.workload(w), s, method=name, budget=budget)
                wall_time = time.perf_counter() - start
            regret = references.regret_bp(frozen[w], s, result.h, result.l, result.close_at_eod)
            cache[w, s, m] = {
                "wall_time": wall_time,
                "evaluations": tally.evaluations,
                "syncs": tally.syncs,
                "regret_bp": float(np.mean(regret)),
            }
        return cache

    def setup(self, cache, workload, strategy, method):
        if "missing" in cache:
            common.skip(cache["missing"])
        if method in cache.get("unknown", {}):
            common.skip(cache["unknown"][method])
        if (workload, strategy, method) not in cache:
            common.skip("not in this tier (MARKETSIM_BENCH_SLOW=1 runs it)")

    def track_wall_time(self, cache, workload, strategy, method):
        return cache[workload, strategy, method]["wall_time"]

    track_wall_time.unit = "seconds"

    def track_evaluations(self, cache, workload, strategy, method):
        return cache[workload, strategy, method]["evaluations"]

    track_evaluations.unit = "evaluations"

    def track_host_syncs(self, cache, workload, strategy, method):
        return cache[workload, strategy, method]["syncs"]

    track_host_syncs.unit = "syncs"

    def track_regret_bp(self, cache, workload, strategy, method):
        return cache[workload, strategy, method]["regret_bp"]

    track_regret_bp.unit = "bp"


class OutOfSample:
    """The next-day loss of each strategy x method's answer on the backtest, scored by the ruler on frozen test days.

    Deterministic and lower-is-better like regret; one method's figure depends on its own answer only.
    """

    params = (STRATEGIES, METHODS)
    param_names = ("strategy", "method")
    timeout = 3600

    def setup_cache(self):
        try:
            run = common.api("workloads", "run")
            unknown = _unknown(METHODS)
        except NotImplementedError as missing:  # an older commit: asv fails (not skips) a raising setup_cache
            return {"missing": str(missing)}
        frozen = common.reference("backtest")  # ReferenceError if this commit's data differ
        if frozen.next_day is None:
            raise references.ReferenceError(f"{references.display_path(frozen.path)}: next_day: none frozen")
        workload = common.workload("backtest")
        cache = {"unknown": unknown}
        for s in STRATEGIES:
            for m in METHODS:
                if not _selected("backtest", m) or m in unknown:
                    continue
                name, budget = common.split_method(m)
                result = run(workload, s, method=name, budget=budget)
                loss = references.next_day_loss_bp(frozen, s, result.h, result.l, result.close_at_eod)
                cache[s, m] = float(np.mean(loss))
        return cache

    def setup(self, cache, strategy, method):
        if "missing" in cache:
            common.skip(cache["missing"])
        if method in cache.get("unknown", {}):
            common.skip(cache["unknown"][method])
        if (strategy, method) not in cache:
            common.skip("not in this tier (MARKETSIM_BENCH_SLOW=1 runs it)")

    def track_next_day_loss_bp(self, cache, strategy, method):
        return cache[strategy, method]

    track_next_day_loss_bp.unit = "bp"


class OptimizeTime:
    """Wall time of whole optimizations with asv's statistics: the baseline and the batched paths."""

    params = (
        ("profile", "backtest"),
        ("direct@100", "direct@default", "grid@default", "exact", "nevergrad:TwoPointsDE@100", "gradient@100"),
    )
    param_names = ("workload", "method")
    number = 1
    repeat = (3, 10, 20.0)
    timeout = 600

    def setup(self, workload, method):
        if workload == "backtest" and method.startswith("nevergrad") and not common.SLOW:
            common.skip("slow tier: set MARKETSIM_BENCH_SLOW=1")
        self.workload = common.workload(workload)
        self.method, self.budget = common.split_method(method)
        unknown = _unknown([method])
        if unknown:
            common.skip(unknown[method])
        self.run = common.api("workloads", "run")

    def time_optimize_entry_exit(self, workload, method):
        self.run(self.workload, "entry_exit", method=self.method, budget=self.budget)
