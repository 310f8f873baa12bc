"""The batched objective fused by `torch.compile`: candidates' sums with no `[K, N]` temporaries.

Eager torch materialises a `[K, N]` tensor for every operation of the kernel;
compiled (inductor: C++ on CPU, Triton on CUDA), the kernel and its sum over
days become one loop.  Compiling takes seconds (inductor caches the result on
disk), so the compiled path is opt-in (`Objective.score(..., compiled=True)`)
and `warm_up` compiles ahead of time and returns the seconds it took, which
keeps compilation out of timed regions.  Where compilation cannot run (no C++
compiler, no Triton, an unsupported platform) the call falls back to eager
torch, with one warning, and keeps using eager from then on.

Compile state is held per cache key, the device type of the candidates
(`"cpu"`, `"cuda"`): a `CompileState` per key, made on first use by
`compile_state(key)`.  A compiler failure on one device type therefore leaves
the others compiling.  The module rebinds no global.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from .kernel import raw_profit_per_day

__all__ = ("CompileState", "compile_state", "summed_profit", "warm_up", "fallback_reason", "REPORTED_KEYS")

#: The keys `fallback_reason()` (no argument) reports on: the device types torch.compile targets.
REPORTED_KEYS = ("cpu", "cuda", "xpu", "mps")


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


def _compile() -> Callable[..., Tensor]:
    return torch.compile(_summed_profit)


class CompileState:
    """The compiled `_summed_profit` for one cache key, compiled on first call, and why it fell back, if it did.

    `make` builds the compiled callable (default: `torch.compile` of the eager sum); it is called at most once.
    After a `BackendCompilerFailed` the state records the reason, warns once and scores eagerly from then on.
    """

    def __init__(self, key: str, make: Callable[[], Callable[..., Tensor]] | None = None) -> None:
        self.key = key
        self._make = make
        self._compiled: Callable[..., Tensor] | None = None
        self.fallback: str | None = None

    def __call__(self, *args: object) -> Tensor:
        """`_summed_profit(*args)`, compiled unless this key fell back to eager."""
        if self.fallback is None:
            try:
                if self._compiled is None:
                    self._compiled = (self._make or _compile)()
                return self._compiled(*args)
            except torch._dynamo.exc.BackendCompilerFailed as exc:  # compilation itself failed, not the call
                inner = exc.inner_exception
                self.fallback = (str(inner).splitlines() or [""])[0] if inner is not None else str(exc)
                warnings.warn(
                    f"torch.compile unavailable for {self.key!r}, using eager torch: {self.fallback}",
                    RuntimeWarning,
                    stacklevel=3,  # the caller of summed_profit
                )
        return _summed_profit(*args)

    def __repr__(self) -> str:
        status = "not compiled" if self._compiled is None and self.fallback is None else "compiled"
        return f"CompileState({self.key!r}, {'eager: ' + self.fallback if self.fallback else status})"


@functools.cache
def compile_state(key: str) -> CompileState:
    """The one `CompileState` of cache `key` (a device type such as `"cpu"` or `"cuda"`), made on first use."""
    return CompileState(key)


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

    Compiled through `compile_state(h.device.type)`.  Float32 sums may differ from eager's in the last bits
    (another summation order).
    """
    state = compile_state(h.device.type)
    return state(close, high, high_pred, low, low_pred, tuple(legs), h, l, close_at_eod, trading_fee)


def fallback_reason(device: torch.device | str | None = None) -> str | None:
    """Why the compiled path fell back to eager in this process; None while it compiles fine.

    With `device` (a key such as `"cuda"`, or `"cuda:0"`, or a `torch.device`): the reason on that key.  Without: every
    fallback among `REPORTED_KEYS`, as `"<key>: <reason>"` joined by `"; "`.
    """
    if device is not None:
        return compile_state(device.type if isinstance(device, torch.device) else device.split(":")[0]).fallback
    reasons = [f"{key}: {state.fallback}" for key in REPORTED_KEYS if (state := compile_state(key)).fallback]
    return "; ".join(reasons) or None


def warm_up(objective, k: int) -> float:
    """Compile the batched path for `objective` at `k` candidates; the seconds it took (0 once compiled)."""
    opts = dict(dtype=objective.problem.dtype, device=objective.problem.device)
    shape = (objective.problem.n_sims, k)
    start = time.perf_counter()
    objective.score(torch.zeros(shape, **opts), torch.zeros(shape, **opts), compiled=True)
    if objective.problem.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start
