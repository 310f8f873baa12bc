"""Market data: the validated problem container, synthetic and real series, the
forecaster and the walk-forward backtest windows (docs/kernel.md and docs/workloads.md).

Data flows one way: OHLC bars -> moves (`bars_to_moves`) -> forecasts
(`forecast_moves`, or the bars' own `high_pred`/`low_pred` columns when a CSV
has them) -> `Problem` tensors (`[N]` for one problem, `[S, N]` for a batch).
All moves are fractions of the previous close.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import numbers
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import torch
from torch import Tensor

from .instrument import read_item, read_list
from .kernel import check_fee, check_flag, check_kernel_inputs

__all__ = [
    "DataError",
    "check_device",
    "Problem",
    "row_index",
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
    "MAX_PRICE_RATIO",
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
    """A batch of `S` problems, `[S, N]` tensors, validated; one series (`[N]` tensors) is held as S = 1.

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
        object.__setattr__(self, "is_crypto", _check_flag("is_crypto", self.is_crypto))
        if self.trading_fee is None:
            object.__setattr__(self, "trading_fee", CRYPTO_FEE if self.is_crypto else DEFAULT_FEE)
        try:
            object.__setattr__(self, "trading_fee", check_fee(self.trading_fee))
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
        if len(shape) == 1:  # one series: a view as one row, so every consumer sees [S, N]
            for name, t in tensors.items():
                object.__setattr__(self, name, t.unsqueeze(0))

    def tensors(self) -> dict[str, Tensor]:
        """The five day tensors by field name."""
        return {name: getattr(self, name) for name in _FIELDS}

    @property
    def n_days(self) -> int:
        return self.close.shape[-1]

    @property
    def n_sims(self) -> int:
        """Problems in the batch, `S` (1 for one series)."""
        return self.close.shape[0]

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

    def __getitem__(self, index: int | slice | Tensor) -> Problem:
        """Simulation(s) `index` as a problem of their rows (an integer gives S = 1; not re-validated, no host
        sync)."""
        rows = row_index(index, self.n_sims)
        return self._derived({name: t[rows] for name, t in self.tensors().items()})

    def concat(self, *others: Problem) -> Problem:
        """This problem's rows followed by `others'` as one `[S1 + S2 + ..., N]` batch (not re-validated).

        All must share day count, dtype, device, fee and crypto flag.
        """
        rows = [self, *others]
        for i, other in enumerate(others, start=1):
            theirs = (other.n_days, other.dtype, other.device, other.trading_fee, other.is_crypto)
            ours = (self.n_days, self.dtype, self.device, self.trading_fee, self.is_crypto)
            if theirs != ours:
                raise DataError(
                    f"problems: problem {i} has (days, dtype, device, fee, crypto) {theirs}, the first {ours}"
                )
        return self._derived({name: torch.cat([r.tensors()[name] for r in rows]) for name in _FIELDS})

    def as_float64(self) -> Problem:
        """The same problem in float64 (not re-validated: widening keeps values finite)."""
        return self._derived({name: t.double() for name, t in self.tensors().items()})

    def with_tensors(self, tensors: tuple[Tensor, ...]) -> Problem:
        """This problem with its five day tensors (in `tensors()` order) replaced by values derived from them
        (the same shape and the same values, say widened): not re-validated, the caller vouches for them."""
        return self._derived(dict(zip(_FIELDS, tensors, strict=True)))

    def _derived(self, tensors: dict[str, Tensor]) -> Problem:
        """A copy with other tensors derived from validated ones, skipping validation."""
        derived = object.__new__(Problem)
        for name, t in tensors.items():
            object.__setattr__(derived, name, t)
        object.__setattr__(derived, "is_crypto", self.is_crypto)
        object.__setattr__(derived, "trading_fee", self.trading_fee)
        return derived


def row_index(index: int | slice | Tensor, n_sims: int) -> slice | Tensor:
    """`index` of simulations as an index that keeps the row axis: an integer (Python, numpy, or a 0-d tensor)
    `i` becomes the slice `i:i+1` (IndexError outside `[-S, S)`); slices and index tensors pass as they are."""
    if isinstance(index, (bool, np.bool_)):
        raise TypeError(f"simulation index: expected an integer, a slice or an index tensor, got {index!r}")
    if isinstance(index, Tensor) and index.dim() == 0:
        return index.reshape(1)  # a tensor index stays on its device: no read-back
    if isinstance(index, numbers.Integral) and not isinstance(index, bool):
        i = int(index)
        if not -n_sims <= i < n_sims:
            raise IndexError(f"simulation {i} out of range for S = {n_sims}")
        return slice(i % n_sims, i % n_sims + 1)
    return index


