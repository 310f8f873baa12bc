"""`zero`: no optimization at all, the offsets left at `h = l = 0` (the baseline every method must beat out of sample).

It scores `(0, 0)` once per simulation and policy, so `profit` is the in-sample objective there and the policy
search still picks the better policy; `budget` and `seed` are unused.
"""

from __future__ import annotations

import numpy as np

from ..instrument import to_device
from ..strategies import Objective
from .result import Solution

__all__ = ["solve"]


def solve(objective: Objective, bounds, budget: int | None = None, seed: int = 0) -> Solution:
    """`h = l = 0` for every simulation (the box's point nearest `(0, 0)` when the box excludes it), scored once.

    `nfev` is 1 per simulation.  Nothing is read back here (the optimizer API reads the answer back once).
    """
    problem = objective.problem
    s = problem.n_sims
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    point = [min(max(0.0, h_lo), h_hi), min(max(0.0, l_lo), l_hi)]
    x = to_device([point], dtype=problem.dtype, device=problem.device).expand(s, 2)  # [S, 2]
    h, l = x[:, 0].contiguous(), x[:, 1].contiguous()
    profit = objective.score(h[:, None], l[:, None])[:, 0]
    return Solution(h, l, profit, np.full(s, 1))
