"""Memory of the big batched paths: asv's process peak (`peakmem_`) and memray's high-water mark of the region.

`peakmem_` is the whole process's maximum resident size, torch's import
included; `track_region_peak_bytes` measures only the heap allocated while
the call under test runs (memray), so a change in the batched path stands out.
"""

from __future__ import annotations

from . import common


class BatchedEvalMemory:
    """One batched call of K candidates on N days (the `[K, N]` temporaries)."""

    params = ((200, 2000), (4096,))
    param_names = ("n_days", "batch")

    def setup(self, n_days, batch):
        self.objective = common.objective(f"scaling:{n_days}", "entry_exit")
        self.h, self.l = common.candidates(batch)

    def peakmem_eval_batched(self, n_days, batch):
        self.objective.batch(self.h, self.l)

    def track_region_peak_bytes(self, n_days, batch):
        return common.region_peak_bytes(lambda: self.objective.batch(self.h, self.l))

    track_region_peak_bytes.unit = "bytes"


class OptimizerMemory:
    """Whole optimizations whose memory grows with the work: exact (corner candidates) and grid."""

    params = (("scaling:200", "scaling:1000", "backtest"), ("exact", "grid"))
    param_names = ("workload", "method")
    timeout = 300

    def setup(self, workload, method):
        self.workload = common.workload(workload)
        self.method = method
        self.run = common.api("workloads", "run")

    def _optimize(self):
        self.run(self.workload, "entry_exit", method=self.method)

    def peakmem_optimize(self, workload, method):
        self._optimize()

    def track_region_peak_bytes(self, workload, method):
        return common.region_peak_bytes(self._optimize)

    track_region_peak_bytes.unit = "bytes"
