"""Profit quality: regret against the exact optimum, scored in float64."""

from __future__ import annotations

import numpy as np
import torch

from .data import Problem
from .optimizers.result import OptimizeResult
from .strategies import Objective

__all__ = ["regret_bp", "score_f64", "exact_optimum"]


@torch.no_grad()  # a score, not a graph: inputs that require grad (a user's model outputs) are read as values
def score_f64(objective: Objective, h, l, close_at_eod) -> np.ndarray:
    """The float64 objective at `(h, l)` under policy `close_at_eod`, per simulation (`[S]`).

    `h`, `l`: `[S]` (or numbers for S = 1); `close_at_eod`: a bool or `[S]` bools.
    """
    exact64 = objective.as_float64()
    h = np.atleast_1d(np.asarray(h, dtype=np.float64))
    l = np.atleast_1d(np.asarray(l, dtype=np.float64))
    eod = np.broadcast_to(np.asarray(close_at_eod, dtype=bool), h.shape)
    out = np.empty(len(h))
    for policy in (False, True):
        rows = np.flatnonzero(eod == policy)
        if len(rows) == 0:
            continue
        index = torch.as_tensor(rows, device=exact64.problem.device)
        obj = exact64.rows(index).with_policy(policy)
        ht = torch.as_tensor(h[rows], device=obj.problem.device)
        lt = torch.as_tensor(l[rows], device=obj.problem.device)
        out[rows] = obj.score(ht[:, None], lt[:, None])[:, 0].cpu().numpy()
    return out


def exact_optimum(result: OptimizeResult) -> np.ndarray:
    """The exact supremum over the same box and policies as `result`, per simulation (`[S]`)."""
    from .optimizers.api import optimize

    exact = optimize(
        result.objective.problem,
        result.objective,
        close_at_eod=None if len(result.policies) == 2 else result.policies[0],
        bounds=result.bounds,
        method="exact",
    )
    return exact.supremum


def _same_problem(a, b) -> bool:
    if a is b:
        return True
    ta, tb = a.tensors(), b.tensors()
    return (
        (a.is_crypto, a.trading_fee) == (b.is_crypto, b.trading_fee)
        and all(ta[k].shape == tb[k].shape and ta[k].device == tb[k].device for k in ta)
        and all(torch.equal(ta[k].double(), tb[k].double()) for k in ta)
    )


def _check_optimum(optimum, n_sims: int) -> np.ndarray:
    """`optimum` as float64 `[S]`; ValueError naming it unless it is S finite numbers (a scalar when S = 1)."""
    want = "a finite number" if n_sims == 1 else f"{n_sims} finite numbers, one per simulation"
    if isinstance(optimum, torch.Tensor):
        optimum = optimum.detach().cpu()
    try:
        values = np.atleast_1d(np.asarray(optimum, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"optimum: expected {want} (from exact_optimum), got {optimum!r}") from None
    if values.shape != (n_sims,) or not np.isfinite(values).all():
        raise ValueError(f"optimum: expected {want} (from exact_optimum), got {optimum!r}")
    return values


def regret_bp(result: OptimizeResult, problem=None, *, optimum: np.ndarray | None = None):
    """`(exact optimum - float64 profit at result's (h, l)) * 1e4`, per simulation (`[S]`).

    `problem`, when given, must be the problem the result was computed on.
    `optimum` (from `exact_optimum`) skips recomputing the exact solution.
    """
    if not isinstance(result, OptimizeResult):
        raise ValueError(f"result: expected the OptimizeResult of optimize, got {type(result).__name__}")
    if result.objective is None:
        raise ValueError("result: carries no objective; pass a result of optimize")
    if problem is not None and not isinstance(problem, Problem):
        raise ValueError(f"problem: expected a marketsim_opt.Problem, got {type(problem).__name__}")
    if problem is not None and not _same_problem(problem, result.objective.problem):
        raise ValueError("problem: is not the problem this result was computed on")
    best = exact_optimum(result) if optimum is None else _check_optimum(optimum, result.objective.problem.n_sims)
    achieved = score_f64(result.objective, result.h, result.l, result.close_at_eod)
    regret = (best - achieved) * 1e4
    return regret
