"""The exact global optimum of SPEC section 3, by batched enumeration of breakpoint corners.

The objective splits into an `l` side and an `h` side.  Per day `i`, with
`u_i(l) = pl_i [Lq_i > L_i]`, `b_i(l) = Lq_i if Lq_i >= L_i else c_i`,
`v_i(h) = ps_i [Hq_i < H_i]` and `a_i(h) = Hq_i if Hq_i <= H_i else c_i`:

    intraday:     F(h, l) = sum_i u_i(l) a_i(h) + b_i(l) v_i(h) + w(l) + z(h)
    close_at_eod: F(h, l) = w(l) + z(h)

with `w(l) = sum_i -u_i (Lq_i + f)` (intraday) or `u_i (c_i - Lq_i - f)` (at the
close), and `z(h) = sum_i v_i (f - Hq_i)` or `v_i (c_i - Hq_i + f)`.  Indicators
change only at `l = L_i - Lp_i` and `h = H_i - Hp_i` (clamps change slopes,
never indicators), and inside a cell F falls as `l` rises and rises with `h`,
so the supremum is the limit at the low-`l`, high-`h` corner of some cell.

Candidates per axis: the bound (`l`'s lower, `h`'s upper), every breakpoint,
and every breakpoint nudged into the cell beside it (`l` up, `h` down) by
`delta` (at most half the gap to the next breakpoint).  A nudged candidate
carries two points: the *indicator point* (the nudged one, where the cell's
indicators are evaluated with the kernel's own float64 arithmetic, and which
is returned) and the *value point* (the breakpoint, where the linear parts are
evaluated, giving the cell's limit).  All `Kl x Kh` corners are scored by one
batched matrix product (`[S, Kl, 2N] @ [S, 2N, Kh]`); the supremum is their
maximum and the returned point scores within `2 N max|p| delta` of it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..instrument import record_evaluations
from ..strategies import Objective
from .result import Solution

__all__ = ["solve", "corner_candidates", "leg_sides", "NUDGE"]

#: Relative nudge into a cell: 2**-48 (about 3.6e-15) times max(1, |breakpoint|).
NUDGE = 2.0**-48


def leg_sides(objective: Objective) -> tuple[Tensor, Tensor]:
    """The summed long and short position sizes `pl`, `ps` of all legs, float64 `[S, N]`.

    The kernel is linear in `(pl, ps)`, so the legs' sum is one generalised problem.
    """
    pl = sum(leg.double().clamp(0.0, 10.0) for leg in objective.legs)
    ps = sum(leg.double().clamp(-10.0, 0.0) for leg in objective.legs)
    return _rows(pl), _rows(ps)


def _rows(t: Tensor) -> Tensor:
    return t if t.dim() == 2 else t.unsqueeze(0)


def corner_candidates(breaks: Tensor, lo: float, hi: float, *, upward: bool) -> tuple[Tensor, Tensor]:
    """Candidate value points and indicator points along one axis, each `[S, 2N+1]`.

    `breaks` is `[S, N]`.  `upward=True` (the `l` axis) nudges each breakpoint up
    towards the next one and adds the lower bound; `upward=False` (the `h` axis)
    nudges down and adds the upper bound.  Everything is clamped into `[lo, hi]`.
    """
    b, _ = torch.sort(breaks, dim=-1, descending=not upward)
    neighbour = torch.cat([b[:, 1:], torch.full_like(b[:, :1], hi if upward else lo)], dim=-1)
    gap = (neighbour - b).abs()  # to the next distinct breakpoint; 0 for all but the last duplicate
    delta = torch.minimum(NUDGE * b.abs().clamp(min=1.0), gap / 2)
    nudged = b + delta if upward else b - delta
    bound = torch.full_like(b[:, :1], lo if upward else hi)
    value = torch.cat([bound, b, b], dim=-1).clamp(lo, hi)
    indicator = torch.cat([bound, b, nudged], dim=-1).clamp(lo, hi)
    return value, indicator


def _l_side(c, low, low_pred, pl, ps, fee, lv, li, close_at_eod):
    """u, b (`[S, Kl, N]`) and w (`[S, Kl]`) at l value points `lv` and indicator points `li`."""
    lq_v = (low_pred[:, None, :] + lv[:, :, None]).clamp(-1.0, 0.0)
    lq_i = (low_pred[:, None, :] + li[:, :, None]).clamp(-1.0, 0.0)
    low = low[:, None, :]
    c = c[:, None, :]
    u = pl[:, None, :] * (lq_i > low).double()
    b = torch.where(lq_i >= low, lq_v, c)
    w = (u * (c - lq_v - fee)) if close_at_eod else (-u * (lq_v + fee))
    return u, b, w.sum(-1)


def _h_side(c, high, high_pred, ps, fee, hv, hi, close_at_eod):
    """a, v (`[S, Kh, N]`) and z (`[S, Kh]`) at h value points `hv` and indicator points `hi`."""
    hq_v = (high_pred[:, None, :] + hv[:, :, None]).clamp(0.0, 10.0)
    hq_i = (high_pred[:, None, :] + hi[:, :, None]).clamp(0.0, 10.0)
    high = high[:, None, :]
    c = c[:, None, :]
    v = ps[:, None, :] * (hq_i < high).double()
    a = torch.where(hq_i <= high, hq_v, c)
    z = (v * (c - hq_v + fee)) if close_at_eod else (v * (fee - hq_v))
    return a, v, z.sum(-1)


def solve(objective: Objective, bounds, budget: int | None = None, seed: int = 0) -> Solution:
    """The supremum over the box and a point within 1e-9 of it (float64), per simulation, on the device.

    `budget` and `seed` are unused: the enumeration is complete and deterministic.
    """
    p = objective.problem
    c, high, low, high_pred, low_pred = (_rows(t.double()) for t in (p.close, p.high, p.low, p.high_pred, p.low_pred))
    pl, ps = leg_sides(objective)
    fee = float(p.trading_fee)
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    lv, li = corner_candidates(low - low_pred, l_lo, l_hi, upward=True)
    hv, hi = corner_candidates(high - high_pred, h_lo, h_hi, upward=False)
    u, b, w = _l_side(c, low, low_pred, pl, ps, fee, lv, li, objective.close_at_eod)
    a, v, z = _h_side(c, high, high_pred, ps, fee, hv, hi, objective.close_at_eod)
    scores = w[:, :, None] + z[:, None, :]  # [S, Kl, Kh]
    if not objective.close_at_eod:
        scores = scores + torch.cat([u, b], dim=-1) @ torch.cat([a, v], dim=-1).transpose(-1, -2)
    s, kl, kh = scores.shape
    record_evaluations(s * kl * kh)
    supremum, flat = scores.reshape(s, -1).max(dim=-1)
    rows = torch.arange(s, device=flat.device)
    h = hi[rows, flat % kh]
    l = li[rows, flat // kh]
    # The returned point, scored by the float64 kernel itself (one more evaluation per simulation).
    exact64 = Objective(p.as_float64(), tuple(leg.double() for leg in objective.legs), objective.close_at_eod)
    profit = exact64.batch(h[:, None], l[:, None])[:, 0] if p.batched else exact64.batch(h, l)
    return Solution(h, l, profit, np.full(s, kl * kh + 1), supremum)
