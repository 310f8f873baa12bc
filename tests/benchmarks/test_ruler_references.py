"""benchmarks/ruler/references.py and the committed frozen references."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.ruler import references
from marketsim_opt import quality, workloads
from marketsim_opt.optimizers.api import DEFAULT_BOUNDS, optimize
from marketsim_opt.strategies import always_on_objective, entry_exit_objective
from tests.benchmarks.test_ruler_scorer import frozen_problem

OBJECTIVES = {"entry_exit": entry_exit_objective, "always_on": always_on_objective}
BUILDERS = {"profile": workloads.profile, "backtest": workloads.backtest}


def test_committed_references_load():
    profile, backtest = references.load("profile"), references.load("backtest")
    assert (profile.n_sims, profile.close.shape, profile.policies) == (1, (1, 200), (False,))
    assert (backtest.n_sims, backtest.close.shape, backtest.policies) == (70, (70, 6), (False, True))
    for ref in (profile, backtest):
        assert ref.bounds == DEFAULT_BOUNDS
        assert set(ref.suprema) == {(s, p) for s in references.STRATEGIES for p in references.POLICIES}
        assert "torch" in ref.frozen_from
        for strategy in references.STRATEGIES:
            best = np.max([ref.suprema[(strategy, p)] for p in ref.policies], axis=0)
            np.testing.assert_array_equal(ref.supremum(strategy), best)
    assert profile.next_day is None
    day = backtest.next_day
    for name in references.NEXT_DAY_FIELDS:
        values = getattr(day, name)
        assert values.shape == (70,) and values.dtype == np.float64
    assert len(day.dates) == 70 and len(set(day.dates)) == 70


def test_supremum_is_over_the_workloads_policies_only():
    """profile optimizes intraday only, so its supremum ignores the close_at_eod suprema."""
    ref = references.load("profile")
    np.testing.assert_array_equal(ref.supremum("always_on"), ref.suprema[("always_on", False)])
    with pytest.raises(ValueError, match="^strategy: "):
        ref.supremum("maxdiff")


def _workload_data(name: str) -> dict:
    p = BUILDERS[name]().problem
    return dict(
        **{f: getattr(p, f).double().numpy() for f in references.FIELDS},
        trading_fee=p.trading_fee,
        is_crypto=p.is_crypto,
    )


@pytest.mark.parametrize("workload", references.WORKLOADS)
def test_frozen_data_is_the_current_workload(workload):
    references.check_same_data(references.load(workload), **_workload_data(workload))


@pytest.mark.parametrize("workload", references.WORKLOADS)
def test_exact_solver_reproduces_every_frozen_supremum(workload):
    """The package's exact solver on the frozen data: every supremum to 1e-12, and its point's regret ~ 0."""
    ref = references.load(workload)
    problem = frozen_problem(ref)
    for strategy in references.STRATEGIES:
        for policy in references.POLICIES:
            result = optimize(problem, strategy, close_at_eod=policy, method="exact", bounds=ref.bounds)
            np.testing.assert_allclose(result.supremum, ref.suprema[(strategy, policy)], rtol=0, atol=1e-12)
        searched = None if len(ref.policies) == 2 else ref.policies[0]
        result = optimize(problem, strategy, close_at_eod=searched, method="exact", bounds=ref.bounds)
        regret = references.regret_bp(ref, strategy, result.h, result.l, result.close_at_eod)
        assert regret.shape == (ref.n_sims,)
        assert np.all(np.abs(regret) <= 1e-6), regret


def test_regret_units_agree_with_the_package():
    """Basis points like `marketsim_opt.quality.regret_bp`, for a result that is not optimal."""
    work = workloads.profile()
    result = workloads.run(work, "entry_exit", method="grid", budget=100)
    ours = references.regret_bp(references.load("profile"), "entry_exit", result.h, result.l, result.close_at_eod)
    theirs = quality.regret_bp(result)
    assert theirs > 1.0  # a 100-point grid is far from the optimum: the comparison below means something
    assert ours[0] == pytest.approx(theirs, abs=1e-7)


def test_regret_is_positive_at_zero_offsets():
    ref = references.load("backtest")
    regret = references.regret_bp(ref, "always_on", 0.0, 0.0, True)
    assert regret.shape == (70,) and np.all(regret >= -1e-9) and regret.max() > 1.0


@pytest.fixture
def copied(tmp_path):
    """A copy of the committed references, to edit."""
    for name in references.WORKLOADS:
        shutil.copy(references.REFERENCE_DIR / f"{name}.json", tmp_path / f"{name}.json")
    return tmp_path


def _edit(directory, mutate, workload: str = "profile"):
    path = directory / f"{workload}.json"
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))


def _set(keys, value):
    def mutate(doc):
        obj = doc
        for k in keys[:-1]:
            obj = obj[k]
        obj[keys[-1]] = value

    return mutate


def _delete(keys):
    def mutate(doc):
        obj = doc
        for k in keys[:-1]:
            obj = obj[k]
        del obj[keys[-1]]

    return mutate


BAD_EDITS = {
    "missing fee": (_delete(["trading_fee"]), "trading_fee: missing"),
    "missing strategy": (_delete(["suprema", "always_on"]), "suprema.always_on: missing"),
    "missing policy": (_delete(["suprema", "entry_exit", "intraday"]), "suprema.entry_exit.intraday: missing"),
    "missing field": (_delete(["data", "low_pred"]), "data.low_pred: missing"),
    "NaN datum": (_set(["data", "close", 0, 3], math.nan), r"data.close\[0\]\[3\]: expected a finite number, got NaN"),
    "inf supremum": (_set(["suprema", "always_on", "intraday", 0], math.inf), r"suprema.always_on.intraday\[0\]"),
    "short supremum": (
        _set(["suprema", "entry_exit", "close_at_eod"], []),
        "suprema.entry_exit.close_at_eod: expected 1 finite numbers, got 0",
    ),
    "long supremum": (
        _set(["suprema", "entry_exit", "intraday"], [0.1, 0.2]),
        "suprema.entry_exit.intraday: expected 1",
    ),
    "short row": (_set(["data", "high", 0], [0.01] * 199), r"data.high: expected shape \[1, 200\]"),
    "string bool": (_set(["is_crypto"], "false"), 'is_crypto: expected a JSON boolean.*"false"'),
    "int bool": (_set(["is_crypto"], 0), "is_crypto: expected a JSON boolean"),
    "string policy": (_set(["policies"], ["false"]), r"policies\[0\]: expected a JSON boolean"),
    "empty policies": (_set(["policies"], []), "policies: expected a non-empty list"),
    "repeated policy": (_set(["policies"], [False, False]), "policies: expected distinct"),
    "format 1": (_set(["format"], 1), "format: expected 2, got 1"),
    "format string": (_set(["format"], "2"), "format: expected 2"),
    "fee 1": (_set(["trading_fee"], 1.0), r"trading_fee: expected a number in \[0, 1\)"),
    "fee bool": (_set(["trading_fee"], False), "trading_fee: expected a number"),
    "bounds reversed": (_set(["bounds", 1], [0.03, -0.03]), r"bounds\[1\]: l lower bound"),
    "bounds shape": (_set(["bounds"], [[-0.03, 0.03]]), "bounds: expected"),
    "other workload": (_set(["workload"], "backtest"), "workload: expected 'profile'"),
    "data not rows": (_set(["data", "close"], 0.01), "data.close: expected a non-empty list of rows"),
    "frozen_from number": (_set(["frozen_from"], 3), "frozen_from: expected a string"),
    "missing next_day": (_delete(["next_day"]), "next_day: missing"),
    "profile next_day": (_set(["next_day"], {"close": [0.01]}), r"next_day: expected null \(profile has no test"),
}

#: Bad edits of the backtest's `next_day` block, with the message expected after the file name.
BAD_NEXT_DAY = {
    "null": (_set(["next_day"], None), "next_day: expected an object of the test days .*got null"),
    "a list": (_set(["next_day"], [1.0]), "next_day: expected an object .*got list"),
    "missing field": (_delete(["next_day", "low_pred"]), "next_day.low_pred: missing"),
    "missing dates": (_delete(["next_day", "dates"]), "next_day.dates: missing"),
    "short field": (_set(["next_day", "high"], [0.01] * 69), "next_day.high: expected 70 finite numbers, got 69"),
    "NaN": (_set(["next_day", "close", 7], math.nan), r"next_day.close\[7\]: expected a finite number, got NaN"),
    "string move": (_set(["next_day", "low", 0], "0.01"), r"next_day.low\[0\]: expected a finite number"),
    "short dates": (_set(["next_day", "dates"], ["2021-01-01"]), "next_day.dates: expected 70 date strings.*got 1"),
    "dates not a list": (_set(["next_day", "dates"], "2021"), "next_day.dates: expected 70 date strings.*got str"),
    "number date": (_set(["next_day", "dates", 3], 20210101), r"next_day.dates\[3\]: expected a non-empty string"),
    "empty date": (_set(["next_day", "dates", 0], ""), r"next_day.dates\[0\]: expected a non-empty string"),
}


@pytest.mark.parametrize("edit", BAD_NEXT_DAY, ids=list(BAD_NEXT_DAY))
def test_bad_next_day_names_file_and_field(copied, edit):
    mutate, message = BAD_NEXT_DAY[edit]
    _edit(copied, mutate, "backtest")
    with pytest.raises(references.ReferenceError, match=rf"backtest\.json: {message}"):
        references.load("backtest", copied)


@pytest.mark.parametrize("edit", BAD_EDITS, ids=list(BAD_EDITS))
def test_bad_file_names_file_and_field(copied, edit):
    mutate, message = BAD_EDITS[edit]
    _edit(copied, mutate)
    with pytest.raises(references.ReferenceError, match=rf"profile\.json: {message}"):
        references.load("profile", copied)


def test_top_level_not_an_object(copied):
    (copied / "profile.json").write_text("[1, 2]")
    with pytest.raises(references.ReferenceError, match=r"profile\.json: \(top level\): expected a JSON object"):
        references.load("profile", copied)


def test_bad_json_names_the_file(copied):
    path = copied / "backtest.json"
    path.write_text(path.read_text()[:-40])
    with pytest.raises(references.ReferenceError, match=r"backtest\.json: not a readable JSON file"):
        references.load("backtest", copied)


def test_missing_file_names_the_regenerate_command(tmp_path):
    with pytest.raises(
        references.ReferenceError, match=r"profile\.json: .*missing.*python tools/freeze_references\.py"
    ):
        references.load("profile", tmp_path)


def test_unknown_workload():
    with pytest.raises(ValueError, match="^workload: "):
        references.load("scaling")


def test_a_rewritten_file_is_read_again(copied):
    """load() caches by path, modification time and size: an edit after a load is seen."""
    assert references.load("profile", copied).trading_fee == 0.0015
    _edit(copied, _set(["trading_fee"], 0.0025))
    assert references.load("profile", copied).trading_fee == 0.0025


def test_loaded_arrays_are_read_only():
    ref = references.load("backtest")
    with pytest.raises(ValueError):
        ref.close[0, 0] = 1.0
    with pytest.raises(ValueError):
        ref.suprema[("entry_exit", True)][0] = 1.0


@given(
    field=st.sampled_from(references.FIELDS),
    row=st.integers(0, 69),
    col=st.integers(0, 5),
    bad=st.sampled_from([math.nan, math.inf, -math.inf, "0.01", None, True, [0.01]]),
)
def test_any_bad_datum_is_named(tmp_path_factory, field, row, col, bad):
    directory = tmp_path_factory.mktemp("refs")
    shutil.copy(references.REFERENCE_DIR / "backtest.json", directory / "backtest.json")
    _edit(directory, _set(["data", field, row, col], bad), "backtest")
    with pytest.raises(references.ReferenceError, match=rf"backtest\.json: data\.{field}\[{row}\]\[{col}\]: "):
        references.load("backtest", directory)


def test_check_same_data_accepts_float32_last_bits():
    """A relative change of one float32 ulp (about 6e-8) is the same data."""
    data = _workload_data("backtest")
    data["high"] = np.nextafter(data["high"].astype(np.float32), np.float32(1.0)).astype(np.float64)
    references.check_same_data(references.load("backtest"), **data)


@pytest.mark.parametrize("workload, field, index", [("profile", "high_pred", (0, 17)), ("backtest", "low", (41, 3))])
def test_check_same_data_names_field_and_index(workload, field, index):
    data = _workload_data(workload)
    changed = data[field].copy()
    flat = index if changed.ndim == 2 else index[1:]
    changed[flat] *= 1 + 1e-5
    data[field] = changed
    with pytest.raises(references.ReferenceError) as info:
        references.check_same_data(references.load(workload), **data)
    message = str(info.value)
    assert f"({workload}): {field}{list(index)}: " in message
    assert repr(float(changed[flat])) in message
    assert repr(float(getattr(references.load(workload), field)[index])) in message
    assert message.endswith("regenerate with `python tools/freeze_references.py` if the change is deliberate")


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(trading_fee=0.0005), "trading_fee: 0.0005 now, 0.0015 frozen"),
        (dict(is_crypto=True), "is_crypto: True now, False frozen"),
        (dict(close=np.zeros(199)), r"close: shape \[1, 199\] now, \[1, 200\] frozen"),
    ],
)
def test_check_same_data_other_fields(change, message):
    data = _workload_data("profile") | change
    with pytest.raises(references.ReferenceError, match=rf"profile\.json \(profile\): {message}"):
        references.check_same_data(references.load("profile"), **data)


def test_frozen_problem_is_exactly_the_float32_data():
    """The cast back to float32 is exact: the frozen values are float32 values."""
    ref = references.load("backtest")
    for f in references.FIELDS:
        values = getattr(ref, f)
        np.testing.assert_array_equal(torch.tensor(values, dtype=torch.float32).double().numpy(), values)


# --- the next day -------------------------------------------------------------------------------------------


def _package_next_day() -> dict:
    from marketsim_opt import oos

    bars = oos.bundled_series()
    day = oos.next_days(bars, sims=70)
    return {f: day[f] for f in references.NEXT_DAY_FIELDS} | {"dates": [bars.time[i + 1] for i in day["index"]]}


def test_frozen_next_day_is_the_package_walk_forward_test_day():
    references.check_same_next_day(references.load("backtest"), **_package_next_day())


def test_next_day_follows_each_fitted_window():
    """Simulation k's test day is the bar after its window: the last fitted day of simulation k - 1 (whose window
    ends one bar later), and never a day of simulation k's own window (windows move back one bar per simulation)."""
    ref = references.load("backtest")
    for name in references.NEXT_DAY_FIELDS:
        test, fitted = getattr(ref.next_day, name), getattr(ref, name)
        np.testing.assert_allclose(test[1:], fitted[:-1, -1], rtol=references.DATA_RTOL, atol=0.0)
        np.testing.assert_allclose(fitted[1:, 1:], fitted[:-1, :-1], rtol=0, atol=0)  # one bar per simulation
    assert not np.isclose(ref.next_day.close[0], ref.close[0], rtol=1e-6, atol=0).any()  # sim 0's day is unseen
    assert list(ref.next_day.dates) == sorted(ref.next_day.dates, reverse=True)


