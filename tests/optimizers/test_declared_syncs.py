"""The library's `syncs` is what really happens: every read-back the package makes is declared.

`OptimizeResult.syncs` is the package's own account (`instrument.accounting`: declared read-backs only, no
per-call cost).  Here an observing `count_syncs` region (a torch function mode that sees every read-back,
declared or not) is opened around each optimization, and the two must agree, method by method: a read-back
the package makes without declaring it (a bare `.item()`, `bool(tensor)`, `if tensor.any():`) shows up as a
difference.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from marketsim_opt import METHODS, DataError, count_syncs, optimize_always_on, optimize_entry_exit, workloads
from marketsim_opt.data import synthetic_problem
from marketsim_opt.instrument import accounting
from marketsim_opt.optimizers import direct

#: Methods cheap enough to run on the [70, 6] backtest at budget 20 (70 optimizers per policy for the host-side
#: ones); every method runs on `profile`.
CHEAP_ON_BACKTEST = ("direct", "grid", "exact", "gradient", "nevergrad:OnePlusOne", "optuna:TPE")
BUDGET = 20


@pytest.fixture(scope="module")
def loads() -> dict[str, workloads.Workload]:
    return {"profile": workloads.profile(), "backtest": workloads.backtest()}


def observed_run(workload: workloads.Workload, strategy: str, method: str):
    """`workloads.run` inside an observing region and an accounting region: (result, observed, accounted)."""
    budget = None if method == "exact" else BUDGET
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optimizer libraries' own warnings are not this test's business
        with count_syncs() as seen, accounting() as declared:
            res = workloads.run(workload, strategy, method=method, budget=budget)
    return res, seen, declared


CASES = [
    (method, name, strategy)
    for method in METHODS
    for name in ("profile", "backtest")
    for strategy in workloads.STRATEGIES
    if name == "profile" or method in CHEAP_ON_BACKTEST
]


@pytest.mark.parametrize(("method", "name", "strategy"), CASES, ids=["-".join(case) for case in CASES])
def test_reported_syncs_are_the_observed_ones(loads, method, name, strategy):
    """res.syncs equals what an observer saw, and the declared read-backs match the observed ones by method;
    the observer's evaluations are the reported nfev."""
    res, seen, declared = observed_run(loads[name], strategy, method)
    assert res.syncs == seen.syncs, (seen.by_method, declared.by_method)
    assert declared.by_method == seen.by_method
    assert declared.syncs == res.syncs  # the enclosing account is the sum of the call's own regions
    assert seen.evaluations == declared.evaluations == int(np.sum(res.nfev))
    # At least the input check (`workloads.run` calls the historical entry points, which validate their tensors
    # inside the call) and the answer's read-back.
    assert res.syncs >= 2


def test_stacked_run_syncs_are_the_observed_ones(loads):
    """`run_stacked` (both strategies in one `optimize` call) declares its one read-back."""
    with count_syncs() as seen:
        res = workloads.run_stacked(loads["backtest"], method="exact")
    assert res.syncs == seen.syncs == 1
    assert seen.by_method == {"numpy": 1}  # instrument.read_array: one .numpy() on CPU


def test_an_undeclared_readback_is_caught(loads, monkeypatch):
    """The comparison can fail: DIRECT reading its candidates back with a bare `.item()` is seen by the observer
    (one per evaluation) but missing from the result's syncs."""
    monkeypatch.setattr(direct, "read_item", lambda t: t.item())
    res, seen, declared = observed_run(loads["profile"], "entry_exit", "direct")
    nfev = res.scalar.nfev  # the profile workload is one series (S = 1)
    assert seen.by_method["item"] == nfev
    assert res.syncs == seen.syncs - nfev
    assert "item" not in declared.by_method


# --- the public optimizations with unusual but valid inputs, and with rejected ones -----------------------


def tensors_of(problem):
    """The five day tensors in the historical argument order: `[N]` for one series (as the original simulator
    passes them), `[S, N]` otherwise."""
    tensors = (problem.close, problem.high, problem.high_pred, problem.low, problem.low_pred)
    return tuple(t[0] for t in tensors) if problem.n_sims == 1 else tensors


def unusual_calls():
    """(id, call) pairs: valid inputs off the workloads' beaten path (one `[N]` series, `[S, N]`, float64, crypto,
    zero positions, a narrow box, budget 1, the other policy and the policy search)."""
    one = synthetic_problem(12, 3)
    batch = synthetic_problem(12, 4).concat(synthetic_problem(12, 5))
    wide = one.to(dtype=torch.float64)
    calls = {
        "zero positions, policy search": lambda: optimize_entry_exit(
            *tensors_of(one), torch.zeros_like(tensors_of(one)[0]), close_at_eod=None, budget=BUDGET
        ),
        "batched, close at eod, narrow box": lambda: optimize_entry_exit(
            *tensors_of(batch),
            torch.ones_like(batch.close),
            close_at_eod=True,
            bounds=((-1e-4, 1e-4), (0.0, 1e-4)),
            budget=BUDGET,
        ),
        "float64 crypto, budget 1": lambda: optimize_always_on(*tensors_of(wide), is_crypto=True, budget=1),
        "batched grid, policy search": lambda: optimize_always_on(
            *tensors_of(batch), close_at_eod=None, method="grid", budget=BUDGET
        ),
        "nevergrad, seed": lambda: optimize_always_on(
            *tensors_of(one), method="nevergrad:OnePlusOne", budget=BUDGET, seed=2**32 - 1
        ),
    }
    return list(calls.items())


@pytest.mark.parametrize("call", [c for _, c in unusual_calls()], ids=[i for i, _ in unusual_calls()])
def test_unusual_valid_inputs_declare_every_readback(call):
    """The public optimizations on valid inputs off the beaten path: reported syncs are the observed ones."""
    with count_syncs() as seen, accounting() as declared:
        res = call()
    assert res.syncs == seen.syncs
    assert declared.by_method == seen.by_method


def bad_values():
    """(id, function, args, message) for inputs whose values are rejected after being read back."""
    p = synthetic_problem(8, 1)
    close, high, high_pred, low, low_pred = tensors_of(p)
    nan_close = close.clone()
    nan_close[3] = float("nan")
    low_above = low.clone()
    low_above[[2, 5]] = high[[2, 5]] + 0.01
    inf_positions = torch.ones_like(close)
    inf_positions[6] = float("inf")
    ones = torch.ones_like(close)
    return [
        ("NaN close", optimize_entry_exit, (nan_close, high, high_pred, low, low_pred, ones), r"close: 1 NaN.*\[3\]"),
        ("high below low", optimize_always_on, (close, high, high_pred, low_above, low_pred), r"high: below low on 2"),
        (
            "infinite position",
            optimize_entry_exit,
            (close, high, high_pred, low, low_pred, inf_positions),
            r"positions: 1 NaN or infinite.*\[6\]",
        ),
    ]


@pytest.mark.parametrize(
    ("function", "args", "message"), [b[1:] for b in bad_values()], ids=[b[0] for b in bad_values()]
)
def test_rejected_values_declare_their_readbacks(function, args, message):
    """Bad values raise DataError after the checks read back the flags, the count and the first index: those
    read-backs are declared too (an enclosing account equals the observer)."""
    with count_syncs() as seen, accounting() as declared:
        with pytest.raises(DataError, match=message):
            function(*args)
    assert seen.syncs >= 3  # the flags, then where and how many
    assert declared.by_method == seen.by_method
    assert declared.syncs == seen.syncs
