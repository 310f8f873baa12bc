"""The batched objective fused by `torch.compile`: candidates' sums with no `[K, N]` temporaries.

Eager torch materialises a `[K, N]` tensor for every operation of the kernel;
compiled (inductor: C++ on CPU, Triton on CUDA), the kernel and its sum over
days become one loop.  Compiling takes seconds (inductor caches the result on
disk), so the compiled path is opt-in (`Objective.batch(..., compiled=True)`)
and `warm_up` compiles ahead of time and returns the seconds it took, which
keeps compilation out of timed regions.  Where compilation cannot run (no C++
compiler, an unsupported platform) the call falls back to eager torch, with
one warning, and keeps using eager from then on.
"""

from __future__ import annotations

import time
import warnings

import torch
from torch import Tensor

from .kernel import raw_profit_per_day

__all__ = ["summed_profit", "warm_up", "fallback_reason"]

_compiled = None
_fallback: str | None = None


def _summed_profit(
    close: Tensor,
    high: Tensor,
    high_pred: Tensor,
    low: Tensor,
    low_pred: Tensor,
    legs: tuple[Tensor, ...],
    h: Tensor,
    l: Tensor,
    close_at_eod: bool,
    trading_fee: float,
) -> Tensor:
    total = None
    for leg in legs:
        day = raw_profit_per_day(
            close, high, high_pred + h, low, low_pred + l, leg, close_at_eod=close_at_eod, trading_fee=trading_fee
        ).sum(-1)
        total = day if total is None else total + day
    return total


def _compile():
    return torch.compile(_summed_profit)


def summed_profit(
    close: Tensor,
    high: Tensor,
    high_pred: Tensor,
    low: Tensor,
    low_pred: Tensor,
    legs: tuple[Tensor, ...],
    h: Tensor,
    l: Tensor,
    *,
    close_at_eod: bool,
    trading_fee: float,
) -> Tensor:
    """`sum` over days and legs of the kernel, compiled: day tensors `[..., 1, N]`, offsets `[..., K, 1]` -> `[..., K]`.

    Float32 sums may differ from eager's in the last bits (another summation order).
    """
    global _compiled, _fallback
    args = (close, high, high_pred, low, low_pred, tuple(legs), h, l, close_at_eod, trading_fee)
    if _fallback is None:
        try:
            if _compiled is None:
                _compiled = _compile()
            return _compiled(*args)
        except torch._dynamo.exc.BackendCompilerFailed as exc:  # compilation itself failed, not the call
            _fallback = str(exc.inner_exception).splitlines()[0] if exc.inner_exception else str(exc)
            warnings.warn(f"torch.compile unavailable, using eager torch: {_fallback}", RuntimeWarning, stacklevel=2)
    return _summed_profit(*args)


def fallback_reason() -> str | None:
    """Why the compiled path fell back to eager in this process (None while it compiles fine)."""
    return _fallback


def warm_up(objective, k: int) -> float:
    """Compile the batched path for `objective` at `k` candidates; the seconds it took (0 once compiled)."""
    opts = dict(dtype=objective.problem.dtype, device=objective.problem.device)
    shape = (objective.problem.n_sims, k) if objective.problem.batched else (k,)
    start = time.perf_counter()
    objective.batch(torch.zeros(shape, **opts), torch.zeros(shape, **opts), compiled=True)
    if objective.problem.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start