@pytest.mark.parametrize(
    "field, sim, change, message",
    [
        ("high_pred", 12, 1 + 1e-9, r"next_day\.high_pred\[12\]: "),
        ("close", 0, -1.0, r"next_day\.close\[0\]: "),
    ],
)
def test_check_same_next_day_names_field_and_simulation(field, sim, change, message):
    data = _package_next_day()
    data[field] = data[field].copy()
    data[field][sim] *= change
    with pytest.raises(references.ReferenceError, match=rf"backtest\.json \(backtest\): {message}.* now, .* frozen; "):
        references.check_same_next_day(references.load("backtest"), **data)


def test_check_same_next_day_dates_and_shapes():
    ref = references.load("backtest")
    data = _package_next_day()
    moved = dict(data, dates=["2000-01-01", *data["dates"][1:]])
    with pytest.raises(references.ReferenceError, match=r"next_day\.dates\[0\]: '2000-01-01' now, '2021-02-03' frozen"):
        references.check_same_next_day(ref, **moved)
    with pytest.raises(references.ReferenceError, match=r"next_day\.low: shape \[69\] now, \[70\] frozen"):
        references.check_same_next_day(ref, **dict(data, low=data["low"][:-1]))
    with pytest.raises(references.ReferenceError, match=r"profile\.json \(profile\): next_day: none frozen"):
        references.check_same_next_day(references.load("profile"), **data)


def test_next_day_loss_is_minus_the_profit_in_bp():
    from benchmarks.ruler import scorer

    ref = references.load("backtest")
    loss = references.next_day_loss_bp(ref, "always_on", 0.002, -0.001, True)
    np.testing.assert_allclose(loss, -1e4 * scorer.next_day_profit(ref, "always_on", 0.002, -0.001, True), rtol=1e-15)
    assert loss.shape == (70,) and np.any(np.abs(loss) > 1.0)
    with pytest.raises(ValueError, match="^next_day: "):
        references.next_day_loss_bp(references.load("profile"), "always_on", 0.0, 0.0, False)


def test_next_day_arrays_are_read_only():
    day = references.load("backtest").next_day
    with pytest.raises(ValueError):
        day.close[0] = 1.0
