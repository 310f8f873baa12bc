"""Batched nevergrad: ask a round of candidates from every simulation's optimizer, score
them all in one broadcast kernel call, read them back once, tell."""

from __future__ import annotations

import math

import numpy as np

from ..instrument import to_device
from ..strategies import Objective
from .result import Solution

__all__ = ["solve", "OPTIMIZERS", "ROUNDS"]

#: The nevergrad optimizers the suite tracks (any name in nevergrad's registry works).
OPTIMIZERS = ("NGOpt", "TwoPointsDE", "CMA", "PSO", "OnePlusOne", "DiagonalCMA", "ScrHammersleySearch")
#: The budget is spread over at most this many ask/score/tell rounds of `ceil(budget / ROUNDS)`
#: candidates (one read-back each); e.g. budget 15 runs 8 rounds of 2, the last of 1.
ROUNDS = 10


def check_name(name: str) -> None:
    """Raise ValueError unless `name` is in nevergrad's optimizer registry."""
    import nevergrad as ng

    if name not in ng.optimizers.registry:
        close = [k for k in OPTIMIZERS if k.lower() == name.lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else f"; e.g. one of {', '.join(OPTIMIZERS)}"
        raise ValueError(f"method: unknown nevergrad optimizer {name!r}{hint}")


def solve(objective: Objective, bounds, budget: int, seed: int, *, name: str) -> Solution:
    """Maximise `objective` with nevergrad optimizer `name`, `budget` candidates per simulation."""
    import nevergrad as ng

    problem = objective.problem
    n_sims = problem.n_sims
    batch = max(1, math.ceil(budget / ROUNDS))
    lower = np.array([bounds[0][0], bounds[1][0]])
    upper = np.array([bounds[0][1], bounds[1][1]])
    optimizers = []
    for _ in range(n_sims):
        param = ng.p.Array(shape=(2,), lower=lower, upper=upper)
        param.random_state = np.random.RandomState(seed)
        optimizers.append(ng.optimizers.registry[name](parametrization=param, budget=budget, num_workers=batch))

    best = np.full(n_sims, -np.inf)
    best_x = np.zeros((n_sims, 2))
    told = 0
    while told < budget:
        k = min(batch, budget - told)
        asks = [[opt.ask() for _ in range(k)] for opt in optimizers]
        x = np.array([[c.value for c in row] for row in asks])  # [S, k, 2]
        xt = to_device(x, dtype=problem.dtype, device=problem.device)
        if problem.batched:
            scores = objective.batch(xt[..., 0], xt[..., 1]).tolist()
        else:
            scores = [objective.batch(xt[0, :, 0], xt[0, :, 1]).tolist()]
        for s, (opt, row) in enumerate(zip(optimizers, asks)):
            for cand, score in zip(row, scores[s]):
                opt.tell(cand, -score)
            j = int(np.argmax(scores[s]))
            if scores[s][j] > best[s]:
                best[s] = scores[s][j]
                best_x[s] = x[s, j]
        told += k
    return Solution(best_x[:, 0].copy(), best_x[:, 1].copy(), best, np.full(n_sims, told))
