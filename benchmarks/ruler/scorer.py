"""A float64 numpy scorer of docs/kernel.md (kernel and strategies), written independently of `marketsim_opt`
(never import it here).

The suite's regret is `frozen supremum - score(...)`: both sides of that difference come from this package's
data and this scorer, so a change in `marketsim_opt` cannot move the ruler it is measured with.  Likewise the
out-of-sample loss is `-next_day_profit(...)` on the frozen test days.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .references import Reference

__all__ = ["profit_per_day", "entry_exit_positions", "legs", "score", "next_day_profit", "STRATEGIES"]

#: The strategies of docs/kernel.md, in the suite's order.
STRATEGIES = ("entry_exit", "always_on")


def profit_per_day(c, H, Hp, L, Lp, p, *, close_at_eod: bool, fee: float) -> np.ndarray:
    """docs/kernel.md's per-day profit, float64, broadcast over all six inputs (fractions of the previous close).

    `Hp`, `Lp` are the predicted moves with the offsets already added; `p` the signed position sizes.
    """
    c, H, Hp, L, Lp, p = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (c, H, Hp, L, Lp, p)))
    Hq = np.clip(Hp, 0.0, 10.0)
    Lq = np.clip(Lp, -1.0, 0.0)
    pl = np.clip(p, 0.0, 10.0)
    ps = np.clip(p, -10.0, 0.0)
    eL = (Lq > L).astype(np.float64)
    eS = (Hq < H).astype(np.float64)
    fee_paid = fee * (pl * eL + np.abs(ps) * eS)
    if close_at_eod:
        return pl * eL * (c - Lq) + ps * eS * (c - Hq) - fee_paid
    long = pl * eL * ((Hq <= H) * (Hq - Lq) + (Hq > H) * (c - Lq))
    short = ps * eS * ((Lq >= L) * (Lq - Hq) + (Lq < L) * (c - Hq))
    return long + short - fee_paid


def entry_exit_positions(high_pred, low_pred, *, is_crypto: bool) -> np.ndarray:
    """MaxDiff positions (docs/kernel.md): `+1` where `|Hp| > |Lp|`, else `-1`; `0` where `Hp <= Lp`; crypto: no shorts.

    Shapes broadcast (`[N]` or `[S, N]`); float64.
    """
    hp = np.asarray(high_pred, dtype=np.float64)
    lp = np.asarray(low_pred, dtype=np.float64)
    positions = np.where(np.abs(hp) > np.abs(lp), 1.0, -1.0)
    positions = np.where(hp <= lp, 0.0, positions)
    if is_crypto:
        positions = np.clip(positions, 0.0, None)
    return positions


def legs(strategy: str, high_pred, low_pred, *, is_crypto: bool) -> tuple[np.ndarray, ...]:
    """The strategy's legs, each a float64 positions array shaped like `high_pred`.

    entry_exit: its MaxDiff positions; always_on: a `+1` buy leg and a `-1` sell leg (crypto: the buy leg only).
    """
    if strategy == "entry_exit":
        return (entry_exit_positions(high_pred, low_pred, is_crypto=is_crypto),)
    if strategy == "always_on":
        buy = np.ones(np.shape(high_pred), dtype=np.float64)
        return (buy,) if is_crypto else (buy, -buy)
    raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")


def _per_sim(name: str, value, n_sims: int, *, flags: bool) -> np.ndarray:
    """`value` (a scalar or `[S]`) as `[S]` float64 (`flags=False`) or bool (`flags=True`); ValueError naming `name`."""
    arr = np.asarray(value)
    if flags and arr.dtype != np.bool_:
        raise ValueError(f"{name}: expected a bool or {n_sims} bools, got dtype {arr.dtype}")
    if not flags and (arr.dtype == np.bool_ or arr.dtype.kind not in "iuf"):
        raise ValueError(f"{name}: expected a real number or {n_sims} real numbers, got dtype {arr.dtype}")
    if arr.ndim == 0:
        arr = np.full(n_sims, arr)
    if arr.shape != (n_sims,):
        raise ValueError(f"{name}: expected a scalar or {n_sims} values (one per simulation), got shape {arr.shape}")
    return arr if flags else arr.astype(np.float64)


def _answer(strategy: str, h, l, close_at_eod, n_sims: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A method's answer checked and per simulation: `h`, `l` float64 `[S]` (finite), `close_at_eod` bool `[S]`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
    h = _per_sim("h", h, n_sims, flags=False)
    l = _per_sim("l", l, n_sims, flags=False)
    eod = _per_sim("close_at_eod", close_at_eod, n_sims, flags=True)
    if not (np.isfinite(h).all() and np.isfinite(l).all()):
        raise ValueError(f"h, l: expected finite offsets, got h={h.tolist()}, l={l.tolist()}")
    return h, l, eod


def score(reference: Reference, strategy: str, h, l, close_at_eod) -> np.ndarray:
    """The float64 objective of `strategy` on the reference's frozen data, per simulation `[S]`.

    Simulation `s` sums, over the strategy's legs and the days, `profit_per_day` at offsets `(h[s], l[s])` under
    policy `close_at_eod[s]`.  `h`, `l`: a number or `[S]`; `close_at_eod`: a bool or `[S]` bools.
    """
    h, l, eod = _answer(strategy, h, l, close_at_eod, reference.close.shape[0])
    s = len(h)
    positions = legs(strategy, reference.high_pred, reference.low_pred, is_crypto=reference.is_crypto)
    out = np.empty(s, dtype=np.float64)
    for i in range(s):
        total = 0.0
        for leg in positions:
            total += profit_per_day(
                reference.close[i],
                reference.high[i],
                reference.high_pred[i] + h[i],
                reference.low[i],
                reference.low_pred[i] + l[i],
                leg[i],
                close_at_eod=bool(eod[i]),
                fee=reference.trading_fee,
            ).sum()
        out[i] = total
    return out


def next_day_profit(reference: Reference, strategy: str, h, l, close_at_eod) -> np.ndarray:
    """Each simulation's float64 profit on its frozen test day (`reference.next_day`), `[S]`.

    Simulation `s` sums, over the strategy's legs on the test day (from the test day's own forecasts, as `legs`
    gives them), `profit_per_day` at offsets `(h[s], l[s])` under policy `close_at_eod[s]`.  `h`, `l`: a number
    or `[S]`; `close_at_eod`: a bool or `[S]` bools.  ValueError when the reference has no next day.
    """
    day = reference.next_day
    if day is None:
        raise ValueError(f"next_day: the {reference.workload} reference has no test days")
    h, l, eod = _answer(strategy, h, l, close_at_eod, day.close.shape[0])
    s = len(h)
    positions = legs(strategy, day.high_pred, day.low_pred, is_crypto=reference.is_crypto)
    total = np.zeros(s, dtype=np.float64)
    for leg in positions:
        args = (day.close, day.high, day.high_pred + h, day.low, day.low_pred + l, leg)
        fee = reference.trading_fee
        at_close = profit_per_day(*args, close_at_eod=True, fee=fee)
        intraday = profit_per_day(*args, close_at_eod=False, fee=fee)
        total += np.where(eod, at_close, intraday)
    return total
