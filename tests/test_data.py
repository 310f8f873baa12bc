"""Market data (data.py): Problem validation, CSV loader, moves, forecaster, backtest windows, synthetic data."""

from __future__ import annotations

import codecs
import csv
import random
import re

import numpy as np
import pytest
import torch

from marketsim_opt.data import (
    CRYPTO_FEE,
    DEFAULT_FEE,
    OHLC,
    DataError,
    Problem,
    backtest_windows,
    bars_to_moves,
    check_device,
    forecast_moves,
    forecast_source,
    load_ohlc_csv,
    synthetic_ohlc,
    synthetic_problem,
)

FIELDS = ("close", "high", "low", "high_pred", "low_pred")


def valid_tensors(shape=(6,), dtype=torch.float32) -> dict[str, torch.Tensor]:
    """Five consistent day tensors (high >= low everywhere)."""
    gen = torch.Generator().manual_seed(0)
    close = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.02
    t = dict(
        close=close,
        high=close + 0.01,
        low=close - 0.01,
        high_pred=torch.full(shape, 0.005, dtype=torch.float64),
        low_pred=torch.full(shape, -0.005, dtype=torch.float64),
    )
    return {k: v.to(dtype) for k, v in t.items()}


def test_data_error_is_value_error():
    """DataError subclasses ValueError, so callers can catch either."""
    assert issubclass(DataError, ValueError)


# --- Problem -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6,), (3, 6), (1, 1)])
def test_problem_accepts_valid(shape):
    """Valid [N] and [S, N] tensors build a Problem with the right shape properties; it always holds [S, N]
    (S = 1 for one series)."""
    p = Problem(**valid_tensors(shape))
    assert p.n_days == shape[-1]
    assert p.n_sims == (shape[0] if len(shape) == 2 else 1)
    held = shape if len(shape) == 2 else (1, *shape)
    assert all(t.shape == held for t in p.tensors().values())
    assert p.dtype == torch.float32 and p.device == torch.device("cpu")
    assert p.trading_fee == DEFAULT_FEE


def test_problem_default_fees():
    """The fee defaults to 0.0005 for equities and 0.0015 for crypto; an explicit fee wins."""
    assert Problem(**valid_tensors()).trading_fee == 0.0005 == DEFAULT_FEE
    assert Problem(**valid_tensors(), is_crypto=True).trading_fee == 0.0015 == CRYPTO_FEE
    assert Problem(**valid_tensors(), is_crypto=True, trading_fee=0.0).trading_fee == 0.0


def test_problem_high_shorter():
    """A shorter high raises DataError naming high and its shape."""
    t = valid_tensors((6,))
    t["high"] = t["high"][:5]
    with pytest.raises(DataError) as info:
        Problem(**t)
    assert str(info.value) == "high: shape (5,) differs from the other fields' (6,)"


def test_problem_broadcastable_but_different_shape():
    """A broadcastable but different shape is still rejected, naming the field."""
    t = valid_tensors((6,))
    t["low_pred"] = t["low_pred"][:1]
    with pytest.raises(DataError, match=r"^low_pred: shape \(1,\) differs from the other fields' \(6,\)"):
        Problem(**t)


def test_problem_batched_disagreeing_s():
    """Batched tensors that disagree in S raise DataError naming the field and its shape."""
    t = valid_tensors((3, 6))
    t["high_pred"] = t["high_pred"][:2]
    with pytest.raises(DataError) as info:
        Problem(**t)
    assert str(info.value) == "high_pred: shape (2, 6) differs from the other fields' (3, 6)"


@pytest.mark.parametrize("shape", [(0,), (0, 6), (3, 0)])
def test_problem_empty(shape):
    """An empty series (or an empty batch) raises DataError."""
    t = {k: torch.zeros(shape) for k in FIELDS}
    with pytest.raises(DataError, match="^close: empty series"):
        Problem(**t)


def test_problem_three_dims():
    """Only [N] and [S, N] are accepted."""
    t = {k: torch.zeros(2, 3, 4) for k in FIELDS}
    with pytest.raises(DataError, match=r"^close: expected shape \[N\] or \[S, N\]"):
        Problem(**t)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_problem_non_finite(field, bad):
    """A NaN or infinite value raises DataError naming the field and the first bad index."""
    t = valid_tensors((3, 6))
    t[field][1, 4] = bad
    if field == "low" and bad == float("-inf"):
        pass  # still below high, so only the finiteness check fires
    with pytest.raises(DataError, match=rf"^{field}: 1 NaN or infinite value\(s\), first at index \[1, 4\]"):
        Problem(**t)


@pytest.mark.parametrize("field", FIELDS)
def test_problem_non_float_dtype(field):
    """An integer tensor raises DataError naming the field."""
    t = valid_tensors()
    t[field] = torch.zeros(6, dtype=torch.int64)
    with pytest.raises(DataError, match=rf"^{field}: expected a floating-point tensor"):
        Problem(**t)


def test_problem_non_tensor():
    """A non-tensor field raises DataError naming it."""
    t = valid_tensors()
    t["low"] = t["low"].tolist()
    with pytest.raises(DataError, match="^low: expected a torch.Tensor"):
        Problem(**t)


@pytest.mark.parametrize("field", FIELDS[1:])
def test_problem_mixed_dtypes(field):
    """A field in another float dtype than close raises DataError naming it."""
    t = valid_tensors()
    t[field] = t[field].double()
    with pytest.raises(DataError, match=rf"^{field}: dtype torch.float64 differs from close's torch.float32"):
        Problem(**t)


@pytest.mark.parametrize("field", FIELDS[1:])
def test_problem_different_devices(field):
    """A field on another device (meta stands in for a second device) raises DataError naming it."""
    t = valid_tensors()
    t[field] = t[field].to("meta")
    with pytest.raises(DataError, match=rf"^{field}: on device meta"):
        Problem(**t)


def test_problem_high_below_low():
    """high < low on any day raises DataError naming high, the count and the first index."""
    t = valid_tensors((2, 6))
    t["high"][1, 2] = t["low"][1, 2] - 0.001
    t["high"][1, 5] = t["low"][1, 5] - 0.001
    with pytest.raises(DataError, match=r"^high: below low on 2 day\(s\), first at index \[1, 2\]"):
        Problem(**t)
    t = valid_tensors()
    t["high"] = t["low"].clone()  # high == low is allowed
    Problem(**t)


