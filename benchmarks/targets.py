"""The performance targets as ratios, each measured side by side in one process (`marketsim-opt targets`).

A ratio of two times taken in the same process on the same machine moves far
less than either time across runs, so these series are comparable across
commits where absolute times are not.  `setup_cache` measures every target
once (`marketsim_opt.reports.targets.measure_targets`, which also compiles
the batched path outside its timings); each `track_` reports one of them.
All are lower-is-better: the per-candidate target is tracked as batched cost
over one sequential evaluation (the inverse of the `>= 100x` goal).
"""

from __future__ import annotations

from . import common


class Targets:
    """Exact against DIRECT on `profile` and on the backtest, exact at N = 2000, batched against sequential."""

    timeout = 900

    def setup_cache(self):
        try:
            measure = common.api("reports.targets", "measure_targets")
        except NotImplementedError as missing:  # an older commit: asv fails (not skips) a raising setup_cache
            return {"missing": str(missing)}
        return {t.key: t.value for t in measure(repeats=3)}

    def setup(self, cache):
        if "missing" in cache:
            common.skip(cache["missing"])

    def track_profile_exact_over_direct(self, cache):
        return cache["profile_exact_vs_direct"]

    track_profile_exact_over_direct.unit = "ratio"

    def track_backtest_exact_over_direct(self, cache):
        return cache["backtest_exact_vs_direct"]

    track_backtest_exact_over_direct.unit = "ratio"

    def track_batched_over_sequential(self, cache):
        return 1.0 / cache["batched_vs_sequential"]

    track_batched_over_sequential.unit = "ratio"

    def track_exact_n2000_over_direct(self, cache):
        if "exact_n2000_vs_direct" not in cache:  # measured since issue 19
            common.skip("this commit's targets do not compare exact with DIRECT at N = 2000")
        return cache["exact_n2000_vs_direct"]

    track_exact_n2000_over_direct.unit = "ratio"

    def track_exact_n2000_seconds(self, cache):
        return cache["exact_n2000_seconds"]

    track_exact_n2000_seconds.unit = "seconds"
