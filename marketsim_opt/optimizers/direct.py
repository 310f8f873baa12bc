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

    problem = objective.problem
    subs = (
        [objective]
        if not problem.batched
        else [
            Objective(problem[s], tuple(leg[s] for leg in objective.legs), objective.close_at_eod)
            for s in range(problem.n_sims)
        ]
    )
    h, l, profit, nfev = [], [], [], []
    for sub in subs:
        res = direct(lambda x, f=sub: -read_item(f(x[0], x[1])), bounds, maxfun=budget)
        h.append(res.x[0])
        l.append(res.x[1])
        profit.append(-res.fun)
        nfev.append(res.nfev)
    return Solution(np.array(h), np.array(l), np.array(profit), np.array(nfev))