@pytest.mark.parametrize("fee", [-0.0005, float("nan"), float("inf")])
def test_problem_bad_fee(fee):
    """A negative or non-finite fee raises DataError naming trading_fee."""
    with pytest.raises(DataError, match="^trading_fee:"):
        Problem(**valid_tensors(), trading_fee=fee)


def test_problem_one_series_is_a_one_row_view():
    """An [N] input is held as [1, N]: a view of the caller's tensor (same storage, no copy), not a copy."""
    t = valid_tensors((6,))
    p = Problem(**t)
    for name in FIELDS:
        held = getattr(p, name)
        assert held.shape == (1, 6)
        assert held.data_ptr() == t[name].data_ptr()
        assert held.untyped_storage().data_ptr() == t[name].untyped_storage().data_ptr()
        assert torch.equal(held[0], t[name])
    t["close"][2] = 0.25  # a view: the caller's write shows through
    assert p.close[0, 2].item() == 0.25


def test_problem_indexing_and_conversion():
    """Indexing a batch gives its rows (an int: an S = 1 problem); to()/as_float64() convert without changing
    values."""
    p = Problem(**valid_tensors((3, 6)), is_crypto=True)
    row = p[1]
    assert row.n_sims == 1 and row.n_days == 6 and row.is_crypto and row.trading_fee == CRYPTO_FEE
    assert all(t.shape == (1, 6) for t in row.tensors().values())
    for name in FIELDS:
        assert torch.equal(getattr(row, name), getattr(p, name)[1:2])
    assert p[0:2].n_sims == 2
    assert torch.equal(p[0:2].close, p.close[0:2])
    picked = p[torch.tensor([2, 0])]
    assert picked.n_sims == 2 and torch.equal(picked.low, p.low[[2, 0]])
    p64 = p.as_float64()
    assert p64.dtype == torch.float64 and torch.equal(p64.close, p.close.double())
    assert p.to(dtype=torch.float64).dtype == torch.float64
    one = Problem(**valid_tensors((6,)))
    assert one.to(dtype=torch.float64).close.shape == (1, 6)  # to() keeps the [1, N] shape
    # an S = 1 problem indexes like any other: [0] (and [-1]) is itself as a problem
    assert torch.equal(row[0].close, row.close) and torch.equal(row[-1].high, row.high)


def test_problem_negative_and_out_of_range_indices():
    """Negative ints count from the end as for a list; an int outside [-S, S) raises IndexError naming it and S."""
    p = Problem(**valid_tensors((3, 6)))
    for i in range(-3, 3):
        assert torch.equal(p[i].close, p.close[i % 3 : i % 3 + 1])
    for i in (3, -4, 100):
        with pytest.raises(IndexError, match=rf"^simulation {i} out of range for S = 3$"):
            p[i]
    one = Problem(**valid_tensors((6,)))
    assert one.n_sims == 1 and torch.equal(one[-1].close, one.close)
    for i in (1, -2):
        with pytest.raises(IndexError, match=rf"^simulation {i} out of range for S = 1$"):
            one[i]


# --- CSV loader --------------------------------------------------------------------------------


def write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


BARS = [
    ("2024-01-02", 10.0, 11.0, 9.5, 10.5),
    ("2024-01-03", 10.5, 12.0, 10.0, 11.5),
    ("2024-01-04", 11.5, 11.8, 10.8, 11.0),
    ("2024-01-05", 11.0, 11.2, 10.1, 10.2),
    ("2024-01-08", 10.2, 10.9, 10.0, 10.8),
]


@pytest.mark.parametrize(
    "header",
    [
        ["Date", "Open", "High", "Low", "Close"],
        ["DATE", "OPEN", "HIGH", "LOW", "CLOSE"],
        ["date", "open", "high", "low", "close"],
        [" Date ", "oPeN", "hIGH", "Low", "cLose"],
    ],
)
def test_csv_case_insensitive_columns(tmp_path, header):
    """Columns match whatever their case (and surrounding spaces)."""
    bars = load_ohlc_csv(write_csv(tmp_path / "X.csv", header, BARS))
    assert len(bars) == 5
    assert bars.time == tuple(r[0] for r in BARS)
    np.testing.assert_array_equal(bars.close, [r[4] for r in BARS])
    assert bars.symbol == "X"


def test_csv_column_order_and_extra_columns(tmp_path):
    """Columns are found by name in any order; extra columns are ignored."""
    header = ["volume", "Close", "low", "Timestamp", "high", "open", "symbol"]
    rows = [(1000, r[4], r[3], r[0], r[2], r[1], "ABC") for r in BARS]
    bars = load_ohlc_csv(write_csv(tmp_path / "ABC.csv", header, rows))
    np.testing.assert_array_equal(bars.open, [r[1] for r in BARS])
    np.testing.assert_array_equal(bars.high, [r[2] for r in BARS])
    np.testing.assert_array_equal(bars.low, [r[3] for r in BARS])
    np.testing.assert_array_equal(bars.close, [r[4] for r in BARS])


def test_csv_timestamp_column_with_timezone(tmp_path):
    """A `timestamp` column with timezone-aware times loads, in time order."""
    rows = [(f"{r[0]} 00:00:00+00:00",) + r[1:] for r in BARS]
    bars = load_ohlc_csv(write_csv(tmp_path / "T.csv", ["timestamp", "open", "high", "low", "close"], rows))
    assert bars.time == tuple(r[0] for r in rows)


def test_csv_shuffled_rows_are_sorted(tmp_path):
    """Rows come back sorted oldest first, each with its own values, even from a shuffled file."""
    rows = list(BARS)
    random.Random(0).shuffle(rows)
    assert rows != BARS
    bars = load_ohlc_csv(write_csv(tmp_path / "S.csv", ["date", "open", "high", "low", "close"], rows))
    assert bars.time == tuple(r[0] for r in BARS)
    for name, col in (("open", 1), ("high", 2), ("low", 3), ("close", 4)):
        np.testing.assert_array_equal(getattr(bars, name), [r[col] for r in BARS])


