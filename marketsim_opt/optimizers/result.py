"""The one result type every optimizer returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

if TYPE_CHECKING:
    from ..strategies import Objective

__all__ = ["OptimizeResult", "Solution"]


@dataclass
class Solution:
    """One method's answer for one policy, per simulation (`[S]`; S = 1 for an unbatched problem).

    Fields are host numpy arrays or device tensors; the optimizer API reads
    tensors back once for all policies.  `profit` is the objective at `(h, l)`
    as the method scored it; `supremum` is set by the exact method only.  `criterion` is what the method
    maximised where that is not `profit` (the robust methods' box statistic); the policy search compares it.
    `nfev` is the number of candidates scored for each simulation (host ints).
    """

    h: np.ndarray | Tensor
    l: np.ndarray | Tensor
    profit: np.ndarray | Tensor
    nfev: np.ndarray
    supremum: np.ndarray | Tensor | None = None
    criterion: np.ndarray | Tensor | None = None


@dataclass
class OptimizeResult:
    """What `optimize_entry_exit` / `optimize_always_on` return (in the spirit of scipy's OptimizeResult).

    For an unbatched problem the per-simulation fields are Python scalars; for
    a batched `[S, N]` problem they are numpy arrays of shape `[S]`.

    - `h`, `l`: the chosen offsets.
    - `profit`: the objective at `(h, l)` as the method scored it (the
      problem's dtype; float64 for `exact`), a fraction of the previous close.
    - `close_at_eod`: the policy of each answer (the better one under policy search).
    - `nfev`: candidates scored for each simulation (all policies together).
    - `syncs`: host syncs counted in the whole call (input checks included);
      `wall_time`: seconds for the whole call.  Both cover all simulations.
    - `supremum`: `exact` only: the supremum over the box (float64), which
      `profit` is within 1e-9 of.  Other methods claim nothing about optimality.
    - `success`: per simulation, whether the method returned a finite point inside
      the box with a finite profit (as scipy's `success`; it says nothing about
      optimality); `message`: one line saying so, or which simulations failed and why.
    """

    h: Any
    l: Any
    profit: Any
    close_at_eod: Any
    method: str
    nfev: Any
    syncs: int
    wall_time: float
    budget: int | None
    supremum: Any = None
    strategy: str = ""
    policies: tuple[bool, ...] = (False,)
    bounds: tuple[tuple[float, float], tuple[float, float]] = ((-0.03, 0.03), (-0.03, 0.03))
    objective: Objective | None = field(default=None, repr=False, compare=False)
    success: Any = True
    message: str = ""

    @property
    def x(self) -> np.ndarray:
        """`(h, l)` as an array, `[2]` or `[S, 2]`, like scipy's `res.x`."""
        return np.stack([np.asarray(self.h), np.asarray(self.l)], axis=-1)

    @property
    def batched(self) -> bool:
        return isinstance(self.h, np.ndarray)
