"""The exact solver's sweep (`exact.solve_policies` up to the final re-scoring) fused into numba loops.

`fused_sweep` computes, per simulation and policy, what the torch path of `exact.py` computes before its
float64 re-scoring: the corner candidates of both axes (`corner_candidates`), the entry thresholds
(`_leading_true`), the separable sides `w`, `z` (`_Axes.sides`), and then the supremum of
`F(j, k)` with its `(j, k)`: at the close `max w + max z`, intraday the maximum of

    F[j, k] = ((alpha[j, k] + l_val[j] * beta[j, k]) + w[j]) + z[k]

over all `Kl x Kh` corners (`_best_of_sweep`), where `alpha`, `beta` are running sums over the row events.

Why it matches the torch path bitwise: every quantity is a float64 IEEE operation, and each one is done here
on the same operands in the same order as torch does it.

- Sums: `_axis_sum`'s scatter-add then cumulative sum is replayed as `diff[start] += change` in piece-major,
  day-minor order and a sequential running sum from `0.0`; `_running_rows`'s cumulative sum over sorted events
  is replayed per column in the same event order (stable by row, then lead / `u` / `b` pieces, as
  `_sorted_events` concatenates them).  An event whose product `column * weight` is `+-0` is skipped: a
  running sum that starts at `+0.0` is never `-0.0` (in round-to-nearest `x + y` is `-0.0` only when both
  are), and adding `+-0` to anything else changes nothing.  So the `v_i` columns (`ps_i` on the prefix
  `k < n_v[i]`, `+-0` after) are prefix updates, and `a_i` is `clamp(hp_i + h_val[k]) * pl_i` on the prefix
  where `hq_i <= H_i`, then the constant `c_i * pl_i`.  Both prefixes are the candidates' leading run: the
  indicator points are ascending (each nudge is at most half the gap, clamping keeps order; checked), so the
  predicate is monotone along `k` and a binary search finds the run, as in `_leading_true`.
- `torch.addcmul(a, b, x)` is fused (one rounding of `a + b * x`) in torch's AVX2 and AVX512 CPU kernels
  and a plain multiply then add in its DEFAULT kernel (`ATEN_CPU_CAPABILITY=default`): `fma=True` replays the
  former with `llvm.fma`, `fma=False` the latter, and `fma=None` (the default) asks torch which one it runs
  (`torch_addcmul_is_fused`, once per process).  No other
  operation is contracted (numba emits no `contract` flags and this module uses no fastmath).
- Ties: torch's chunk loop keeps the first maximum of each chunk of `chunk` columns in row-major order and
  replaces it only by a strictly greater one, so the winner is the maximum with the smallest key
  `(k // chunk, j, k)`.  Each column keeps its first maximal row (strict `>` down the rows); blocks and
  threads then combine by that key, so any column blocking gives torch's `(j, k)`.

Cost: O(S N log N) for candidates, thresholds, sides and events; the intraday sweep O(S Kl Kh) with O(N)
memory per simulation.  Columns go in blocks of `BLOCK` that stay in L1 (`alpha`, `beta`, `z` and the
column maxima); per row each event adds to its prefix of the block, then one vectorised pass scores the row.
Measured on one core (`python tests/optimizers/test_exact_fused.py`, AMD EPYC): a whole solve 0.27 ns per
cell at N = 20000, 0.32 at N = 2000 and 0.51 at N = 200 (the O(N log N) part and the call weigh more there),
against 11 and 34 for the torch path.  The loops run on the calling thread, serially: numba's
`parallel=True` would split the simulations (or a simulation's column blocks) over threads, but numba's OpenMP
layer shares libgomp with torch, and launching a parallel loop sets torch's thread count to numba's (measured:
a single-threaded torch came back with 2 threads), so a library call would change its caller's torch.  Serial
loops also let one set of scratch arrays serve every simulation: at the backtest's N = 6, allocations and
numba's quicksort (about 200 ns for six values, hence `_sort`) had cost as much as the arithmetic.  The whole
solve is one compiled call (`_solve`), so numba's dispatch is paid once.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["fused_sweep", "PolicyResult", "torch_addcmul_is_fused", "NUDGE", "CHUNK_CELLS", "BLOCK"]

#: As `exact.NUDGE` and `exact.CHUNK_CELLS` (the tests check they agree): the nudge into a cell, and the cell
#: budget that sets the torch sweep's column chunk, which decides its ties.
NUDGE = 2.0**-48
CHUNK_CELLS = 2**19
#: Columns per block of the intraday sweep: alpha, beta, z, the column maxima and their rows, 40 bytes a column.
BLOCK = 256

#: `((h_lo, h_hi), (l_lo, l_hi))`.
Bounds = tuple[tuple[float, float], tuple[float, float]]


class PolicyResult(NamedTuple):
    """One policy's answer per simulation: the supremum (float64 `[S]`), its corner (`j` into the `l`
    candidates, `k` into the `h` ones, int64 `[S]`), the point there (`h`, `l`, float64 `[S]`), and the corners
    scored per simulation (`Kl * Kh` intraday, `Kl + Kh` at the close)."""

    supremum: np.ndarray
    j: np.ndarray
    k: np.ndarray
    h: np.ndarray
    l: np.ndarray
    scored: int


# Clamp ranges of the kernel (docs/kernel.md), as in exact.py.
_HQ_LO, _HQ_HI = 0.0, 10.0
_LQ_LO, _LQ_HI = -1.0, 0.0


@intrinsic
def _fma(typingctx, a, b, c):
    """`a * b + c` with one rounding (`llvm.fma.f64`)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        double = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [double], ir.FunctionType(double, [double] * 3))
        return builder.call(fn, args)

    return sig, codegen


