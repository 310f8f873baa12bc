"""`zero`: offsets left at 0, scored once per simulation and policy; the better policy in-sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from optimizer_helpers import STRATEGIES, batch_of, solve

from marketsim_opt import METHODS, count_syncs
from marketsim_opt.data import synthetic_problem
from marketsim_opt.quality import score_f64


def test_zero_is_registered():
    assert "zero" in METHODS


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_offsets_are_zero_and_profit_is_the_objective_there(strategy):
    """Every simulation gets h = l = 0; `profit` is the objective at (0, 0) under the policy chosen, which is the
    better of the two policies' objectives at (0, 0)."""
    batch, _ = batch_of(8, range(5))
    res = solve(batch, strategy, method="zero", close_at_eod=None)
    assert res.h.tolist() == [0.0] * 5 and res.l.tolist() == [0.0] * 5
    by_policy = {eod: score_f64(res.objective, np.zeros(5), np.zeros(5), eod) for eod in (False, True)}
    want = np.where(res.close_at_eod, by_policy[True], by_policy[False])
    np.testing.assert_allclose(res.profit, want, rtol=1e-5, atol=1e-6)  # profit is float32, the score float64
    better = np.maximum(by_policy[False], by_policy[True])
    np.testing.assert_allclose(want, better, rtol=0, atol=1e-6)
    assert res.nfev.tolist() == [2] * 5  # one evaluation per simulation and policy
    assert res.budget is None
    with pytest.raises(ValueError, match="S = 5"):  # no scalar view of five simulations
        _ = res.scalar


def test_single_policy_one_series():
    """One series under one policy: one evaluation, `[1]` fields whose `.scalar` view holds Python scalars,
    and the kernel's value at (0, 0)."""
    p = synthetic_problem(30, 7)
    res = solve(p, "always_on", method="zero", close_at_eod=True)
    assert res.n_sims == 1
    assert (res.h.tolist(), res.l.tolist(), res.close_at_eod.tolist(), res.nfev.tolist()) == ([0.0], [0.0], [True], [1])
    one = res.scalar
    assert (one.h, one.l, one.close_at_eod, one.nfev) == (0.0, 0.0, True, 1)
    assert type(one.close_at_eod) is bool and type(one.nfev) is int and type(one.profit) is float
    assert one.profit == pytest.approx(float(score_f64(res.objective, 0.0, 0.0, True)[0]), rel=1e-5, abs=1e-6)


def test_budget_and_seed_are_unused():
    """Like exact: a given budget is checked but changes nothing, nor does the seed."""
    p = synthetic_problem(12, 3)
    a = solve(p, "entry_exit", method="zero", close_at_eod=None).scalar
    b = solve(p, "entry_exit", method="zero", close_at_eod=None, budget=500, seed=9).scalar
    assert (a.h, a.l, a.profit, a.close_at_eod, a.nfev) == (b.h, b.l, b.profit, b.close_at_eod, b.nfev)
    with pytest.raises(ValueError, match="budget"):
        solve(p, "entry_exit", method="zero", budget=0)


def test_a_box_without_zero_gives_its_nearest_point():
    """Bounds that exclude 0 give the box's point nearest (0, 0)."""
    p = synthetic_problem(12, 3)
    res = solve(p, "always_on", method="zero", bounds=((0.01, 0.02), (-0.03, -0.005))).scalar
    assert res.h == pytest.approx(0.01) and res.l == pytest.approx(-0.005)


def test_one_read_back_and_float64_inputs():
    """No read-back of its own: the input check and the API's one read-back; float64 problems stay float64."""
    p = synthetic_problem(12, 4).to(dtype=torch.float64)
    with count_syncs() as seen:
        res = solve(p, "always_on", method="zero", close_at_eod=None)
    assert seen.syncs == res.syncs == 2
    assert res.scalar.profit == float(score_f64(res.objective, 0.0, 0.0, res.close_at_eod)[0])
