"""Profit quality (`marketsim_opt.quality`): regret in basis points against the exact optimum, float64
scoring per simulation and policy, and the checks on `regret_bp`'s arguments."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from marketsim_opt import Problem, optimize_always_on, optimize_entry_exit, regret_bp
from marketsim_opt.data import synthetic_problem
from marketsim_opt.optimizers import registry
from marketsim_opt.quality import exact_optimum, score_f64
from marketsim_opt.strategies import Objective, entry_exit_positions
from marketsim_opt.workloads import profile

FIELDS = ("close", "high", "low", "high_pred", "low_pred")
OTHER_METHODS = ("direct", "grid", "nevergrad:OnePlusOne", "nevergrad:CMA")


def run(problem: Problem, strategy: str, **kwargs):
    """Entry/exit (MaxDiff positions) or always-on on `problem` through the public API, with its fee."""
    args = [getattr(problem, f) for f in ("close", "high", "high_pred", "low", "low_pred")]
    if strategy == "entry_exit":
        positions = entry_exit_positions(problem.high_pred, problem.low_pred)
        return optimize_entry_exit(*args, positions, trading_fee=problem.trading_fee, **kwargs)
    return optimize_always_on(*args, trading_fee=problem.trading_fee, **kwargs)


def batch(n_days: int, seeds) -> Problem:
    """An [S, N] problem of one synthetic series per seed (each a [1, N] row, so joined with torch.cat)."""
    rows = [synthetic_problem(n_days, seed) for seed in seeds]
    return Problem(**{f: torch.cat([getattr(p, f) for p in rows]) for f in FIELDS}, trading_fee=rows[0].trading_fee)


def is_regret_array(regret, n_sims: int) -> bool:
    """regret_bp's contract: always a float64 numpy array [S], S = 1 for one series."""
    return isinstance(regret, np.ndarray) and regret.shape == (n_sims,) and regret.dtype == np.float64


@pytest.mark.parametrize("strategy", ["entry_exit", "always_on"])
@pytest.mark.parametrize("close_at_eod", [False, True, None])
def test_exact_has_zero_regret(strategy, close_at_eod):
    """regret_bp of an exact result is 0 (|x| < 1e-9), always an [S] float64 array: [1] for one series."""
    one = run(synthetic_problem(40, seed=2), strategy, method="exact", close_at_eod=close_at_eod)
    regret = regret_bp(one)
    assert is_regret_array(regret, 1) and abs(regret[0]) < 1e-9
    many = run(batch(12, range(5)), strategy, method="exact", close_at_eod=close_at_eod)
    regrets = regret_bp(many)
    assert is_regret_array(regrets, 5)
    assert np.abs(regrets).max() < 1e-9


@pytest.mark.parametrize("method", OTHER_METHODS)
@pytest.mark.parametrize("strategy", ["entry_exit", "always_on"])
def test_other_methods_have_nonnegative_regret(method, strategy):
    """Every other method's regret is >= -1e-9 (the exact optimum is never beaten), for one series (S = 1) and
    for S = 4, and equals (exact supremum - float64 score at its point) * 1e4."""
    problem = synthetic_problem(30, seed=8)
    res = run(problem, strategy, method=method, budget=30, close_at_eod=None)
    regret = regret_bp(res)
    assert is_regret_array(regret, 1) and regret[0] >= -1e-9
    sup = run(problem, strategy, method="exact", close_at_eod=None).supremum
    assert sup.shape == (1,)
    achieved = score_f64(res.objective, res.h, res.l, res.close_at_eod)
    assert achieved.shape == (1,)
    assert regret[0] == pytest.approx((sup[0] - achieved[0]) * 1e4, abs=1e-9)
    many = run(batch(8, range(4)), strategy, method=method, budget=30, close_at_eod=None)
    regrets = regret_bp(many)
    assert is_regret_array(regrets, 4)
    assert regrets.min() >= -1e-9