def test_csv_blank_lines_skipped(tmp_path):
    """Blank lines are skipped."""
    path = tmp_path / "B.csv"
    lines = ["date,open,high,low,close"] + [",".join(map(str, r)) for r in BARS]
    path.write_text("\n".join(lines[:3] + ["", ",,,,"] + lines[3:]) + "\n")
    assert len(load_ohlc_csv(path)) == 5


@pytest.mark.parametrize("missing", ["open", "high", "low", "close"])
def test_csv_missing_column(tmp_path, missing):
    """A missing price column raises DataError naming it."""
    header = [c for c in ["date", "open", "high", "low", "close"] if c != missing]
    idx = ["date", "open", "high", "low", "close"].index(missing)
    rows = [r[:idx] + r[idx + 1 :] for r in BARS]
    with pytest.raises(DataError, match=rf"missing column\(s\) \['{missing}'\]"):
        load_ohlc_csv(write_csv(tmp_path / "M.csv", header, rows))


def test_csv_missing_time_column(tmp_path):
    """No `date` or `timestamp` column raises DataError naming both."""
    rows = [r[1:] for r in BARS]
    with pytest.raises(DataError, match="no 'date' or 'timestamp' column"):
        load_ohlc_csv(write_csv(tmp_path / "N.csv", ["open", "high", "low", "close"], rows))


@pytest.mark.parametrize(
    ("bad_row", "what"),
    [
        (("2024-01-04", 11.5, 11.8, 10.8, "eleven"), "close: 'eleven' is not a number"),
        (("not a date", 11.5, 11.8, 10.8, 11.0), "date: 'not a date' is not a time (expected an ISO 8601"),
        (("2024-01-04", 11.5, 11.8), "3 field(s), but the header has 5"),
        (("2024-01-04", "", 11.8, 10.8, 11.0), "open: empty cell, expected a number"),
    ],
)
def test_csv_unparseable_row_names_line(tmp_path, bad_row, what):
    """An unparseable row raises DataError starting with the path and naming its line (header is line 1)."""
    rows = list(BARS)
    rows[2] = bad_row  # file line 4
    path = write_csv(tmp_path / "U.csv", ["date", "open", "high", "low", "close"], rows)
    with pytest.raises(DataError, match="^" + re.escape(f"{path}: line 4: {what}")):
        load_ohlc_csv(path)


def test_csv_high_below_low(tmp_path):
    """A bar whose high is below its low raises DataError naming high and the bar's time."""
    rows = list(BARS)
    rows[3] = ("2024-01-05", 11.0, 10.0, 10.1, 10.05)
    path = write_csv(tmp_path / "H.csv", ["date", "open", "high", "low", "close"], rows)
    with pytest.raises(DataError) as info:
        load_ohlc_csv(path)
    assert str(info.value) == f"{path}: line 5 (date 2024-01-05): high 10.0 is below low 10.1"


def test_csv_other_errors(tmp_path):
    """Empty files, header-only files, duplicate times and non-positive prices raise DataError."""
    empty = tmp_path / "E.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_ohlc_csv(empty)
    with pytest.raises(DataError, match="no data rows"):
        load_ohlc_csv(write_csv(tmp_path / "O.csv", ["date", "open", "high", "low", "close"], []))
    with pytest.raises(DataError, match=r"line 7: date: duplicate time 2024-01-03 \(also on line 3\)$"):
        load_ohlc_csv(write_csv(tmp_path / "D.csv", ["date", "open", "high", "low", "close"], BARS + [BARS[1]]))
    rows = list(BARS)
    rows[1] = ("2024-01-03", 10.5, 12.0, 0.0, 11.5)
    with pytest.raises(DataError, match=r"line 3 \(date 2024-01-03\): low is 0.0, expected a price > 0$"):
        load_ohlc_csv(write_csv(tmp_path / "Z.csv", ["date", "open", "high", "low", "close"], rows))
    with pytest.raises(DataError, match="at least 2 bars"):
        load_ohlc_csv(write_csv(tmp_path / "One.csv", ["date", "open", "high", "low", "close"], BARS[:1]))


def test_real_csv_loads(real_csv):
    """Each real file loads every data row, sorted strictly by time, with positive prices and low <= high."""
    with open(real_csv, newline="") as handle:
        reader = csv.reader(handle)
        header = [c.strip().lower() for c in next(reader)]
        n_rows = sum(1 for row in reader if any(cell.strip() for cell in row))
    bars = load_ohlc_csv(real_csv)
    assert len(bars) == n_rows
    assert bars.symbol == real_csv.stem
    for name in ("open", "high", "low", "close"):
        values = getattr(bars, name)
        assert values.dtype == np.float64 and values.shape == (n_rows,)
        assert (values > 0).all()
    assert (bars.low <= bars.high).all()
    days = np.array([np.datetime64(t[:10]) for t in bars.time])
    assert (np.diff(days) > np.timedelta64(0, "D")).all()
    time_col = "timestamp" if real_csv.name == "SUIUSDT.csv" else "date"
    assert time_col in header


def test_real_crypto_csv_uses_timestamp(data_dir):
    """SUIUSDT has a `timestamp` column (no `date`) with timezone-aware times, and loads."""
    path = data_dir / "SUIUSDT.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    header = path.read_text().splitlines()[0].lower().split(",")
    assert "timestamp" in header and "date" not in header
    bars = load_ohlc_csv(path)
    assert bars.time[0].endswith("+00:00")
    assert len(bars) > 77  # enough for the default backtest windows


# --- moves and forecasts ------------------------------------------------------------------------


def make_ohlc(close, high=None, low=None, open_=None) -> OHLC:
    close = np.asarray(close, dtype=np.float64)
    high = close * 1.01 if high is None else np.asarray(high, dtype=np.float64)
    low = close * 0.99 if low is None else np.asarray(low, dtype=np.float64)
    open_ = close if open_ is None else np.asarray(open_, dtype=np.float64)
    days = np.datetime64("2021-01-01") + np.arange(len(close))
    return OHLC(time=tuple(str(d) for d in days), open=open_, high=high, low=low, close=close)


