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


#: Run in a fresh interpreter (the tuning is process-wide, so never in pytest's own process): import the whole
#: suite, optionally call `tune_process` twice, then say where glibc put a 40 MiB block (above glibc's largest
#: dynamic mmap threshold, 32 MiB, so it is mmapped unless pinned) and whether freeing it kept it on the heap.
_PROBE = """
import ctypes, ctypes.util, json, sys
import torch
threads_before = torch.get_num_threads()
{pre}
from benchmarks import common, devices, instructions, kernel, memory, optimizers, scaling, targets
threads_imported = torch.get_num_threads()
pins = []
real_pin = common.pin_malloc
common.pin_malloc = lambda *a: pins.append(a) or real_pin(*a)
{post}
returned = [common.tune_process() for _ in range({tunes})]

fields = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in fields]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
mapped = libc.mallinfo2().hblkhd
block = libc.malloc(40 * 2**20)
mmapped = libc.mallinfo2().hblkhd > mapped
libc.free(block)
kept = libc.mallinfo2().fordblks >= 40 * 2**20
print(json.dumps(dict(threads_before=threads_before, threads_imported=threads_imported,
    threads_after=torch.get_num_threads(), pins=len(pins), returned=returned, pinned=common.MALLOC_PINNED,
    mmapped=mmapped, kept=kept)))
"""


def _probe(*, tunes: int, pre: str = "", post: str = "", opt_out: str = "") -> dict:
    """`_PROBE` in a fresh interpreter with torch on 2 threads; its report."""
    import ctypes
    import ctypes.util
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    if not hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallinfo2"):
        pytest.skip("needs glibc >= 2.33 (mallinfo2) to see where malloc puts a block")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MARKETSIM_BENCH_NO_MALLOC_PIN": opt_out}
    code = _PROBE.format(pre=pre, post=post, tunes=tunes)
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_importing_the_suite_changes_nothing():
    """Importing every benchmark module leaves torch's threads and glibc's malloc as they were."""
    got = _probe(tunes=0)
    assert got["threads_before"] == got["threads_imported"] == got["threads_after"] == 2
    assert got["pins"] == 0 and got["pinned"] is False
    assert got["mmapped"]  # glibc's default: a 40 MiB block is mmapped


def test_tune_process_is_idempotent_and_pins_malloc():
    """`tune_process` sets one thread and pins malloc once: the 40 MiB block comes from the heap and stays there."""
    got = _probe(tunes=2)
    assert got["threads_before"] == got["threads_imported"] == 2 and got["threads_after"] == 1
    assert got["pins"] == 1 and got["returned"] == [True, True] and got["pinned"] is True
    assert not got["mmapped"] and got["kept"]


def test_malloc_pin_opt_out():
    """`MARKETSIM_BENCH_NO_MALLOC_PIN=1` leaves glibc's defaults (tools/malloc_modes.py's baseline); threads still 1."""
    got = _probe(tunes=1, opt_out="1")
    assert got["threads_after"] == 1 and got["pins"] == 0 and got["returned"] == [False] and got["pinned"] is False
    assert got["mmapped"]


def test_asv_runner_import_changes_nothing():
    """Imported by asv's runner (`asv_runner` loaded first), the suite still changes nothing at import."""
    pytest.importorskip("asv_runner", reason="asv comes with the bench extra")
    got = _probe(tunes=0, pre="import asv_runner")
    assert got["threads_before"] == got["threads_imported"] == got["threads_after"] == 2
    assert got["pins"] == 0 and got["pinned"] is False and got["mmapped"]


@pytest.mark.parametrize("getter", ["common.candidates(4)", "common.workload('scaling:6')"])
def test_the_first_data_getter_tunes_the_process(getter):
    """A benchmark's setup asks the getters for its data, and the first one tunes the process, once."""
    got = _probe(tunes=1, post=getter)
    assert got["threads_imported"] == 2 and got["threads_after"] == 1
    assert got["pinned"] is True and not got["mmapped"] and got["kept"]


def test_importing_the_suite_preloads_the_optimizers_libraries():
    """After `import benchmarks.common` (in asv's forkserver), DIRECT's and nevergrad's libraries are loaded, so
    no timing of a whole optimization pays for their import, even under `--quick` (no warm-up call)."""
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys; from benchmarks import common; print(sorted(m for m in common.PRELOADED if m in sys.modules))"
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(sorted(common.PRELOADED))
    assert "scipy.optimize" in common.PRELOADED  # what DIRECT imports at its first call
