"""The named workloads of docs/workloads.md (`marketsim_opt.workloads`): shapes, options, fees, policies and
determinism."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

from marketsim_opt import workloads
from marketsim_opt.data import (
    CRYPTO_FEE,
    DEFAULT_FEE,
    DataError,
    backtest_windows,
    load_ohlc_csv,
    synthetic_ohlc,
    synthetic_problem,
)
from marketsim_opt.workloads import (
    BACKTEST_SERIES_SEED,
    SCALING_SIZES,
    Workload,
    backtest,
    profile,
    scaling,
)

FIELDS = ("close", "high", "low", "high_pred", "low_pred")

# The first 4 days of the profile workload in float64.  These pin the seeded recipe (numpy PCG64, seed 42, the
# draw order of docs/workloads.md): changing them means changing the historical workload every figure refers to.
PROFILE_HEAD = {
    "close": [0.006094341595088627, -0.020799682124809912, 0.015009023916129145, 0.018811294327824277],
    "high": [0.009470087083077963, -0.006724863511672743, 0.0159148729851466, 0.025250682260592856],
    "low": [0.004298227456774042, -0.022767443091379486, 0.006803739161954956, 0.014873882605578556],
    "high_pred": [0.010154104029008109, -0.000775388873556505, 0.01774447216941239, -0.0012758753643691964],
    "low_pred": [-0.01345045327969151, -0.015836988273580606, -0.0015539509524964252, -0.0012071996563483701],
}

# Row 0 (simulation 0), first 3 days, of the bundled synthetic backtest series in float64.  These pin the bundled
# series (synthetic_ohlc(400, seed 0)) and the walk-forward windows: changing them changes the backtest workload.
BACKTEST_HEAD = {
    "close": [0.0019999985825647215, -0.0006506481722133861, -0.0018922172063230436],
    "high": [0.005613025532829052, -0.00045536149304570284, 0.005042714589582387],
    "low": [-0.0040394598311641605, -0.002478309215306007, -0.003282340437337883],
    "high_pred": [0.006363970079573411, 0.006343943449855449, 0.005909556263315907],
    "low_pred": [-0.005808749727606988, -0.005361105386220566, -0.005477422881328931],
}


def assert_problems_identical(a, b):
    """Every field of two problems is bitwise identical, with the same dtype, device, fee and crypto flag."""
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.device == y.device, name
        assert torch.equal(x, y), name
    assert a.trading_fee == b.trading_fee
    assert a.is_crypto == b.is_crypto


def test_workload_is_frozen():
    """A Workload cannot be modified after construction."""
    w = profile()
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.close_at_eod = True
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.name = "other"


# --- profile --------------------------------------------------------------------------------


def test_profile_shape_fee_policy():
    """profile: one [1, 200] float32 CPU problem, fee 0.0015, not crypto, intraday (close_at_eod False)."""
    w = profile()
    assert isinstance(w, Workload)
    assert w.name == "profile"
    assert w.close_at_eod is False
    p = w.problem
    assert p.n_sims == 1 and p.n_days == 200
    for name in FIELDS:
        t = getattr(p, name)
        assert t.shape == (1, 200), name
        assert t.dtype == torch.float32, name
        assert t.device.type == "cpu", name
    assert p.trading_fee == 0.0015
    assert p.is_crypto is False


def test_profile_matches_recipe():
    """profile is synthetic_problem(200, seed 42, fee 0.0015)."""
    assert_problems_identical(profile().problem, synthetic_problem(200, 42, trading_fee=0.0015))


def test_profile_pinned_values():
    """The first days of the profile workload are the historical ones (float64, tight tolerance)."""
    p = profile(dtype=torch.float64).problem
    for name, expected in PROFILE_HEAD.items():
        got = getattr(p, name)[0, : len(expected)]
        torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-15, msg=name)


def test_profile_recipe_invariants():
    """Every profile day has L <= c <= H (the recipe adds |noise| around the close)."""
    p = profile(dtype=torch.float64).problem
    assert bool((p.low <= p.close).all())
    assert bool((p.close <= p.high).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_profile_dtype_device(dtype, device):
    """dtype and device are honoured (device as a string or a torch.device)."""
    p = profile(dtype=dtype, device=device).problem
    assert p.dtype == dtype
    assert p.device == torch.device("cpu")
    for name in FIELDS:
        assert getattr(p, name).dtype == dtype, name


def test_profile_float32_is_rounded_float64():
    """The float32 profile is the float64 one rounded to float32, bit for bit."""
    p32 = profile(dtype=torch.float32).problem
    p64 = profile(dtype=torch.float64).problem
    for name in FIELDS:
        assert torch.equal(getattr(p32, name), getattr(p64, name).float()), name


def test_profile_deterministic():
    """Two calls give bitwise-identical problems and equal metadata."""
    a, b = profile(), profile()
    assert_problems_identical(a.problem, b.problem)
    assert (a.name, a.close_at_eod) == (b.name, b.close_at_eod)


# --- scaling --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", SCALING_SIZES)
def test_scaling_sizes(n):
    """scaling(n) is the profile recipe at N = n: one [1, n] problem, fee 0.0015, intraday."""
    w = scaling(n)
    assert w.name == f"scaling:{n}"
    assert w.close_at_eod is False
    p = w.problem
    assert p.n_days == n and p.n_sims == 1
    assert p.close.shape == (1, n)
    assert p.dtype == torch.float32
    assert p.trading_fee == 0.0015 and p.is_crypto is False


def test_scaling_matches_recipe_and_profile():
    """scaling(n) equals synthetic_problem(n, 42, fee 0.0015); scaling(200) equals profile bit for bit."""
    assert_problems_identical(scaling(6).problem, synthetic_problem(6, 42, trading_fee=0.0015))
    assert_problems_identical(scaling(200).problem, profile().problem)


def test_scaling_dtype_device_and_determinism():
    """scaling honours dtype/device and two calls are bitwise identical."""
    a = scaling(2000, dtype=torch.float64, device=torch.device("cpu"))
    b = scaling(2000, dtype=torch.float64, device="cpu")
    assert a.problem.dtype == torch.float64 and a.problem.device == torch.device("cpu")
    assert_problems_identical(a.problem, b.problem)


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_scaling_bad_size(n):
    """A non-positive or fractional size raises DataError naming n_days."""
    with pytest.raises(DataError, match="^n_days: must be a positive integer"):
        scaling(n)


# --- backtest -------------------------------------------------------------------------------


def test_backtest_bundled_shape_fee_policy():
    """backtest(): a [70, 6] float32 batch from the bundled series, equity fee, policy search (close_at_eod None)."""
    w = backtest()
    assert isinstance(w, Workload)
    assert w.name == "backtest:SYNTH0"
    assert w.close_at_eod is None
    p = w.problem
    assert p.n_sims == 70 and p.n_days == 6
    for name in FIELDS:
        t = getattr(p, name)
        assert t.shape == (70, 6), name
        assert t.dtype == torch.float32, name
        assert t.device.type == "cpu", name
    assert p.trading_fee == DEFAULT_FEE == 0.0005
    assert p.is_crypto is False


def test_backtest_bundled_matches_windows():
    """The bundled backtest is backtest_windows of synthetic_ohlc(400, seed 0)."""
    expected = backtest_windows(synthetic_ohlc(400, BACKTEST_SERIES_SEED), dtype=torch.float64)
    assert_problems_identical(backtest(dtype=torch.float64).problem, expected)


def test_backtest_pinned_values():
    """Simulation 0's first days of the bundled backtest are pinned (float64, tight tolerance)."""
    p = backtest(dtype=torch.float64).problem
    for name, expected in BACKTEST_HEAD.items():
        got = getattr(p, name)[0, : len(expected)]
        torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-15, msg=name)


