"""Robust variants of the exact optimum: offsets chosen to keep earning when the next day moves a little.

The exact optimum is the limit at a corner of a cell of the piecewise-constant indicators (`exact`'s docstring):
a hair away from a day whose entry would not have filled, which may be the most fragile point out of sample.
These methods give up some in-sample profit for distance from such cliffs.  All are budgetless and
deterministic; each policy is solved on its own and the policy search compares `Solution.criterion`.

- `exact:centre` (`solve_centre`): the centre of the exact optimum's cell.  Per axis the cell runs between two
  consecutive *edges* (the bounds and the breakpoints `L_i - Lp_i`, `H_i - Hp_i`, clamped into the box): on the
  `l` axis from the largest edge `<= l*` to the next one above it, on the `h` axis from the largest edge `< h*`
  to the smallest edge `>= h*` (the exact point is nudged up in `l` and down in `h`, so this is the open cell
  whose corner it is).
- `robust:worst` / `robust:mean` (`solve_box`): the candidates are a lattice over the box (step `LATTICE_STEP`,
  at most `MAX_LATTICE` points per axis); each one's criterion is the worst (or the mean) profit, by the float64
  kernel, over the lattice points within `+-DELTA` of it on both axes, and the candidate with the largest
  criterion is returned.  The lattice is extended `DELTA` beyond the bounds, so a candidate on the box's edge is
  judged on a whole box too (the kernel scores any offset; a truncated box would favour the edges).

  This is a lattice approximation, not an exact solution: the worst over a continuous box of a discontinuous
  surface would need every cell the box touches.  The lattice samples each box at `2 * DELTA / LATTICE_STEP + 1
  = 11` points per axis.

`DELTA` was fixed before any out-of-sample run (a twelfth of the default box's half-width), not tuned on it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..strategies import Objective
from . import exact
from .result import Solution

__all__ = ["solve_centre", "solve_box", "cell_centre", "lattice", "DELTA", "LATTICE_STEP", "MAX_LATTICE", "CRITERIA"]

#: Half-width of the robust box on each axis (fraction of the previous close): 25 bp.
DELTA = 0.0025
#: Lattice step of `solve_box` (fraction of the previous close): 5 bp, so the box spans 11 x 11 lattice points.
LATTICE_STEP = 0.0005
#: Most lattice points per axis (a wider box gets a coarser step): 241 covers the default box at LATTICE_STEP.
MAX_LATTICE = 241
#: `solve_box`'s criteria: the worst or the mean profit over the box.
CRITERIA = ("worst", "mean")


def _edges(breaks: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """`[S, N + 2]` ascending: the bounds and the breakpoints `breaks` (`[S, N]`) clamped into `[lo, hi]`."""
    s = breaks.shape[0]
    bounds = breaks.new_tensor([lo, hi]).expand(s, 2)
    return torch.sort(torch.cat([bounds, breaks.clamp(lo, hi)], dim=-1), dim=-1).values


def cell_centre(objective: Objective, bounds, h: torch.Tensor, l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The centre `(h, l)` of the cell whose low-`l`, high-`h` corner is `(h, l)` (float64 `[S]` each).

    See the module docstring for the cell's edges; a point on the box's upper `l` bound (or lower `h` bound)
    has no cell beyond it and stays where it is on that axis.
    """
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    p = objective.problem
    l_edges = _edges(p.low.double() - p.low_pred.double(), l_lo, l_hi)
    h_edges = _edges(p.high.double() - p.high_pred.double(), h_lo, h_hi)
    n = l_edges.shape[-1]
    # l: the largest edge <= l, then the first edge above it (l itself when there is none).
    above = torch.searchsorted(l_edges, l[:, None].contiguous(), side="right")[:, 0]
    l_low = l_edges.gather(1, (above - 1).clamp(min=0)[:, None])[:, 0]
    l_high = torch.where(above < n, l_edges.gather(1, above.clamp(max=n - 1)[:, None])[:, 0], l)
    # h: the smallest edge >= h, then the last edge below it (h itself when there is none).
    at = torch.searchsorted(h_edges, h[:, None].contiguous(), side="left")[:, 0]
    h_high = h_edges.gather(1, at.clamp(max=n - 1)[:, None])[:, 0]
    h_low = torch.where(at > 0, h_edges.gather(1, (at - 1).clamp(min=0)[:, None])[:, 0], h)
    return (h_low + h_high) / 2, (l_low + l_high) / 2


def solve_centre(objective: Objective, bounds, budget: int | None = None, seed: int = 0) -> Solution:
    """`exact:centre`: the centre of the exact optimum's cell, scored by the float64 kernel, per simulation.

    `nfev` is exact's plus the centre's scoring; `criterion` is the profit at the centre.
    """
    corner = exact.solve(objective, bounds)
    h, l = cell_centre(objective, bounds, corner.h, corner.l)
    profit = objective.as_float64().score(h[:, None], l[:, None])[:, 0]
    return Solution(h, l, profit, corner.nfev + 1, criterion=profit)


def lattice(lo: float, hi: float, device: torch.device | str = "cpu") -> tuple[torch.Tensor, int]:
    """One axis's lattice, float64 `[G + 2r]`, and `r`: G points from `lo` to `hi` (step LATTICE_STEP, coarser
    past MAX_LATTICE) extended by `r = round(DELTA / step)` (at least 1) points beyond each end."""
    g = max(2, min(MAX_LATTICE, math.floor((hi - lo) / LATTICE_STEP + 1e-9) + 1))
    step = (hi - lo) / (g - 1)
    r = max(1, round(DELTA / step))
    index = torch.arange(-r, g + r, dtype=torch.float64, device=device)
    return lo + step * index, r


def solve_box(objective: Objective, bounds, budget: int | None = None, seed: int = 0, *, criterion: str) -> Solution:
    """`robust:<criterion>`: the lattice point whose worst / mean profit over a `+-DELTA` box is largest.

    The profit of every point of the extended lattice is one batched float64 scoring `[S, (Gh+2rh)(Gl+2rl)]`;
    the box statistics are a sliding min (max-pool of the negated profit) or mean (average-pool) over
    `(2rh + 1) x (2rl + 1)` points.  `profit` is the objective at the returned point and `criterion` the box
    statistic there.  `nfev` is the extended lattice's size per simulation.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion: expected one of {', '.join(CRITERIA)}, got {criterion!r}")
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    device = objective.problem.device
    (hs, rh), (ls, rl) = lattice(h_lo, h_hi, device), lattice(l_lo, l_hi, device)
    s = objective.problem.n_sims
    hh, ll = torch.meshgrid(hs, ls, indexing="ij")  # [Gh + 2rh, Gl + 2rl]
    profit = objective.as_float64().score(hh.reshape(1, -1).expand(s, -1), ll.reshape(1, -1).expand(s, -1))
    grid = profit.view(s, 1, *hh.shape)
    size = (2 * rh + 1, 2 * rl + 1)
    # No padding: every box is whole, so the statistics cover exactly the points inside the bounds.
    stat = -F.max_pool2d(-grid, size, stride=1) if criterion == "worst" else F.avg_pool2d(grid, size, stride=1)
    best, flat = stat.view(s, -1).max(dim=-1)
    gl = stat.shape[-1]
    i, j = flat // gl + rh, flat % gl + rl  # the chosen point on the extended lattice
    rows = torch.arange(s, device=device)
    return Solution(hs[i], ls[j], grid[rows, 0, i, j], np.full(s, hh.numel()), criterion=best)
