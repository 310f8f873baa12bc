"""Optimizers behind one result type and one registry (`registry`: every method's solver and metadata):
`direct` (the historical baseline), batched `nevergrad:<Optimizer>`, a batched zooming `grid`, the `exact`
optimum, batched multi-start `gradient` ascent on a smoothed kernel, Bayesian `optuna:TPE` (optional extra),
`zero` (the offsets left at 0: the baseline every method must beat out of sample), and the robust variants
of the exact optimum (`exact:centre`, `robust:worst`, `robust:mean`)."""

from . import registry
from .api import METHODS, default_budget, optimize, optimize_always_on, optimize_entry_exit
from .result import OptimizeResult, SimulationResult

__all__ = [
    "METHODS",
    "OptimizeResult",
    "SimulationResult",
    "default_budget",
    "optimize",
    "optimize_always_on",
    "optimize_entry_exit",
    "registry",
]