@njit(cache=True)
def _clamp(x: float, lo: float, hi: float) -> float:
    """torch's `clamp`: `min(max(x, lo), hi)` (the selects compile to max/min instructions)."""
    y = x if x > lo else lo
    return y if y < hi else hi


@njit(cache=True)
def _search(points: np.ndarray, x: float, right: bool) -> int:
    """`searchsorted(points, x, side='right' if right else 'left')` on ascending points (at least one).

    Branch-free (a fixed number of halvings, selects instead of jumps): any correct search gives the same index.
    An `x` beyond either end answers at once: the clamp kinks searched here mostly lie far outside the box.
    """
    first, n = 0, len(points)
    y = points[n - 1]
    if (y <= x) if right else (y < x):
        return n
    y = points[0]
    if not ((y <= x) if right else (y < x)):
        return 0
    while n > 1:
        half = n >> 1
        y = points[first + half]
        first = first + half if ((y <= x) if right else (y < x)) else first
        n -= half
    y = points[first]
    return first + 1 if ((y <= x) if right else (y < x)) else first


@njit(cache=True)
def _leading_true(points: np.ndarray, base: float, ref: float, lo: float, hi: float, strict: bool) -> int:
    """`exact._leading_true` for one day: how many leading points pass `clamp(base + x, lo, hi) < ref` (`<=`
    unless `strict`).  The points ascend (checked), so the predicate is true then false along them and every
    search, torch's bisection included, finds the same count; this one is `_search`'s branch-free halving."""
    first, n = 0, len(points)
    while n > 1:
        half = n >> 1
        y = _clamp(base + points[first + half], lo, hi)
        first = first + half if ((y < ref) if strict else (y <= ref)) else first
        n -= half
    y = _clamp(base + points[first], lo, hi)
    return first + 1 if ((y < ref) if strict else (y <= ref)) else first


@njit(cache=True)
def _leading_at_most(points: np.ndarray, start: int, base: float, ref: float, lo: float, hi: float) -> int:
    """`_leading_true(points, base, ref, lo, hi, False)` (`<=`) given its strict count `start` (`<`), which it
    is at least: a galloping search from there, one comparison when no point sits exactly at `ref` (the usual
    case), `O(log K)` at worst."""
    n = len(points)
    if start >= n or not (_clamp(base + points[start], lo, hi) <= ref):
        return start
    passed, step = start, 1  # points[passed] passes
    while passed + step < n and _clamp(base + points[passed + step], lo, hi) <= ref:
        passed += step
        step *= 2
    first, end = passed + 1, min(passed + step, n)  # the first failing point is in [first, end]
    while first < end:
        mid = (first + end) >> 1
        if _clamp(base + points[mid], lo, hi) <= ref:
            first = mid + 1
        else:
            end = mid
    return first


#: Up to this many breakpoints are sorted by insertion (numba's `ndarray.sort`, a quicksort, costs about 200 ns
#: on six, as much as the rest of a backtest simulation's candidates); more go to `ndarray.sort`.
INSERTION_SORT_MAX = 32