def _check_flag(name: str, value: object) -> bool:
    """`kernel.check_flag` raising DataError: `value` as a bool, refusing 'no', 1, None and the like."""
    try:
        return check_flag(name, value)
    except ValueError as exc:
        raise DataError(str(exc)) from None


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
    bad = read_list(torch.stack(flags))
    for name, is_bad in zip(names, bad):
        if is_bad:
            t = tensors[name]
            count = read_item((~torch.isfinite(t)).sum())
            first = read_list(torch.nonzero(~torch.isfinite(t))[0])
            raise DataError(f"{name}: {count} NaN or infinite value(s), first at index {first}")
    if len(bad) > len(names) and bad[-1]:
        wrong = tensors["high"] < tensors["low"]
        first = read_list(torch.nonzero(wrong)[0])
        raise DataError(f"high: below low on {read_item(wrong.sum())} day(s), first at index {first}")


# --- synthetic data -------------------------------------------------------------------------


def synthetic_problem(
    n_days: int,
    seed: int = 42,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    trading_fee: float = CRYPTO_FEE,
) -> Problem:
    """The `profile` recipe of docs/workloads.md at any `n_days` (numpy PCG64, same on every machine).

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


#: A price may be at most this many times the previous close, and at least its reciprocal times it: a sanity
#: bound (a typo, a unit change or a 1e-300 is not a day's move) that also keeps every move finite in float32.
MAX_PRICE_RATIO = 1e6
_PRICES = ("open", "high", "low", "close")
_PREDS = ("high_pred", "low_pred")


class _BarError(DataError):
    """A problem on one bar: `index` (in time order) and `what` (the problem, without the bar's place)."""

    def __init__(self, index: int, what: str, message: str | None = None) -> None:
        super().__init__(message or what)
        self.index = index
        self.what = what


@dataclass(frozen=True)
class OHLC:
    """Daily bars, oldest first: `time` (ISO strings) and float64 `open`, `high`, `low`, `close` arrays.

    Optional forecasts `high_pred`, `low_pred` (both or neither): a forecast of each bar's high and low as
    PRICES, in the unit of the OHLC columns, made before the bar (from bars up to the previous one only);
    NaN in both marks a bar without a forecast.  Every bar is checked: prices finite and > 0,
    `low <= open, close <= high`, each price within a factor `MAX_PRICE_RATIO` of the previous close (the
    first bar: of its own close), and where a bar has forecasts, both finite, > 0, within that factor too,
    and `high_pred >= low_pred`.
    A bad bar raises DataError naming the bar's index and time, the field and the value.
    """

    time: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    symbol: str = ""
    high_pred: np.ndarray | None = None
    low_pred: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.time)
        for name in (*_PRICES, *_PREDS):
            if getattr(self, name) is None:
                continue
            values = np.asarray(getattr(self, name), dtype=np.float64)
            object.__setattr__(self, name, values)
            if values.shape != (n,):
                raise DataError(f"{name}: shape {values.shape}, expected ({n},) like time")
        if (self.high_pred is None) != (self.low_pred is None):
            given, absent = ("high_pred", "low_pred") if self.low_pred is None else ("low_pred", "high_pred")
            raise DataError(f"{given}: given without {absent} (forecasts come in pairs: both or neither)")
        if n < 2:
            raise DataError(f"time: at least 2 bars are needed for one move, got {n}")
        try:
            _check_bars(self)
        except _BarError as exc:
            raise _BarError(exc.index, exc.what, f"bar {exc.index} ({self.time[exc.index]}): {exc.what}") from None

    def __len__(self) -> int:
        return len(self.time)

    @property
    def has_forecasts(self) -> bool:
        """Whether the bars carry their own `high_pred`/`low_pred` forecasts."""
        return self.high_pred is not None


def _first_bad(bad: np.ndarray, describe: Callable[[int], str]) -> None:
    """Raise `_BarError` for the first True in `bad` (bar `i`), saying how many bars share the problem."""
    if bad.any():
        i = int(np.argmax(bad))
        count = int(bad.sum())
        raise _BarError(i, describe(i) + (f" ({count} bars like this)" if count > 1 else ""))


