"""The batched ask/score/tell loop of the host-side optimizers (nevergrad, optuna).

Each round asks every simulation's optimizer for a few candidates, scores all
of them in one broadcast kernel call, reads the scores back once (`.tolist()`, declared)
and tells each optimizer its own; the best candidate seen is kept per
simulation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..instrument import read_list, to_device
from ..strategies import Objective
from .result import Solution

__all__ = ["ROUNDS", "MAX_ROUND_SIZE", "round_size", "ask_score_tell"]

#: The budget is spread over at most this many rounds of `round_size(budget)` candidates (one read-back
#: each); e.g. budget 15 runs 8 rounds of 2, the last of 1.
ROUNDS = 10
#: No round asks more than this many candidates per simulation, so a huge budget runs more rounds instead of
#: spending minutes in one round's asks with no progress reported (budgets up to ROUNDS x this are unaffected).
MAX_ROUND_SIZE = 10_000


def round_size(budget: int) -> int:
    """Candidates asked per simulation per round: `ceil(budget / ROUNDS)`, at most `MAX_ROUND_SIZE`."""
    return min(MAX_ROUND_SIZE, max(1, math.ceil(budget / ROUNDS)))


def ask_score_tell(
    objective: Objective,
    budget: int,
    ask: Callable[[int, int], tuple[Sequence[Any], np.ndarray]],
    tell: Callable[[int, Sequence[Any], list[float]], None],
) -> Solution:
    """Run rounds until `budget` candidates per simulation were scored; the best seen per simulation.

    `ask(s, k)` returns simulation `s`'s optimizer's `k` handles (what it wants back with the scores) and
    their `(h, l)` as a `[k, 2]` array; `tell(s, handles, scores)` gives it the kernel's profits
    (higher is better).  nfev is the budget exactly.
    """
    problem = objective.problem
    n_sims = problem.n_sims
    batch = round_size(budget)
    best = np.full(n_sims, -np.inf)
    best_x = np.zeros((n_sims, 2))
    told = 0
    while told < budget:
        k = min(batch, budget - told)
        asked = [ask(s, k) for s in range(n_sims)]
        x = np.stack([np.asarray(points, dtype=np.float64).reshape(k, 2) for _, points in asked])  # [S, k, 2]
        xt = to_device(x, dtype=problem.dtype, device=problem.device)
        scores = read_list(objective.score(xt[..., 0], xt[..., 1]))
        for s, ((handles, _), row) in enumerate(zip(asked, scores)):
            tell(s, handles, row)
            j = int(np.argmax(row))
            if row[j] > best[s]:
                best[s] = row[j]
                best_x[s] = x[s, j]
        told += k
    return Solution(best_x[:, 0].copy(), best_x[:, 1].copy(), best, np.full(n_sims, told))