@njit(cache=True)
def _sort(b: np.ndarray) -> None:
    """Sort `b` ascending in place: the values any correct sort gives, up to the order of `-0.0` and `+0.0`
    (equal, as for numba's and torch's sorts)."""
    if len(b) > INSERTION_SORT_MAX:
        b.sort()
        return
    for i in range(1, len(b)):
        v, j = b[i], i - 1
        while j >= 0 and b[j] > v:
            b[j + 1] = b[j]
            j -= 1
        b[j + 1] = v


@njit(cache=True)
def _candidates(b: np.ndarray, lo: float, hi: float, upward: bool, value: np.ndarray, indicator: np.ndarray) -> None:
    """`exact.corner_candidates` for one simulation's breakpoints `b` (`[N]`, sorted here in place), written into
    `value` and `indicator` (`[2N+1]`)."""
    _sort(b)
    n = len(b)
    for i in range(n):
        if upward:
            neighbour = b[i + 1] if i + 1 < n else hi
        else:
            neighbour = b[i - 1] if i > 0 else lo
        gap = abs(neighbour - b[i])
        delta = min(NUDGE * max(abs(b[i]), 1.0), gap / 2)
        v = _clamp(b[i], lo, hi)
        if upward:
            value[1 + 2 * i] = v
            value[2 + 2 * i] = v
            indicator[1 + 2 * i] = v
            indicator[2 + 2 * i] = _clamp(b[i] + delta, lo, hi)
        else:
            value[2 * i] = v
            value[2 * i + 1] = v
            indicator[2 * i] = _clamp(b[i] - delta, lo, hi)
            indicator[2 * i + 1] = v
    bound = _clamp(lo, lo, hi) if upward else _clamp(hi, lo, hi)
    at = 0 if upward else 2 * n
    value[at] = bound
    indicator[at] = bound


@njit(cache=True)
def _kinks(points: np.ndarray, base: np.ndarray, lo: float, hi: float, t_lo: np.ndarray, t_hi: np.ndarray) -> None:
    """`_pieces`' clamp kinks into `t_lo`, `t_hi`: `searchsorted(points, lo - base, 'left')`,
    `searchsorted(points, hi - base, 'right')` per day."""
    for i in range(len(base)):
        t_lo[i] = _search(points, lo - base[i], False)
        t_hi[i] = _search(points, hi - base[i], True)


@njit(cache=True)
def _changes(
    gate: np.ndarray,
    t_lo: np.ndarray,
    t_hi: np.ndarray,
    k: int,
    base: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    r: np.ndarray,
    lo: float,
    hi: float,
    prefix: bool,
    start: np.ndarray,
    d_alpha: np.ndarray,
    d_beta: np.ndarray,
) -> None:
    """`exact._changes(exact._pieces(...))` for one simulation into `start`, `d_alpha`, `d_beta` (`[4, N]`).

    `t_lo`, `t_hi` are `_pieces`' searches (`_kinks`), `k` the candidates; `p`, `q`, `r` are per day (the torch
    call's scalars broadcast); the `+ 0.0`s are `_pieces`' `+ zero`.
    """
    for i in range(len(base)):
        g = gate[i]
        low_piece = (p[i] + q[i] * lo) + 0.0
        linear = (p[i] + q[i] * base[i]) + 0.0
        high_piece = (p[i] + q[i] * hi) + 0.0
        outside = r[i] + 0.0
        slope = q[i] + 0.0
        if prefix:
            starts = (0, min(t_lo[i], g), min(t_hi[i], g), g)
            alpha = (low_piece, linear, high_piece, outside)
            beta = (0.0, slope, 0.0, 0.0)
        else:
            starts = (0, g, max(t_lo[i], g), max(t_hi[i], g))
            alpha = (outside, low_piece, linear, high_piece)
            beta = (0.0, 0.0, slope, 0.0)
        prev_alpha, prev_beta = 0.0, 0.0  # the last live piece's (the padded zero before any)
        for piece in range(4):
            end = starts[piece + 1] if piece < 3 else k
            start[piece, i] = starts[piece]
            if end > starts[piece]:
                d_alpha[piece, i] = alpha[piece] - prev_alpha
                d_beta[piece, i] = beta[piece] - prev_beta
                prev_alpha, prev_beta = alpha[piece], beta[piece]
            else:
                d_alpha[piece, i] = 0.0
                d_beta[piece, i] = 0.0