def test_profile_regret_of_direct_is_positive():
    """On the profile workload DIRECT (budget 500) falls short of the exact optimum: regret > 0 bp."""
    problem = profile().problem
    res = run(problem, "entry_exit", method="direct")
    regret = regret_bp(res, res.objective.problem)
    assert is_regret_array(regret, 1) and regret[0] > 0.0


def test_optimum_argument_skips_the_exact_solve():
    """`optimum=` (from exact_optimum) gives the same regret, is what the regret is measured from, and runs no
    exact solve (the solver is counted: once without `optimum=`, never with it)."""
    res = run(batch(10, range(3)), "always_on", method="grid", budget=36, close_at_eod=None)
    solves = []
    real = registry.get("exact")
    counted = dataclasses.replace(real, solve_policies=lambda *a, **k: solves.append(1) or real.solve_policies(*a, **k))
    with registry.registered(counted, replace=True):
        optimum = exact_optimum(res)
        assert optimum.shape == (3,) and len(solves) == 1
        exact = run(batch(10, range(3)), "always_on", method="exact", close_at_eod=None)
        assert optimum.tolist() == exact.supremum.tolist()
        recomputed = regret_bp(res)
        assert len(solves) == 3  # exact_optimum, the exact run, regret_bp without optimum=
        given = regret_bp(res, optimum=optimum)
        shifted = regret_bp(res, optimum=optimum + 1e-4)
        assert len(solves) == 3
    np.testing.assert_array_equal(given, recomputed)
    np.testing.assert_allclose(shifted, recomputed + 1.0, atol=1e-9)


@pytest.mark.parametrize("method", ["exact", "grid", "direct", "gradient"])
def test_regret_of_inputs_that_require_grad(method):
    """Inputs with requires_grad (a model's outputs) give the regret of their values (they raised before
    issue 15), and no graph reaches the result."""
    problem = synthetic_problem(12, 3)
    args = [getattr(problem, f).clone().requires_grad_(True) for f in ("close", "high", "high_pred", "low", "low_pred")]
    res = optimize_always_on(*args, method=method, budget=50, trading_fee=problem.trading_fee)
    plain = run(problem, "always_on", method=method, budget=50)
    got = regret_bp(res)
    assert is_regret_array(got, 1)
    np.testing.assert_allclose(got, regret_bp(plain), rtol=0, atol=1e-9)
    assert got[0] >= -1e-6


def test_score_f64_per_policy_rows():
    """score_f64 scores each simulation under its own policy in float64 (mixed policies in one call)."""
    problem = batch(10, range(4))
    res = run(problem, "entry_exit", method="grid", budget=36)
    h = np.array([0.01, -0.02, 0.0, 0.025])
    l = np.array([-0.01, 0.0, 0.02, -0.025])
    eod = np.array([False, True, True, False])
    got = score_f64(res.objective, h, l, eod)
    p64 = problem.as_float64()
    legs = tuple(leg.double() for leg in res.objective.legs)
    for s in range(4):
        row = Objective(p64[s], tuple(leg[s] for leg in legs), bool(eod[s]))
        assert got[s] == row.score(float(h[s]), float(l[s])).item()


@pytest.mark.parametrize("policy", [False, True])
def test_score_f64_scalar_policy_applies_to_every_simulation(policy):
    """A single bool policy scores every simulation of a batched objective (not only the first).

    The NaN buffer freed just before makes rows left unwritten by `score_f64` show up as NaN or garbage
    instead of happening to hold the right values from an earlier array of the same size.
    """
    problem = batch(10, range(5))
    res = run(problem, "entry_exit", method="grid", budget=36, close_at_eod=policy)
    want = score_f64(res.objective, res.h, res.l, np.full(5, policy))
    scratch = np.full(5, np.nan)
    del scratch
    got = score_f64(res.objective, res.h, res.l, policy)
    assert got.tolist() == want.tolist()


def test_regret_needs_an_objective():
    """A result without an objective raises ValueError naming `result`."""
    res = run(synthetic_problem(6, seed=1), "entry_exit", method="grid", budget=16)
    with pytest.raises(ValueError, match="result: carries no objective"):
        regret_bp(dataclasses.replace(res, objective=None))