def test_backtest_crypto_flag():
    """is_crypto=True gives the crypto fee 0.0015 and the crypto flag; the data are unchanged."""
    crypto = backtest(is_crypto=True).problem
    equity = backtest().problem
    assert crypto.is_crypto is True
    assert crypto.trading_fee == CRYPTO_FEE == 0.0015
    for name in FIELDS:
        assert torch.equal(getattr(crypto, name), getattr(equity, name)), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_backtest_dtype_device(dtype, device):
    """dtype and device are honoured by the backtest workload."""
    p = backtest(dtype=dtype, device=device).problem
    assert p.dtype == dtype and p.device == torch.device("cpu")
    assert p.close.shape == (70, 6)


def test_backtest_deterministic_and_not_aliased():
    """Two calls are bitwise identical, and writing into one result does not change the next (cached series)."""
    a = backtest(dtype=torch.float64)
    b = backtest(dtype=torch.float64)
    assert_problems_identical(a.problem, b.problem)
    reference = b.problem.close.clone()
    a.problem.close.fill_(123.0)
    c = backtest(dtype=torch.float64)
    assert torch.equal(c.problem.close, reference)


def test_backtest_real_csv(real_csv, crypto_of):
    """On each real file: a [70, 6] batch named after the symbol, policy search, fee by equity/crypto."""
    is_crypto = crypto_of(real_csv)
    w = backtest(str(real_csv), is_crypto=is_crypto)
    assert w.name == f"backtest:{real_csv.stem}"
    assert w.close_at_eod is None
    p = w.problem
    assert p.close.shape == (70, 6) and p.n_sims == 70 and p.n_days == 6
    assert p.dtype == torch.float32
    assert p.is_crypto is is_crypto
    assert p.trading_fee == (CRYPTO_FEE if is_crypto else DEFAULT_FEE)
    expected = backtest_windows(load_ohlc_csv(real_csv), is_crypto=is_crypto)
    assert_problems_identical(p, expected)
    assert_problems_identical(p, backtest(str(real_csv), is_crypto=is_crypto).problem)


