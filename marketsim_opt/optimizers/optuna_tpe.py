"""Bayesian optimization with optuna (`optuna:TPE`): ask a round of candidates from every simulation's
study, score them all in one broadcast kernel call, read them back once, tell.

optuna is an optional extra (`pip install -c constraints.txt -e '.[optuna]'`); without it the method
raises `errors.MissingExtraError` naming the extra.  (The module is not called `optuna.py` so that it never stands
in for the package in a reader's mind or in a relative import.)
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import MissingExtraError
from ..strategies import Objective
from .result import Solution
from .rounds import ROUNDS, ask_score_tell

__all__ = ["solve", "check_name", "check_available", "SAMPLERS", "ROUNDS", "MISSING"]

#: The optuna samplers this method offers, by the name after `optuna:`.
SAMPLERS = ("TPE",)
#: What a method of this module says when optuna is not installed.
MISSING = "method {method} needs optuna: pip install -c constraints.txt -e '.[optuna]'"


def check_available(method: str) -> None:
    """Raise `errors.MissingExtraError` naming the `optuna` extra unless optuna can be imported."""
    try:
        import optuna  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(MISSING.format(method=method)) from exc


def check_name(name: str) -> None:
    """Raise ValueError naming `method` unless `name` is one of SAMPLERS; MissingExtraError without optuna."""
    if name not in SAMPLERS:
        close = [k for k in SAMPLERS if k.lower() == name.lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else f"; expected one of {', '.join(SAMPLERS)}"
        raise ValueError(f"method: unknown optuna sampler {name!r}{hint}")
    check_available(f"optuna:{name}")


def _sampler(name: str, seed: int):
    import optuna

    if name == "TPE":
        with warnings.catch_warnings():  # multivariate and constant_liar are "experimental" in optuna 4
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    raise ValueError(f"method: unknown optuna sampler {name!r}")


def solve(objective: Objective, bounds, budget: int, seed: int, *, name: str = "TPE") -> Solution:
    """Maximise `objective` with one seeded optuna study per simulation, `budget` candidates each.

    Every study asks `ceil(budget / ROUNDS)` trials a round (the last round fewer), all simulations' trials
    are scored in one `Objective.score` call and read back with one `.tolist()`, and each study is told its
    scores.  nfev is the budget exactly.
    """
    check_name(name)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    n_sims = objective.problem.n_sims
    space = {
        "h": optuna.distributions.FloatDistribution(bounds[0][0], bounds[0][1]),
        "l": optuna.distributions.FloatDistribution(bounds[1][0], bounds[1][1]),
    }
    studies = [optuna.create_study(direction="maximize", sampler=_sampler(name, seed)) for _ in range(n_sims)]

    def ask(s: int, k: int):
        trials = [studies[s].ask(space) for _ in range(k)]
        return trials, np.array([(t.params["h"], t.params["l"]) for t in trials])

    def tell(s: int, trials, scores: list[float]) -> None:
        for trial, score in zip(trials, scores):
            studies[s].tell(trial, score)

    return ask_score_tell(objective, budget, ask, tell)