def test_bars_to_moves_math():
    """Moves are relative to the previous close: c = C_i/C_{i-1} - 1, H = High_i/C_{i-1} - 1, L likewise."""
    bars = make_ohlc([100.0, 110.0, 99.0], high=[101.0, 115.0, 111.0], low=[99.0, 105.0, 98.0])
    moves = bars_to_moves(bars)
    assert set(moves) == {"close", "high", "low"}
    np.testing.assert_allclose(moves["close"], [0.1, -0.1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(moves["high"], [0.15, 111 / 110 - 1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(moves["low"], [0.05, 98 / 110 - 1], rtol=0, atol=1e-15)


def random_moves(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = rng.normal(0, 0.02, n)
    return {"close": c, "high": c + np.abs(rng.normal(0, 0.01, n)), "low": c - np.abs(rng.normal(0, 0.01, n))}


@pytest.mark.parametrize("window", [1, 3, 20])
def test_forecast_is_mean_of_previous_window(window):
    """Day i's forecast is the mean of days max(0, i-window)..i-1; day 0 is NaN."""
    moves = random_moves(60)
    preds = forecast_moves(moves, window)
    assert set(preds) == {"high_pred", "low_pred"}
    for name in ("high", "low"):
        got = preds[f"{name}_pred"]
        assert got.shape == (60,)
        assert np.isnan(got[0])
        want = [moves[name][max(0, i - window) : i].mean() for i in range(1, 60)]
        np.testing.assert_allclose(got[1:], want, rtol=0, atol=1e-14)


def test_forecast_no_look_ahead_on_moves():
    """Changing days j.. never changes any forecast for a day <= j (compared exactly)."""
    moves = random_moves(80, 1)
    base = forecast_moves(moves)
    rng = np.random.default_rng(2)
    for j in (0, 1, 5, 20, 21, 50, 79):
        changed = {k: v.copy() for k, v in moves.items()}
        for v in changed.values():
            v[j:] += rng.normal(0, 0.05, 80 - j)
        pert = forecast_moves(changed)
        for name in ("high_pred", "low_pred"):
            np.testing.assert_array_equal(pert[name][: j + 1], base[name][: j + 1])
            if j + 1 < 80:
                assert not np.array_equal(pert[name][j + 1 :], base[name][j + 1 :])


def test_forecast_no_look_ahead_from_bars():
    """Changing bar b (and later bars) never changes the forecast of a move day <= b - 1."""
    bars = synthetic_ohlc(120, 3)
    base = forecast_moves(bars_to_moves(bars))
    for b in (2, 40, 100, 119):
        scale = np.ones(120)
        scale[b:] = 1.3
        high_scale = scale.copy()
        high_scale[b:] *= 1.02
        changed = OHLC(bars.time, bars.open * scale, bars.high * high_scale, bars.low * scale, bars.close * scale)
        pert = forecast_moves(bars_to_moves(changed))
        for name in ("high_pred", "low_pred"):
            np.testing.assert_array_equal(pert[name][:b], base[name][:b])


@pytest.mark.parametrize("window", [0, -1, 2.5])
def test_forecast_bad_window(window):
    """A non-positive or fractional window raises DataError naming window."""
    with pytest.raises(DataError, match="^window:"):
        forecast_moves(random_moves(10), window)


# --- backtest windows --------------------------------------------------------------------------


def truncated(bars: OHLC, n: int) -> OHLC:
    """The first n bars."""
    return OHLC(bars.time[:n], bars.open[:n], bars.high[:n], bars.low[:n], bars.close[:n], bars.symbol)


def own_moves(bars: OHLC) -> dict[str, np.ndarray]:
    """Moves computed here, independently of bars_to_moves."""
    prev = bars.close[:-1]
    return {"close": bars.close[1:] / prev - 1, "high": bars.high[1:] / prev - 1, "low": bars.low[1:] / prev - 1}


def check_windows(bars: OHLC, problem: Problem, n_sims: int, n_days: int, window: int = 20) -> None:
    """Row k holds the last n_days moves of the series without its last k+1 bars, and their forecasts."""
    assert problem.close.shape == (n_sims, n_days)
    for k in range(n_sims):
        cut = truncated(bars, len(bars) - k - 1)
        moves = own_moves(cut)
        for name in ("close", "high", "low"):
            np.testing.assert_array_equal(getattr(problem, name)[k].numpy(), moves[name][-n_days:])
            # the forecast: mean of the `window` moves before each scored day, on the truncated series
            days = np.arange(len(moves[name]) - n_days, len(moves[name]))
            if name != "close":
                want = [moves[name][i - window : i].mean() for i in days]
                np.testing.assert_allclose(getattr(problem, f"{name}_pred")[k].numpy(), want, rtol=0, atol=1e-14)
        # end to end: the forecaster run on the truncated series alone gives the same forecasts
        preds = forecast_moves(bars_to_moves(cut), window)
        for name in ("high_pred", "low_pred"):
            np.testing.assert_allclose(getattr(problem, name)[k].numpy(), preds[name][-n_days:], rtol=0, atol=1e-15)


def test_backtest_windows_default_shape_and_rows():
    """Default windows are [70, 6]; row k is simulation k (last k+1 bars dropped), without look-ahead."""
    bars = synthetic_ohlc(200, 1)
    problem = backtest_windows(bars, dtype=torch.float64)
    assert problem.close.shape == (70, 6)
    assert problem.n_sims == 70 and problem.n_days == 6
    assert problem.trading_fee == DEFAULT_FEE and not problem.is_crypto
    check_windows(bars, problem, 70, 6)


def test_backtest_windows_custom_sizes():
    """n_sims, n_days, window, crypto, fee and dtype are honoured."""
    bars = synthetic_ohlc(60, 2)
    problem = backtest_windows(bars, n_sims=5, n_days=3, window=4, is_crypto=True, dtype=torch.float64)
    assert problem.trading_fee == CRYPTO_FEE and problem.is_crypto
    check_windows(bars, problem, 5, 3, window=4)
    p32 = backtest_windows(bars, n_sims=5, n_days=3, trading_fee=0.002)
    assert p32.dtype == torch.float32 and p32.trading_fee == 0.002


def test_backtest_windows_real_data(real_csv, crypto_of):
    """On each real file the windows are [70, 6] and match the truncated series, row by row."""
    bars = load_ohlc_csv(real_csv)
    problem = backtest_windows(bars, is_crypto=crypto_of(real_csv), dtype=torch.float64)
    check_windows(bars, problem, 70, 6)


def test_backtest_windows_too_short():
    """A series shorter than n_sims + n_days + 2 bars raises DataError; exactly that many works."""
    need = 70 + 6 + 2
    assert backtest_windows(synthetic_ohlc(need, 0)).close.shape == (70, 6)
    with pytest.raises(DataError, match=rf"^bars: {need - 1} bars are too few .* \(need at least {need}\)"):
        backtest_windows(synthetic_ohlc(need - 1, 0))
    with pytest.raises(DataError, match="^n_days:"):
        backtest_windows(synthetic_ohlc(100, 0), n_days=0)
    with pytest.raises(DataError, match="^n_sims:"):
        backtest_windows(synthetic_ohlc(100, 0), n_sims=-1)


# --- synthetic data ----------------------------------------------------------------------------


def test_synthetic_ohlc_deterministic():
    """The same seed gives identical bars; another seed gives different ones."""
    a, b, c = synthetic_ohlc(300, 7), synthetic_ohlc(300, 7), synthetic_ohlc(300, 8)
    assert a.time == b.time
    for name in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(getattr(a, name), getattr(c, name))
    assert len(a) == 300


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_synthetic_ohlc_bar_shape(seed):
    """Prices are positive and every bar has low <= open, close <= high."""
    bars = synthetic_ohlc(2000, seed, start_price=5.0)
    assert (bars.low > 0).all()
    for inner in (bars.open, bars.close):
        assert (bars.low <= inner).all() and (inner <= bars.high).all()
    assert bars.close[0] == pytest.approx(5.0, rel=0.2)


def lag1_autocorrelation(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x[:-1] * x[1:]).sum() / (x * x).sum())


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_synthetic_ohlc_volatility_clustering(seed):
    """|returns| are autocorrelated at lag 1 (GARCH clustering); shuffled returns are not.

    Over 5000 bars seeds 0..19 give 0.15..0.26; iid returns would give about 0 +- 0.014.
    """
    returns = np.diff(np.log(synthetic_ohlc(5000, seed).close))
    assert lag1_autocorrelation(np.abs(returns)) > 0.08
    assert lag1_autocorrelation(returns**2) > 0.08
    shuffled = np.random.default_rng(seed).permutation(returns)
    assert abs(lag1_autocorrelation(np.abs(shuffled))) < 0.05


def test_synthetic_ohlc_bad_size():
    """Fewer than 2 bars raises DataError naming n_bars."""
    with pytest.raises(DataError, match="^n_bars:"):
        synthetic_ohlc(1)


def test_synthetic_problem_deterministic():
    """Two calls with the same seed give identical tensors; another seed differs."""
    a, b = synthetic_problem(200, 42), synthetic_problem(200, 42)
    for name in FIELDS:
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.close, synthetic_problem(200, 43).close)
    assert a.close.shape == (1, 200) and a.n_sims == 1 and a.dtype == torch.float32 and a.trading_fee == CRYPTO_FEE


def test_synthetic_problem_pinned_values():
    """Seed 42 float64 values are pinned (numpy PCG64 is platform-stable), so cross-machine drift is caught."""
    p = synthetic_problem(200, 42, dtype=torch.float64)
    assert p.close[0, 0].item() == 0.006094341595088627
    assert p.high[0, 0].item() == 0.009470087083077963
    assert p.high_pred[0, 199].item() == 0.005389132069014598
    assert p.low_pred[0, -1].item() == 0.00323753131876182
    # the draws come in the recipe's order (docs/workloads.md), so a shorter problem is a prefix of the close series
    short = synthetic_problem(6, 42, dtype=torch.float64)
    assert short.close.tolist() == [
        [
            0.006094341595088627,
            -0.020799682124809912,
            0.015009023916129145,
            0.018811294327824277,
            -0.03902070377307673,
            -0.026043590137246362,
        ]
    ]


def test_synthetic_problem_recipe():
    """high >= close >= low by construction, and the forecasts have roughly the recipe's means."""
    p = synthetic_problem(20000, 9, dtype=torch.float64)
    assert (p.high >= p.close).all() and (p.close >= p.low).all()
    assert p.high_pred.mean().item() == pytest.approx(0.005, abs=5e-4)
    assert p.low_pred.mean().item() == pytest.approx(-0.005, abs=5e-4)
    assert p.close.std().item() == pytest.approx(0.02, rel=0.05)


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_synthetic_problem_bad_size(n):
    """A non-positive or fractional n_days raises DataError."""
    with pytest.raises(DataError, match="^n_days:"):
        synthetic_problem(n)


# --- devices -----------------------------------------------------------------------------------


def test_check_device_accepts_cpu():
    """'cpu', 'cpu:0' and a torch.device come back as torch.device."""
    assert check_device("cpu") == torch.device("cpu")
    assert check_device(torch.device("cpu", 0)) == torch.device("cpu", 0)


@pytest.mark.parametrize(
    ("device", "match"),
    [
        ("gpu", r"^device: 'gpu' is not a torch device"),
        ("CPU", r"^device: 'CPU' is not a torch device"),
        (0, r"^device: expected a string"),
        (None, r"^device: expected a string"),
        ("meta", r"^device: 'meta' is not supported"),
    ],
)
def test_check_device_rejects(device, match):
    """Unknown device strings and non-strings raise DataError naming `device`."""
    with pytest.raises(DataError, match=match):
        check_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has a usable CUDA device")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda", 1)])
