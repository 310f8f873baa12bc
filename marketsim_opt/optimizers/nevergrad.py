"""Batched nevergrad: ask a round of candidates from every simulation's optimizer, score
them all in one broadcast kernel call, read them back once, tell."""

from __future__ import annotations

import numpy as np

from ..strategies import Objective
from .result import Solution
from .rounds import ROUNDS, ask_score_tell, round_size

__all__ = ["solve", "OPTIMIZERS", "ROUNDS"]

#: The nevergrad optimizers the suite tracks (any name in nevergrad's registry works).
OPTIMIZERS = ("NGOpt", "TwoPointsDE", "CMA", "PSO", "OnePlusOne", "DiagonalCMA", "ScrHammersleySearch")


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
    batch = round_size(budget)
    lower = np.array([bounds[0][0], bounds[1][0]])
    upper = np.array([bounds[0][1], bounds[1][1]])
    optimizers = []
    for _ in range(n_sims):
        param = ng.p.Array(shape=(2,), lower=lower, upper=upper)
        param.random_state = np.random.RandomState(seed)
        optimizers.append(ng.optimizers.registry[name](parametrization=param, budget=budget, num_workers=batch))

    def ask(s: int, k: int):
        cands = [optimizers[s].ask() for _ in range(k)]
        return cands, np.array([c.value for c in cands])

    def tell(s: int, cands, scores: list[float]) -> None:
        for cand, score in zip(cands, scores):
            optimizers[s].tell(cand, -score)  # nevergrad minimises

    return ask_score_tell(objective, budget, ask, tell)
