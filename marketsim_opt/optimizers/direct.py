"""The historical baseline: `scipy.optimize.direct`, one sequential evaluation and one
`.item()` read-back per candidate (declared: `instrument.read_item`), a Python loop over simulations."""

from __future__ import annotations

import numpy as np

from ..instrument import read_item
from ..strategies import Objective
from .result import Solution

__all__ = ["solve"]


def solve(objective: Objective, bounds, budget: int, seed: int) -> Solution:
    """Maximise `objective` with DIRECT (`maxfun=budget`); `seed` is unused (DIRECT is deterministic)."""
    from scipy.optimize import direct

    h, l, profit, nfev = [], [], [], []
    for s in range(objective.problem.n_sims):
        res = direct(_loss(objective.rows(s)), bounds, maxfun=budget)
        h.append(res.x[0])
        l.append(res.x[1])
        profit.append(-res.fun)
        nfev.append(res.nfev)
    return Solution(np.array(h), np.array(l), np.array(profit), np.array(nfev))


def _loss(objective: Objective):
    """Minus the objective of one simulation at one candidate `x = (h, l)`, read back (DIRECT minimises)."""
    return lambda x: -read_item(objective.score(x[0], x[1]))