def test_check_device_cuda_without_cuda(device):
    """CUDA on a torch without it is a DataError naming `device` and why (was: torch's AssertionError traceback)."""
    why = "has no CUDA support" if torch.version.cuda is None else r"torch.cuda.is_available\(\) is False"
    with pytest.raises(DataError, match=rf"^device: .*cuda.* requested, but .*{why}"):
        check_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has a usable CUDA device")
@pytest.mark.parametrize(
    "build",
    [
        lambda: synthetic_problem(6, device="cuda"),
        lambda: backtest_windows(synthetic_ohlc(60), n_sims=3, device="cuda"),
        lambda: Problem(**valid_tensors()).to("cuda"),
        lambda: Problem(**valid_tensors()).to(device="gpu"),
    ],
    ids=["synthetic_problem", "backtest_windows", "Problem.to", "Problem.to-unknown"],
)
def test_constructors_check_the_device(build):
    """Every constructor that takes a device reports a bad one as DataError naming `device`."""
    with pytest.raises(DataError, match=r"^device: "):
        build()


def test_problem_to_without_device_keeps_it():
    """`Problem.to(dtype=...)` alone needs no device check and keeps the device."""
    p = Problem(**valid_tensors()).to(dtype=torch.float64)
    assert p.device == torch.device("cpu") and p.dtype == torch.float64


