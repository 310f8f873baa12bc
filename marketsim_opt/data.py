"""Market data: the validated problem container, synthetic and real series, the
forecaster and the walk-forward backtest windows (SPEC sections 1 and 4).

Data flows one way: OHLC bars -> moves (`bars_to_moves`) -> forecasts
(`forecast_moves`) -> `Problem` tensors (`[N]` for one problem, `[S, N]` for a
batch).  All moves are fractions of the previous close.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import torch
from torch import Tensor

from .kernel import check_fee, check_kernel_inputs

__all__ = [
    "DataError",
    "check_device",
    "Problem",
    "check_values",
    "OHLC",
    "synthetic_problem",
    "synthetic_ohlc",
    "load_ohlc_csv",
    "bars_to_moves",
    "forecast_moves",
    "forecast_source",
    "backtest_windows",
    "DEFAULT_FEE",
    "CRYPTO_FEE",
]

DEFAULT_FEE = 0.0005  # equities, per unit of position per triggered entry
CRYPTO_FEE = 0.0015

_FIELDS = ("close", "high", "low", "high_pred", "low_pred")
#: Non-CPU device types `check_device` accepts; each has a `torch.<type>` module with `is_available()`.
_ACCELERATORS = ("cuda", "mps", "xpu")


class DataError(ValueError):
    """Bad input data; the message names the field and the problem."""


def check_device(device: str | torch.device) -> torch.device:
    """`device` as a `torch.device`, or DataError naming `device` when this torch cannot use it.

    Checks the string and the backend's availability only (no allocation, no host sync).
    """
    if not isinstance(device, (str, torch.device)):
        raise DataError(f"device: expected a string such as 'cpu' or 'cuda:0', got {device!r}")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DataError(f"device: {device!r} is not a torch device (expected e.g. 'cpu', 'cuda' or 'cuda:0')") from None
    if dev.type == "cpu":
        return dev
    if dev.type not in _ACCELERATORS:
        raise DataError(f"device: {device!r} is not supported (expected 'cpu' or one of {', '.join(_ACCELERATORS)})")
    if dev.type == "cuda" and torch.version.cuda is None and torch.version.hip is None:
        raise DataError(
            f"device: {device!r} requested, but this torch build ({torch.__version__}) has no CUDA support; "
            "use 'cpu' or install a CUDA build of torch"
        )
    backend = getattr(torch, dev.type)
    if not backend.is_available():
        raise DataError(
            f"device: {device!r} requested, but torch.{dev.type}.is_available() is False (no usable device)"
        )
    if dev.index is not None and dev.index >= backend.device_count():
        raise DataError(
            f"device: {device!r} requested, but only {backend.device_count()} {dev.type} device(s) are visible"
        )
    return dev


@dataclass(frozen=True)
class Problem:
    """One problem (`[N]` tensors) or a batch of `S` problems (`[S, N]`), validated.

    Fields are day moves (fractions of the previous close): actual `close`,
    `high`, `low` and forecast `high_pred`, `low_pred`, all of one float dtype
    and on one device.  `trading_fee` defaults to the equity or crypto fee.
    Construction checks shapes, dtypes and devices without touching values,
    then all values (finite, `high >= low`) with a single host read-back.
    """

    close: Tensor
    high: Tensor
    low: Tensor
    high_pred: Tensor
    low_pred: Tensor
    is_crypto: bool = False
    trading_fee: float | None = None

    def __post_init__(self) -> None:
        if self.trading_fee is None:
            object.__setattr__(self, "trading_fee", CRYPTO_FEE if self.is_crypto else DEFAULT_FEE)
        try:
            check_fee(self.trading_fee)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        tensors = self.tensors()
        if all(isinstance(t, Tensor) for t in tensors.values()):
            _check_same_shape(tensors)  # before the broadcast check, so the message names the odd field
        try:
            check_kernel_inputs(**tensors)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        shape = tuple(self.close.shape)
        for name, t in tensors.items():
            if t.dtype != self.close.dtype:
                raise DataError(f"{name}: dtype {t.dtype} differs from close's {self.close.dtype}")
        if len(shape) not in (1, 2):
            raise DataError(f"close: expected shape [N] or [S, N], got {shape}")
        if shape[-1] == 0 or (len(shape) == 2 and shape[0] == 0):
            raise DataError(f"close: empty series, shape {shape}")
        check_values(tensors)

    def tensors(self) -> dict[str, Tensor]:
        """The five day tensors by field name."""
        return {name: getattr(self, name) for name in _FIELDS}

    @property
    def batched(self) -> bool:
        return self.close.dim() == 2

    @property
    def n_days(self) -> int:
        return self.close.shape[-1]

    @property
    def n_sims(self) -> int:
        """Problems in the batch (1 for an unbatched problem)."""
        return self.close.shape[0] if self.batched else 1

    @property
    def device(self) -> torch.device:
        return self.close.device

    @property
    def dtype(self) -> torch.dtype:
        return self.close.dtype

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Problem:
        """A copy on another device and/or float dtype."""
        if device is not None:
            device = check_device(device)
        moved = {name: t.to(device=device, dtype=dtype) for name, t in self.tensors().items()}
        return Problem(**moved, is_crypto=self.is_crypto, trading_fee=self.trading_fee)

    def __getitem__(self, index: int | slice) -> Problem:
        """Simulation(s) `index` of a batched problem (not re-validated, so no host sync)."""
        if not self.batched:
            raise TypeError("only a batched [S, N] problem can be indexed")
        return self._derived({name: t[index] for name, t in self.tensors().items()})

    def concat(self, *others: Problem) -> Problem:
        """This problem's rows followed by `others'` as one `[S1 + S2 + ..., N]` batch (not re-validated).

        All must share day count, dtype, device, fee and crypto flag; an `[N]`
        problem counts as one row.
        """
        rows = [self, *others]
        for i, other in enumerate(others, start=1):
            theirs = (other.n_days, other.dtype, other.device, other.trading_fee, other.is_crypto)
            ours = (self.n_days, self.dtype, self.device, self.trading_fee, self.is_crypto)
            if theirs != ours:
                raise DataError(
                    f"problems: problem {i} has (days, dtype, device, fee, crypto) {theirs}, the first {ours}"
                )
        return self._derived(
            {name: torch.cat([r.tensors()[name].reshape(-1, self.n_days) for r in rows]) for name in _FIELDS}
        )

    def as_float64(self) -> Problem:
        """The same problem in float64 (not re-validated: widening keeps values finite)."""
        return self._derived({name: t.double() for name, t in self.tensors().items()})

    def _derived(self, tensors: dict[str, Tensor]) -> Problem:
        """A copy with other tensors derived from validated ones, skipping validation."""
        derived = object.__new__(Problem)
        for name, t in tensors.items():
            object.__setattr__(derived, name, t)
        object.__setattr__(derived, "is_crypto", self.is_crypto)
        object.__setattr__(derived, "trading_fee", self.trading_fee)
        return derived


def _check_same_shape(tensors: dict[str, Tensor]) -> None:
    """All fields share one shape; the message names a field that differs from the most common shape."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    common = Counter(shapes.values()).most_common(1)[0][0]
    for name, shape in shapes.items():
        if shape != common:
            raise DataError(f"{name}: shape {shape} differs from the other fields' {common}")


def check_values(tensors: dict[str, Tensor]) -> None:
    """Raise DataError when a value is NaN/infinite or `high < low`; one host read-back."""
    names = list(tensors)
    flags = [~torch.isfinite(t).all() for t in tensors.values()]
    if "high" in tensors and "low" in tensors:
        flags.append((tensors["high"] < tensors["low"]).any())
    bad = torch.stack(flags).tolist()
    for name, is_bad in zip(names, bad):
        if is_bad:
            t = tensors[name]
            count = int((~torch.isfinite(t)).sum())
            first = torch.nonzero(~torch.isfinite(t))[0].tolist()
            raise DataError(f"{name}: {count} NaN or infinite value(s), first at index {first}")
    if len(bad) > len(names) and bad[-1]:
        wrong = tensors["high"] < tensors["low"]
        first = torch.nonzero(wrong)[0].tolist()
        raise DataError(f"high: below low on {int(wrong.sum())} day(s), first at index {first}")


# --- synthetic data -------------------------------------------------------------------------


def synthetic_problem(
    n_days: int,
    seed: int = 42,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    trading_fee: float = CRYPTO_FEE,
) -> Problem:
    """The `profile` recipe of SPEC section 4 at any `n_days` (numpy PCG64, same on every machine).

    `c ~ N(0, 0.02)`, `H = c + |N(0,1)|*0.01`, `L = c - |N(0,1)|*0.01`,
    `Hp ~ N(0.005, 0.01)`, `Lp ~ N(-0.005, 0.01)`, drawn in that order.
    """
    if int(n_days) != n_days or n_days < 1:
        raise DataError(f"n_days: must be a positive integer, got {n_days!r}")
    device = check_device(device)
    rng = np.random.default_rng(seed)
    close = rng.normal(0.0, 0.02, n_days)
    high = close + np.abs(rng.normal(0.0, 1.0, n_days)) * 0.01
    low = close - np.abs(rng.normal(0.0, 1.0, n_days)) * 0.01
    high_pred = rng.normal(0.005, 0.01, n_days)
    low_pred = rng.normal(-0.005, 0.01, n_days)
    arrays = dict(close=close, high=high, low=low, high_pred=high_pred, low_pred=low_pred)
    return Problem(
        **{k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in arrays.items()},
        trading_fee=trading_fee,
    )


@dataclass(frozen=True)
class OHLC:
    """Daily bars, oldest first: `time` (ISO strings) and float64 `open`, `high`, `low`, `close` arrays."""

    time: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    symbol: str = ""

    def __post_init__(self) -> None:
        n = len(self.time)
        for name in ("open", "high", "low", "close"):
            values = np.asarray(getattr(self, name), dtype=np.float64)
            object.__setattr__(self, name, values)
            if values.shape != (n,):
                raise DataError(f"{name}: shape {values.shape}, expected ({n},) like time")
            if not np.isfinite(values).all():
                raise DataError(f"{name}: {int((~np.isfinite(values)).sum())} NaN or infinite value(s)")
            if (values <= 0).any():
                raise DataError(f"{name}: prices must be > 0; bar {int(np.argmax(values <= 0))} is not")
        if n < 2:
            raise DataError(f"time: at least 2 bars are needed for one move, got {n}")
        bad = self.high < self.low
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"high: below low on {int(bad.sum())} bar(s), first at {self.time[i]}")

    def __len__(self) -> int:
        return len(self.time)


def synthetic_ohlc(n_bars: int = 400, seed: int = 0, *, start_price: float = 100.0) -> OHLC:
    """A seeded synthetic daily OHLC series with volatility clustering (GARCH(1,1) returns).

    Prices stay positive (log-returns), and every bar has `low <= open, close <= high`.
    """
    if int(n_bars) != n_bars or n_bars < 2:
        raise DataError(f"n_bars: must be an integer >= 2, got {n_bars!r}")
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 2e-6, 0.08, 0.9  # daily variance ~ omega/(1-alpha-beta) = (1%)^2
    var = omega / (1 - alpha - beta)
    log_close = math.log(start_price)
    opens, highs, lows, closes = [], [], [], []
    shock = 0.0
    for _ in range(n_bars):
        var = omega + alpha * shock**2 + beta * var
        sigma = math.sqrt(var)
        gap = rng.normal(0.0, 0.2 * sigma)
        shock = rng.normal(0.0, sigma)
        log_open = log_close + gap
        log_new_close = log_open + shock
        top = max(log_open, log_new_close) + abs(rng.normal(0.0, 0.5 * sigma))
        bottom = min(log_open, log_new_close) - abs(rng.normal(0.0, 0.5 * sigma))
        opens.append(log_open)
        highs.append(top)
        lows.append(bottom)
        closes.append(log_new_close)
        shock = log_new_close - log_close
        log_close = log_new_close
    days = np.datetime64("2020-01-01") + np.arange(n_bars)
    return OHLC(
        time=tuple(str(d) for d in days),
        open=np.exp(opens),
        high=np.exp(highs),
        low=np.exp(lows),
        close=np.exp(closes),
        symbol=f"SYNTH{seed}",
    )


# --- real data ------------------------------------------------------------------------------


def _parse_time(text: str) -> datetime:
    text = text.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(float(text))


def load_ohlc_csv(path: str | os.PathLike[str]) -> OHLC:
    """Read daily OHLC bars from a CSV file, sorted oldest first.

    Columns are matched case-insensitively: `date` or `timestamp`, `open`,
    `high`, `low`, `close`; others are ignored.  A missing column or an
    unparseable row raises DataError naming the column or the line.
    """
    path = os.fspath(path)
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: empty file, no header row") from None
        columns = {name.strip().lower(): i for i, name in enumerate(header)}
        time_col = "date" if "date" in columns else "timestamp" if "timestamp" in columns else None
        if time_col is None:
            raise DataError(f"{path}: no 'date' or 'timestamp' column (header: {header})")
        missing = [c for c in ("open", "high", "low", "close") if c not in columns]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing} (header: {header})")
        rows = []
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            try:
                stamp = _parse_time(row[columns[time_col]])
                values = [float(row[columns[c]]) for c in ("open", "high", "low", "close")]
            except (ValueError, IndexError, OverflowError, OSError) as exc:
                raise DataError(f"{path}: line {line_no}: cannot parse row {row!r}: {exc}") from None
            rows.append((stamp, row[columns[time_col]].strip(), values))
    if not rows:
        raise DataError(f"{path}: no data rows")
    try:
        rows.sort(key=lambda r: r[0])
    except TypeError:
        raise DataError(f"{path}: {time_col}: mixes timezone-aware and naive times") from None
    stamps = [r[0] for r in rows]
    for a, b in zip(stamps, stamps[1:]):
        if a == b:
            raise DataError(f"{path}: {time_col}: duplicate time {a.isoformat()}")
    values = np.array([r[2] for r in rows], dtype=np.float64)
    symbol = os.path.splitext(os.path.basename(path))[0]
    try:
        return OHLC(
            time=tuple(r[1] for r in rows),
            open=values[:, 0],
            high=values[:, 1],
            low=values[:, 2],
            close=values[:, 3],
            symbol=symbol,
        )
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


def bars_to_moves(bars: OHLC) -> dict[str, np.ndarray]:
    """Moves relative to the previous close, one per bar after the first: `close`, `high`, `low`."""
    prev = bars.close[:-1]
    return {
        "close": bars.close[1:] / prev - 1.0,
        "high": bars.high[1:] / prev - 1.0,
        "low": bars.low[1:] / prev - 1.0,
    }


def forecast_moves(moves: dict[str, np.ndarray], window: int = 20) -> dict[str, np.ndarray]:
    """Forecast each day's high and low moves from past days only.

    Day `i`'s forecast is the mean of the actual high (low) moves of days
    `i-window .. i-1` (fewer at the start).  Day 0 has no past and gets NaN;
    callers score only days with history.  Changing day `j` never changes a
    forecast for a day `<= j`.
    """
    if int(window) != window or window < 1:
        raise DataError(f"window: must be a positive integer, got {window!r}")
    out = {}
    for name in ("high", "low"):
        x = moves[name]
        csum = np.concatenate([[0.0], np.cumsum(x)])
        i = np.arange(len(x))
        start = np.maximum(i - window, 0)
        count = i - start
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{name}_pred"] = np.where(count > 0, (csum[i] - csum[start]) / np.maximum(count, 1), np.nan)
    return out


def forecast_source(bars: OHLC, window: int = 20) -> str:
    """Which forecasts `backtest_windows(bars, window=window)` uses, in words (for `Workload.forecast`)."""
    return f"built-in: mean of the past {window} days' high/low moves"


def backtest_windows(
    bars: OHLC,
    *,
    n_sims: int = 70,
    n_days: int = 6,
    window: int = 20,
    is_crypto: bool = False,
    trading_fee: float | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Problem:
    """The walk-forward windows of SPEC section 4 as one `[n_sims, n_days]` batch.

    Simulation `k` drops the last `k+1` bars, forecasts the bars that remain
    from the past alone and scores the last `n_days` days.  Row `k` of the
    batch is simulation `k`.
    """
    for name, value in (("n_sims", n_sims), ("n_days", n_days)):
        if int(value) != value or value < 1:
            raise DataError(f"{name}: must be a positive integer, got {value!r}")
    device = check_device(device)
    moves = bars_to_moves(bars)
    preds = forecast_moves(moves, window)
    n_moves = len(moves["close"])
    # Simulation k keeps bars [0, T-k-1), i.e. moves [0, n_moves-k-1); it scores the last n_days.
    last = n_moves - 1 - np.arange(n_sims)  # exclusive end per simulation
    first = last - n_days
    if first.min() < 1:
        need = n_sims + n_days + 2
        raise DataError(
            f"bars: {len(bars)} bars are too few for {n_sims} simulations of {n_days} days (need at least {need})"
        )
    index = first[:, None] + np.arange(n_days)[None, :]
    arrays = {**moves, **preds}
    tensors = {name: torch.as_tensor(arrays[name][index], dtype=dtype, device=device) for name in _FIELDS}
    return Problem(**tensors, is_crypto=is_crypto, trading_fee=trading_fee)
