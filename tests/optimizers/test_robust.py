"""Robust variants: `exact:centre` (the centre of the exact optimum's cell), `robust:worst` / `robust:mean` (the
lattice point with the best worst / mean profit over a +-DELTA box), checked against numpy brute force."""

from __future__ import annotations

import numpy as np
import pytest
from optimizer_helpers import STRATEGIES, batch_of, solve
from reference import reference_profit

from marketsim_opt import METHODS
from marketsim_opt.optimizers import robust
from marketsim_opt.optimizers.api import BUDGETLESS_METHODS, DEFAULT_BOUNDS, check_method
from marketsim_opt.quality import score_f64

NEW = ("exact:centre", "robust:worst", "robust:mean")


def test_registered_and_budgetless():
    for method in NEW:
        assert method in METHODS and method in BUDGETLESS_METHODS
        assert callable(check_method(method))


@pytest.mark.parametrize("bad", ["robust:", "robust:max", "robust:Worst", "exact:corner"])
def test_unknown_variants_name_the_method(bad):
    with pytest.raises(ValueError, match="method"):
        check_method(bad)


def _edges(breaks: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.unique(np.concatenate([[lo, hi], np.clip(breaks, lo, hi)]))


def _pattern(obj, s: int, h: float, l: float) -> np.ndarray:
    """The kernel's four indicators per day at (h, l), float64: fills and take-profits of both sides."""
    p = obj.problem.as_float64()
    hq = np.clip(p.high_pred.numpy()[s] + h, 0.0, 10.0)
    lq = np.clip(p.low_pred.numpy()[s] + l, -1.0, 0.0)
    high, low = p.high.numpy()[s], p.low.numpy()[s]
    return np.stack([lq > low, hq < high, lq >= low, hq <= high])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_centre_is_the_middle_of_the_exact_optimum_cell(strategy):
    """Per simulation: the exact point and the centre share a cell (no edge strictly between them on either axis,
    the same indicators wherever the exact point is not on an edge), the centre is the midpoint of the two
    consecutive edges around it, and its profit is the float64 objective there, below the supremum."""
    batch, _ = batch_of(12, range(6))
    corner = solve(batch, strategy, method="exact", close_at_eod=False)
    centre = solve(batch, strategy, method="exact:centre", close_at_eod=False)
    (h_lo, h_hi), (l_lo, l_hi) = DEFAULT_BOUNDS
    p = batch.as_float64()
    for s in range(6):
        l_edges = _edges(p.low.numpy()[s] - p.low_pred.numpy()[s], l_lo, l_hi)
        h_edges = _edges(p.high.numpy()[s] - p.high_pred.numpy()[s], h_lo, h_hi)
        lc, hc, ls, hs = centre.l[s], centre.h[s], corner.l[s], corner.h[s]
        l_low, h_high = l_edges[l_edges <= ls].max(), h_edges[h_edges >= hs].min()
        l_high = l_edges[l_edges > ls].min() if ls < l_hi else ls
        h_low = h_edges[h_edges < hs].max() if hs > h_lo else hs
        assert lc == pytest.approx((l_low + l_high) / 2, abs=1e-15)
        assert hc == pytest.approx((h_low + h_high) / 2, abs=1e-15)
        assert not ((l_edges > l_low) & (l_edges < l_high)).any()
        assert not ((h_edges > h_low) & (h_edges < h_high)).any()
        if ls not in l_edges and hs not in h_edges:
            np.testing.assert_array_equal(_pattern(corner.objective, s, hs, ls), _pattern(corner.objective, s, hc, lc))
    want = score_f64(centre.objective, centre.h, centre.l, False)
    np.testing.assert_allclose(centre.profit, want, rtol=0, atol=1e-12)
    assert (centre.profit <= corner.supremum + 1e-12).all()
    assert (centre.nfev == corner.nfev + 1).all()


def _brute_box(obj, s: int, criterion: str):
    """numpy brute force of `solve_box` for simulation `s`: (criterion at every candidate [Gh, Gl], hs, ls, r)."""
    (h_lo, h_hi), (l_lo, l_hi) = DEFAULT_BOUNDS
    (hs, rh), (ls, rl) = (robust.lattice(lo, hi) for lo, hi in ((h_lo, h_hi), (l_lo, l_hi)))
    hs, ls = hs.numpy(), ls.numpy()
    p = obj.problem.as_float64()
    day = {f: getattr(p, f).numpy()[s] for f in ("close", "high", "low", "high_pred", "low_pred")}
    legs = [leg.double().numpy()[s] for leg in obj.legs]
    hh, ll = np.meshgrid(hs, ls, indexing="ij")
    profit = sum(
        reference_profit(
            day["close"],
            day["high"],
            day["high_pred"] + hh[..., None],
            day["low"],
            day["low_pred"] + ll[..., None],
            leg,
            close_at_eod=obj.close_at_eod,
            fee=p.trading_fee,
        ).sum(-1)
        for leg in legs
    )
    gh, gl = len(hs) - 2 * rh, len(ls) - 2 * rl
    reduce = np.min if criterion == "worst" else np.mean
    stat = np.array([[reduce(profit[i : i + 2 * rh + 1, j : j + 2 * rl + 1]) for j in range(gl)] for i in range(gh)])
    return stat, profit, hs, ls, rh, rl


@pytest.mark.parametrize("criterion", robust.CRITERIA)
@pytest.mark.parametrize("strategy", ["entry_exit", "always_on"])
def test_box_matches_numpy_brute_force(strategy, criterion):
    """The returned point's box statistic is the largest over the lattice (brute force with the independent
    numpy kernel); `profit` is the kernel's profit at the point and `criterion` picks the policy."""
    batch, _ = batch_of(8, range(3))
    res = solve(batch, strategy, method=f"robust:{criterion}", close_at_eod=False)
    for s in range(3):
        stat, profit, hs, ls, rh, rl = _brute_box(res.objective, s, criterion)
        i = int(np.argmin(np.abs(hs - res.h[s])))
        j = int(np.argmin(np.abs(ls - res.l[s])))
        assert (hs[i], ls[j]) == (res.h[s], res.l[s])  # a lattice point inside the bounds
        assert rh <= i < len(hs) - rh and rl <= j < len(ls) - rl
        assert stat[i - rh, j - rl] == pytest.approx(stat.max(), abs=1e-12)
        assert res.profit[s] == pytest.approx(profit[i, j], abs=1e-12)
    assert (res.nfev == len(hs) * len(ls)).all()


def test_box_policy_search_compares_the_criterion():
    """With both policies, each simulation keeps the policy whose box statistic is larger."""
    batch, _ = batch_of(8, range(4))
    both = solve(batch, "entry_exit", method="robust:worst", close_at_eod=None)
    stats = {}
    for eod in (False, True):
        one = solve(batch, "entry_exit", method="robust:worst", close_at_eod=eod)
        stats[eod] = [_brute_box(one.objective.with_policy(eod), s, "worst")[0].max() for s in range(4)]
    want = np.array(stats[True]) > np.array(stats[False]) + 1e-12
    np.testing.assert_array_equal(both.close_at_eod, want)


def test_lattice_of_the_default_box():
    """121 points at 5 bp from -0.03 to 0.03, extended by 5 points (25 bp) each side; a wide box is coarser."""
    points, r = robust.lattice(-0.03, 0.03)
    assert (len(points), r) == (121 + 10, 5)
    np.testing.assert_allclose(points[r : r + 121].numpy(), np.linspace(-0.03, 0.03, 121), atol=1e-15)
    wide, r_wide = robust.lattice(-1.0, 1.0)
    assert len(wide) == robust.MAX_LATTICE + 2 * r_wide and r_wide == 1