# --- issue 15: silently wrong or misleading before ------------------------------------------------

HEADER = ["date", "open", "high", "low", "close"]


def price_columns(bars: OHLC) -> tuple:
    """time, open, high, low, close as Python sequences (the HEADER columns)."""
    return bars.time, bars.open.tolist(), bars.high.tolist(), bars.low.tolist(), bars.close.tolist()


def ohlc_rows(bars: OHLC) -> list[tuple]:
    """The bars as CSV rows under HEADER, with exact float reprs."""
    return [(t, repr(o), repr(h), repr(lo), repr(c)) for t, o, h, lo, c in zip(*price_columns(bars))]


def test_csv_close_above_high_on_29_bars(tmp_path):
    """A CSV whose close lies above the high on 29 bars is rejected, naming the file, first line, date and count."""
    rows = [list(r) for r in ohlc_rows(synthetic_ohlc(300, 3))]
    for r in rows[10:300:10]:  # 29 bars, the first on file line 12
        r[4] = repr(float(r[2]) * 1.001)
    path = write_csv(tmp_path / "above.csv", HEADER, rows)
    with pytest.raises(DataError) as info:
        load_ohlc_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 12 (date {rows[10][0]}): close {rows[10][4]} lies outside [low ")
    assert message.endswith("(29 bars like this)")


@pytest.mark.parametrize(("field", "col", "factor"), [("close", 4, 0.99), ("open", 1, 1.01), ("open", 1, 0.99)])
def test_csv_open_or_close_outside_low_high(tmp_path, field, col, factor):
    """Open and close must lie within [low, high]; the error names the line, date and field."""
    rows = [list(r) for r in ohlc_rows(synthetic_ohlc(20, 4))]
    bound = 3 if factor < 1 else 2  # below the low or above the high
    rows[5][col] = repr(float(rows[5][bound]) * factor)
    path = write_csv(tmp_path / "out.csv", HEADER, rows)
    with pytest.raises(DataError, match="^" + re.escape(f"{path}: line 7 (date {rows[5][0]}): {field} ")):
        load_ohlc_csv(path)


def test_ohlc_built_directly_checks_close_and_open():
    """An OHLC built in code gets the same per-bar checks, naming the bar's index and time."""
    bars = synthetic_ohlc(10, 5)
    high = bars.high.copy()
    high[4] = bars.close[4] * 0.999
    with pytest.raises(DataError, match=rf"^bar 4 \({bars.time[4]}\): close .* lies outside \[low .*, high .*\]$"):
        OHLC(bars.time, bars.open, high, bars.low, bars.close)


def test_real_files_have_open_and_close_within_low_high(real_csv):
    """The real samples satisfy the checks the loader now makes (so it still loads them all)."""
    bars = load_ohlc_csv(real_csv)
    for name in ("open", "close"):
        values = getattr(bars, name)
        assert ((bars.low <= values) & (values <= bars.high)).all(), name


def test_csv_utf8_bom_loads(tmp_path):
    """An Excel export (UTF-8 with a byte-order mark) loads like the same file without one."""
    plain = write_csv(tmp_path / "plain.csv", HEADER, BARS)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(codecs.BOM_UTF8 + plain.read_bytes())
    a, b = load_ohlc_csv(plain), load_ohlc_csv(bom)
    assert a.time == b.time
    for name in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize(
    ("encode", "what"),
    [
        (lambda text: text.encode("utf-16"), "(it starts with a UTF-16 byte-order mark)"),
        (lambda text: text.encode("utf-16-le"), "line 1: not a UTF-8 text CSV (a NUL byte at byte 1"),
        (lambda text: text.encode("utf-32"), "(it starts with a UTF-32 byte-order mark)"),
        (lambda text: text.replace("date", "dätum").encode("latin-1"), "line 1: not a UTF-8 text CSV (byte 1: "),
        (lambda text: bytes(range(256)), "line 1: not a UTF-8 text CSV (a NUL byte at byte 0"),
        (lambda text: text.encode()[:40] + b"\xff\xfe" + text.encode()[40:], "line 2: not a UTF-8 text CSV (byte 40"),
    ],
    ids=["utf-16", "utf-16-le", "utf-32", "latin-1", "binary", "bad-byte-line-2"],
)
def test_csv_not_utf8_names_the_file(tmp_path, encode, what):
    """Binary, UTF-16/32 and other non-UTF-8 files raise DataError starting with the path (was: no file named)."""
    path = tmp_path / "enc.csv"
    path.write_bytes(encode(write_csv(tmp_path / "src.csv", HEADER, BARS).read_text()))
    with pytest.raises(DataError) as info:
        load_ohlc_csv(path)
    assert str(info.value).startswith(f"{path}: ")
    assert what in str(info.value)


@pytest.mark.parametrize("stamp", ["02/03/2021", "2021/03/02", "March 2, 2021", "2021-13-01", "nan", "inf"])
def test_csv_non_iso_date_says_which_formats(tmp_path, stamp):
    """A non-ISO date names the line, column and value and the accepted formats (was: 'could not convert')."""
    rows = list(BARS)
    rows[1] = (stamp,) + rows[1][1:]
    path = write_csv(tmp_path / "dmy.csv", HEADER, rows)
    with pytest.raises(DataError) as info:
        load_ohlc_csv(path)
    assert str(info.value).startswith(f"{path}: line 3: date: {stamp!r} is not a time (expected an ISO 8601 date")
    assert "unix seconds" in str(info.value) and "not guessed" in str(info.value)


def test_csv_unix_seconds_are_utc(tmp_path):
    """Unix-second timestamps load in time order, whatever the machine's timezone (they are read as UTC)."""
    base = 1704153600  # 2024-01-02T00:00:00Z
    rows = [(str(base + 86400 * i),) + r[1:] for i, r in enumerate(BARS)]
    random.Random(1).shuffle(rows)
    bars = load_ohlc_csv(write_csv(tmp_path / "unix.csv", ["timestamp", "open", "high", "low", "close"], rows))
    assert bars.time == tuple(str(base + 86400 * i) for i in range(len(BARS)))
    np.testing.assert_array_equal(bars.close, [r[4] for r in BARS])


@pytest.mark.parametrize(
    ("cells", "what"),
    [
        ((1e-300,) * 4, "open 1e-300 is 8.7e-302 times the previous close 11.5"),
        ((1e300,) * 4, "open 1e+300 is 8.7e+298 times the previous close 11.5"),
        ((11.5, 11.8, 10.8, 1e-300), "close 1e-300 lies outside [low 10.8, high 11.8]"),
        ((11.5, 1e300, 10.8, 11.0), "high 1e+300 is 8.7e+298 times the previous close 11.5"),
    ],
)
def test_csv_extreme_prices_name_the_line(tmp_path, cells, what):
    """A price of 1e-300 or 1e300 is rejected at its line and date (was: 'NaN or infinite value(s)', no file)."""
    rows = list(BARS)
    rows[2] = (rows[2][0], *cells)
    path = write_csv(tmp_path / "tiny.csv", HEADER, rows)
    with pytest.raises(DataError, match="^" + re.escape(f"{path}: line 4 (date 2024-01-04): {what}")):
        load_ohlc_csv(path)


def test_csv_extreme_first_bar_is_checked_against_its_own_close(tmp_path):
    """The first bar has no previous close: its prices are held to its own close."""
    rows = list(BARS)
    rows[0] = (rows[0][0], 10.0, 1e12, 9.5, 10.5)
    path = write_csv(tmp_path / "first.csv", HEADER, rows)
    with pytest.raises(DataError, match=re.escape(f"{path}: line 2 (date 2024-01-02): high 1000000000000.0 is ")):
        load_ohlc_csv(path)


def test_csv_header_problems(tmp_path):
    """A duplicated column, a lone forecast column and mixed timezones name the file and what is wrong."""
    dup = write_csv(tmp_path / "dup.csv", ["date", "open", "high", "low", "close", "Close"], [r + (1,) for r in BARS])
    with pytest.raises(DataError, match=re.escape(f"{dup}: line 1: column 'close' appears twice (columns 5 and 6)")):
        load_ohlc_csv(dup)
    lone = write_csv(tmp_path / "lone.csv", [*HEADER, "high_pred"], [r + (12,) for r in BARS])
    with pytest.raises(DataError, match=re.escape(f"{lone}: a 'high_pred' column without 'low_pred'")):
        load_ohlc_csv(lone)
    rows = list(BARS)
    rows[3] = ("2024-01-05T00:00:00+00:00",) + rows[3][1:]
    mixed = write_csv(tmp_path / "tz.csv", HEADER, rows)
    with pytest.raises(DataError, match=re.escape(f"{mixed}: date: line 5 (2024-01-05T00:00:00+00:00) has a time")):
        load_ohlc_csv(mixed)


def test_csv_cannot_read(tmp_path):
    """A missing path or a folder is a DataError starting with the path, not an OSError."""
    with pytest.raises(DataError, match="^" + re.escape(f"{tmp_path / 'nope.csv'}: cannot read the file (No such")):
        load_ohlc_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="^" + re.escape(f"{tmp_path}: cannot read the file")):
        load_ohlc_csv(tmp_path)
    with pytest.raises(DataError, match="^csv path: empty"):
        load_ohlc_csv("")