@njit(cache=True)
def _axis_sum(
    start: np.ndarray,
    d_alpha: np.ndarray,
    d_beta: np.ndarray,
    points: np.ndarray,
    fused: bool,
    out: np.ndarray,
    diff_alpha: np.ndarray,
    diff_beta: np.ndarray,
) -> None:
    """`exact._axis_sum` for one row: scatter piece-major then day-minor, running sums from 0, `addcmul`.

    `diff_alpha`, `diff_beta` (`[K+1]`) are scratch."""
    k = len(points)
    for x in range(k + 1):  # loops, not slice assignments: numba's cost more than the work at small K
        diff_alpha[x] = 0.0
        diff_beta[x] = 0.0
    for piece in range(4):
        for i in range(start.shape[1]):
            diff_alpha[start[piece, i]] += d_alpha[piece, i]
            diff_beta[start[piece, i]] += d_beta[piece, i]
    alpha, beta = 0.0, 0.0
    for x in range(k):
        alpha += diff_alpha[x]
        beta += diff_beta[x]
        out[x] = _fma(beta, points[x], alpha) if fused else alpha + beta * points[x]


@njit(cache=True)
def _leg_sides(legs: np.ndarray, pl: np.ndarray, ps: np.ndarray) -> None:
    """`exact.leg_sides` into `pl`, `ps` (`[S, N]`) from `legs` (`[L, S, N]`): Python's `sum` of the clamped
    legs, so from `0` (which turns a leading `-0.0` into `+0.0`), leg by leg; torch's clamp keeps a NaN."""
    for s in range(pl.shape[0]):
        for i in range(pl.shape[1]):
            long, short = 0.0, 0.0
            for leg in range(legs.shape[0]):
                x = legs[leg, s, i]
                long += x if x != x else _clamp(x, 0.0, 10.0)
                short += x if x != x else _clamp(x, -10.0, 0.0)
            pl[s, i], ps[s, i] = long, short


@njit(cache=True)
def _same_days(c, high, low, hp, lp, s: int, t: int) -> bool:
    """Whether rows `s` and `t` hold the same five day series bit for bit (`-0.0` is not `+0.0`)."""
    for a in (c, high, low, hp, lp):
        bits = a.view(np.int64)
        for i in range(a.shape[1]):
            if bits[s, i] != bits[t, i]:
                return False
    return True


@njit(cache=True)
def _day_part(
    s, c, high, low, hp, lp, h_lo, h_hi, l_lo, l_hi, breaks, l_val, l_ind, h_val, h_ind, n_v, n_a, ok,
    m_u, m_b, tl_lo, tl_hi, th_lo, th_hi,
):  # fmt: skip
    """Row `s`'s candidates (`l_val` to `h_ind`), whether they ascend (`ok`), its entry thresholds (`n_v`, `n_a`;
    `m_u`, `m_b`) and clamp kinks (`tl_lo` to `th_hi`): everything `_prepare` needs that depends on the days
    alone, not on the legs or the policy."""
    n, k = c.shape[1], l_val.shape[1]
    for i in range(n):
        breaks[i] = low[s, i] - lp[s, i]
    _candidates(breaks, l_lo, l_hi, True, l_val[s], l_ind[s])
    for i in range(n):
        breaks[i] = high[s, i] - hp[s, i]
    _candidates(breaks, h_lo, h_hi, False, h_val[s], h_ind[s])
    sorted_ = True
    for x in range(1, k):
        sorted_ = sorted_ and h_ind[s, x - 1] <= h_ind[s, x] and l_ind[s, x - 1] <= l_ind[s, x]
    ok[s] = sorted_
    for i in range(n):
        n_v[s, i] = _leading_true(h_ind[s], hp[s, i], high[s, i], _HQ_LO, _HQ_HI, True)
        n_a[s, i] = _leading_at_most(h_ind[s], n_v[s, i], hp[s, i], high[s, i], _HQ_LO, _HQ_HI)
        m_b[i] = _leading_true(l_ind[s], lp[s, i], low[s, i], _LQ_LO, _LQ_HI, True)
        m_u[i] = _leading_at_most(l_ind[s], m_b[i], lp[s, i], low[s, i], _LQ_LO, _LQ_HI)
    _kinks(l_val[s], lp[s], _LQ_LO, _LQ_HI, tl_lo, tl_hi)  # shared by w and the b pieces
    _kinks(h_val[s], hp[s], _HQ_LO, _HQ_HI, th_lo, th_hi)


