"""How cost grows with the number of days N: the exact solver beside DIRECT, and the batched kernel.

N = 6, 200, 2000 in the default tier; 20000 only in the slow tier
(`MARKETSIM_BENCH_SLOW=1`), except for DIRECT and `ExactLarge`.
"""

from __future__ import annotations

from . import common

SIZES = (6, 200, 2000, 20000)


class ExactScaling:
    """The exact optimum of the entry/exit objective on N synthetic days (one policy)."""

    params = SIZES
    param_names = ("n_days",)
    number = 1
    repeat = (1, 5, 30.0)
    timeout = 900

    def setup(self, n_days):
        if n_days > 2000:
            common.require_slow()
        self.workload = common.workload(f"scaling:{n_days}")
        self.run = common.api("workloads", "run")

    def time_exact(self, n_days):
        self.run(self.workload, "entry_exit", method="exact")


class ExactLarge:
    """The exact optimum at N = 20000 in the default tier (ExactScaling keeps it in the slow tier, where it took
    over a minute before the fused sweep); issue 19's goal is 5 s on this machine kind."""

    number = 1
    repeat = (1, 3, 30.0)
    timeout = 900

    def setup(self):
        self.workload = common.workload("scaling:20000")
        self.run = common.api("workloads", "run")

    def time_exact_20000(self):
        self.run(self.workload, "entry_exit", method="exact")


class DirectScaling:
    """DIRECT at budget 500 (the historic entry/exit default) on the same problems as ExactScaling: the two
    series side by side at every N (20000 included, a fraction of a second here)."""

    params = SIZES
    param_names = ("n_days",)
    number = 1
    repeat = (1, 5, 30.0)
    timeout = 900

    def setup(self, n_days):
        self.workload = common.workload(f"scaling:{n_days}")
        self.run = common.api("workloads", "run")
        self.run(self.workload, "entry_exit", method="direct", budget=10)  # scipy's import stays out of the timing

    def time_direct(self, n_days):
        self.run(self.workload, "entry_exit", method="direct", budget=500)


class BatchedScaling:
    """One batched call of 1024 candidates on N days, per-candidate cost = time / 1024."""

    params = (SIZES, common.DEVICES)
    param_names = ("n_days", "device")

    def setup(self, n_days, device):
        common.require(device)
        if n_days > 2000:
            common.require_slow()
        self.objective = common.objective(f"scaling:{n_days}", "entry_exit", device)
        self.h, self.l = common.candidates(1024, device)

    def time_eval_batched_1024(self, n_days, device):
        self.objective.batch(self.h, self.l)
        common.synchronize(device)