def _check_bars(b: OHLC) -> None:
    """The per-bar checks of `OHLC`, in order; raises `_BarError` for the first failure."""
    fields = {name: getattr(b, name) for name in (*_PRICES, *_PREDS) if getattr(b, name) is not None}
    for name in _PRICES:
        v = fields[name]
        _first_bad(~np.isfinite(v), lambda i, name=name, v=v: f"{name} is {v[i]}, expected a finite price")
        _first_bad(v <= 0, lambda i, name=name, v=v: f"{name} is {v[i]}, expected a price > 0")
    _first_bad(b.high < b.low, lambda i: f"high {b.high[i]} is below low {b.low[i]}")
    for name in ("close", "open"):
        v = fields[name]
        _first_bad(
            (v < b.low) | (v > b.high),
            lambda i, name=name, v=v: f"{name} {v[i]} lies outside [low {b.low[i]}, high {b.high[i]}]",
        )
    if b.has_forecasts:
        hp, lp = b.high_pred, b.low_pred
        _first_bad(
            np.isnan(hp) != np.isnan(lp),
            lambda i: f"high_pred is {hp[i]} but low_pred is {lp[i]} (give both forecasts for a bar, or neither)",
        )
        given = ~np.isnan(hp)
        for name in _PREDS:
            v = fields[name]
            _first_bad(
                given & ~(np.isfinite(v) & (v > 0)),
                lambda i, name=name, v=v: f"{name} is {v[i]}, expected a price > 0",
            )
        _first_bad(hp < lp, lambda i: f"high_pred {hp[i]} is below low_pred {lp[i]} (columns swapped?)")
    ref = np.concatenate([b.close[:1], b.close[:-1]])  # each bar's previous close; the first bar's own
    for name, v in fields.items():
        with np.errstate(invalid="ignore", over="ignore"):
            ratio = v / ref
        bad = (ratio > MAX_PRICE_RATIO) | (ratio < 1 / MAX_PRICE_RATIO)  # NaN (a bar without forecasts) passes
        _first_bad(
            bad,
            lambda i, name=name, v=v, ratio=ratio: (
                f"{name} {v[i]} is {ratio[i]:.3g} times {'the previous' if i else 'its own'} close {ref[i]} "
                f"(expected within a factor of {MAX_PRICE_RATIO:g}: a typo or a unit change?)"
            ),
        )


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

#: The columns the loader reads (matched case-insensitively); others are ignored.
_COLUMNS = ("date", "timestamp", *_PRICES, *_PREDS)
_TIME_FORMATS = (
    "expected an ISO 8601 date or time such as 2021-03-02 or 2021-03-02T16:00:00+00:00, or unix seconds; "
    "day/month orders such as 02/03/2021 are ambiguous and not guessed"
)


def _parse_time(text: str) -> datetime:
    """An ISO 8601 date/time (naive or with an offset; `Z` is UTC) or unix seconds (UTC); ValueError otherwise."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.fromtimestamp(float(text), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise ValueError(text) from None


def _read_text(path: str) -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark is dropped); DataError for anything else."""
    if not path:
        raise DataError("csv path: empty, expected the path of a CSV file")
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32")) + (
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if raw.startswith(bom):
            raise DataError(f"{path}: not a UTF-8 text CSV (it starts with a {name} byte-order mark); save it as UTF-8")
    nul = raw.find(b"\0")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise DataError(
            f"{path}: line {line}: not a UTF-8 text CSV (a NUL byte at byte {nul}: a binary file, or UTF-16?)"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}: line {line}: not a UTF-8 text CSV (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None


def load_ohlc_csv(path: str | os.PathLike[str]) -> OHLC:
    """Read daily OHLC bars from a UTF-8 CSV file (an Excel byte-order mark is fine), sorted oldest first.

    Columns are matched case-insensitively: `date` or `timestamp` (ISO 8601 dates or times, or unix seconds;
    never day/month guesses), `open`, `high`, `low`, `close`, and optionally the pair `high_pred`, `low_pred`:
    your own forecast of each bar's high and low as prices in the unit of the OHLC columns, made before the
    bar (see `OHLC`; a bar may leave both empty).  Other columns are ignored; blank lines are skipped.
    Every error is a DataError that starts with the path and names the line, column and value where there
    is one; the bars are checked as `OHLC` checks them.
    """
    path = os.fspath(path)
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        return _read_bars(path, reader)
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None


def _read_bars(path: str, reader: Iterator[list[str]]) -> OHLC:
    """`load_ohlc_csv` after decoding: the header, the rows, the time order and the bar checks."""
    header = next(reader, None)
    if header is None:
        raise DataError(f"{path}: empty file, no header row")
    columns: dict[str, int] = {}
    for i, cell in enumerate(header):
        name = cell.strip().lower()
        if name in _COLUMNS and name in columns:
            raise DataError(f"{path}: line 1: column {name!r} appears twice (columns {columns[name] + 1} and {i + 1})")
        columns.setdefault(name, i)
    time_col = "date" if "date" in columns else "timestamp" if "timestamp" in columns else None
    if time_col is None:
        raise DataError(f"{path}: no 'date' or 'timestamp' column (header: {header})")
    missing = [c for c in _PRICES if c not in columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing} (header: {header})")
    if ("high_pred" in columns) != ("low_pred" in columns):
        given, absent = ("high_pred", "low_pred") if "high_pred" in columns else ("low_pred", "high_pred")
        raise DataError(f"{path}: a {given!r} column without {absent!r} (forecast columns come in pairs)")
    used = [c for c in (*_PRICES, *_PREDS) if c in columns]
    rows = []  # (time, time text, line, values in `used` order)
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}: line {line}: {len(row)} field(s), but the header has {len(header)}")
        text = row[columns[time_col]].strip()
        try:
            stamp = _parse_time(text)
        except ValueError:
            raise DataError(f"{path}: line {line}: {time_col}: {text!r} is not a time ({_TIME_FORMATS})") from None
        values = [_parse_price(path, line, c, row[columns[c]]) for c in used]
        rows.append((stamp, text, line, values))
    if not rows:
        raise DataError(f"{path}: no data rows")
    _sort_by_time(path, time_col, rows)
    values = np.array([r[3] for r in rows], dtype=np.float64).reshape(len(rows), len(used))
    try:
        return OHLC(
            time=tuple(r[1] for r in rows),
            **{name: values[:, j] for j, name in enumerate(used)},
            symbol=os.path.splitext(os.path.basename(path))[0],
        )
    except _BarError as exc:
        bar = rows[exc.index]
        raise DataError(f"{path}: line {bar[2]} ({time_col} {bar[1]}): {exc.what}") from None
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