@njit(cache=True)
def _prepare(
    c: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    hp: np.ndarray,
    lp: np.ndarray,
    pl: np.ndarray,
    ps: np.ndarray,
    fee: float,
    h_lo: float,
    h_hi: float,
    l_lo: float,
    l_hi: float,
    policies: np.ndarray,
    fused: bool,
    l_val: np.ndarray,
    l_ind: np.ndarray,
    h_val: np.ndarray,
    h_ind: np.ndarray,
    w: np.ndarray,
    z: np.ndarray,
    n_v: np.ndarray,
    n_a: np.ndarray,
    a_row: np.ndarray,
    a_day: np.ndarray,
    a_kind: np.ndarray,
    a_val: np.ndarray,
    b_row: np.ndarray,
    b_day: np.ndarray,
    b_val: np.ndarray,
    ok: np.ndarray,
) -> None:
    """Per simulation: candidates, thresholds, both sides per policy, and the intraday row events.

    Inputs `[S, N]`; outputs `[S, 2N+1]` (candidates), `[P, S, 2N+1]` (`w`, `z` per policy), `[S, N]` (the
    prefix lengths `n_v`: `hq_i < H_i`, `n_a`: `hq_i <= H_i`), `[S, 2N+2]` (row offsets), `[S, 5N]` and
    `[S, 2N]` (events), `[S]` (`ok`: the indicator points ascend).

    Row events, stable by row in `_sorted_events`' concatenation order, only those that add a nonzero product
    at some column: `a_row[s, j]:a_row[s, j+1]` index row `j`'s alpha events (`a_kind` 0: the `u` step of day
    `a_day` with weight `pl`, column `a_i`; 1: a `b` piece change, `a_val = ps_i * d_alpha` on the prefix
    `k < n_v`), `b_row` likewise the beta events (`b_val = ps_i * d_beta` on the prefix).

    The loop over simulations is serial (see the module docstring), so one set of scratch arrays, allocated
    here, serves every simulation: at small N the allocations, not the arithmetic, would dominate.
    """
    s_count, n = c.shape
    k = 2 * n + 1
    breaks = np.empty(n)
    m_u, m_b = np.empty(n, np.int64), np.empty(n, np.int64)
    tl_lo, tl_hi = np.empty(n, np.int64), np.empty(n, np.int64)
    th_lo, th_hi = np.empty(n, np.int64), np.empty(n, np.int64)
    start = np.empty((4, n), np.int64)
    d_alpha, d_beta = np.empty((4, n)), np.empty((4, n))
    zeros, ones = np.zeros(n), np.ones(n)
    w_const, z_const, neg_pl, neg_ps = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    diff_alpha, diff_beta = np.empty(k + 1), np.empty(k + 1)
    count, fill = np.empty(k + 1, np.int64), np.empty(k, np.int64)
    # A batch that stacks two objectives on one problem (`workloads.run_stacked`) repeats its days half a batch
    # down.  Rows go in the order 0, half, 1, half + 1, ...: a row whose days are its partner's bit for bit
    # copies the partner's candidates and thresholds (the same inputs give the same numbers), and the scratch
    # (`m_u` to `th_hi`) still holds the partner's.
    half = s_count // 2 if s_count % 2 == 0 else 0
    for step in range(s_count):
        s = step // 2 + half * (step % 2) if half > 0 else step
        if half > 0 and step % 2 == 1 and _same_days(c, high, low, hp, lp, s, s - half):
            t = s - half
            for x in range(k):
                l_val[s, x], l_ind[s, x], h_val[s, x], h_ind[s, x] = l_val[t, x], l_ind[t, x], h_val[t, x], h_ind[t, x]
            for i in range(n):
                n_v[s, i], n_a[s, i] = n_v[t, i], n_a[t, i]
            ok[s] = ok[t]
        else:
            _day_part(s, c, high, low, hp, lp, h_lo, h_hi, l_lo, l_hi, breaks, l_val, l_ind, h_val, h_ind, n_v, n_a,
                      ok, m_u, m_b, tl_lo, tl_hi, th_lo, th_hi)  # fmt: skip
        for i in range(n):
            neg_pl[i], neg_ps[i] = -pl[s, i], -ps[s, i]
        for pol in range(len(policies)):
            for i in range(n):
                if policies[pol]:
                    w_const[i], z_const[i] = pl[s, i] * (c[s, i] - fee), ps[s, i] * (c[s, i] + fee)
                else:
                    w_const[i], z_const[i] = -pl[s, i] * fee, ps[s, i] * fee
            _changes(m_u, tl_lo, tl_hi, k, lp[s], w_const, neg_pl, zeros, _LQ_LO, _LQ_HI, False, start, d_alpha, d_beta)
            _axis_sum(start, d_alpha, d_beta, l_val[s], fused, w[pol, s], diff_alpha, diff_beta)
            _changes(
                n_v[s], th_lo, th_hi, k, hp[s], z_const, neg_ps, zeros, _HQ_LO, _HQ_HI, True, start, d_alpha, d_beta
            )
            _axis_sum(start, d_alpha, d_beta, h_val[s], fused, z[pol, s], diff_alpha, diff_beta)

        # The b pieces: c_i outside the take-profit, then clamp(lp_i + l, -1, 0) (exact._best_of_sweep).
        _changes(m_b, tl_lo, tl_hi, k, lp[s], zeros, ones, c[s], _LQ_LO, _LQ_HI, False, start, d_alpha, d_beta)
        # Stable counting sort by row of [u events (day order), b events (piece-major)]; rows >= k never count.
        for j in range(k + 1):
            count[j] = 0
        for i in range(n):
            if pl[s, i] != 0.0 and m_u[i] < k:
                count[m_u[i] + 1] += 1
        for piece in range(4):
            for i in range(n):
                if ps[s, i] * d_alpha[piece, i] != 0.0 and start[piece, i] < k:
                    count[start[piece, i] + 1] += 1
        for j in range(k):
            count[j + 1] += count[j]
        for j in range(k + 1):
            a_row[s, j] = count[j]
        for j in range(k):
            fill[j] = count[j]
        for i in range(n):
            if pl[s, i] != 0.0 and m_u[i] < k:
                e = fill[m_u[i]]
                a_day[s, e], a_kind[s, e], a_val[s, e] = i, 0, pl[s, i]
                fill[m_u[i]] += 1
        for piece in range(4):
            for i in range(n):
                v = ps[s, i] * d_alpha[piece, i]
                if v != 0.0 and start[piece, i] < k:
                    e = fill[start[piece, i]]
                    a_day[s, e], a_kind[s, e], a_val[s, e] = i, 1, v
                    fill[start[piece, i]] += 1
        for j in range(k + 1):
            count[j] = 0
        for piece in range(2, 4):
            for i in range(n):
                if ps[s, i] * d_beta[piece, i] != 0.0 and start[piece, i] < k:
                    count[start[piece, i] + 1] += 1
        for j in range(k):
            count[j + 1] += count[j]
        for j in range(k + 1):
            b_row[s, j] = count[j]
        for j in range(k):
            fill[j] = count[j]
        for piece in range(2, 4):
            for i in range(n):
                v = ps[s, i] * d_beta[piece, i]
                if v != 0.0 and start[piece, i] < k:
                    e = fill[start[piece, i]]
                    b_day[s, e], b_val[s, e] = i, v
                    fill[start[piece, i]] += 1


