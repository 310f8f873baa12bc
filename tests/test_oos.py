"""The walk-forward out-of-sample evaluation (oos.py): windows before test days, rows that recompute from their own
columns with the independent scorer, the test day's moves from the file's own prices, forecasts blind to the test
day, the CSV round trip and `sims` validation."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.ruler import scorer
from marketsim_opt import oos, workloads
from marketsim_opt.data import OHLC, DataError, backtest_windows, load_ohlc_csv, synthetic_ohlc

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
METHODS = ("zero", "exact", "grid")
SIMS = 5


@pytest.fixture(scope="module")
def bars() -> OHLC:
    return oos.bundled_series()


@pytest.fixture(scope="module")
def rows(bars) -> list[oos.OosRow]:
    return oos.walk_forward(bars, sims=SIMS, methods=METHODS, budgets=(100,), progress=False)


def shared_csv(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared data folder beside the repository)")
    return path


def recomputed_next_day(row: oos.OosRow) -> float:
    """The row's next-day profit from its own columns, by the ruler's independent float64 scorer."""
    return sum(
        float(
            scorer.profit_per_day(
                row.test_close,
                row.test_high,
                row.test_high_pred + row.h,
                row.test_low,
                row.test_low_pred + row.l,
                float(position),
                close_at_eod=row.close_at_eod,
                fee=row.fee,
            )
        )
        for position in row.test_positions.split(";")
    )


def test_one_row_per_simulation_strategy_method_and_budget(rows):
    keys = [(r.strategy, r.method, r.budget, r.sim) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * len(METHODS) * SIMS
    assert {(r.method, r.budget) for r in rows} == {("zero", "-"), ("exact", "-"), ("grid", "100")}
    assert {r.series for r in rows} == {"SYNTH0"} and {r.fee for r in rows} == {0.0005}


def test_fitted_window_ends_strictly_before_the_test_day(bars, rows):
    """By date and by bar index: the 6 fitted bars end with the bar right before the test bar, and the fitted
    problem's rows are exactly those bars' moves."""
    index = {t: i for i, t in enumerate(bars.time)}
    problem = backtest_windows(bars, n_sims=SIMS)
    for row in rows:
        first, last, test = index[row.fit_first_date], index[row.fit_last_date], index[row.test_date]
        assert row.fit_last_date < row.test_date
        assert last - first + 1 == oos.FIT_DAYS and test == last + 1 == len(bars) - 1 - row.sim
        assert test not in range(first, last + 1)
        window = bars.close[first : last + 1] / bars.close[first - 1 : last] - 1.0
        np.testing.assert_allclose(problem.close[row.sim].double().numpy(), window, rtol=1e-6, atol=1e-7)
        assert row.test_close == bars.close[test] / bars.close[test - 1] - 1.0


def test_next_day_profit_recomputes_from_the_row(rows):
    """`next_day_profit` is the independent scorer's profit summed over the row's legs at its own columns."""
    for row in rows:
        assert row.next_day_profit == pytest.approx(recomputed_next_day(row), rel=0, abs=1e-12)
    assert len({r.next_day_profit for r in rows}) > 3  # not all alike: the check could fail


def test_zero_rows_are_the_objective_at_zero(bars, rows):
    """zero's rows: h = l = 0, in-sample profit the scorer's objective at (0, 0) on the fitted window under the
    row's policy, which is the better one in-sample; exact's regret is ~0 and nobody beats it."""
    p = backtest_windows(bars, n_sims=SIMS)
    arrays = {name: getattr(p, name).double().numpy() for name in ("close", "high", "low", "high_pred", "low_pred")}
    for row in rows:
        if row.method == "exact":
            assert abs(row.regret_bp) < 1e-6
        assert row.regret_bp > -1e-6
        if row.method != "zero":
            continue
        assert row.h == row.l == 0.0
        legs = scorer.legs(row.strategy, arrays["high_pred"][row.sim], arrays["low_pred"][row.sim], is_crypto=False)

        def objective(eod: bool, k: int = row.sim, legs=legs, fee: float = row.fee) -> float:
            days = [arrays[n][k] for n in ("close", "high", "high_pred", "low", "low_pred")]
            return sum(float(scorer.profit_per_day(*days, leg, close_at_eod=eod, fee=fee).sum()) for leg in legs)

        assert row.in_sample_profit == pytest.approx(objective(row.close_at_eod), rel=0, abs=1e-12)
        assert row.in_sample_profit >= max(objective(False), objective(True)) - 1e-6


def test_positions_follow_the_test_days_forecast(rows):
    for row in rows:
        if row.strategy == "always_on":
            assert row.test_positions == "1;-1"
        else:
            want = (
                0
                if row.test_high_pred <= row.test_low_pred
                else 1
                if abs(row.test_high_pred) > abs(row.test_low_pred)
                else -1
            )
            assert row.test_positions == str(want)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_the_test_days_forecast_never_uses_the_test_day(bars, k):
    """Raising the test bar's high changes its actual high move, never its forecast (nor its low's)."""
    before = oos.next_days(bars, sims=SIMS)
    test = len(bars) - 1 - k
    high = bars.high.copy()
    high[test] *= 1.05
    after = oos.next_days(dataclasses.replace(bars, high=high), sims=SIMS)
    assert after["high"][k] > before["high"][k] + 0.01
    assert after["high_pred"][k] == before["high_pred"][k] and after["low_pred"][k] == before["low_pred"][k]
    assert np.array_equal(after["high_pred"][k:], before["high_pred"][k:])  # earlier test days: untouched too


def test_rows_carry_next_days_inputs(bars, rows):
    day = oos.next_days(bars, sims=SIMS)
    for row in rows:
        got = (row.test_close, row.test_high, row.test_low, row.test_high_pred, row.test_low_pred)
        assert got == tuple(float(day[n][row.sim]) for n in ("close", "high", "low", "high_pred", "low_pred"))


def test_bundled_series_is_the_backtests(bars):
    mine = backtest_windows(bars)
    theirs = workloads.backtest().problem
    assert all(torch.equal(mine.tensors()[n], theirs.tensors()[n]) for n in mine.tensors())


@pytest.mark.parametrize("sims", [0, -1, True, 1.5, "3", None])
def test_bad_sims_name_sims(bars, sims):
    with pytest.raises(DataError, match=r"^sims: must be a positive integer"):
        oos.walk_forward(bars, sims=sims, methods=("zero",), progress=False)


def test_too_many_sims_name_the_maximum(bars):
    most = oos.max_sims(bars)
    assert most == len(bars) - 8  # the backtest_windows rule: n_sims + 6 scored days + 2 bars
    with pytest.raises(
        DataError, match=rf"^sims: {most + 1} simulations asked, but SYNTH0's 400 bars allow at most {most}"
    ):
        oos.walk_forward(bars, sims=most + 1, methods=("zero",), progress=False)


def test_the_most_simulations_run(bars):
    """At max_sims the oldest simulation's window starts at bar 2: move 1, the first with a forecast (a past day)."""
    most = oos.max_sims(bars)
    rows = oos.walk_forward(bars, sims=most, methods=("zero",), strategies=("always_on",), progress=False)
    assert len(rows) == most
    assert rows[-1].fit_first_date == bars.time[2]


