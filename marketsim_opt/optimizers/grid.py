"""A zooming grid: each stage scores a G x G grid in one batched call, then zooms
onto the best cell, on the device (the best point is read back once, at the end)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..instrument import to_device
from ..strategies import Objective
from .result import Solution

__all__ = ["solve", "STAGES"]

#: The budget is spread over this many stages.
STAGES = 4


def solve(objective: Objective, bounds, budget: int, seed: int) -> Solution:
    """Maximise `objective` on STAGES zooming G x G grids, `G = floor(sqrt(budget / STAGES))`.

    Budgets under STAGES * 4 (fewer than 2 x 2 points a stage) run one stage of
    `floor(sqrt(budget))` squared points.  `seed` is unused: the grid is deterministic.
    """
    problem = objective.problem
    stages = STAGES if budget >= 4 * STAGES else 1
    g = max(1, math.isqrt(budget // stages))
    opts = dict(dtype=problem.dtype, device=problem.device)
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    s = problem.n_sims
    box_lo = to_device([[h_lo, l_lo]], **opts).expand(s, 2)
    box_hi = to_device([[h_hi, l_hi]], **opts).expand(s, 2)
    full_lo, full_hi = box_lo, box_hi
    best_profit = torch.full((s,), -math.inf, **opts)
    best_x = (box_lo + box_hi) / 2
    steps = torch.linspace(0.0, 1.0, g, **opts) if g > 1 else torch.full((1,), 0.5, **opts)
    hh, ll = torch.meshgrid(steps, steps, indexing="ij")
    unit = torch.stack([hh.reshape(-1), ll.reshape(-1)], dim=-1)  # [G*G, 2]
    for _ in range(stages):
        # One scoring call per stage; `Objective.score` itself scores a huge grid in bounded slices.
        x = box_lo[:, None, :] + unit[None] * (box_hi - box_lo)[:, None, :]  # [S, G*G, 2]
        scores = objective.score(x[..., 0], x[..., 1])
        profit, j = scores.max(dim=-1)
        better = profit > best_profit
        best_profit = torch.where(better, profit, best_profit)
        best_x = torch.where(better[:, None], x[torch.arange(s), j], best_x)
        # Zoom onto the cells around the best point: one grid spacing either side.
        half = (box_hi - box_lo) / max(g - 1, 1)
        box_lo = torch.maximum(best_x - half, full_lo)
        box_hi = torch.minimum(best_x + half, full_hi)
    return Solution(best_x[:, 0], best_x[:, 1], best_profit, np.full(s, stages * g * g))
