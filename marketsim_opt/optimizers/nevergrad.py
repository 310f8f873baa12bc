"""Batched nevergrad: ask a round of candidates from every simulation's optimizer, score
them all in one broadcast kernel call, read them back once, tell.

Three warnings of nevergrad's dependencies are silenced inside `solve` (only there, only these; see
`QUIET`).  cma's `InjectionWarning` ("orphanated injected solution") is not caused by our calling
order: each round asks `k = ceil(budget / ROUNDS)` candidates (nevergrad's `num_workers`) and tells
exactly those, in the order asked.  nevergrad's CMA wrapper (`optimizerlib._CMA`) buffers asks in a
deque refilled by `es.ask()` whenever it runs empty, and calls `es.tell` once per `popsize` tells.  When
the round size does not match cma's popsize (`CMA` picks `CMAbounded` on our bounded box, whose
elitist popsize is `max(k + 1, 4)`; `DiagonalCMA`'s is `max(k, 6)`), one `es.tell` gets samples from
two `es.ask` calls.  cma then either scores a generation late, or (two tells with no ask between)
raises "tell can currently only be called once per iteration", which nevergrad swallows, dropping that
generation from cma's update; with popsize < 6 cma also injects a delayed selective mirror into the
next generation, which such a dropped tell orphans, hence the warning.  Every candidate is still scored
and the best seen is kept by `ask_score_tell`, so results and nfev are right; only cma's adaptation is
weaker (e.g. `CMA` at budget 30 drops 2 of 7 generations, `DiagonalCMA` at 40 drops 3 of 6; at budget 100
`CMA` lags a generation and `DiagonalCMA` is aligned).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..strategies import Objective
from .result import Solution
from .rounds import ROUNDS, ask_score_tell, round_size

__all__ = ["solve", "OPTIMIZERS", "ROUNDS"]

#: The nevergrad optimizers the suite tracks (any name in nevergrad's registry works).
OPTIMIZERS = ("NGOpt", "TwoPointsDE", "CMA", "PSO", "OnePlusOne", "DiagonalCMA", "ScrHammersleySearch")

#: Warnings of nevergrad's dependencies that `solve` silences: (message regex, category, module regex).
QUIET = (
    # cma: a generation told late or dropped by nevergrad's CMA wrapper (module docstring); results unaffected.
    (r"orphanated injected solution", UserWarning, r"cma\."),
    # scipy's COBYLA, called by NGOpt at tiny budgets with rhoend > rhobeg; scipy sets rhoend to rhobeg.
    (r"COBYLA: Invalid RHOEND", UserWarning, r"scipy\."),
    # nevergrad 1.0.12's metamodel (NGOpt) calls float() on a 1-element array; numpy is pinned below 2.4,
    # where this becomes the error constraints.txt mentions.
    (r"Conversion of an array with ndim > 0 to a scalar", DeprecationWarning, r"nevergrad\."),
)


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

    with warnings.catch_warnings():
        for message, category, module in QUIET:
            warnings.filterwarnings("ignore", message=message, category=category, module=module)
        return ask_score_tell(objective, budget, ask, tell)
