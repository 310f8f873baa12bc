"""The profit kernel (docs/kernel.md): hand-checked cases, edges, clamps, broadcasting and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from marketsim_opt import profit_per_day, profit_per_day_f64
from marketsim_opt.data import load_ohlc_csv
from marketsim_opt.kernel import smoothed_profit_per_day
from tests.reference import reference_profit

FEE = 0.0005
MODES = (False, True)


def kernel(c, H, Hp, L, Lp, p, *, dtype=torch.float64, close_at_eod=False, fee=FEE) -> torch.Tensor:
    """The package kernel on scalars/arrays converted to `dtype` tensors."""
    ts = [torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype) for a in (c, H, Hp, L, Lp, p)]
    return profit_per_day(*ts, close_at_eod=close_at_eod, trading_fee=fee)


def scalar(c, H, Hp, L, Lp, p, **kw) -> float:
    out = kernel(c, H, Hp, L, Lp, p, **kw)
    assert out.shape == ()
    return out.item()


# --- docs/kernel.md's hand-checkable cases -----------------------------------------------------------------

LONG_CASE = dict(c=0.02, H=0.09, Hp=0.08, L=-0.06, Lp=-0.05, p=1.0)


@pytest.mark.parametrize(("close_at_eod", "expected"), [(False, 0.13 - FEE), (True, 0.07 - FEE)])
def test_spec_long_case(close_at_eod, expected):
    """docs/kernel.md's long case: intraday 0.13 - f, close_at_eod 0.07 - f (float64 tight, float32 loose)."""
    assert scalar(**LONG_CASE, close_at_eod=close_at_eod) == pytest.approx(expected, abs=1e-15)
    got32 = kernel(**LONG_CASE, dtype=torch.float32, close_at_eod=close_at_eod)
    assert got32.dtype == torch.float32
    assert got32.item() == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize("close_at_eod", MODES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("hp", [0.09, 0.12])
def test_spec_short_not_entered_is_exactly_zero(close_at_eod, dtype, hp):
    """A short whose entry is not reached (Hq >= H) makes exactly 0 and pays no fee."""
    got = scalar(c=0.02, H=0.09, Hp=hp, L=-0.06, Lp=-0.05, p=-1.0, dtype=dtype, close_at_eod=close_at_eod)
    assert got == 0.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_spec_short_close_at_eod_at_entry_price_is_minus_fee(dtype):
    """A short at close_at_eod whose close equals its entry Hq loses exactly the fee."""
    got = kernel(c=0.03, H=0.05, Hp=0.03, L=-0.02, Lp=-0.01, p=-1.0, dtype=dtype, close_at_eod=True)
    assert got.item() == torch.tensor(-FEE, dtype=dtype).item()


@pytest.mark.parametrize("close_at_eod", MODES)
def test_flat_position_is_exactly_zero(close_at_eod):
    """p = 0 makes exactly 0 whatever the day does."""
    assert scalar(**{**LONG_CASE, "p": 0.0}, close_at_eod=close_at_eod) == 0.0


# --- equality edges and clamps -----------------------------------------------------------------


def test_long_take_profit_exactly_at_high_is_taken():
    """Hq == H: the long sells at Hq (non-strict take-profit), not at the close."""
    got = scalar(c=0.0, H=0.04, Hp=0.04, L=-0.02, Lp=-0.01, p=1.0)
    assert got == pytest.approx(0.05 - FEE, abs=1e-15)
    just_above = scalar(c=0.0, H=0.04, Hp=np.nextafter(0.04, 1.0), L=-0.02, Lp=-0.01, p=1.0)
    assert just_above == pytest.approx(0.01 - FEE, abs=1e-15)  # target missed: sells at the close


def test_short_take_profit_exactly_at_low_is_taken():
    """Lq == L: the short buys back at Lq (non-strict take-profit), not at the close."""
    got = scalar(c=0.005, H=0.02, Hp=0.01, L=-0.03, Lp=-0.03, p=-1.0)
    assert got == pytest.approx(0.04 - FEE, abs=1e-15)
    just_below = scalar(c=0.005, H=0.02, Hp=0.01, L=-0.03, Lp=np.nextafter(-0.03, -1.0), p=-1.0)
    assert just_below == pytest.approx(-(0.005 - 0.01) - FEE, abs=1e-15)  # target missed: exits at the close


@pytest.mark.parametrize("close_at_eod", MODES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_long_limit_exactly_at_low_is_not_entered(close_at_eod, dtype):
    """Lq == L: the strict long entry is not filled; profit 0, no fee."""
    got = scalar(c=0.01, H=0.03, Hp=0.02, L=-0.02, Lp=-0.02, p=1.0, dtype=dtype, close_at_eod=close_at_eod)
    assert got == 0.0
    above = scalar(c=0.01, H=0.03, Hp=0.02, L=-0.02, Lp=-0.0199, p=1.0, dtype=dtype, close_at_eod=close_at_eod)
    assert above != 0.0


@pytest.mark.parametrize("close_at_eod", MODES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_short_limit_exactly_at_high_is_not_entered(close_at_eod, dtype):
    """Hq == H: the strict short entry is not filled; profit 0, no fee."""
    got = scalar(c=0.01, H=0.03, Hp=0.03, L=-0.02, Lp=-0.01, p=-1.0, dtype=dtype, close_at_eod=close_at_eod)
    assert got == 0.0
    below = scalar(c=0.01, H=0.03, Hp=0.0299, L=-0.02, Lp=-0.01, p=-1.0, dtype=dtype, close_at_eod=close_at_eod)
    assert below != 0.0


def test_high_pred_above_ten_clamps_to_ten():
    """Hp > 10 acts as Hq = 10: a short then enters on a day whose high is above 10."""
    day = dict(c=0.5, H=11.0, L=-0.1, Lp=-0.05, p=-1.0)
    for close_at_eod in MODES:
        assert scalar(**day, Hp=12.0, close_at_eod=close_at_eod) == scalar(**day, Hp=10.0, close_at_eod=close_at_eod)
    assert scalar(**day, Hp=12.0, close_at_eod=True) == pytest.approx(9.5 - FEE, abs=1e-12)


def test_high_pred_below_zero_clamps_to_zero():
    """Hp < 0 acts as Hq = 0: the short enters at 0, not at the negative prediction."""
    day = dict(c=0.004, H=0.01, L=-0.03, Lp=-0.02, p=-1.0)
    assert scalar(**day, Hp=-0.02, close_at_eod=True) == pytest.approx(-0.004 - FEE, abs=1e-15)
    # intraday: entry at 0, take-profit at Lq = -0.02 (reached): profit 0.02
    assert scalar(**day, Hp=-0.02) == pytest.approx(0.02 - FEE, abs=1e-15)


def test_low_pred_below_minus_one_clamps():
    """Lp < -1 acts as Lq = -1: the long enters when the low is below -1."""
    day = dict(c=-0.5, H=0.0, Hp=0.01, L=-1.2, p=1.0)
    assert scalar(**day, Lp=-1.5, close_at_eod=True) == pytest.approx(-0.5 + 1.0 - FEE, abs=1e-12)
    assert scalar(**day, Lp=-1.5) == scalar(**day, Lp=-1.0)


def test_low_pred_above_zero_clamps_to_zero():
    """Lp > 0 acts as Lq = 0: the long buys at 0."""
    day = dict(c=0.01, H=0.05, Hp=0.03, L=-0.01, p=1.0)
    assert scalar(**day, Lp=0.02, close_at_eod=True) == pytest.approx(0.01 - FEE, abs=1e-15)
    assert scalar(**day, Lp=0.02) == pytest.approx(0.03 - FEE, abs=1e-15)
    # a day whose low stays above 0 never fills a clamped long
    assert scalar(c=0.03, H=0.05, Hp=0.04, L=0.01, Lp=0.02, p=1.0) == 0.0


@pytest.mark.parametrize("close_at_eod", MODES)
def test_positions_beyond_ten_clamp(close_at_eod):
    """|p| > 10 acts as |p| = 10, and profit (fee included) scales linearly up to that."""
    rng = np.random.default_rng(3)
    c = rng.normal(0, 0.02, 50)
    H = c + np.abs(rng.normal(0, 0.01, 50))
    L = c - np.abs(rng.normal(0, 0.01, 50))
    Hp, Lp = rng.normal(0.005, 0.01, 50), rng.normal(-0.005, 0.01, 50)
    for sign in (1.0, -1.0):

        def run(size, sign=sign):
            return kernel(c, H, Hp, L, Lp, np.full(50, sign * size), close_at_eod=close_at_eod)

        assert torch.equal(run(15.0), run(10.0))
        assert torch.equal(run(1e6), run(10.0))
        torch.testing.assert_close(run(10.0), 10.0 * run(1.0), rtol=0, atol=1e-14)
        assert run(1.0).abs().sum() > 0


# --- against an independent implementation ------------------------------------------------------


def random_days(rng: np.random.Generator, shape) -> dict[str, np.ndarray]:
    """Random float64 day moves with L <= c <= H, noisy forecasts and positions in {-1, 0, 1}."""
    c = rng.normal(0.0, 0.02, shape)
    H = c + np.abs(rng.normal(0.0, 0.01, shape))
    L = c - np.abs(rng.normal(0.0, 0.01, shape))
    Hp = rng.normal(0.005, 0.015, shape)
    Lp = rng.normal(-0.005, 0.015, shape)
    p = rng.integers(-1, 2, shape).astype(np.float64)
    return dict(c=c, H=H, Hp=Hp, L=L, Lp=Lp, p=p)


def real_days(path, rng: np.random.Generator, window: int = 5) -> dict[str, np.ndarray]:
    """Day moves from a real CSV, computed here in numpy, with rolling-mean-plus-noise forecasts."""
    bars = load_ohlc_csv(path)
    prev = bars.close[:-1]
    c = bars.close[1:] / prev - 1.0
    H = bars.high[1:] / prev - 1.0
    L = bars.low[1:] / prev - 1.0
    kernel_w = np.ones(window) / window
    # forecast for day i: mean of days i-window..i-1, plus noise; the first `window` days are dropped
    Hp = np.convolve(H, kernel_w, mode="valid")[:-1] + rng.normal(0, 0.005, len(H) - window)
    Lp = np.convolve(L, kernel_w, mode="valid")[:-1] + rng.normal(0, 0.005, len(L) - window)
    c, H, L = c[window:], H[window:], L[window:]
    p = rng.integers(-1, 2, len(c)).astype(np.float64)
    return dict(c=c, H=H, Hp=Hp, L=L, Lp=Lp, p=p)


def check_against_reference(days: dict[str, np.ndarray], h=0.0, l=0.0, *, expected_shape) -> None:
    """Kernel vs reference: float64 within 1e-12, float32 within 1e-6 of float64, both modes.

    The offsets are added in each dtype before the call (the kernel takes `high_pred + h`), and the
    reference sees exactly those (widened) values, so only arithmetic rounding can differ.
    """
    for close_at_eod in MODES:
        for dtype, atol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
            t = {k: torch.as_tensor(v, dtype=dtype) for k, v in days.items()}
            hp = t["Hp"] + torch.as_tensor(h, dtype=dtype)
            lp = t["Lp"] + torch.as_tensor(l, dtype=dtype)
            got = profit_per_day(t["c"], t["H"], hp, t["L"], lp, t["p"], close_at_eod=close_at_eod, trading_fee=FEE)
            assert got.dtype == dtype
            assert tuple(got.shape) == expected_shape
            want = reference_profit(
                *(t[k].double().numpy() for k in ("c", "H")),
                hp.double().numpy(),
                t["L"].double().numpy(),
                lp.double().numpy(),
                t["p"].double().numpy(),
                close_at_eod=close_at_eod,
                fee=FEE,
            )
            np.testing.assert_allclose(got.double().numpy(), want, rtol=0, atol=atol)
            # the float64 scoring path agrees with the reference too, from any input dtype
            got64 = profit_per_day_f64(
                t["c"], t["H"], hp, t["L"], lp, t["p"], close_at_eod=close_at_eod, trading_fee=FEE
            )
            assert got64.dtype == torch.float64
            np.testing.assert_allclose(got64.numpy(), want, rtol=0, atol=1e-12)


def test_reference_agrees_on_random_1d():
    """[N] random days: kernel == reference."""
    check_against_reference(random_days(np.random.default_rng(0), 500), expected_shape=(500,))


def test_reference_agrees_on_random_2d():
    """[S, N] random days: kernel == reference."""
    check_against_reference(random_days(np.random.default_rng(1), (7, 60)), expected_shape=(7, 60))


@pytest.mark.cpu_dependent
def test_reference_agrees_on_random_candidate_batch():
    """[N] days with h, l of shape [K, 1] give [K, N], equal to the reference."""
    rng = np.random.default_rng(2)
    h = rng.uniform(-0.03, 0.03, (33, 1))
    l = rng.uniform(-0.03, 0.03, (33, 1))
    check_against_reference(random_days(rng, 80), h, l, expected_shape=(33, 80))


@pytest.mark.cpu_dependent
def test_reference_agrees_on_random_batched_candidates():
    """[S, 1, N] days with h, l of shape [S, K, 1] give [S, K, N], equal to the reference."""
    rng = np.random.default_rng(4)
    days = {k: v[:, None, :] for k, v in random_days(rng, (5, 40)).items()}
    h = rng.uniform(-0.03, 0.03, (5, 9, 1))
    l = rng.uniform(-0.03, 0.03, (5, 9, 1))
    check_against_reference(days, h, l, expected_shape=(5, 9, 40))


def test_reference_agrees_on_edges():
    """Offsets that land exactly on the day's extremes (ties of every comparison) agree with the reference."""
    rng = np.random.default_rng(5)
    days = random_days(rng, 200)
    days["Hp"][::3] = days["H"][::3]  # Hq == H
    days["Lp"][1::3] = days["L"][1::3]  # Lq == L
    days["Hp"][2::7] = -0.01  # Hq clamps to 0
    days["Lp"][3::7] = 0.01  # Lq clamps to 0
    check_against_reference(days, expected_shape=(200,))


def test_reference_agrees_on_real_data(real_csv):
    """Each real CSV: [N], [S, N], [K, N] and [S, K, N] kernel calls equal the reference."""
    rng = np.random.default_rng(7)
    days = real_days(real_csv, rng)
    n = len(days["c"])
    check_against_reference(days, expected_shape=(n,))

    s, m = 4, n // 4
    grid = {k: v[: s * m].reshape(s, m) for k, v in days.items()}
    check_against_reference(grid, expected_shape=(s, m))

    h = np.linspace(-0.03, 0.03, 13)[:, None]
    l = np.linspace(0.03, -0.03, 13)[:, None]
    check_against_reference(days, h, l, expected_shape=(13, n))

    days3 = {k: v[:, None, :] for k, v in grid.items()}
    h3 = rng.uniform(-0.03, 0.03, (s, 6, 1))
    l3 = rng.uniform(-0.03, 0.03, (s, 6, 1))
    check_against_reference(days3, h3, l3, expected_shape=(s, 6, m))


@pytest.mark.cpu_dependent
def test_candidate_batch_rows_equal_single_calls():
    """Row k of a [K, N] call equals the [N] call with candidate k (float64, exactly).

    Bitwise on any CPU: the kernel is elementwise IEEE float64 arithmetic (one rounding per op, no reduction,
    no fused op), so SIMD width cannot change a result; nothing here is summed.
    """
    rng = np.random.default_rng(8)
    d = {k: torch.as_tensor(v) for k, v in random_days(rng, 64).items()}
    h = torch.linspace(-0.03, 0.03, 11, dtype=torch.float64)[:, None]
    batch = profit_per_day(d["c"], d["H"], d["Hp"] + h, d["L"], d["Lp"] - h, d["p"])
    for k in range(11):
        single = profit_per_day(d["c"], d["H"], d["Hp"] + h[k, 0], d["L"], d["Lp"] - h[k, 0], d["p"])
        assert torch.equal(batch[k], single)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("smoothed", [False, True])
def test_policy_tensor_equals_each_policys_own_call(dtype, smoothed):
    """A bool `close_at_eod` tensor (`[K, 1]` against `[K, N]` candidates) gives each element its own policy's
    number bit for bit, for the kernel and the surrogate (elementwise arithmetic, nothing summed)."""
    from marketsim_opt.kernel import raw_profit_per_day

    rng = np.random.default_rng(9)
    d = {k: torch.as_tensor(v).to(dtype) for k, v in random_days(rng, 64).items()}
    h = torch.linspace(-0.03, 0.03, 11, dtype=dtype)[:, None]
    policy = torch.as_tensor(rng.random(11) < 0.5)[:, None]
    assert 0 < int(policy.sum()) < 11
    if smoothed:
        kernel = lambda **kw: smoothed_profit_per_day(**kw, tau=0.003)  # noqa: E731
    else:
        kernel = raw_profit_per_day
    args = dict(close=d["c"], high=d["H"], high_pred=d["Hp"] + h, low=d["L"], low_pred=d["Lp"] - h, positions=d["p"])
    mixed = kernel(**args, close_at_eod=policy)
    at_close, intraday = kernel(**args, close_at_eod=True), kernel(**args, close_at_eod=False)
    assert not torch.equal(at_close, intraday)
    assert torch.equal(mixed, torch.where(policy, at_close, intraday))


# --- input checks -----------------------------------------------------------------------------

NAMES = ("close", "high", "high_pred", "low", "low_pred", "positions")


def good_inputs(n: int = 4) -> dict[str, torch.Tensor]:
    return {name: torch.zeros(n, dtype=torch.float64) for name in NAMES}


@pytest.mark.parametrize("field", NAMES)
def test_non_tensor_input_names_field(field):
    """A non-tensor input raises ValueError naming it."""
    kw = good_inputs()
    kw[field] = [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=rf"^{field}: expected a torch.Tensor"):
        profit_per_day(**kw)


@pytest.mark.parametrize("field", NAMES)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_dtype_names_field(field, dtype):
    """A non-floating tensor raises ValueError naming it."""
    kw = good_inputs()
    kw[field] = torch.zeros(4, dtype=dtype)
    with pytest.raises(ValueError, match=rf"^{field}: expected a floating-point tensor"):
        profit_per_day(**kw)


@pytest.mark.parametrize("field", NAMES[1:])
def test_other_device_names_field(field):
    """A tensor on another device (meta stands in for a second device) raises ValueError naming it."""
    kw = good_inputs()
    kw[field] = torch.zeros(4, dtype=torch.float64, device="meta")
    with pytest.raises(ValueError, match=rf"^{field}: on device meta"):
        profit_per_day(**kw)
    with pytest.raises(ValueError, match=rf"^{field}: on device meta"):
        profit_per_day_f64(**kw)


def test_all_inputs_on_the_meta_device():
    """Meta tensors hold no values: refused naming the first field, not scored into an empty meta result."""
    kw = {name: t.to("meta") for name, t in good_inputs().items()}
    with pytest.raises(ValueError, match="^close: on the meta device, which holds no values"):
        profit_per_day(**kw)


def test_shapes_that_do_not_broadcast():
    """Shapes that do not broadcast raise ValueError listing each field's shape."""
    kw = good_inputs(6)
    kw["low"] = torch.zeros(5, dtype=torch.float64)
    with pytest.raises(ValueError, match="do not broadcast") as info:
        profit_per_day(**kw)
    assert "'low': (5,)" in str(info.value)
    assert "'close': (6,)" in str(info.value)


def test_broadcasting_shapes_are_accepted():
    """[N] days with a [K, 1] high_pred broadcast to [K, N] (and a scalar tensor fee input is fine)."""
    kw = good_inputs(6)
    kw["high_pred"] = torch.zeros(3, 1, dtype=torch.float64)
    kw["positions"] = torch.tensor(1.0, dtype=torch.float64)
    assert profit_per_day(**kw).shape == (3, 6)


@pytest.mark.parametrize(
    "fee",
    [
        -0.0005,
        -1e-300,
        float("nan"),
        float("inf"),
        np.float32("nan"),
        np.float64(-0.001),
        1.0,
        1e300,
        "0.001",
        None,
        True,
        np.True_,
        torch.tensor(0.001),
        np.array([0.001]),
    ],
)
def test_bad_fee(fee):
    """A negative, non-finite or non-numeric fee (bool, string, tensor, array) raises ValueError naming it."""
    with pytest.raises(ValueError, match="^trading_fee:"):
        profit_per_day(**good_inputs(), trading_fee=fee)
    with pytest.raises(ValueError, match="^trading_fee:"):
        profit_per_day_f64(**good_inputs(), trading_fee=fee)


@pytest.mark.parametrize("fee", [np.float32(0.001), np.float64(0.001), np.float16(0.001), np.int64(0), 0.001])
def test_numpy_fee_scalars_are_accepted(fee):
    """Any real number is a fee: numpy float32 (refused before issue 15) scores like the same Python float."""
    got = scalar(**LONG_CASE, fee=fee)
    assert got == pytest.approx(0.13 - float(fee), abs=1e-15)


@pytest.mark.parametrize("flag", ["yes", "no", "False", 1, 0, 1.0, None, torch.tensor(True), [True]])
def test_close_at_eod_must_be_a_bool(flag):
    """close_at_eod='yes' (accepted before issue 15), 0/1, None or a tensor is a ValueError naming the option."""
    with pytest.raises(ValueError, match="^close_at_eod: expected True or False, got"):
        profit_per_day(**good_inputs(), close_at_eod=flag)
    with pytest.raises(ValueError, match="^close_at_eod: expected True or False, got"):
        profit_per_day_f64(**good_inputs(), close_at_eod=flag)


@pytest.mark.parametrize("flag", [np.True_, np.False_])
def test_close_at_eod_accepts_numpy_bools(flag):
    """A numpy bool is a bool: the same profit as the Python bool of the same value."""
    assert scalar(**LONG_CASE, close_at_eod=flag) == scalar(**LONG_CASE, close_at_eod=bool(flag))


def test_zero_fee_accepted():
    """Fee 0 is valid and removes the fee from docs/kernel.md's long case."""
    assert scalar(**LONG_CASE, fee=0.0) == pytest.approx(0.13, abs=1e-15)
    assert scalar(**LONG_CASE, fee=0) == pytest.approx(0.13, abs=1e-15)


def test_output_dtype_and_device_follow_inputs():
    """The result keeps the inputs' float dtype and device."""
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        kw = {k: v.to(dtype) for k, v in good_inputs().items()}
        out = profit_per_day(**kw)
        assert out.dtype == dtype
        assert out.device == kw["close"].device


# --- the smoothed surrogate (gradient method) --------------------------------------------------


def smoothed(d: dict[str, torch.Tensor], h, l, *, tau, close_at_eod: bool) -> torch.Tensor:
    return smoothed_profit_per_day(
        d["c"], d["H"], d["Hp"] + h, d["L"], d["Lp"] + l, d["p"], tau=tau, close_at_eod=close_at_eod, trading_fee=FEE
    )


@pytest.mark.parametrize("close_at_eod", MODES)
def test_surrogate_converges_to_the_kernel_as_tau_shrinks(close_at_eod):
    """The error falls with tau, and at tau = 1e-12 the surrogate equals the kernel (no ties in random data)."""
    rng = np.random.default_rng(11)
    d = {k: torch.as_tensor(v) for k, v in random_days(rng, 300).items()}
    h = torch.as_tensor(rng.uniform(-0.03, 0.03, (17, 1)))
    l = torch.as_tensor(rng.uniform(-0.03, 0.03, (17, 1)))
    exact = profit_per_day(d["c"], d["H"], d["Hp"] + h, d["L"], d["Lp"] + l, d["p"], close_at_eod=close_at_eod)
    errors = [
        float((smoothed(d, h, l, tau=tau, close_at_eod=close_at_eod) - exact).abs().max())
        for tau in (1e-2, 1e-3, 1e-4, 1e-6)
    ]
    assert errors == sorted(errors, reverse=True) and errors[0] > 1e-3
    limit = smoothed(d, h, l, tau=1e-12, close_at_eod=close_at_eod)
    assert limit.shape == exact.shape == (17, 300)
    np.testing.assert_allclose(limit.numpy(), exact.numpy(), rtol=0, atol=1e-15)


def test_surrogate_at_a_tie_is_half_way_and_the_kernel_is_unchanged():
    """At an exact tie (Lq == L) a sigmoid gives 1/2: the surrogate is the mean of the two sides' limits,
    while the kernel keeps its strict entry (not filled)."""
    d = {k: torch.tensor([v], dtype=torch.float64) for k, v in LONG_CASE.items()}
    d["Lp"] = d["L"].clone()  # Lq == L: a tie of the long entry
    tie = smoothed(d, 0.0, 0.0, tau=1e-9, close_at_eod=True)
    entered = (d["c"] - d["L"]) - FEE
    assert float(tie) == pytest.approx(0.5 * float(entered), abs=1e-15)
    assert scalar(**{**LONG_CASE, "Lp": LONG_CASE["L"]}, close_at_eod=True) == 0.0


@pytest.mark.parametrize("close_at_eod", MODES)
def test_surrogate_has_a_gradient_where_the_kernel_has_none(close_at_eod):
    """The kernel's gradient in (h, l) is zero inside a cell except for its linear parts; the surrogate's
    entry steps add slope near every breakpoint (autograd through the sigmoids)."""
    rng = np.random.default_rng(12)
    d = {k: torch.as_tensor(v) for k, v in random_days(rng, 50).items()}
    d["p"] = torch.ones(50, dtype=torch.float64)  # longs only: the l side has entry steps
    l = torch.tensor(-0.004, dtype=torch.float64, requires_grad=True)
    (g_smooth,) = torch.autograd.grad(smoothed(d, 0.0, l, tau=1e-2, close_at_eod=close_at_eod).sum(), l)
    l2 = torch.tensor(-0.004, dtype=torch.float64, requires_grad=True)
    exact = profit_per_day(d["c"], d["H"], d["Hp"], d["L"], d["Lp"] + l2, d["p"], close_at_eod=close_at_eod)
    (g_exact,) = torch.autograd.grad(exact.sum(), l2)
    # the kernel's slope in l is minus the number of entered longs whose Lq is not clamped: a count, no steps
    lq = d["Lp"] - 0.004
    entered = float(((lq.clamp(-1, 0) > d["L"]) & (lq < 0) & (lq > -1)).sum())
    assert float(g_exact) == pytest.approx(-entered, abs=1e-9)
    assert abs(float(g_smooth) - float(g_exact)) > 1.0


def test_surrogate_broadcasts_like_the_kernel():
    """[S, 1, N] days with [S, K, 1] offsets give [S, K, N], and a tau tensor broadcasts too."""
    rng = np.random.default_rng(13)
    d = {k: torch.as_tensor(v)[:, None, :] for k, v in random_days(rng, (3, 20)).items()}
    h = torch.as_tensor(rng.uniform(-0.03, 0.03, (3, 5, 1)))
    out = smoothed(d, h, -h, tau=torch.full((3, 1, 1), 1e-3, dtype=torch.float64), close_at_eod=False)
    assert out.shape == (3, 5, 20) and out.dtype == torch.float64


# --- bad input in bulk (hypothesis) ------------------------------------------------------------

# (label, a replacement for a good float64 [4] input, whether it is still valid)
KERNEL_INPUT_CHANGES = [
    ("list", lambda t: t.tolist(), False),
    ("float", lambda t: 0.5, False),
    ("None", lambda t: None, False),
    ("ndarray", lambda t: t.numpy(), False),
    ("int64", lambda t: t.long(), False),
    ("bool", lambda t: t > 0, False),
    ("complex", lambda t: t.to(torch.complex128), False),
    ("[5] against [4]", lambda t: torch.zeros(5, dtype=t.dtype), False),
    ("[3, 2]", lambda t: torch.zeros(3, 2, dtype=t.dtype), False),
    ("float32", lambda t: t.float(), True),
    ("[3, 1] candidates", lambda t: torch.zeros(3, 1, dtype=t.dtype), True),
    ("0-d", lambda t: t[0], True),
    ("requires_grad", lambda t: t.clone().requires_grad_(True), True),
]


@settings(max_examples=60)
@given(
    changes=st.dictionaries(st.sampled_from(NAMES), st.sampled_from(KERNEL_INPUT_CHANGES), max_size=3),
    close_at_eod=st.one_of(st.booleans(), st.sampled_from([np.True_, None, "yes", "no", 0, 1, 1.0])),
    fee=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([np.float32(0.001), "0.001", True, None])
    ),
)
def test_kernel_bad_input_in_bulk(changes, close_at_eod, fee):
    """profit_per_day: any bad input, flag or fee is a ValueError naming it; valid ones give a tensor of the
    broadcast shape."""
    kw = good_inputs()
    for name, (_, change, _) in changes.items():
        kw[name] = change(kw[name])
    bad = {name for name, (_, _, ok) in changes.items() if not ok}
    if not isinstance(close_at_eod, (bool, np.bool_)):
        bad.add("close_at_eod")
    if isinstance(fee, (bool, str)) or fee is None or not (0 <= fee < 1):
        bad.add("trading_fee")
    try:
        out = profit_per_day(**kw, close_at_eod=close_at_eod, trading_fee=fee)
    except ValueError as exc:
        assert bad, f"valid input raised: {exc}"
        assert any(name in str(exc) for name in bad), (bad, str(exc))
        return
    assert not bad, f"accepted invalid {sorted(bad)}"
    assert out.shape == torch.broadcast_shapes(*(tuple(kw[n].shape) for n in NAMES))
    assert torch.isfinite(out).all()
