"""Kernel latency: one sequential evaluation as the historical optimizer made it, and batched candidates.

`time_eval_sequential` is one objective evaluation: the kernel, the sum over
days and the `.item()` read-back (which also makes a CUDA timer wait for the
device).  asv_runner times each call of a benchmark with a `setup` alone (it
re-runs `setup` between them), so this figure also holds the timer's own
overhead and a cold start per call.  `SequentialEvalPerCall` gives the same
evaluation's steady-state cost: the median over blocks of back-to-back calls,
per call, the statistic `marketsim-opt targets` and the report give.
`time_eval_batched` is one batched call of K candidates with a device
synchronize; its per-candidate cost is that time divided by K.
"""

from __future__ import annotations

from . import common

SIZES = (6, 200, 2000)
BATCHES = (1, 64, 4096)


class SequentialEval:
    """One `(h, l)` evaluation and its read-back, both strategies (always-on is two kernel calls)."""

    params = (SIZES, ("entry_exit", "always_on"), common.DEVICES)
    param_names = ("n_days", "strategy", "device")

    def setup(self, n_days, strategy, device):
        common.require(device)
        self.objective = common.objective(f"scaling:{n_days}", strategy, device)

    def time_eval_sequential(self, n_days, strategy, device):
        self.objective(0.01, -0.01).item()


class SequentialEvalPerCall:
    """One `(h, l)` evaluation and its read-back, steady state: seconds per call over blocks of many calls."""

    params = (SIZES, ("entry_exit", "always_on"), common.DEVICES)
    param_names = ("n_days", "strategy", "device")
    timeout = 120

    def setup(self, n_days, strategy, device):
        common.require(device)
        self.objective = common.objective(f"scaling:{n_days}", strategy, device)

    def track_seconds_per_eval(self, n_days, strategy, device):
        return common.seconds_per_call(lambda: self.objective(0.01, -0.01).item())

    track_seconds_per_eval.unit = "seconds"


class BatchedEval:
    """K candidates scored in one broadcast kernel call (`[K, N]`), no read-back."""

    params = (SIZES, BATCHES, common.DEVICES)
    param_names = ("n_days", "batch", "device")

    def setup(self, n_days, batch, device):
        common.require(device)
        self.objective = common.objective(f"scaling:{n_days}", "entry_exit", device)
        self.h, self.l = common.candidates(batch, device)
        self.device = device

    def time_eval_batched(self, n_days, batch, device):
        self.objective.batch(self.h, self.l)
        common.synchronize(device)
