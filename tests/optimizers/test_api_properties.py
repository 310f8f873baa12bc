"""Bad input in bulk (hypothesis) for `optimize_entry_exit` and `optimize_always_on`.

Each example starts from a valid call on a tiny problem, replaces some arguments by drawn values (wrong types,
shapes, dtypes, devices, NaN/inf, bool-ish strings, negative or huge budgets, bad bounds, seeds and methods)
and checks the one contract: when every argument is valid (by the rules written out below, independently of
the package's checks) the call returns a sane result; otherwise it raises a ValueError whose message starts
with an argument's name and names one of the replaced arguments.  Never another exception, never silence.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from marketsim_opt import METHODS, optimize_always_on, optimize_entry_exit
from marketsim_opt.data import synthetic_problem
from marketsim_opt.strategies import entry_exit_positions

N = 5
FIELDS = ("close", "high", "high_pred", "low", "low_pred")
#: Methods drawn for the valid calls: the cheap ones (each call stays in milliseconds at budgets <= 30).
FAST_METHODS = ("exact", "grid", "gradient", "direct", "nevergrad:OnePlusOne")


#: Every argument name an error may start with.
ARGUMENTS = (*FIELDS, "positions", "close_at_eod", "is_crypto", "trading_fee", "bounds", "method", "budget", "seed")


def good_tensors() -> dict[str, torch.Tensor]:
    """One series as the original simulator passes it: float32 `[N]` tensors (the problem holds them as `[1, N]`)."""
    problem = synthetic_problem(N, 3)
    tensors = {f: getattr(problem, f)[0] for f in FIELDS}
    tensors["positions"] = entry_exit_positions(tensors["high_pred"], tensors["low_pred"])
    return tensors


# (label, replacement of a good float32 [N] tensor, whether the call stays valid)
TENSOR_CHANGES = [
    ("list", lambda t: t.tolist(), False),
    ("ndarray", lambda t: t.numpy(), False),
    ("float", lambda t: 0.01, False),
    ("None", lambda t: None, False),
    ("int64", lambda t: t.long(), False),
    ("bool", lambda t: t > 0, False),
    ("complex", lambda t: t.to(torch.complex64), False),
    ("float64 among float32", lambda t: t.double(), False),
    ("shorter", lambda t: t[:-1], False),
    ("0-d", lambda t: t[0], False),
    ("empty", lambda t: t[:0], False),
    ("3-d", lambda t: t[None, None], False),
    ("[2, N]", lambda t: t.expand(2, N), False),
    ("NaN", lambda t: torch.full_like(t, math.nan), False),
    ("inf", lambda t: torch.full_like(t, -math.inf), False),
    ("meta device", lambda t: t.to("meta"), False),
    ("requires_grad", lambda t: t.clone().requires_grad_(True), True),
    ("non-contiguous copy", lambda t: torch.stack([t, t], dim=-1)[:, 0], True),
]

reals = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 10**6), st.floats(-0.2, 0.2))
junk = st.one_of(st.none(), st.text(max_size=4), st.booleans(), st.lists(st.integers(), max_size=2))
flags = st.one_of(st.sampled_from([True, False, np.True_, np.False_, None]), junk, st.integers(-1, 2), st.floats())
OPTIONS = {
    "close_at_eod": flags,
    "trading_fee": st.one_of(
        reals, st.floats(0, 0.01), junk, st.sampled_from([np.float32(0.001), np.float16(0.0), np.int64(0)])
    ),
    "bounds": st.one_of(
        st.tuples(
            st.tuples(st.one_of(st.floats(-0.1, 0.0), reals, junk), st.one_of(st.floats(0.0, 0.1), reals, junk)),
            st.tuples(st.one_of(st.floats(-0.1, 0.0), reals, junk), st.one_of(st.floats(0.0, 0.1), reals, junk)),
        ),
        junk,
        st.tuples(st.tuples(st.floats(-1, 1), st.floats(-1, 1))),
    ),
    "method": st.one_of(st.sampled_from(FAST_METHODS), st.text(max_size=12), st.sampled_from(["nevergrad:", "Grid"])),
    "budget": st.one_of(
        st.none(),
        st.integers(-5, 30),
        st.integers(10**6 + 1, 10**12),
        st.floats(-1, 30),
        st.sampled_from([7.0, 1e7, np.int64(9)]),
        junk,
    ),
    "seed": st.one_of(st.integers(-(2**40), 2**40), st.floats(), junk, st.sampled_from([np.int64(3), 2**32 - 1])),
}


def is_flag(value, *, none: bool) -> bool:
    return isinstance(value, (bool, np.bool_)) or (none and value is None)


def is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def valid_option(name: str, value, method: str) -> bool:
    """The documented rules, written out here independently of the package's checks."""
    if name == "close_at_eod":
        return is_flag(value, none=True)
    if name == "is_crypto":
        return is_flag(value, none=False)
    if name == "trading_fee":  # None: the default fee (by is_crypto for always-on)
        return value is None or (is_real(value) and math.isfinite(value) and 0 <= value < 1)
    if name == "method":
        return value in METHODS
    if name == "budget":
        if value is None:
            return True
        whole = isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())
        return is_real(value) and whole and 1 <= value <= 10**6
    if name == "seed":
        return is_real(value) and isinstance(value, numbers.Integral) and 0 <= value <= 2**32 - 1
    if name == "bounds":
        try:
            (h_lo, h_hi), (l_lo, l_hi) = value
        except (TypeError, ValueError):
            return False
        pairs = ((h_lo, h_hi), (l_lo, l_hi))
        return all(
            is_real(lo) and is_real(hi) and max(abs(lo), abs(hi)) <= 100 and lo < hi and math.isfinite(lo - hi)
            for lo, hi in pairs
        )
    raise AssertionError(name)


