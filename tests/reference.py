"""The kernel of SPEC section 1 in plain float64 numpy, written independently of the package, for the tests."""

from __future__ import annotations

import numpy as np


def reference_profit(c, H, Hp, L, Lp, p, *, close_at_eod: bool, fee: float) -> np.ndarray:
    """An independent float64 numpy transcription of the SPEC section 1 formulas."""
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
