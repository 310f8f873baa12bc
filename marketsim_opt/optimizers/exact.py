"""The exact global optimum of docs/exact.md, by a sorted sweep with cumulative sums: O(N^2), O(N) per column.

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

Candidates per axis, sorted ascending: the bound (`l`'s lower, `h`'s upper),
every breakpoint, and every breakpoint nudged into the cell beside it (`l` up,
`h` down) by `delta` (at most half the gap to the next breakpoint).  A nudged
candidate carries two points: the *indicator point* (where the cell's
indicators are evaluated with the kernel's own float64 arithmetic, and which
is returned) and the *value point* (the breakpoint, where the linear parts are
evaluated, giving the cell's limit).

Along a sorted axis each day's term is a few pieces, each constant or linear
in the value point: it switches at the day's entry threshold (the first
candidate index where the indicator flips, found by binary search with the
kernel's float64 arithmetic, so the pattern scored is the one the kernel sees
at the returned point) and at the clamp kinks.  So a sum over days at every
candidate is a cumulative sum of per-day changes scattered at those indices:

- close_at_eod: `w` and `z` are such sums, one axis each: O(N log N).
- intraday: row `j` (an `l` candidate) of F over the `h` candidates is row
  `j - 1` plus, for the days whose `u_i` or `b_i` change at `j`, that change
  times the day's column (`a_i` or `v_i` over the `h` candidates): a cumulative
  sum over rows of scattered per-day columns.  Columns go in chunks, so memory
  is O(N) per column and the whole sweep O(N^2) work, with no `Kl x Kh` or
  `N x Kh` matrix ever held.

The supremum is the maximum of F; the returned point scores within
`2 N max|p| delta` of it, and is re-scored by the float64 kernel.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from ..instrument import record_evaluations, to_device
from ..strategies import Objective
from .result import Solution

__all__ = ["solve", "solve_policies", "corner_candidates", "leg_sides", "NUDGE", "CHUNK_CELLS"]

#: Relative nudge into a cell: 2**-48 (about 3.6e-15) times max(1, |breakpoint|).
NUDGE = 2.0**-48
#: Elements per temporary in the intraday sweep (4 MiB of float64): bounds its memory at any N.  Measured at
#: N = 2000 (fresh process, one thread): 2**17 0.66 s, 2**18 0.48 s, 2**19 0.37 s, 2**20 0.42 s; smaller chunks
#: pay Python's per-chunk overhead, larger ones fall out of cache.
CHUNK_CELLS = 2**19

# Clamp ranges of the kernel (docs/kernel.md).
_HQ = (0.0, 10.0)
_LQ = (-1.0, 0.0)


def leg_sides(objective: Objective) -> tuple[Tensor, Tensor]:
    """The summed long and short position sizes `pl`, `ps` of all legs, float64 `[S, N]`.

    The kernel is linear in `(pl, ps)`, so the legs' sum is one generalised problem.
    """
    pl = sum(leg.double().clamp(0.0, 10.0) for leg in objective.legs)
    ps = sum(leg.double().clamp(-10.0, 0.0) for leg in objective.legs)
    return pl, ps


def _interleave(a: Tensor, b: Tensor) -> Tensor:
    """`[a0, b0, a1, b1, ...]` along the last axis."""
    return torch.stack([a, b], dim=-1).flatten(-2)


def corner_candidates(breaks: Tensor, lo: float, hi: float, *, upward: bool) -> tuple[Tensor, Tensor]:
    """Candidate value points and indicator points along one axis, each `[S, 2N+1]`, ascending.

    `breaks` is `[S, N]`.  `upward=True` (the `l` axis) starts at the lower bound
    and follows each breakpoint with itself nudged up; `upward=False` (the `h`
    axis) precedes each breakpoint with itself nudged down and ends at the upper
    bound.  Everything is clamped into `[lo, hi]`, which keeps the order.
    """
    b, _ = torch.sort(breaks, dim=-1)
    if upward:
        neighbour = torch.cat([b[:, 1:], torch.full_like(b[:, :1], hi)], dim=-1)
    else:
        neighbour = torch.cat([torch.full_like(b[:, :1], lo), b[:, :-1]], dim=-1)
    gap = (neighbour - b).abs()  # to the next distinct breakpoint; 0 for all but one of duplicates
    delta = torch.minimum(NUDGE * b.abs().clamp(min=1.0), gap / 2)
    bound = torch.full_like(b[:, :1], lo if upward else hi)
    if upward:
        value = torch.cat([bound, _interleave(b, b)], dim=-1)
        indicator = torch.cat([bound, _interleave(b, b + delta)], dim=-1)
    else:
        value = torch.cat([_interleave(b, b), bound], dim=-1)
        indicator = torch.cat([_interleave(b - delta, b), bound], dim=-1)
    return value.clamp(lo, hi), indicator.clamp(lo, hi)


def _leading_true(points: Tensor, base: Tensor, ref: Tensor, clamp: Tensor, strict: Tensor) -> Tensor:
    """Per day, how many of the ascending candidates pass `clamp(base + x) < ref` (`<=` where not `strict`).

    `points` is `[A, S, K]` (one row of candidates per search), `base` and `ref`
    `[A, S, N]`, `clamp` `[2, A, 1, 1]` (lower, upper), `strict` `[A, 1, 1]`.  The
    predicate is the kernel's own float64 arithmetic and, as `x` rises, true then
    false.  A branch-free binary search (no host sync): `[A, S, N]` int64.
    """
    k = points.shape[-1]
    lo = torch.zeros(base.shape, dtype=torch.long, device=base.device)
    hi = torch.full_like(lo, k)
    for _ in range(k.bit_length()):
        mid = (lo + hi) // 2
        y = (base + points.gather(-1, mid.clamp(max=k - 1))).clamp(clamp[0], clamp[1])
        passed = torch.where(strict, y < ref, y <= ref)
        open_ = lo < hi
        lo = torch.where(open_ & passed, mid + 1, lo)
        hi = torch.where(open_ & ~passed, mid, hi)
    return lo


def _pieces(gate: Tensor, value_points: Tensor, base: Tensor, p, q, clamp: tuple[float, float], r, *, prefix: bool):
    """The pieces of `g_i(x_k) = p_i + q_i clamp(base_i + x_k, *clamp)` inside a gate and `r_i` outside it.

    The gate is `k < gate_i` (`prefix`) or `k >= gate_i`.  Returns `(start,
    alpha, beta)`, each `[4, S, N]`: piece `j` is `alpha[j] + beta[j] * x_k`
    from `start[j]` to `start[j + 1]` (starts non-decreasing).
    """
    lo, hi = clamp
    zero = torch.zeros_like(base)
    # First candidate index whose value point is past each clamp kink.
    t_lo = torch.searchsorted(value_points, lo - base, side="left")
    t_hi = torch.searchsorted(value_points, hi - base, side="right")
    low_piece, linear, high_piece, outside = p + q * lo + zero, p + q * base + zero, p + q * hi + zero, r + zero
    slope = q + zero
    if prefix:
        starts = (torch.zeros_like(gate), torch.minimum(t_lo, gate), torch.minimum(t_hi, gate), gate)
        alpha, beta = (low_piece, linear, high_piece, outside), (zero, slope, zero, zero)
    else:
        starts = (torch.zeros_like(gate), gate, torch.maximum(t_lo, gate), torch.maximum(t_hi, gate))
        alpha, beta = (outside, low_piece, linear, high_piece), (zero, zero, slope, zero)
    return torch.stack(starts), torch.stack(alpha), torch.stack(beta)


def _changes(pieces, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """`(index, d_alpha, d_beta)`, `[4, S, N]`: each piece's change from the last non-empty piece before it.

    Empty pieces change nothing, so no constant (a clamp's 10, say) is added and
    taken away again through rounding.
    """
    start, alpha, beta = pieces
    live = torch.cat([start[1:], torch.full_like(start[:1], k)]) > start
    order = torch.arange(len(start), device=start.device).view(-1, 1, 1)
    last_live = torch.where(live, order, -1).cummax(0).values  # the last live piece at or before each one
    before = torch.cat([torch.full_like(last_live[:1], -1), last_live[:-1]]) + 1  # index into [0, pieces...]
    padded = torch.stack(
        [torch.cat([torch.zeros_like(alpha[:1]), alpha]), torch.cat([torch.zeros_like(beta[:1]), beta])]
    )
    prev = padded.gather(1, before.expand(2, *before.shape))
    d_alpha = torch.where(live, alpha - prev[0], 0.0)
    d_beta = torch.where(live, beta - prev[1], 0.0)
    return start, d_alpha, d_beta


def _flat(t: Tensor) -> Tensor:
    """`[P, S, N]` -> `[S, P*N]` (events grouped per simulation)."""
    return t.permute(1, 0, 2).reshape(t.shape[1], -1)


def _axis_sum(pieces, value_points: Tensor) -> Tensor:
    """`sum_i g_i(x_k)` at every candidate of one axis: `[S, K]`, by one cumulative sum of scattered changes."""
    s, k = value_points.shape
    index, d_alpha, d_beta = (_flat(t) for t in _changes(pieces, k))
    diff = value_points.new_zeros(2, s, k + 1)
    diff[0].scatter_add_(1, index, d_alpha)
    diff[1].scatter_add_(1, index, d_beta)
    alpha, beta = diff.cumsum(-1)[..., :k]
    return torch.addcmul(alpha, beta, value_points)


class _Axes:
    """A problem in float64 `[S, N]`, its candidates and the per-day entry thresholds (shared by both policies)."""

    def __init__(self, objective: Objective, bounds) -> None:
        p = objective.problem
        self.c, self.high, self.low, self.hp, self.lp = (
            t.double() for t in (p.close, p.high, p.low, p.high_pred, p.low_pred)
        )
        self.pl, self.ps = leg_sides(objective)
        self.fee = float(p.trading_fee)
        (h_lo, h_hi), (l_lo, l_hi) = bounds
        self.l_val, self.l_ind = corner_candidates(self.low - self.lp, l_lo, l_hi, upward=True)
        self.h_val, self.h_ind = corner_candidates(self.high - self.hp, h_lo, h_hi, upward=False)
        # h ascending: v's entry (Hq < H) holds for a prefix of the candidates; l ascending: u's entry
        # (Lq > L) fails while Lq <= L, b's take-profit (Lq >= L) while Lq < L.
        opts = dict(dtype=torch.float64, device=self.c.device)
        clamp = to_device([[_HQ[0], _LQ[0], _LQ[0]], [_HQ[1], _LQ[1], _LQ[1]]], **opts)
        strict = to_device([True, False, True], dtype=torch.bool, device=self.c.device).view(-1, 1, 1)
        self.n_v, self.m_u, self.m_b = _leading_true(
            torch.stack([self.h_ind, self.l_ind, self.l_ind]),
            torch.stack([self.hp, self.lp, self.lp]),
            torch.stack([self.high, self.low, self.low]),
            clamp[..., None, None],
            strict,
        )

    def sides(self, close_at_eod: bool) -> tuple[Tensor, Tensor]:
        """The `l` side's own sum `w` at every `l` candidate and the `h` side's `z` at every `h` candidate.

        Both `[S, 2N+1]`, from one cumulative sum over the two axes side by side.
        """
        pl, ps, c, f = self.pl, self.ps, self.c, self.fee
        w_const, z_const = (pl * (c - f), ps * (c + f)) if close_at_eod else (-pl * f, ps * f)
        w = _pieces(self.m_u, self.l_val, self.lp, w_const, -pl, _LQ, 0.0, prefix=False)
        z = _pieces(self.n_v, self.h_val, self.hp, z_const, -ps, _HQ, 0.0, prefix=True)
        both = _axis_sum(tuple(torch.cat([a, b], dim=1) for a, b in zip(w, z)), torch.cat([self.l_val, self.h_val]))
        return both[: len(c)], both[len(c) :]


def _sorted_events(rows: Tensor, sources: Tensor, weights: Tensor, n_rows: int, n_sources: int):
    """Row events sorted by row, per simulation, flattened for `_running_rows`.

    `rows`, `sources` (a day column's index, `< n_sources`) and `weights` are
    `[S, E]`.  A zero-weight event at row -1 leads each simulation, so every row
    has an event at or before it.  Returns the sorted events' flat source
    indices `[S*(E+1)]`, their weights `[S*(E+1), 1]`, and per row `j < n_rows`
    the flat index of the last event at a row `<= j` (`[S*n_rows]`).
    """
    s = rows.shape[0]
    lead = torch.full_like(rows[:, :1], -1)
    rows, order = torch.sort(torch.cat([lead, rows], dim=-1), dim=-1, stable=True)
    sources = torch.cat([torch.zeros_like(lead), sources], dim=-1).gather(1, order)
    weights = torch.cat([torch.zeros_like(weights[:, :1]), weights], dim=-1).gather(1, order)
    upto = torch.arange(n_rows, device=rows.device).expand(s, -1).contiguous()
    last = torch.searchsorted(rows, upto, side="right") - 1
    start = torch.arange(s, device=rows.device)[:, None]
    return (
        (sources + start * n_sources).reshape(-1),
        weights.reshape(-1, 1),
        (last + start * rows.shape[1]).reshape(-1),
        s,
    )


def _running_rows(columns: Tensor, events) -> Tensor:
    """`sum` over events at rows `<= j` of `weight * columns[source]`, for every row `j`: `[S, n_rows, C]`.

    `columns` is `[S, D, C]`: a cumulative sum over the sorted events, read at each row's last event.
    """
    sources, weights, last, s = events
    width = columns.shape[-1]
    picked = columns.reshape(-1, width).index_select(0, sources).mul_(weights)
    running = picked.view(s, -1, width).cumsum_(1).view(-1, width)
    return running.index_select(0, last).view(s, -1, width)


def _best_of_sweep(ax: _Axes, w: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Intraday: the maximum of F over all `Kl x Kh` corners and its `(j, k)`, each `[S]`.

    Row events: `u_i` steps to `pl_i` at `m_u`; `b_i` is `c_i` below `m_b`, then
    `clamp(Lp_i + l, -1, 0)` (pieces from `_pieces`).  Per column chunk: the
    days' columns `a_i`, `v_i` over the chunk's `h` candidates, weighted by the
    change at each event and summed down the rows in event order.
    """
    s, n = ax.c.shape
    kl, kh = ax.l_val.shape[-1], ax.h_val.shape[-1]
    b_index, b_alpha, b_beta = _changes(_pieces(ax.m_b, ax.l_val, ax.lp, 0.0, 1.0, _LQ, ax.c, prefix=False), kl)
    day = torch.arange(n, device=ax.c.device).expand(s, -1)
    # Columns [a_0..a_{N-1}, v_0..v_{N-1}]: u's step weighs a_i; b's changes (and slope changes) weigh v_i.
    alpha_events = _sorted_events(
        torch.cat([ax.m_u, _flat(b_index)], dim=-1),
        torch.cat([day] + [day + n] * 4, dim=-1),
        torch.cat([ax.pl, _flat(b_alpha)], dim=-1),
        kl,
        2 * n,
    )
    beta_events = _sorted_events(_flat(b_index[2:]), torch.cat([day] * 2, dim=-1), _flat(b_beta[2:]), kl, n)

    chunk = max(1, CHUNK_CELLS // (s * (kl + 8 * n)))
    best = torch.full((s,), -torch.inf, dtype=torch.float64, device=ax.c.device)
    best_j = torch.zeros(s, dtype=torch.long, device=ax.c.device)
    best_k = torch.zeros_like(best_j)
    high, close, ps = ax.high[:, :, None], ax.c[:, :, None], ax.ps[:, :, None]
    for k0 in range(0, kh, chunk):
        cols = slice(k0, min(k0 + chunk, kh))
        hq_v = (ax.hp[:, :, None] + ax.h_val[:, None, cols]).clamp(*_HQ)  # [S, N, C]
        hq_i = (ax.hp[:, :, None] + ax.h_ind[:, None, cols]).clamp(*_HQ)
        v_col = ps * (hq_i < high)
        columns = torch.cat([torch.where(hq_i <= high, hq_v, close), v_col], dim=1)  # [S, 2N, C]
        width = columns.shape[-1]
        alpha = _running_rows(columns, alpha_events)
        beta = _running_rows(v_col, beta_events)
        scores = torch.addcmul(alpha, ax.l_val[:, :, None], beta)  # [S, Kl, C]
        scores += w[:, :, None]
        scores += z[:, None, cols]
        top, flat = scores.reshape(s, -1).max(dim=-1)
        better = top > best  # strict: the first chunk holding the maximum keeps it
        best = torch.where(better, top, best)
        best_j = torch.where(better, flat // width, best_j)
        best_k = torch.where(better, k0 + flat % width, best_k)
    return best, best_j, best_k


def solve_policies(objective: Objective, bounds, policies: tuple[bool, ...]) -> list[Solution]:
    """`solve` for each policy in `policies`, sharing the candidates and thresholds (they do not depend on it);
    `h`, `l` as the sweeps give them (host arrays on CPU, device tensors elsewhere), `profit` on the device.

    On CPU the sweep runs as `exact_fused`'s compiled loops, which give the torch code's supremum and corner bit
    for bit (tests/optimizers/test_exact_fused.py) at about a fiftieth of its cost; elsewhere (CUDA) the torch
    code below runs.
    """
    p, s = objective.problem, objective.problem.n_sims
    exact64, simulations_inner = _rescoring_objective(objective, len(policies))  # also the sweeps' float64 days
    sweeps = _fused_sweeps if p.device.type == "cpu" else _torch_sweeps
    found = list(sweeps(exact64, bounds, policies))
    for *_, scored in found:
        record_evaluations(s * scored)
    # Every policy's point, scored by the float64 kernel itself under its policy (one more evaluation per
    # simulation and policy), in one call: column i is policy i's.
    h, l = (_as_columns([f[i] for f in found], p.device, simulations_inner) for i in (1, 2))  # [S, P]
    if len(policies) == 1:
        profit = exact64.with_policy(policies[0]).score(h, l)
    else:
        profit = exact64.score(h, l, policies=to_device(policies, dtype=torch.bool, device=p.device))
    # The points as the sweeps found them (host arrays from the fused path: nothing more to read back).
    return [
        Solution(h_i, l_i, profit[:, i], np.full(s, scored + 1), supremum)
        for i, (supremum, h_i, l_i, scored) in enumerate(found)
    ]


def _rescoring_objective(objective: Objective, k: int) -> tuple[Objective, bool]:
    """`objective` in float64 for the re-scoring of `k` points per simulation, and whether its tensors are held
    simulations-innermost (`[N, S]` storage behind the `[S, N]` views).

    They are on CPU where the re-scoring stacks the legs (`Objective.stacks_legs`) and there are more
    simulations than days (the backtest: 140 windows of 6 days).  Each kernel operation then runs over S
    contiguous values instead of `S * k` broadcast rows of N days: about 40 % fewer instructions for the
    backtest's re-scoring, measured by callgrind.  The numbers are the same: elementwise operations do not
    depend on the layout, and `_sum_stacked` sums the days of a contiguous copy.  On a GPU, where an operation
    costs one launch in either layout, the torch sweep gets the usual one.
    """
    p = objective.problem
    if p.device.type != "cpu" or p.n_sims <= p.n_days or not objective.stacks_legs(k):
        return objective.as_float64(), False
    block = torch.stack([*p.tensors().values(), *objective.legs]).transpose(-1, -2)  # [5 + L, N, S]
    rows = block.to(torch.float64, memory_format=torch.contiguous_format).transpose(-1, -2).unbind(0)
    return dataclasses.replace(objective, problem=p.with_tensors(rows[:5]), legs=rows[5:]), True


def _as_columns(rows: list, device: torch.device, simulations_inner: bool = False) -> Tensor:
    """`[S]` arrays or tensors as the columns of one `[S, P]` tensor on `device` (held `[P, S]`, a transposed
    view, for `simulations_inner`)."""
    if isinstance(rows[0], Tensor):
        return torch.stack(rows).t() if simulations_inner else torch.stack(rows, dim=1)
    if simulations_inner:  # numpy from the fused path
        return torch.as_tensor(np.stack(rows), device=device).t()
    return torch.as_tensor(np.stack(rows, axis=1), device=device)


def _torch_sweeps(objective: Objective, bounds, policies: tuple[bool, ...]):
    """Per policy, `(supremum, h, l, scored)` by the torch code: `[S]` tensors on the problem's device."""
    ax = _Axes(objective, bounds)
    s, kl, kh = ax.c.shape[0], ax.l_val.shape[-1], ax.h_val.shape[-1]
    rows = torch.arange(s, device=ax.c.device)
    for close_at_eod in policies:
        w, z = ax.sides(close_at_eod)
        if close_at_eod:
            w_best, j = w.max(dim=-1)
            z_best, k = z.max(dim=-1)
            supremum, scored = w_best + z_best, kl + kh
        else:
            supremum, j, k = _best_of_sweep(ax, w, z)
            scored = kl * kh
        yield supremum, ax.h_ind[rows, k], ax.l_ind[rows, j], scored


def _fused_sweeps(objective: Objective, bounds, policies: tuple[bool, ...]):
    """Per policy, `(supremum, h, l, scored)` by `exact_fused` on CPU: each a numpy float64 `[S]`.

    The problem's days and legs reach numba as one float64 `[5 + L, S, N]` numpy view through DLPack: on CPU
    that is no copy and no read-back (there is no device to synchronize with), so the call's host syncs stay
    the final read-back alone.
    """
    from . import exact_fused  # numba: imported when exact first runs on CPU, not with the package

    p = objective.problem
    days = torch.stack([p.close, p.high, p.low, p.high_pred, p.low_pred, *objective.legs]).detach().double()
    host = np.from_dlpack(days)  # `days` is float64 already from `solve_policies`: the stack is its one copy
    results, _, _ = exact_fused.fused_sweep(*host[:5], host[5:], float(p.trading_fee), bounds, policies)
    for r in results:
        yield r.supremum, r.h, r.l, r.scored


def solve(objective: Objective, bounds, budget: int | None = None, seed: int = 0) -> Solution:
    """The supremum over the box and a point within 1e-9 of it (float64), per simulation, on the device.

    `nfev` counts the corners whose value the sweep computes: `Kl * Kh` intraday,
    `Kl + Kh` at the close (separable), plus the returned point's re-scoring.
    `budget` and `seed` are unused: the enumeration is complete and deterministic.
    """
    sol = solve_policies(objective, bounds, (objective.close_at_eod,))[0]
    device = objective.problem.device
    return dataclasses.replace(sol, h=torch.as_tensor(sol.h, device=device), l=torch.as_tensor(sol.l, device=device))