def _parse_price(path: str, line: int, column: str, cell: str) -> float:
    """One price cell as a float; an empty forecast cell is NaN (no forecast for that bar)."""
    text = cell.strip()
    if not text:
        if column in _PREDS:
            return math.nan
        raise DataError(f"{path}: line {line}: {column}: empty cell, expected a number")
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{path}: line {line}: {column}: {text!r} is not a number") from None


def _sort_by_time(path: str, time_col: str, rows: list[tuple[datetime, str, int, list[float]]]) -> None:
    """Sort `rows` oldest first in place; DataError for mixed timezone awareness or a repeated time."""
    try:
        rows.sort(key=lambda r: r[0])
    except TypeError:
        aware = next(r for r in rows if r[0].tzinfo is not None)
        naive = next(r for r in rows if r[0].tzinfo is None)
        raise DataError(
            f"{path}: {time_col}: line {aware[2]} ({aware[1]}) has a timezone but line {naive[2]} ({naive[1]}) "
            "has none; give every time an offset or none"
        ) from None
    for a, b in zip(rows, rows[1:]):
        if a[0] == b[0]:
            first, second = sorted((a, b), key=lambda r: r[2])
            raise DataError(
                f"{path}: line {second[2]}: {time_col}: duplicate time {second[1]} (also on line {first[2]})"
            )


def bars_to_moves(bars: OHLC) -> dict[str, np.ndarray]:
    """Moves relative to the previous close, one per bar after the first: `close`, `high`, `low`,
    and `high_pred`, `low_pred` when the bars carry their own forecasts (NaN for a bar without them)."""
    prev = bars.close[:-1]
    names = ("close", "high", "low", *(_PREDS if bars.has_forecasts else ()))
    return {name: getattr(bars, name)[1:] / prev - 1.0 for name in names}


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
    if bars.has_forecasts:
        return "the CSV's own high_pred/low_pred columns"
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
    """The walk-forward windows of docs/workloads.md as one `[n_sims, n_days]` batch.

    Simulation `k` drops the last `k+1` bars, forecasts the bars that remain
    from the past alone and scores the last `n_days` days.  Row `k` of the
    batch is simulation `k`.  Bars with their own forecasts (`bars.has_forecasts`,
    the CSV's `high_pred`/`low_pred`) use those, each scored day its own bar's,
    made before that bar; every scored bar needs them.  Otherwise `forecast_moves`
    forecasts from the past `window` days.
    """
    for name, value in (("n_sims", n_sims), ("n_days", n_days)):
        if int(value) != value or value < 1:
            raise DataError(f"{name}: must be a positive integer, got {value!r}")
    device = check_device(device)
    is_crypto = _check_flag("is_crypto", is_crypto)
    moves = bars_to_moves(bars)
    preds = forecast_moves(moves, window) if not bars.has_forecasts else {}
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
    unforecast = np.isnan(arrays["high_pred"][index])
    if unforecast.any():
        day = int(index[unforecast].min())  # moves index `day` is bar `day + 1`
        raise DataError(
            f"high_pred, low_pred: bar {day + 1} ({bars.time[day + 1]}) has no forecast, but the backtest scores "
            f"bars {first.min() + 1} to {last.max()} ({bars.time[first.min() + 1]} to {bars.time[last.max()]})"
        )
    tensors = {name: torch.as_tensor(arrays[name][index], dtype=dtype, device=device) for name in _FIELDS}
    return Problem(**tensors, is_crypto=is_crypto, trading_fee=trading_fee)
