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


def _glibc():
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("needs glibc >= 2.33 (mallinfo2) to see where malloc puts a block")
    return ctypes, libc


def test_pin_malloc_keeps_big_blocks_on_the_heap():
    """Pinned, a 40 MiB block comes from the heap (not a fresh mmap) and freeing it keeps it for the next call."""
    ctypes, libc = _glibc()

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (n, ctypes.c_size_t)
            for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
        ]

    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    assert common.MALLOC_PINNED and common.pin_malloc()
    mapped = libc.mallinfo2().hblkhd
    block = libc.malloc(40 * 2**20)
    assert libc.mallinfo2().hblkhd == mapped  # not served by mmap
    libc.free(block)
    assert libc.mallinfo2().fordblks >= 40 * 2**20  # kept free on the heap, not trimmed back to the kernel


@pytest.mark.parametrize(("opt_out", "pinned"), [("1", "False"), ("", "True")])
def test_malloc_pin_opt_out(opt_out, pinned):
    """`MARKETSIM_BENCH_NO_MALLOC_PIN=1` leaves glibc's defaults (tools/malloc_modes.py's baseline)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    _glibc()
    env = {**os.environ, "MARKETSIM_BENCH_NO_MALLOC_PIN": opt_out}
    code = "from benchmarks import common; print(common.MALLOC_PINNED)"
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == pinned