@njit(cache=True)
def _better(value: float, j: int, k: int, best: float, best_j: int, best_k: int, chunk: int) -> bool:
    """Whether `(value, j, k)` beats the best so far under torch's rule: larger, or equal with a smaller
    `(k // chunk, j, k)`."""
    if value != best:
        return value > best
    if k // chunk != best_k // chunk:
        return k // chunk < best_k // chunk
    if j != best_j:
        return j < best_j
    return k < best_k


@njit(cache=True)
def _sweep(
    c: np.ndarray,
    hp: np.ndarray,
    l_val: np.ndarray,
    h_val: np.ndarray,
    w: np.ndarray,
    z: np.ndarray,
    n_v: np.ndarray,
    n_a: np.ndarray,
    a_row: np.ndarray,
    a_day: np.ndarray,
    a_kind: np.ndarray,
    a_val: np.ndarray,
    b_row: np.ndarray,
    b_day: np.ndarray,
    b_val: np.ndarray,
    chunk: int,
    fused: bool,
    out_value: np.ndarray,
    out_j: np.ndarray,
    out_k: np.ndarray,
) -> None:
    """Intraday: per simulation `s`, the best `(value, j, k)` over all corners by torch's tie rule, into
    `out_value[s]`, `out_j[s]`, `out_k[s]`; the columns go in blocks of `BLOCK`."""
    s_count, k_count = h_val.shape
    alpha = np.empty(BLOCK)
    beta = np.empty(BLOCK)
    top = np.empty(BLOCK)
    top_j = np.empty(BLOCK, np.int64)
    for s in range(s_count):
        lv, ws = l_val[s], w[s]
        best, best_j, best_k = -np.inf, 0, 0
        for k0 in range(0, k_count, BLOCK):
            width = min(BLOCK, k_count - k0)
            hv, zs = h_val[s, k0 : k0 + width], z[s, k0 : k0 + width]
            for x in range(width):  # only the block's columns (few at small N, BLOCK at most)
                alpha[x] = 0.0
                beta[x] = 0.0
                top[x] = -np.inf
                top_j[x] = 0
            for j in range(k_count):
                for e in range(a_row[s, j], a_row[s, j + 1]):
                    i = a_day[s, e]
                    if a_kind[s, e] == 0:  # u: a_i = clamp(hp_i + h_val) while hq_i <= H_i, then c_i
                        weight, hpi = a_val[s, e], hp[s, i]
                        cut = min(max(n_a[s, i] - k0, 0), width)
                        for x in range(cut):
                            alpha[x] += _clamp(hpi + hv[x], _HQ_LO, _HQ_HI) * weight
                        tail = c[s, i] * weight
                        for x in range(cut, width):
                            alpha[x] += tail
                    else:  # b: ps_i while hq_i < H_i, +-0 after
                        v, cut = a_val[s, e], min(max(n_v[s, i] - k0, 0), width)
                        for x in range(cut):
                            alpha[x] += v
                for e in range(b_row[s, j], b_row[s, j + 1]):
                    v, cut = b_val[s, e], min(max(n_v[s, b_day[s, e]] - k0, 0), width)
                    for x in range(cut):
                        beta[x] += v
                lj, wj = lv[j], ws[j]
                if fused:
                    for x in range(width):
                        score = (_fma(lj, beta[x], alpha[x]) + wj) + zs[x]
                        if score > top[x]:
                            top[x] = score
                            top_j[x] = j
                else:
                    for x in range(width):
                        score = ((alpha[x] + lj * beta[x]) + wj) + zs[x]
                        if score > top[x]:
                            top[x] = score
                            top_j[x] = j
            for x in range(width):
                if _better(top[x], top_j[x], k0 + x, best, best_j, best_k, chunk):
                    best, best_j, best_k = top[x], top_j[x], k0 + x
        out_value[s], out_j[s], out_k[s] = best, best_j, best_k