def test_regret_rejects_another_problem():
    """A problem other than the result's raises ValueError naming `problem`; the result's own is accepted."""
    problem = synthetic_problem(6, seed=1)
    res = run(problem, "entry_exit", method="grid", budget=16)
    other = synthetic_problem(6, seed=2)
    with pytest.raises(ValueError, match="problem: is not the problem this result was computed on"):
        regret_bp(res, other)
    np.testing.assert_array_equal(regret_bp(res, res.objective.problem), regret_bp(res))


def test_regret_accepts_the_problem_the_caller_passed_in():
    """The Problem whose tensors the caller optimized is the problem the result was computed on.

    The public optimizations build their own Problem from the tensors, so a check by object identity
    rejects the caller's own (equal, same-tensor) Problem; only `result.objective.problem` passes.
    """
    problem = synthetic_problem(6, seed=1)
    res = run(problem, "entry_exit", method="grid", budget=16)
    assert res.objective.problem.close is problem.close  # the very same tensors
    np.testing.assert_array_equal(regret_bp(res, problem), regret_bp(res))


# --- bad input in bulk (hypothesis) ------------------------------------------------------------


@pytest.fixture(scope="module")
def batched_grid_result():
    """A grid result on a [3, 8] problem, its problem and its exact optimum."""
    problem = batch(8, range(3))
    res = run(problem, "entry_exit", method="grid", budget=16)
    return res, problem, exact_optimum(res)


REGRET_RESULTS = {"the result": True, "None": False, "a dict": False, "a string": False, "no objective": False}
REGRET_PROBLEMS = {"omitted": True, "its problem": True, "another problem": False, "a string": False, "a tensor": False}
REGRET_OPTIMA = {
    "omitted": True,
    "the optimum": True,
    "a list": True,
    "a tensor": True,
    "NaN inside": False,
    "[2]": False,
    "a scalar": False,
    "a string": False,
    "inf": False,
}


@settings(max_examples=40)
@given(
    which_result=st.sampled_from(sorted(REGRET_RESULTS)),
    which_problem=st.sampled_from(sorted(REGRET_PROBLEMS)),
    which_optimum=st.sampled_from(sorted(REGRET_OPTIMA)),
)
def test_regret_bad_arguments_in_bulk(batched_grid_result, which_result, which_problem, which_optimum):
    """regret_bp: any bad result, problem or optimum is a ValueError naming it; valid ones give [S] regrets."""
    res, problem, optimum = batched_grid_result
    result = {
        "the result": res,
        "None": None,
        "a dict": {"h": res.h},
        "a string": "res",
        "no objective": dataclasses.replace(res, objective=None),
    }[which_result]
    args = {
        "omitted": (),
        "its problem": (problem,),
        "another problem": (batch(8, range(3, 6)),),
        "a string": ("problem",),
        "a tensor": (problem.close,),
    }[which_problem]
    kwargs = {
        "omitted": {},
        "the optimum": {"optimum": optimum},
        "a list": {"optimum": optimum.tolist()},
        "a tensor": {"optimum": torch.as_tensor(optimum)},
        "NaN inside": {"optimum": np.where([True, False, True], optimum, np.nan)},
        "[2]": {"optimum": optimum[:2]},
        "a scalar": {"optimum": float(optimum[0])},
        "a string": {"optimum": "0.1"},
        "inf": {"optimum": np.full(3, np.inf)},
    }[which_optimum]
    bad = {
        name
        for name, ok in (
            ("result", REGRET_RESULTS[which_result]),
            ("problem", REGRET_PROBLEMS[which_problem]),
            ("optimum", REGRET_OPTIMA[which_optimum]),
        )
        if not ok
    }
    try:
        got = regret_bp(result, *args, **kwargs)
    except ValueError as exc:
        assert bad and str(exc).split(":")[0] in bad, (bad, str(exc))
        return
    assert not bad, f"accepted invalid {sorted(bad)}"
    np.testing.assert_allclose(got, regret_bp(res, optimum=optimum), atol=1e-9)