def test_backtest_real_crypto_csv(data_dir):
    """The crypto sample (SUIUSDT) with is_crypto=True has the crypto fee 0.0015 and the crypto flag."""
    path = data_dir / "SUIUSDT.csv"
    if not path.is_file():
        pytest.skip(f"real data file {path} is absent")
    p = backtest(str(path), is_crypto=True, dtype=torch.float64).problem
    assert p.is_crypto is True
    assert p.trading_fee == 0.0015
    assert p.close.shape == (70, 6) and p.dtype == torch.float64


def test_backtest_missing_csv(tmp_path):
    """A path that does not exist raises DataError starting with the path."""
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=f"^{re.escape(str(missing))}: cannot read the file"):
        backtest(str(missing))


def test_backtest_empty_csv_path_is_not_the_bundled_series():
    """An empty csv_path is a bad path, not "no path": it raises instead of silently using the synthetic series.

    `backtest` tests `if csv_path` rather than `csv_path is None`, so "" falls back to the bundled series.
    """
    with pytest.raises((OSError, DataError)):
        backtest("")


def test_backtest_malformed_csv(tmp_path):
    """A CSV without the price columns raises DataError naming the file and the missing columns."""
    path = tmp_path / "bad.csv"
    path.write_text("date,open,high\n2024-01-01,1,2\n")
    with pytest.raises(DataError, match=r"bad\.csv: missing column\(s\) \['low', 'close'\]"):
        backtest(str(path))