@njit(cache=True)
def _solve(
    c: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    hp: np.ndarray,
    lp: np.ndarray,
    legs: np.ndarray,
    fee: float,
    h_lo: float,
    h_hi: float,
    l_lo: float,
    l_hi: float,
    policies: np.ndarray,
    fused: bool,
    chunk: int,
):
    """The legs' sides (`_leg_sides`), `_prepare`, then per policy the maximum (`_sweep` intraday, each side's
    first maximum at the close) and its point, in one compiled call: `(value, j, k, h, l)` each `[P, S]`, then
    `h_ind`, `l_ind` (`[S, K]`) and `ok` (`[S]`)."""
    s_count, n = c.shape
    k = 2 * n + 1
    n_pol = len(policies)
    l_val, l_ind, h_val, h_ind = (
        np.empty((s_count, k)),
        np.empty((s_count, k)),
        np.empty((s_count, k)),
        np.empty((s_count, k)),
    )
    w, z = np.empty((n_pol, s_count, k)), np.empty((n_pol, s_count, k))
    n_v, n_a = np.empty((s_count, n), np.int64), np.empty((s_count, n), np.int64)
    a_row, b_row = np.empty((s_count, k + 1), np.int64), np.empty((s_count, k + 1), np.int64)
    a_day, a_kind, a_val = (
        np.empty((s_count, 5 * n), np.int64),
        np.empty((s_count, 5 * n), np.int8),
        np.empty((s_count, 5 * n)),
    )
    b_day, b_val = np.empty((s_count, 2 * n), np.int64), np.empty((s_count, 2 * n))
    ok = np.empty(s_count, np.bool_)
    pl, ps = np.empty((s_count, n)), np.empty((s_count, n))
    _leg_sides(legs, pl, ps)
    _prepare(
        c, high, low, hp, lp, pl, ps, fee, h_lo, h_hi, l_lo, l_hi, policies, fused,
        l_val, l_ind, h_val, h_ind, w, z, n_v, n_a, a_row, a_day, a_kind, a_val, b_row, b_day, b_val, ok,
    )  # fmt: skip
    value = np.empty((n_pol, s_count))
    at_j, at_k = np.empty((n_pol, s_count), np.int64), np.empty((n_pol, s_count), np.int64)
    for pol in range(n_pol):
        if policies[pol]:
            for s in range(s_count):
                j, kk = np.argmax(w[pol, s]), np.argmax(z[pol, s])  # the first maximum, as torch's max
                value[pol, s], at_j[pol, s], at_k[pol, s] = w[pol, s, j] + z[pol, s, kk], j, kk
        else:
            _sweep(
                c, hp, l_val, h_val, w[pol], z[pol], n_v, n_a, a_row, a_day, a_kind, a_val, b_row, b_day, b_val,
                chunk, fused, value[pol], at_j[pol], at_k[pol],
            )  # fmt: skip
    h, l = np.empty((n_pol, s_count)), np.empty((n_pol, s_count))
    for pol in range(n_pol):
        for s in range(s_count):
            h[pol, s], l[pol, s] = h_ind[s, at_k[pol, s]], l_ind[s, at_j[pol, s]]
    return value, at_j, at_k, h, l, h_ind, l_ind, ok


