"""Batched multi-start gradient ascent on the smoothed kernel, the winner picked on the true kernel.

The profit is piecewise constant in its trigger indicators, so its gradient is zero almost everywhere.
`kernel.smoothed_profit_per_day` (through `Objective.smoothed`) replaces each indicator by a sigmoid of
width `tau`; this method runs Adam (written out in tensor ops: `torch.optim.Adam` reads its step counter
back with `.item()`) on all starts of all simulations at once, as `[S, M]` tensors per axis in
box-normalised coordinates `u` in `[0, 1]`, for a fixed number of steps, projecting onto the box after
each step while `tau` and the learning rate fall geometrically.  Then every start's final point is scored
on the true kernel (`Objective.score`) and the best is kept per simulation.  Nothing is read back inside:
the whole method is device work, and the optimizer API reads the answer back once.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
from torch import Tensor

from ..instrument import record_evaluations
from ..strategies import Objective
from .result import Solution

__all__ = ["solve", "plan", "ascend", "starting_points", "STEPS", "TAU_START", "TAU_END", "LR_START", "LR_END"]

#: Adam steps per start: a start costs `2 * STEPS + 1` evaluations, and the budget buys as many starts of at
#: least STEPS steps as fit (`plan`).  On this landscape a longer descent beats more starts: at budget 100,
#: mean regret on 24 random problems was 62 bp for one start of 49 steps (STEPS = 40), 77 bp for two of 24
#: (STEPS = 24) and 85 bp for three of 16 (STEPS = 16), with the schedules below.
STEPS = 40
#: The sigmoids' width as a fraction of the box's mean axis width, geometric from TAU_START (the first
#: step: a coarse view of the whole box) to TAU_END (the last: narrower than the gap between breakpoints).
TAU_START = 0.1
TAU_END = 1e-4
#: Adam's step size in box-normalised units (the box is [0, 1] per axis), geometric from LR_START to LR_END.
#: The optimum sits at a cell corner, on a cliff, so the last steps must be far shorter than a cell.
LR_START = 0.15
LR_END = 1e-4
_BETAS = (0.9, 0.999)
_EPS = 1e-8
#: The R2 sequence's steps, 1 / g and 1 / g^2 for the plastic number g (Roberts 2018): evenly spread
#: points in the unit square for any count.
_PLASTIC = 1.324717957244746
_R2 = (1.0 / _PLASTIC, 1.0 / _PLASTIC**2)


def plan(budget: int) -> tuple[int, int]:
    """`(starts, steps)` for a budget of candidates per simulation and policy.

    Each step of a start is one forward and one backward pass of the surrogate (2 evaluations) and each
    start's end point is scored once on the true kernel (1), so a start of `steps` steps costs
    `2 * steps + 1`.  `starts = max(1, budget // (2 * STEPS + 1))`, then `steps = (budget // starts - 1) // 2`
    (at least STEPS once the budget allows it), so nfev = `starts * (2 * steps + 1) <= budget`:
    e.g. 100 -> 1 start x 49 steps (99 evaluations), 240 -> 2 x 59 (238), 500 -> 6 x 41 (498),
    10 -> 1 x 4 (9), 1 or 2 -> the first start alone, scored (1).
    """
    starts = max(1, budget // (2 * STEPS + 1))
    return starts, (budget // starts - 1) // 2


def starting_points(
    starts: int, seed: int, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64
) -> Tensor:
    """`[M, 2]` box-normalised starts `(u_h, u_l)`: the high-`h`, low-`l` corner, the box centre, then the R2
    low-discrepancy sequence shifted by a seeded offset (Cranley-Patterson rotation).

    The corner comes first because inside a cell the objective rises with `h` and falls with `l`
    (docs/exact.md), so that corner is the best point of its cell.  The points are computed on `device` from
    Python scalars (no host-to-device copy, so no sync on CUDA), in float64 arithmetic that gives the same
    values on every device, and are the same for every simulation: a simulation's answer does not depend
    on what is batched with it.
    """
    rng = random.Random(seed)
    shift_h, shift_l = rng.random(), rng.random()
    k = torch.arange(starts, dtype=torch.float64, device=device)
    u_h = torch.remainder(shift_h + k * _R2[0], 1.0)
    u_l = torch.remainder(shift_l + k * _R2[1], 1.0)
    u_h = torch.where(k == 0, 1.0, torch.where(k == 1, 0.5, u_h))
    u_l = torch.where(k == 0, 0.0, torch.where(k == 1, 0.5, u_l))
    return torch.stack([u_h, u_l], dim=-1).to(dtype)


def solve(objective: Objective, bounds, budget: int, seed: int) -> Solution:
    """Maximise `objective` from `plan(budget)` starts (`starting_points`); nfev per simulation as `plan` says."""
    starts, steps = plan(budget)
    problem = objective.problem
    u = starting_points(starts, seed, device=problem.device, dtype=problem.dtype).expand(problem.n_sims, starts, 2)
    # Starts are independent: at huge budgets they ascend in slices, so the surrogate's [S, M, N] stays bounded.
    chunk = objective.candidates_per_call()
    ends = [
        ascend(objective, bounds, u[:, i : i + chunk, 0], u[:, i : i + chunk, 1], steps)
        for i in range(0, starts, chunk)
    ]
    u_h, u_l = (torch.cat(axis, dim=-1) for axis in zip(*ends))
    h, l = _to_box(u_h, u_l, bounds)
    profit, best = objective.score(h, l).max(dim=-1)  # over the [S, M] starts
    pick = best[:, None]
    nfev = np.full(problem.n_sims, starts * (2 * steps + 1))
    return Solution(h.gather(-1, pick)[:, 0], l.gather(-1, pick)[:, 0], profit, nfev)


def ascend(objective: Objective, bounds, u_h: Tensor, u_l: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """`steps` projected Adam steps up the smoothed objective from `[S, M]` box-normalised starts.

    Returns the final `[S, M]` points (box-normalised, detached).  Records `2 * S * M` evaluations a step
    (the forward and the backward pass); no host read-back.
    """
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    width = ((h_hi - h_lo) + (l_hi - l_lo)) / 2
    x = torch.stack([u_h, u_l], dim=-1).detach().clone()  # [S, M, 2]
    m = torch.zeros_like(x)
    v = torch.zeros_like(x)
    b1, b2 = _BETAS
    for t in range(steps):
        frac = t / (steps - 1) if steps > 1 else 1.0
        tau = width * TAU_START * (TAU_END / TAU_START) ** frac
        lr = LR_START * (LR_END / LR_START) ** frac
        x.requires_grad_(True)
        value = _smoothed(objective, bounds, x[..., 0], x[..., 1], tau)
        record_evaluations(x[..., 0].numel())
        (grad,) = torch.autograd.grad(value.sum(), x)
        record_evaluations(x[..., 0].numel())
        with torch.no_grad():
            x = x.detach()
            m.mul_(b1).add_(grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            step = lr / (1 - b1 ** (t + 1))
            denom = (v / (1 - b2 ** (t + 1))).sqrt_().add_(_EPS)
            x.addcdiv_(m, denom, value=step).clamp_(0.0, 1.0)  # ascent, then back onto the box
    return x[..., 0].detach(), x[..., 1].detach()


def _smoothed(objective: Objective, bounds, u_h: Tensor, u_l: Tensor, tau: float) -> Tensor:
    """The surrogate objective at box-normalised `[S, M]` points: `[S, M]`, summed over days and legs."""
    h, l = _scale(u_h, u_l, bounds)
    return objective.score(h, l, tau=tau)


def _scale(u_h: Tensor, u_l: Tensor, bounds) -> tuple[Tensor, Tensor]:
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    return h_lo + u_h * (h_hi - h_lo), l_lo + u_l * (l_hi - l_lo)


def _to_box(u_h: Tensor, u_l: Tensor, bounds) -> tuple[Tensor, Tensor]:
    """Box-normalised points as offsets in the problem's dtype, clamped to the bounds rounded inward.

    Rounding `lo + u * (hi - lo)` (or a bound itself) to float32 may step just outside the float64 box;
    the clamp keeps every returned point inside it, so no answer can beat the exact supremum over the box.
    """
    h, l = _scale(u_h, u_l, bounds)
    return _clamp_inward(h, *bounds[0]), _clamp_inward(l, *bounds[1])


def _clamp_inward(x: Tensor, lo: float, hi: float) -> Tensor:
    lo_in, hi_in = _inward(lo, hi, x.dtype)
    return x.clamp(lo_in, hi_in)


def _inward(lo: float, hi: float, dtype: torch.dtype) -> tuple[float, float]:
    """The bounds rounded to `dtype`, each moved one step inward where rounding took it outside `[lo, hi]`.

    Computed on the host with numpy's float types, so no tensor is made (nor copied to a device).  A dtype
    numpy lacks (bfloat16) keeps the bounds as given.
    """
    kind = _NUMPY_FLOATS.get(dtype)
    if kind is None:
        return lo, hi
    lo_r, hi_r = kind(lo), kind(hi)
    if float(lo_r) < lo:
        lo_r = np.nextafter(lo_r, kind(math.inf))
    if float(hi_r) > hi:
        hi_r = np.nextafter(hi_r, kind(-math.inf))
    return float(lo_r), float(hi_r)


_NUMPY_FLOATS = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}