def with_forecasts(n: int, missing: list[int]) -> OHLC:
    base = synthetic_ohlc(n, 3)
    hp, lp = base.high * 1.001, base.low * 0.999
    hp[missing] = lp[missing] = np.nan
    return dataclasses.replace(base, high_pred=hp, low_pred=lp)


@pytest.mark.parametrize(("n", "missing"), [(30, [0]), (30, [0, 10]), (30, [0, 25]), (30, [29]), (12, [0])])
def test_max_sims_with_own_forecasts(n, missing):
    """Every fitted and test day needs a forecast: brute force over K agrees with max_sims."""
    bars = with_forecasts(n, missing)
    have = ~np.isnan(bars.high_pred[1:])  # per move
    n_moves = n - 1
    ok = [k for k in range(1, n) if n_moves - k - 6 >= 1 and have[n_moves - k - 6 :].all()]
    assert oos.max_sims(bars) == (max(ok) if ok else 0)


def test_own_forecasts_are_the_test_bars(bars):
    """With the bars' own forecasts, the test day's forecast is the test bar's column relative to the previous close."""
    own = with_forecasts(40, [0, 1])
    day = oos.next_days(own, sims=4)
    for k in range(4):
        t = len(own) - 1 - k
        assert day["high_pred"][k] == own.high_pred[t] / own.close[t - 1] - 1.0
        assert day["low_pred"][k] == own.low_pred[t] / own.close[t - 1] - 1.0