@functools.cache
def torch_addcmul_is_fused() -> bool:
    """Whether this process's torch computes `addcmul` with one rounding (its AVX2/AVX512 CPU kernels) or two
    (its DEFAULT kernel): the `fma` to pass for bitwise agreement with the torch path (imports torch)."""
    import torch

    # (1 + 2**-30)**2 = 1 + 2**-29 + 2**-60: fused, -(1 + 2**-29) + it is 2**-60; rounded first, 0.
    b = torch.full((67,), 1.0 + 2.0**-30, dtype=torch.float64)
    a = torch.full_like(b, -(1.0 + 2.0**-29))
    got = torch.addcmul(a, b, b)
    return bool((got == 2.0**-60).all())


def fused_sweep(
    c: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    hp: np.ndarray,
    lp: np.ndarray,
    legs: np.ndarray,
    fee: float,
    bounds: Bounds,
    policies: tuple[bool, ...],
    *,
    fma: bool | None = None,
) -> tuple[list[PolicyResult], np.ndarray, np.ndarray]:
    """Per policy, what `exact.solve_policies` finds before re-scoring (`PolicyResult`: the supremum, its
    corner `(j, k)` and point `(h, l)`, each `[S]`), and the indicator points `h_ind`, `l_ind` (`[S, 2N+1]`).

    The day arrays are float64 `[S, N]` in the kernel's units (`close`, `high`, `low`, `high_pred`,
    `low_pred`), `legs` the objective's positions `[L, S, N]`; `bounds = ((h_lo, h_hi), (l_lo, l_hi))`.  The
    point of policy `p` is `h = h_ind[s, k[s]]`, `l = l_ind[s, j[s]]`.  `fma`: whether torch's `addcmul` rounds
    once; `None` asks this process's torch (`torch_addcmul_is_fused`), so the result is torch's bit for bit.
    """
    c, high, low, hp, lp, legs = (np.ascontiguousarray(a, dtype=np.float64) for a in (c, high, low, hp, lp, legs))
    shapes = {a.shape for a in (c, high, low, hp, lp)} | {legs.shape[1:]}
    if len(shapes) != 1 or c.ndim != 2 or c.size == 0 or legs.ndim != 3 or len(legs) == 0:
        raise ValueError(
            f"c, high, low, hp, lp: expected one non-empty [S, N] shape and legs [L >= 1, S, N], got "
            f"{[a.shape for a in (c, high, low, hp, lp, legs)]}"
        )
    if fma is None:
        fma = torch_addcmul_is_fused()
    s_count, n = c.shape
    k = 2 * n + 1
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    policies = tuple(bool(p) for p in policies)
    chunk = max(1, CHUNK_CELLS // (s_count * (k + 8 * n)))
    value, at_j, at_k, h, l, h_ind, l_ind, ok = _solve(
        c, high, low, hp, lp, legs, float(fee), float(h_lo), float(h_hi), float(l_lo), float(l_hi),
        np.array(policies, dtype=np.bool_), bool(fma), chunk,
    )  # fmt: skip
    if not ok.all():  # cannot happen (see the module docstring); the prefix updates rely on it
        raise AssertionError(f"indicator points not ascending in simulation {int(np.argmin(ok))}")
    out = [
        PolicyResult(value[i], at_j[i], at_k[i], h[i], l[i], 2 * k if close_at_eod else k * k)
        for i, close_at_eod in enumerate(policies)
    ]
    return out, h_ind, l_ind