@pytest.mark.parametrize("flag", ["no", "yes", 1, 0, None, 1.0, torch.tensor(True)])
def test_is_crypto_must_be_a_bool(flag):
    """`is_crypto='no'` (and 1, None, a tensor) is refused naming the field (was: 'no' treated as crypto)."""
    with pytest.raises(DataError, match=r"^is_crypto: expected True or False, got "):
        Problem(**valid_tensors(), is_crypto=flag)
    with pytest.raises(DataError, match=r"^is_crypto: expected True or False, got "):
        backtest_windows(synthetic_ohlc(60), n_sims=3, is_crypto=flag)


def test_is_crypto_accepts_numpy_bool():
    """numpy booleans count as booleans and come back as Python bools."""
    p = Problem(**valid_tensors(), is_crypto=np.bool_(True))
    assert p.is_crypto is True and p.trading_fee == CRYPTO_FEE
    assert backtest_windows(synthetic_ohlc(60), n_sims=3, is_crypto=np.False_).is_crypto is False


# --- a CSV's own forecasts ---------------------------------------------------------------------------


def with_forecasts(bars: OHLC, seed: int = 0) -> OHLC:
    """`bars` with forecast prices: a noisy guess of each bar's high and low; none for the first bar."""
    rng = np.random.default_rng(seed)
    high_pred = bars.close * (1 + np.abs(rng.normal(0, 0.01, len(bars))))
    low_pred = bars.close * (1 - np.abs(rng.normal(0, 0.01, len(bars))))
    high_pred[0] = low_pred[0] = np.nan
    return OHLC(bars.time, bars.open, bars.high, bars.low, bars.close, "OWN", high_pred=high_pred, low_pred=low_pred)


def write_with_forecasts(path, bars: OHLC):
    cols = price_columns(bars) + (bars.high_pred.tolist(), bars.low_pred.tolist())
    rows = [tuple("" if isinstance(x, float) and np.isnan(x) else x for x in row) for row in zip(*cols)]
    return write_csv(path, [*HEADER, "High_Pred", "low_pred"], rows)