@pytest.mark.parametrize(("name", "crypto"), [("HEI.csv", False), ("SUIUSDT.csv", True)])
def test_a_shared_csv_uses_the_files_own_prices(name, crypto):
    """On a real series the test moves are the file's own prices on test_date relative to the previous close."""
    path = shared_csv(name)
    with open(path, newline="") as fh:
        table = list(csv.DictReader(fh))
    time_col = "Date" if "Date" in table[0] else "timestamp"
    by_time = {r[time_col]: i for i, r in enumerate(table)}
    rows = oos.walk_forward(load_ohlc_csv(path), sims=8, methods=("zero", "exact"), is_crypto=crypto, progress=False)
    assert {r.series for r in rows} == {path.stem}
    assert {r.fee for r in rows} == {0.0015 if crypto else 0.0005}
    for row in rows:
        i = by_time[row.test_date]
        prev = float(table[i - 1]["close"])
        for col in ("close", "high", "low"):
            assert getattr(row, f"test_{col}") == pytest.approx(float(table[i][col]) / prev - 1.0, rel=1e-12, abs=1e-15)
        assert table[i - 1][time_col] == row.fit_last_date
        assert row.next_day_profit == pytest.approx(recomputed_next_day(row), rel=0, abs=1e-12)
        if crypto:
            assert row.test_positions in (("1", "0") if row.strategy == "entry_exit" else ("1",))


def test_csv_round_trip(rows, tmp_path):
    path = tmp_path / "oos.csv"
    oos.write_oos_csv(rows, path)
    assert path.read_text().splitlines()[0] == oos.csv_header() == ",".join(oos.COLUMNS)
    assert oos.read_oos_csv(path) == rows


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: lines.__setitem__(0, "series,sim"), r"line 1: expected the oos.csv header"),
        (lambda lines: lines.__setitem__(2, lines[2].replace(",zero,", ",zero,x,")), r"line 3: 22 field"),
        (lambda lines: lines.__setitem__(1, lines[1].replace("SYNTH0,0,", "SYNTH0,zero,")), r"line 2: sim: 'zero'"),
        (
            lambda lines: lines.__setitem__(1, lines[1].replace(",False,", ",no,").replace(",True,", ",no,")),
            r"close_at_eod",
        ),
        (
            lambda lines: lines.__setitem__(1, lines[1].replace(",0.0005,", ",nan,")),
            r"line 2: fee: 'nan' is not a finite",
        ),
    ],
)
def test_bad_csv_names_line_and_column(rows, tmp_path, edit, message):
    path = tmp_path / "oos.csv"
    oos.write_oos_csv(rows, path)
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message):
        oos.read_oos_csv(path)


def test_summary_means(rows):
    table = oos.summary(rows)
    assert len(table) == 2 * len(METHODS)
    first = table[0]
    mine = [r for r in rows if (r.strategy, r.method, r.budget) == (first.strategy, first.method, first.budget)]
    assert first.n_sims == SIMS == len(mine)
    assert first.next_day_bp == pytest.approx(1e4 * np.mean([r.next_day_profit for r in mine]), rel=1e-12)
    assert first.in_sample_bp == pytest.approx(1e4 * np.mean([r.in_sample_profit for r in mine]), rel=1e-12)
    text = oos.to_markdown(table)
    lines = text.splitlines()
    assert len(lines) == 2 + len(table) and text.endswith("|\n")
    assert [c.strip().endswith(":") for c in lines[1].strip("|").split("|")] == [False] * 4 + [True] * 4
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert ["SYNTH0", "entry_exit", "zero", "-", str(SIMS)] in [row[:5] for row in cells]


def test_bad_methods_and_strategies_fail_before_any_fit(bars):
    with pytest.raises(ValueError, match="method: unknown method 'nope'"):
        oos.walk_forward(bars, sims=2, methods=("zero", "nope"), progress=False)
    with pytest.raises(ValueError, match="strategies"):
        oos.walk_forward(bars, sims=2, methods=("zero",), strategies=("sideways",), progress=False)
    with pytest.raises(ValueError, match="budget"):
        oos.walk_forward(bars, sims=2, methods=("grid",), budgets=(0,), progress=False)
