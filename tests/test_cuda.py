"""Every path on CUDA: the kernel against the float64 reference, each optimizer with no hidden host syncs.

These tests skip where there is no CUDA device, except under `MARKETSIM_REQUIRE_CUDA=1` (set by
`tools/gpu_check.py`), where a missing device fails them: a GPU check must never pass by skipping.
Host syncs are counted with `count_syncs(cuda=True)`, which turns on torch's sync debug mode, so a
synchronization outside the instrumented read-backs shows up as `hidden_syncs`.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from marketsim_opt import compiled, count_syncs, profit_per_day, regret_bp, workloads
from marketsim_opt.instrument import to_device
from marketsim_opt.optimizers import registry
from marketsim_opt.strategies import always_on_objective, entry_exit_objective
from tests.reference import reference_profit

REQUIRED = os.environ.get("MARKETSIM_REQUIRE_CUDA", "").strip() == "1"
#: Every registered method (the registry is the one list; optuna:TPE only where its extra is installed), at a
#: small budget where it takes one, so the whole module runs in well under a minute on a GPU.
METHODS = tuple((name, 40 if registry.takes_budget(name) else None) for name in registry.names())


@pytest.fixture(scope="module", autouse=True)
def cuda_device():
    """Skip without CUDA, or fail under MARKETSIM_REQUIRE_CUDA=1."""
    if not torch.cuda.is_available():
        if REQUIRED:
            pytest.fail("MARKETSIM_REQUIRE_CUDA=1 but torch sees no CUDA device", pytrace=False)
        pytest.skip("needs a CUDA device")
    return torch.device("cuda")


def _random_days(shape, seed: int, dtype) -> dict[str, torch.Tensor]:
    gen = np.random.default_rng(seed)
    c = gen.normal(0, 0.02, shape)
    days = {
        "close": c,
        "high": c + np.abs(gen.normal(0, 0.01, shape)),
        "low": c - np.abs(gen.normal(0, 0.01, shape)),
        "high_pred": gen.normal(0.005, 0.015, shape),
        "low_pred": gen.normal(-0.005, 0.015, shape),
        "positions": gen.choice([-1.0, 0.0, 1.0], shape),
    }
    return {k: torch.as_tensor(v, dtype=dtype, device="cuda") for k, v in days.items()}


@pytest.mark.parametrize("close_at_eod", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kernel_matches_float64_reference(close_at_eod, dtype):
    """`[S, K, N]` broadcasting on CUDA equals the numpy float64 reference (float32: to its rounding)."""
    t = _random_days((3, 1, 500), seed=11, dtype=dtype)
    h = torch.linspace(-0.03, 0.03, 64, dtype=dtype, device="cuda").reshape(1, 64, 1)
    args = (t["close"], t["high"], t["high_pred"] + h, t["low"], t["low_pred"] - h, t["positions"])
    with count_syncs(cuda=True) as counter:
        got = profit_per_day(*args, close_at_eod=close_at_eod, trading_fee=0.0015)
    assert got.device.type == "cuda" and got.shape == (3, 64, 500)
    assert counter.syncs == 0
    want = reference_profit(*(a.cpu().numpy() for a in args), close_at_eod=close_at_eod, fee=0.0015)
    if dtype == torch.float64:
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=1e-15)
    else:  # float32 inputs: the reference sees the same rounded inputs, the kernel float32 arithmetic
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=2e-6)


def test_host_values_reach_the_device_without_a_sync():
    """`to_device` (how the optimizers send host candidates and constants) queues the copy: no sync."""
    torch.cuda.synchronize()
    with count_syncs(cuda=True) as counter:
        t = to_device(np.arange(12.0).reshape(3, 4), dtype=torch.float32, device="cuda")
    assert counter.syncs == 0 and t.device.type == "cuda"
    assert t.cpu().tolist() == np.arange(12.0).reshape(3, 4).tolist()


def test_batched_evaluation_never_syncs():
    """`Objective.score` of [1, K] candidates on CUDA queues work only: no read-back, no hidden sync."""
    obj = entry_exit_objective(workloads.scaling(2000, device="cuda").problem)
    h = torch.rand(1, 4096, device="cuda") * 0.06 - 0.03
    torch.cuda.synchronize()
    with count_syncs(cuda=True) as counter:
        scores = obj.score(h, -h)
    assert counter.evaluations == 4096 and counter.syncs == 0 and counter.hidden_syncs == 0
    assert scores.device.type == "cuda" and scores.shape == (1, 4096)


@pytest.mark.parametrize("strategy", workloads.STRATEGIES)
@pytest.mark.parametrize("method,budget", METHODS)
def test_optimizer_on_cuda_counts_like_cpu(method, budget, strategy):
    """Each method on the `profile` workload on CUDA: the same read-backs as on CPU and no hidden syncs."""
    cpu = workloads.run(workloads.profile(), strategy, method=method, budget=budget)
    gpu_workload = workloads.profile(device="cuda")
    with count_syncs(cuda=True) as counter:
        gpu = workloads.run(gpu_workload, strategy, method=method, budget=budget)
    assert counter.hidden_syncs == 0, counter
    assert gpu.syncs == cpu.syncs
    assert gpu.nfev.shape == cpu.nfev.shape == (1,) and gpu.nfev.tolist() == cpu.nfev.tolist()
    assert gpu.objective.problem.device.type == "cuda"
    regret = regret_bp(gpu)
    assert regret.shape == (1,) and regret[0] >= -1e-6
    if method == "exact":
        assert abs(regret[0]) < 1e-6


def test_backtest_in_one_call_on_cuda():
    """The whole backtest (280 problems) exactly, in one call on CUDA: at most 4 syncs, none hidden."""
    cpu = workloads.run_stacked(workloads.backtest(), method="exact")
    with count_syncs(cuda=True) as counter:
        gpu = workloads.run_stacked(workloads.backtest(device="cuda"), method="exact")
    assert counter.hidden_syncs == 0 and gpu.syncs <= 4
    np.testing.assert_allclose(gpu.supremum, cpu.supremum, rtol=0, atol=1e-9)


def test_compiled_batch_matches_eager_on_cuda():
    """The torch.compile path (Triton on CUDA) scores [1, K] candidates as eager does, without syncing."""
    obj = always_on_objective(workloads.scaling(200, dtype=torch.float64, device="cuda").problem)
    h = torch.rand(1, 1024, dtype=torch.float64, device="cuda") * 0.06 - 0.03
    compiled.warm_up(obj, 1024)
    with count_syncs(cuda=True) as counter:
        fused = obj.score(h, -h, compiled=True)
    assert counter.syncs == 0 and compiled.fallback_reason("cuda") is None
    assert fused.shape == (1, 1024)
    torch.testing.assert_close(fused, obj.score(h, -h), rtol=0, atol=1e-12)
