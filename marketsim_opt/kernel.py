"""The profit kernel of docs/kernel.md, and nothing else.

All day tensors are fractional moves relative to the previous close.  Every
input broadcasts against the others, so one call scores one problem (`[N]`),
a batch of problems (`[S, N]`), a batch of candidates (`high_pred + h` with
`h` of shape `[K, 1]` gives `[K, N]`) or both (`[S, 1, N]` day tensors with
`[S, K, 1]` offsets give `[S, K, N]`).  No Python loop runs over candidates or
simulations.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "profit_per_day",
    "profit_per_day_f64",
    "check_kernel_inputs",
    "check_fee",
    "check_flag",
    "raw_profit_per_day",
    "smoothed_profit_per_day",
]


def check_kernel_inputs(**tensors: Tensor) -> None:
    """Raise ValueError naming the field when inputs are not float tensors on one device.

    Only metadata is inspected (dtype, device, shape), so this never syncs with
    the device.
    """
    first_name, first = None, None
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise ValueError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
        if first is None:
            first_name, first = name, t
        elif t.device != first.device:
            raise ValueError(
                f"{name}: on device {t.device}, but {first_name} is on {first.device}; move all inputs to one device"
            )
    if first is not None and first.is_meta:
        raise ValueError(f"{first_name}: on the meta device, which holds no values; expected a CPU or CUDA tensor")
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    try:
        torch.broadcast_shapes(*shapes.values())
    except RuntimeError:
        raise ValueError(f"shapes do not broadcast together: {shapes}") from None


def check_fee(trading_fee: float) -> float:
    """The fee as a Python float; ValueError unless it is a real number in [0, 1) (a fraction of the price).

    Any real number is accepted (`int`, `float`, numpy's integer and float scalars); a bool, a string, a
    tensor or an array is not (a tensor fee would need a device read-back).
    """
    if isinstance(trading_fee, (bool, np.bool_)) or not isinstance(trading_fee, numbers.Real):
        raise ValueError(f"trading_fee: expected a real number, got {type(trading_fee).__name__} {trading_fee!r}")
    fee = float(trading_fee)
    if not math.isfinite(fee) or fee < 0:
        raise ValueError(f"trading_fee: must be finite and >= 0, got {trading_fee!r}")
    if fee >= 1:  # a fee of the whole price or more is a unit mistake (percent, basis points), not a fee
        raise ValueError(f"trading_fee: must be below 1 (a fraction of the price: 0.0005 is 5 bp), got {trading_fee!r}")
    return fee


def check_flag(name: str, value: object, *, allow_none: bool = False) -> bool | None:
    """`value` as a Python bool; ValueError naming the option unless it is a `bool` or `numpy.bool_`.

    Strings such as 'no' or 'false', numbers and tensors are refused rather than read by their truth value.
    `allow_none=True` passes `None` through, for options where it has a documented meaning.
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        expected = "True, False or None" if allow_none else "True or False"
        raise ValueError(f"{name}: expected {expected}, got {type(value).__name__} {value!r}")
    return bool(value)


def profit_per_day(
    close: Tensor,
    high: Tensor,
    high_pred: Tensor,
    low: Tensor,
    low_pred: Tensor,
    positions: Tensor,
    *,
    close_at_eod: bool = False,
    trading_fee: float = 0.0005,
) -> Tensor:
    """Per-day profit (fraction of the previous close), broadcast over all inputs.

    `high_pred` and `low_pred` already include the offsets `h` and `l`.  The
    result has the broadcast shape of the inputs and their dtype and device.
    Inputs are checked for dtype, device and shape (no device sync); values are
    not (see `marketsim_opt.data.Problem` for the validated container).
    """
    check_kernel_inputs(close=close, high=high, high_pred=high_pred, low=low, low_pred=low_pred, positions=positions)
    return raw_profit_per_day(
        close,
        high,
        high_pred,
        low,
        low_pred,
        positions,
        close_at_eod=check_flag("close_at_eod", close_at_eod),
        trading_fee=check_fee(trading_fee),
    )


def raw_profit_per_day(
    close: Tensor,
    high: Tensor,
    high_pred: Tensor,
    low: Tensor,
    low_pred: Tensor,
    positions: Tensor,
    *,
    close_at_eod: bool | Tensor = False,
    trading_fee: float = 0.0005,
) -> Tensor:
    """`profit_per_day` without the input checks: the hot path for already-validated problems."""
    return _kernel(
        close, high, high_pred, low, low_pred, positions, close_at_eod, trading_fee, _strictly_above, _where_at_most
    )


def smoothed_profit_per_day(
    close: Tensor,
    high: Tensor,
    high_pred: Tensor,
    low: Tensor,
    low_pred: Tensor,
    positions: Tensor,
    *,
    tau: float | Tensor,
    close_at_eod: bool = False,
    trading_fee: float = 0.0005,
) -> Tensor:
    """The kernel with each indicator `[a > b]` (or `[a >= b]`) replaced by `sigmoid((a - b) / tau)`.

    The true kernel is piecewise constant in its four indicators (entries `Lq > L`, `Hq < H`; take-profits
    `Hq <= H`, `Lq >= L`), so its gradient in the offsets is zero almost everywhere; this smooth surrogate's
    is not.  A take-profit's exit becomes the blend `s * target + (1 - s) * close`.  `tau` (> 0, in the
    moves' unit; a float or a tensor that broadcasts with the inputs) is the width of each step: as
    `tau -> 0` the surrogate converges to `raw_profit_per_day` everywhere but at exact ties `a == b` (where
    a sigmoid gives 1/2).  Same formula (`_kernel`), same broadcasting, no input checks.
    """

    def entry(a: Tensor, b: Tensor) -> Tensor:
        return torch.sigmoid((a - b) / tau)

    def take(a: Tensor, b: Tensor, target: Tensor, otherwise: Tensor) -> Tensor:
        reached = torch.sigmoid((b - a) / tau)
        return reached * target + (1.0 - reached) * otherwise

    return _kernel(close, high, high_pred, low, low_pred, positions, close_at_eod, trading_fee, entry, take)


def _strictly_above(a: Tensor, b: Tensor) -> Tensor:
    """`[a > b]` as 0/1 in `a`'s dtype."""
    return (a > b).to(a.dtype)


def _where_at_most(a: Tensor, b: Tensor, target: Tensor, otherwise: Tensor) -> Tensor:
    """`target` where `a <= b`, else `otherwise`."""
    return torch.where(a <= b, target, otherwise)


def _kernel(
    close: Tensor,
    high: Tensor,
    high_pred: Tensor,
    low: Tensor,
    low_pred: Tensor,
    positions: Tensor,
    close_at_eod: bool | Tensor,
    trading_fee: float,
    entry: Callable[[Tensor, Tensor], Tensor],
    take: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor],
) -> Tensor:
    """docs/kernel.md's formula, the one implementation, given its step functions.

    `entry(a, b)` is the strict indicator `[a > b]`; `take(a, b, target, otherwise)` is the non-strict
    take-profit `target if a <= b else otherwise`.  The kernel passes the exact ones, the surrogate smooth ones.
    `close_at_eod` is one policy, or a bool tensor broadcasting against the inputs: a policy per element (`[K, 1]`
    against `[S, K, N]`: one per candidate), each element its own policy's number bit for bit (only the exits
    are selected; the arithmetic is the same).
    """
    high_q = high_pred.clamp(0.0, 10.0)
    low_q = low_pred.clamp(-1.0, 0.0)
    pos_long = positions.clamp(0.0, 10.0)
    pos_short = positions.clamp(-10.0, 0.0)

    # Both entries are strict: a limit exactly at the day's extreme is not filled.
    enter_long = entry(low_q, low) * pos_long  # [Lq > L]
    enter_short = entry(high, high_q) * pos_short  # [Hq < H]
    fee = trading_fee * (enter_long - enter_short)  # pos_short <= 0, so this adds |ps|

    # Each side's exit is a temporary of the broadcast shape: one side at a time, so no two are held at once.
    if isinstance(close_at_eod, Tensor):  # a policy per element: each exit is the one its policy's branch takes
        long = enter_long * (torch.where(close_at_eod, close, take(high_q, high, high_q, close)) - low_q)
        short = enter_short * (torch.where(close_at_eod, close, take(low, low_q, low_q, close)) - high_q)
    elif close_at_eod:
        long = enter_long * (close - low_q)
        short = enter_short * (close - high_q)
    else:
        # Take-profits are non-strict: a target exactly at the extreme is taken.
        long = enter_long * (take(high_q, high, high_q, close) - low_q)  # Hq if Hq <= H else c
        short = enter_short * (take(low, low_q, low_q, close) - high_q)  # Lq if Lq >= L else c
    return long + short - fee


def profit_per_day_f64(
    close: Tensor,
    high: Tensor,
    high_pred: Tensor,
    low: Tensor,
    low_pred: Tensor,
    positions: Tensor,
    *,
    close_at_eod: bool = False,
    trading_fee: float = 0.0005,
) -> Tensor:
    """The float64 reference path used for scoring: same formula, every input cast to float64."""
    check_kernel_inputs(close=close, high=high, high_pred=high_pred, low=low, low_pred=low_pred, positions=positions)
    return raw_profit_per_day(
        close.double(),
        high.double(),
        high_pred.double(),
        low.double(),
        low_pred.double(),
        positions.double(),
        close_at_eod=check_flag("close_at_eod", close_at_eod),
        trading_fee=check_fee(trading_fee),
    )