calls = st.fixed_dictionaries(
    {
        "strategy": st.sampled_from(["entry_exit", "always_on"]),
        "tensor_changes": st.dictionaries(
            st.sampled_from((*FIELDS, "positions")), st.sampled_from(TENSOR_CHANGES), max_size=2
        ),
    },
    optional={**OPTIONS, "is_crypto": flags},
)


def run(case: dict):
    tensors = good_tensors()
    for field, (_, change, _) in case["tensor_changes"].items():
        tensors[field] = change(tensors[field])
    options = {k: v for k, v in case.items() if k in OPTIONS or k == "is_crypto"}
    options.setdefault("method", "grid")
    options.setdefault("budget", 12)
    args = [tensors[f] for f in FIELDS]
    if case["strategy"] == "entry_exit":
        options.pop("is_crypto", None)
        return optimize_entry_exit(*args, tensors["positions"], **options), options
    return optimize_always_on(*args, **options), options


def invalid_arguments(case: dict) -> set[str]:
    """The names of the arguments this case made invalid."""
    bad = {field for field, (_, _, ok) in case["tensor_changes"].items() if not ok}
    if case["strategy"] == "always_on":
        bad.discard("positions")  # always-on takes no positions
    method = case.get("method", "grid")
    for name in (*OPTIONS, "is_crypto"):
        if name == "is_crypto" and case["strategy"] == "entry_exit":
            continue
        if name in case and not valid_option(name, case[name], method):
            bad.add(name)
    return bad


@settings(max_examples=60)
@given(case=calls)
def test_bad_arguments_end_in_an_error_naming_one_of_them_or_a_sane_result(case):
    """Valid calls give a finite profit inside the bounds; any invalid argument gives a ValueError naming it."""
    bad = invalid_arguments(case)
    event(f"invalid arguments: {len(bad)}")
    if case["strategy"] == "always_on" and set(case["tensor_changes"]) == {"positions"}:
        case = {**case, "tensor_changes": {}}
    try:
        result, options = run(case)
    except ValueError as exc:
        message = str(exc)
        assert bad, f"a valid call raised: {message}"
        assert message.split(":")[0] in ARGUMENTS, message
        assert any(name in message for name in bad), (bad, message)
        return
    assert not bad, f"invalid {sorted(bad)} accepted: {options}"
    (h_lo, h_hi), (l_lo, l_hi) = result.bounds
    assert result.n_sims == 1 and result.success.tolist() == [True]
    one = result.scalar
    assert np.isfinite(one.profit)
    assert h_lo - 1e-6 <= one.h <= h_hi + 1e-6 and l_lo - 1e-6 <= one.l <= l_hi + 1e-6
    assert one.nfev >= 1
    assert isinstance(one.close_at_eod, bool)


@pytest.mark.parametrize(("label", "change", "ok"), TENSOR_CHANGES, ids=[c[0] for c in TENSOR_CHANGES])
@pytest.mark.parametrize("field", (*FIELDS, "positions"))
def test_each_tensor_change_on_each_field(field, label, change, ok):
    """Every tensor change on every field, one at a time: a ValueError naming that field, or a sane result."""
    case = {"strategy": "entry_exit", "tensor_changes": {field: (label, change, ok)}, "method": "exact"}
    if ok:
        result, _ = run(case)
        assert result.n_sims == 1 and np.isfinite(result.scalar.profit)
        return
    with pytest.raises(ValueError, match=field) as info:
        run(case)
    assert info.value.args[0].split(":")[0] in ARGUMENTS


one_option = st.one_of(*(st.tuples(st.just(name), values) for name, values in {**OPTIONS, "is_crypto": flags}.items()))


@settings(max_examples=60)
@given(option=one_option, method=st.sampled_from(FAST_METHODS))
def test_one_bad_option_is_named_first(option, method):
    """With every other argument valid, an invalid option raises a ValueError that starts with its name; a valid
    value runs (always-on, so is_crypto applies)."""
    name, value = option
    case = {"strategy": "always_on", "tensor_changes": {}, "method": method, name: value}
    if valid_option(name, value, method):
        event("valid")
        result, _ = run(case)
        assert result.n_sims == 1 and np.isfinite(result.scalar.profit) and result.scalar.nfev >= 1
        return
    event(f"invalid {name}")
    with pytest.raises(ValueError, match=f"^{name}: "):
        run(case)
