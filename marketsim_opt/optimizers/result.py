"""The one result type every optimizer returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor

if TYPE_CHECKING:
    from ..strategies import Objective

__all__ = ["OptimizeResult", "SimulationResult", "Solution"]


@dataclass
class Solution:
    """One method's answer for one policy, per simulation (`[S]`).

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


@dataclass(frozen=True)
class SimulationResult:
    """One simulation's answer as Python scalars: `OptimizeResult[i]`, or `OptimizeResult.scalar` for S = 1."""

    h: float
    l: float
    profit: float
    close_at_eod: bool
    nfev: int
    success: bool
    supremum: float | None = None

    @property
    def x(self) -> np.ndarray:
        """`(h, l)` as an array `[2]`, like scipy's `res.x`."""
        return np.array([self.h, self.l])


@dataclass
class OptimizeResult:
    """What `optimize` returns (in the spirit of scipy's OptimizeResult), for a problem of S simulations.

    The per-simulation fields are numpy arrays of shape `[S]` (S = 1 for one series); `result[i]` is
    simulation `i`'s as Python scalars and `result.scalar` the only one's (S = 1).

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

    h: np.ndarray
    l: np.ndarray
    profit: np.ndarray
    close_at_eod: np.ndarray
    method: str
    nfev: np.ndarray
    syncs: int
    wall_time: float
    budget: int | None
    success: np.ndarray
    message: str
    supremum: np.ndarray | None = None
    strategy: str = ""
    policies: tuple[bool, ...] = (False,)
    bounds: tuple[tuple[float, float], tuple[float, float]] = ((-0.03, 0.03), (-0.03, 0.03))
    objective: Objective | None = field(default=None, repr=False, compare=False)

    @property
    def n_sims(self) -> int:
        """S, the simulations answered."""
        return len(self.h)

    @property
    def x(self) -> np.ndarray:
        """`(h, l)` per simulation as an array `[S, 2]`, like scipy's `res.x`."""
        return np.stack([self.h, self.l], axis=-1)

    def __getitem__(self, i: int) -> SimulationResult:
        """Simulation `i`'s answer as Python scalars."""
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"OptimizeResult indices are simulation numbers (int), got {type(i).__name__}")
        if not -self.n_sims <= i < self.n_sims:
            raise IndexError(f"simulation {i} out of range for S = {self.n_sims}")
        return SimulationResult(
            h=float(self.h[i]),
            l=float(self.l[i]),
            profit=float(self.profit[i]),
            close_at_eod=bool(self.close_at_eod[i]),
            nfev=int(self.nfev[i]),
            success=bool(self.success[i]),
            supremum=None if self.supremum is None else float(self.supremum[i]),
        )

    @property
    def scalar(self) -> SimulationResult:
        """The one simulation's answer as Python scalars (S = 1; ValueError naming S otherwise)."""
        if self.n_sims != 1:
            raise ValueError(f"scalar: the result holds S = {self.n_sims} simulations; index one with result[i]")
        return self[0]