def test_csv_forecast_columns_are_used(tmp_path):
    """A CSV's high_pred/low_pred (prices) become moves on the previous close and replace the built-in forecaster."""
    bars = with_forecasts(synthetic_ohlc(120, 6))
    loaded = load_ohlc_csv(write_with_forecasts(tmp_path / "own.csv", bars))
    assert loaded.has_forecasts and forecast_source(loaded) == "the CSV's own high_pred/low_pred columns"
    np.testing.assert_array_equal(loaded.high_pred, bars.high_pred)
    problem = backtest_windows(loaded, n_sims=5, n_days=4, dtype=torch.float64)
    builtin = backtest_windows(truncated(loaded, len(loaded)), n_sims=5, n_days=4, dtype=torch.float64)
    assert builtin.high_pred.shape == problem.high_pred.shape
    assert not torch.allclose(problem.high_pred, builtin.high_pred)  # the columns were not ignored
    for k in range(5):
        last = len(bars) - 1 - k  # simulation k keeps bars [0, last): its scored bars are last-4 .. last-1
        scored = np.arange(last - 4, last)
        for name in ("high_pred", "low_pred"):
            want = getattr(bars, name)[scored] / bars.close[scored - 1] - 1
            np.testing.assert_allclose(getattr(problem, name)[k].numpy(), want, rtol=1e-15, atol=0)
        np.testing.assert_array_equal(problem.close[k].numpy(), builtin.close[k].numpy())


def test_own_forecasts_have_no_look_ahead():
    """Changing bar j's forecast changes only the rows that score bar j (each day uses its own bar's forecast)."""
    bars = with_forecasts(synthetic_ohlc(100, 7))
    base = backtest_windows(bars, n_sims=8, n_days=3, dtype=torch.float64)
    j = len(bars) - 4  # scored by simulations 0, 1 and 2 (simulation k scores bars T-k-4 .. T-k-2)
    high_pred = bars.high_pred.copy()
    high_pred[j] *= 1.01
    changed = OHLC(bars.time, bars.open, bars.high, bars.low, bars.close, high_pred=high_pred, low_pred=bars.low_pred)
    moved = backtest_windows(changed, n_sims=8, n_days=3, dtype=torch.float64)
    rows = (moved.high_pred != base.high_pred).any(dim=1).nonzero().flatten().tolist()
    assert rows == [0, 1, 2]


@pytest.mark.parametrize(
    ("edit", "what"),
    [
        (lambda hp, lp: hp.__setitem__(5, np.nan), "high_pred is nan but low_pred is "),
        (lambda hp, lp: hp.__setitem__(5, lp[5] * 0.9), "high_pred .* is below low_pred .* \\(columns swapped\\?\\)"),
        (lambda hp, lp: lp.__setitem__(5, -1.0), "low_pred is -1.0, expected a price > 0"),
        (lambda hp, lp: hp.__setitem__(5, np.inf), "high_pred is inf, expected a price > 0"),
    ],
    ids=["one-missing", "swapped", "negative", "infinite"],
)
def test_bad_forecasts_name_the_bar(edit, what):
    """Forecast cells are checked per bar: both or neither, finite, > 0, high_pred >= low_pred."""
    bars = with_forecasts(synthetic_ohlc(30, 8))
    hp, lp = bars.high_pred.copy(), bars.low_pred.copy()
    edit(hp, lp)
    with pytest.raises(DataError, match=rf"^bar 5 \({bars.time[5]}\): {what}"):
        OHLC(bars.time, bars.open, bars.high, bars.low, bars.close, high_pred=hp, low_pred=lp)


def test_forecast_missing_on_a_scored_bar():
    """A bar the backtest scores without a forecast is an error naming that bar; earlier gaps are fine."""
    bars = with_forecasts(synthetic_ohlc(40, 9))
    hp, lp = bars.high_pred.copy(), bars.low_pred.copy()
    hp[1:10] = lp[1:10] = np.nan  # a warm-up with no forecasts: not scored by 5 x 3 windows
    hp[-3] = lp[-3] = np.nan
    gappy = OHLC(bars.time, bars.open, bars.high, bars.low, bars.close, high_pred=hp, low_pred=lp)
    with pytest.raises(DataError, match=rf"^high_pred, low_pred: bar 37 \({bars.time[37]}\) has no forecast"):
        backtest_windows(gappy, n_sims=5, n_days=3)
    hp[-3], lp[-3] = bars.high_pred[-3], bars.low_pred[-3]
    ok = OHLC(bars.time, bars.open, bars.high, bars.low, bars.close, high_pred=hp, low_pred=lp)
    assert torch.isfinite(backtest_windows(ok, n_sims=5, n_days=3).high_pred).all()


def test_ohlc_forecasts_come_in_pairs():
    """An OHLC with only one forecast array is refused, naming both."""
    bars = synthetic_ohlc(10, 1)
    with pytest.raises(DataError, match=r"^high_pred: given without low_pred \(forecasts come in pairs"):
        OHLC(bars.time, bars.open, bars.high, bars.low, bars.close, high_pred=bars.high)


@pytest.mark.parametrize("index", [1, -1, np.int64(1), np.int32(-1), torch.tensor(1)], ids=repr)
def test_any_integer_index_keeps_the_row_axis(index):
    """Python, numpy and 0-d tensor integers all select one simulation as an S = 1 problem (and objective)."""
    from marketsim_opt.strategies import always_on_objective

    p = synthetic_problem(8, 1).concat(synthetic_problem(8, 2))
    row = p[index]
    assert row.close.shape == (1, 8) and row.n_sims == 1
    assert torch.equal(row.close, p.close[1:2])
    legs = always_on_objective(p).rows(index).legs
    assert [tuple(leg.shape) for leg in legs] == [(1, 8), (1, 8)]


@pytest.mark.parametrize("index", [True, np.bool_(False)], ids=repr)
def test_a_bool_is_not_a_simulation_index(index):
    p = synthetic_problem(8, 1).concat(synthetic_problem(8, 2))
    with pytest.raises(TypeError, match="simulation index"):
        p[index]