def test_backtest_too_short_csv(tmp_path):
    """A valid CSV with too few bars for 70 x 6 windows raises DataError naming bars."""
    path = tmp_path / "short.csv"
    rows = [f"2024-01-{d:02d},10,11,9,10.5" for d in range(1, 21)]
    path.write_text("date,open,high,low,close\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match="bars: 20 bars are too few"):
        backtest(str(path))


def test_run_goes_through_the_public_api():
    """`run` gives what the public optimization gives on the workload's tensors, for both strategies."""
    import marketsim_opt as mo

    w = workloads.profile()
    p = w.problem
    got = workloads.run(w, "always_on", method="grid", budget=100)
    want = mo.optimize_always_on(
        p.close, p.high, p.high_pred, p.low, p.low_pred, trading_fee=p.trading_fee, method="grid", budget=100
    )
    assert (got.h, got.l, got.profit, got.nfev, got.syncs) == (want.h, want.l, want.profit, want.nfev, want.syncs)
    entry = workloads.run(w, "entry_exit", method="grid", budget=100)
    assert entry.strategy == "entry_exit" and entry.nfev == 100


def test_run_unknown_strategy():
    """An unknown strategy raises ValueError naming strategy."""
    with pytest.raises(ValueError, match="^strategy: expected one of entry_exit, always_on, got 'maxdiff'"):
        workloads.run(workloads.profile(), "maxdiff")


def test_run_all_runs_both_strategies_in_order():
    seen = []
    results = workloads.run_all(workloads.profile(), method="grid", budget=100, on_strategy=seen.append)
    assert seen == list(workloads.STRATEGIES)
    assert [r.strategy for r in results] == list(workloads.STRATEGIES)


@pytest.mark.cpu_dependent
def test_run_stacked_matches_run_all_with_one_read_back():
    """The whole backtest (70 simulations x 2 strategies x 2 policies) in one exact call: the same answers as
    one call per strategy, rows entry/exit then always-on, and a single host sync for the whole workload."""
    w = workloads.backtest()
    stacked = workloads.run_stacked(w, method="exact")
    separate = workloads.run_all(w, method="exact")
    s = w.problem.n_sims
    assert stacked.syncs == 1
    assert stacked.strategy == "entry_exit+always_on" and stacked.policies == (False, True)
    for i, one in enumerate(separate):
        rows = slice(i * s, (i + 1) * s)
        for field in ("h", "l", "profit", "supremum", "close_at_eod", "nfev"):
            assert getattr(stacked, field)[rows].tolist() == np.asarray(getattr(one, field)).tolist(), field


def test_run_stacked_needs_a_budget_for_other_methods():
    with pytest.raises(ValueError, match="budget: strategy 'entry_exit\\+always_on' has no default budget"):
        workloads.run_stacked(workloads.backtest(), method="grid")
    res = workloads.run_stacked(workloads.backtest(), method="grid", budget=64)
    assert res.nfev.tolist() == [2 * 64] * 140


def test_forecast_says_which_forecasts_ran():
    """Each workload states its forecasts: synthetic for profile/scaling, the built-in forecaster for a plain series."""
    assert "synthetic" in profile().forecast
    assert scaling(6).forecast == profile().forecast
    assert backtest().forecast.startswith("built-in: mean of the past 20 days")


def test_workload_forecast_has_a_default():
    """Workloads built by hand, as before the field existed, still construct."""
    w = Workload("hand", profile().problem, close_at_eod=False)
    assert w.forecast == "unspecified"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has a usable CUDA device")
@pytest.mark.parametrize("make", [profile, backtest, lambda device: scaling(6, device=device)])
def test_workloads_check_the_device(make):
    """`--device cuda` on a CPU-only torch is a DataError naming `device`, not torch's AssertionError."""
    with pytest.raises(DataError, match=r"^device: 'cuda' requested"):
        make(device="cuda")


def test_backtest_uses_the_csv_forecast_columns(tmp_path):
    """A CSV with high_pred/low_pred runs on them, and the workload says so (was: silently the built-in forecaster)."""
    bars = synthetic_ohlc(120, 3)
    rng = np.random.default_rng(0)
    high_pred = bars.close * (1 + np.abs(rng.normal(0, 0.01, len(bars))))
    low_pred = bars.close * (1 - np.abs(rng.normal(0, 0.01, len(bars))))
    columns = (bars.open, bars.high, bars.low, bars.close, high_pred, low_pred)
    lines = ["Date,Open,High,Low,Close,high_pred,low_pred"] + [
        ",".join([t, *map(repr, row)]) for t, *row in zip(bars.time, *(c.tolist() for c in columns))
    ]
    path = tmp_path / "own.csv"
    path.write_text("\n".join(lines) + "\n")
    w = backtest(str(path), dtype=torch.float64)
    assert w.forecast == "the CSV's own high_pred/low_pred columns"
    last = len(bars) - 1  # simulation 0 scores bars last-6 .. last-1
    scored = np.arange(last - 6, last)
    want = high_pred[scored] / bars.close[scored - 1] - 1
    np.testing.assert_allclose(w.problem.high_pred[0].numpy(), want, rtol=1e-15, atol=0)
    plain = backtest(str(write_plain(tmp_path / "plain.csv", lines)), dtype=torch.float64)
    assert plain.forecast.startswith("built-in")
    torch.testing.assert_close(plain.problem.close, w.problem.close, rtol=0, atol=0)
    assert not torch.allclose(plain.problem.high_pred, w.problem.high_pred)


def write_plain(path, lines):
    """The same CSV without its two forecast columns."""
    path.write_text("\n".join(",".join(line.split(",")[:5]) for line in lines) + "\n")
    return path


@pytest.mark.parametrize("flag", ["no", 1, None])
def test_backtest_is_crypto_must_be_a_bool(flag):
    """`backtest(is_crypto='no')` is an error naming the field, not a crypto run."""
    with pytest.raises(DataError, match=r"^is_crypto: expected True or False"):
        backtest(is_crypto=flag)
