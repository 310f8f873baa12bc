"""The optimizers and the one-call backtest on each device: wall time and host syncs, CPU beside CUDA.

The `cuda` parameters skip where there is no GPU; on a GPU machine
(`tools/gpu_check.py`, its own asv machine name) the two devices are measured
in one run, so their ratio is meaningful.  `track_host_syncs` is counted by
the harness (`ruler.counting`), not by the package; on CUDA it includes the
synchronizations torch's sync debug mode reports outside the counted
read-backs, so a hidden sync shows up as a rise.  `DeviceBacktest`'s count on
the CPU is the read-back target of the one-call backtest (`marketsim-opt
targets`' `backtest_syncs`), judged by the gate like every sync count.
"""

from __future__ import annotations

from . import common
from .ruler.counting import counting

METHODS = ("direct@100", "grid@default", "exact", "nevergrad:OnePlusOne@100")


class DeviceOptimize:
    """One entry/exit optimization per workload x method x device."""

    params = (("profile", "backtest"), METHODS, common.DEVICES)
    param_names = ("workload", "method", "device")
    number = 1
    repeat = (1, 5, 10.0)
    timeout = 600

    def setup(self, workload, method, device):
        common.require(device)
        self.workload = common.workload(workload, device)
        self.method, self.budget = common.split_method(method)
        self.run = common.api("workloads", "run")

    def _optimize(self):
        return self.run(self.workload, "entry_exit", method=self.method, budget=self.budget)

    def time_optimize(self, workload, method, device):
        self._optimize()  # every method reads its answer back, so the timer waits for the device

    def track_host_syncs(self, workload, method, device):
        with counting() as tally:
            self._optimize()
        return tally.syncs

    track_host_syncs.unit = "syncs"


class DeviceBacktest:
    """The whole backtest (70 simulations x 2 strategies x 2 policies) exactly, in one batched call."""

    params = (common.DEVICES,)
    param_names = ("device",)
    number = 1
    repeat = (3, 10, 10.0)

    def setup(self, device):
        common.require(device)
        self.workload = common.workload("backtest", device)
        self.run_stacked = common.api("workloads", "run_stacked")

    def time_run_stacked(self, device):
        self.run_stacked(self.workload, method="exact")

    def track_host_syncs(self, device):
        with counting() as tally:
            self.run_stacked(self.workload, method="exact")
        return tally.syncs

    track_host_syncs.unit = "syncs"
