"""The suite's shared helpers (benchmarks/common.py): skips, cached inputs, memray's region peak."""

from __future__ import annotations

import pytest
import torch

from benchmarks import common


def test_skip_is_asv_skip():
    """asv skips a benchmark whose setup raises NotImplementedError; `skip` raises exactly that."""
    with pytest.raises(NotImplementedError, match="^why$"):
        common.skip("why")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU skip")
def test_require_cuda_skips_without_gpu():
    """`require('cuda')` skips on a machine without CUDA; `require('cpu')` does not."""
    common.require("cpu")
    with pytest.raises(NotImplementedError, match="no CUDA device"):
        common.require("cuda")


def test_api_missing_name_skips():
    """A name an older commit lacks becomes a skip, not a failure."""
    assert common.api("workloads", "run") is not None
    with pytest.raises(NotImplementedError, match="marketsim_opt.workloads.no_such_thing does not exist"):
        common.api("workloads", "no_such_thing")
    with pytest.raises(NotImplementedError, match="marketsim_opt.no_such_module.x does not exist"):
        common.api("no_such_module", "x")


def test_cached_inputs_are_shared_and_seeded():
    """Getters return the same objects on repeat calls; candidates are seeded and inside the box."""
    assert common.workload("profile") is common.workload("profile")
    assert common.workload("scaling:6").problem.n_days == 6
    h, l = common.candidates(64)
    assert h.shape == l.shape == (64,)
    assert float(h.abs().max()) <= 0.03 and float(l.abs().max()) <= 0.03
    common.candidates.cache_clear()
    h2, _ = common.candidates(64)
    assert torch.equal(h, h2)
    with pytest.raises(ValueError, match="^workload: unknown name 'nope'"):
        common.workload("nope")


def test_region_peak_bytes_sees_only_the_region():
    """memray's peak of a region that allocates 8 MiB is 8 MiB and a little, whatever was allocated before."""
    pytest.importorskip("memray", reason="memray comes with the bench extra")
    before = torch.ones(4 * 2**20, dtype=torch.uint8)  # allocated outside the region: not counted
    peak = common.region_peak_bytes(lambda: torch.ones(8 * 2**20, dtype=torch.uint8))
    assert 8 * 2**20 <= peak < 9 * 2**20
    assert before.numel() == 4 * 2**20
