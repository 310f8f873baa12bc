"""The `exact` method (docs/exact.md): its supremum is never beaten, matches an independent brute force
over the breakpoint corners, its point scores within 1e-9 of it, and its counts follow the enumeration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from optimizer_helpers import STRATEGIES, batch_of, solve

from marketsim_opt import Problem, optimize_always_on, optimize_entry_exit
from marketsim_opt.data import synthetic_problem
from marketsim_opt.optimizers.api import POLICY_TIE
from marketsim_opt.quality import score_f64
from marketsim_opt.workloads import backtest
from tests.reference import reference_profit

BOUNDS = ((-0.03, 0.03), (-0.03, 0.03))
SLACK = 1e-12  # float64 rounding allowed above the supremum
PROBES = 100_000
PROBE_CELLS = 2_000_000  # candidates x days per batched call (16 MB float64 temporaries)


def host_legs(result, s: int = 0) -> tuple[dict[str, np.ndarray], list[np.ndarray], float]:
    """Simulation `s`'s problem fields and legs (`[N]` each) as float64 numpy arrays, and the fee."""
    obj = result.objective
    fields = {name: t[s].double().numpy() for name, t in obj.problem.tensors().items()}
    return fields, [leg[s].double().numpy() for leg in obj.legs], float(obj.problem.trading_fee)


def axis_candidates(breaks: np.ndarray, lo: float, hi: float, nudge: float) -> np.ndarray:
    """The bounds, every breakpoint in the box, and each nudged just below and just above (when in the box)."""
    pts = np.concatenate([[lo, hi], breaks, breaks - nudge, breaks + nudge])
    return np.unique(pts[(pts >= lo) & (pts <= hi)])


def brute_force_supremum(result, close_at_eod: bool, bounds=BOUNDS, nudge: float = 1e-14) -> float:
    """max over every (h, l) pair of per-axis corner candidates, scored by `reference_profit` (S = 1 results).

    docs/exact.md's breakpoints, enumerated here without the package: on `h`, where `Hp_i + h` crosses
    `H_i`, `0` or `10`; on `l`, where `Lp_i + l` crosses `L_i`, `0` or `-1`.  `nudge` (1e-14, thousands of
    float64 ulps at these magnitudes) puts a point strictly inside the cell on each side, so a supremum that
    is only approached (strict entries) is reached to within `2 N max|p| nudge` per axis.
    """
    assert result.n_sims == 1
    f, legs, fee = host_legs(result)
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    hp, lp = f["high_pred"], f["low_pred"]
    hs = axis_candidates(np.concatenate([f["high"] - hp, -hp, 10.0 - hp]), h_lo, h_hi, nudge)
    ls = axis_candidates(np.concatenate([f["low"] - lp, -lp, -1.0 - lp]), l_lo, l_hi, nudge)
    hh, ll = (a.reshape(-1)[:, None] for a in np.meshgrid(hs, ls, indexing="ij"))  # [K, 1]
    total = sum(
        reference_profit(
            f["close"], f["high"], hp + hh, f["low"], lp + ll, leg, close_at_eod=close_at_eod, fee=fee
        ).sum(-1)
        for leg in legs
    )
    return float(total.max())


def probe_max(result, close_at_eod: bool, bounds=BOUNDS, seed: int = 0) -> float:
    """The best float64 objective value over PROBES uniform random points of the box (package kernel, batched;
    S = 1 results)."""
    obj = result.objective
    assert obj.problem.n_sims == 1
    obj64 = obj.as_float64().with_policy(close_at_eod)
    gen = torch.Generator().manual_seed(seed)
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    best = -np.inf
    chunk = min(PROBES, PROBE_CELLS // obj.problem.n_days)
    for start in range(0, PROBES, chunk):
        u = torch.rand(2, min(chunk, PROBES - start), generator=gen, dtype=torch.float64)
        h = h_lo + (h_hi - h_lo) * u[0]
        l = l_lo + (l_hi - l_lo) * u[1]
        best = max(best, float(obj64.score(h[None], l[None]).max()))  # [1, K] candidates
    return best


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("close_at_eod", [False, True])
@pytest.mark.parametrize("n_days", [6, 50, 200])
def test_exact_is_never_beaten(n_days, close_at_eod, strategy):
    """No random probe point and no other method's answer scores (float64) above the exact supremum."""
    problem = synthetic_problem(n_days, seed=1000 + n_days)
    exact = solve(problem, strategy, method="exact", close_at_eod=close_at_eod)
    sup = exact.scalar.supremum
    assert isinstance(sup, float) and np.isfinite(sup)
    assert probe_max(exact, close_at_eod) <= sup + SLACK
    for method, budget in (("direct", 100), ("grid", None), ("nevergrad:OnePlusOne", 50)):
        other = solve(problem, strategy, method=method, budget=budget, close_at_eod=close_at_eod)
        achieved = score_f64(other.objective, other.h, other.l, other.close_at_eod)[0]
        assert achieved <= sup + SLACK, method
    # The exact point itself scores within 1e-9 of the supremum (and not above it).
    at_point = score_f64(exact.objective, exact.h, exact.l, close_at_eod)[0]
    assert sup - 1e-9 <= at_point <= sup + SLACK
    assert sup - 1e-9 <= exact.scalar.profit <= sup + SLACK


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("close_at_eod", [False, True])
@pytest.mark.parametrize(("n_days", "seed"), [(1, 3), (2, 4), (6, 5), (12, 6)])
def test_exact_matches_brute_force_corners(n_days, seed, close_at_eod, strategy, dtype):
    """The exact supremum equals the max over an independent enumeration of breakpoint corners (to 1e-12)."""
    problem = synthetic_problem(n_days, seed, dtype=dtype)
    exact = solve(problem, strategy, method="exact", close_at_eod=close_at_eod)
    assert abs(brute_force_supremum(exact, close_at_eod) - exact.scalar.supremum) <= 1e-12


def dyadic_problem(seed: int, n_days: int = 10, *, close_inside: bool = True, dtype=torch.float32) -> Problem:
    """A problem on a 1/1024 grid: breakpoints tie with each other and with the bounds +-1/32 exactly,
    `Hp + (H - Hp) == H` exactly, and some days have `H <= 0` or `L >= 0` (entries the clamps forbid).

    `close_inside=False` draws the close independently of the high and low, so it often lies outside
    `[L, H]` (the Problem allows it); only then can the best point lie strictly inside the first `l` cell
    or the last `h` cell, so the bounds themselves must be candidates.
    """
    rng = np.random.default_rng(seed)
    mid = rng.integers(-16, 17, n_days)
    high = mid + rng.integers(0, 12, n_days)
    low = mid - rng.integers(0, 12, n_days)
    c = mid if close_inside else rng.integers(-24, 25, n_days)
    high_pred = high - rng.integers(-32, 33, n_days)
    low_pred = low - rng.integers(-32, 33, n_days)
    arrays = dict(close=c, high=high, low=low, high_pred=high_pred, low_pred=low_pred)
    return Problem(**{k: torch.as_tensor(v / 1024.0, dtype=dtype) for k, v in arrays.items()}, trading_fee=1 / 2048)


DYADIC_BOUNDS = ((-1 / 32, 1 / 32), (-1 / 32, 1 / 32))


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("close_at_eod", [False, True])
@pytest.mark.parametrize("close_inside", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_on_tied_breakpoints(seed, close_inside, close_at_eod, strategy):
    """With tied breakpoints, breakpoints on the bounds and closes inside or outside [L, H], exact still
    equals the brute force and its point scores within 1e-9 of the supremum."""
    problem = dyadic_problem(seed, close_inside=close_inside)
    exact = solve(problem, strategy, method="exact", close_at_eod=close_at_eod, bounds=DYADIC_BOUNDS)
    sup = exact.scalar.supremum
    assert abs(brute_force_supremum(exact, close_at_eod, DYADIC_BOUNDS) - sup) <= 1e-12
    at_point = score_f64(exact.objective, exact.h, exact.l, close_at_eod)[0]
    assert sup - 1e-9 <= at_point <= sup + SLACK


# Hand-made one-day cases (units of 1/1024; fee in the same units), each with a supremum that only one kind
# of corner candidate reaches: (c, H, L, Hp, Lp, legs, fee, expected supremum, where it is reached).
ONE_DAY_CASES = {
    # Always-on, Hq clamped to 0: at l = L - Lp exactly the short's take-profit (non-strict) is on and the
    # long (strict) is not entered; below it the short exits at the close, above it the long loses its fee.
    "closed l breakpoint": (5, 10, -0.5, -40, -10, (1.0, -1.0), 1.5, -1.0, "l == L - Lp"),
    # Always-on, Lq clamped to 0: at h = H - Hp exactly the long takes profit at H and the short (strict)
    # is not entered; below it both pay fees for less, above it the long exits at a close below zero.
    "closed h breakpoint": (-5, 0.5, -10, -20, 40, (1.0, -1.0), 1.5, -1.0, "h == H - Hp"),
    # A short with the close below the low: exiting at the close beats any take-profit, so the best `l` is
    # anywhere below L - Lp (the lower bound); `h` approaches H - Hp from below (strict entry).
    "lower l bound": (-10, 10, -5, 5, -10, (-1.0,), 0.5, 19.5, "l in [lo, L - Lp), h -> H - Hp"),
    # A long with the close above the high: exiting at the close beats the take-profit, so the best `h` is
    # anywhere above H - Hp (the upper bound); `l` approaches L - Lp from above (strict entry).
    "upper h bound": (10, 5, -10, 0, -5, (1.0,), 0.5, 19.5, "h in (H - Hp, hi], l -> L - Lp"),
}


@pytest.mark.parametrize("case", sorted(ONE_DAY_CASES))
def test_exact_reaches_every_kind_of_corner(case):
    """Suprema that only a closed breakpoint, or only a bound, reaches: exact finds each to 1e-15, and
    its point scores within 1e-9 of it (brute force agrees)."""
    c, high, low, high_pred, low_pred, legs, fee, expected, _ = ONE_DAY_CASES[case]
    unit = 1 / 1024
    day = lambda v: torch.tensor([v * unit], dtype=torch.float64)  # noqa: E731 - one [N = 1] series
    args = (day(c), day(high), day(high_pred), day(low), day(low_pred))
    if len(legs) == 2:
        res = optimize_always_on(*args, method="exact", trading_fee=fee * unit, bounds=DYADIC_BOUNDS)
    else:
        positions = torch.tensor(legs, dtype=torch.float64)
        res = optimize_entry_exit(*args, positions, method="exact", trading_fee=fee * unit, bounds=DYADIC_BOUNDS)
    sup = res.scalar.supremum
    assert sup == pytest.approx(expected * unit, abs=1e-15)
    assert abs(brute_force_supremum(res, False, DYADIC_BOUNDS) - sup) <= 1e-12
    assert sup - 1e-9 <= score_f64(res.objective, res.h, res.l, False)[0] <= sup + SLACK


def test_supremum_not_attained_is_approached():
    """A short whose best entry is right at `Hq == H` (not filled, strict): the supremum is the limit from
    below, the returned `h` lies strictly below the breakpoint, and it scores within 1e-9 of the limit."""
    # One short day: Hp = 0.01, H = 0.02, L = -0.01, c = 0.0, Lp = -0.02 (take-profit never reached).
    day = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731 - one [N = 1] series
    args = (day(0.0), day(0.02), day(0.01), day(-0.01), day(-0.02), day(-1.0))  # close, H, Hp, L, Lp, positions
    res = optimize_entry_exit(*args, method="exact", close_at_eod=True, trading_fee=0.001).scalar
    # Short at the close: -(c - Hq) - fee = Hq - 0.001, rising with h while Hq < H = 0.02, then 0 (no entry).
    assert res.supremum == pytest.approx(0.02 - 0.001, abs=1e-15)
    assert res.h < 0.01  # strictly below the breakpoint H - Hp = 0.01
    assert res.h == pytest.approx(0.01, abs=1e-12)
    assert res.profit == pytest.approx(res.supremum, abs=1e-9)
    assert res.profit <= res.supremum


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n_days", [1, 6, 50])
def test_exact_counts(n_days, strategy):
    """nfev is the corners the sweep values, (2N+1)^2 intraday and 2 (2N+1) at the close (separable), plus
    1 scored point per policy; one read-back for all policies plus input checks."""
    problem = synthetic_problem(n_days, seed=7)
    k = 2 * n_days + 1
    intraday, at_close = k * k + 1, 2 * k + 1
    checks = 2 if strategy == "entry_exit" else 1  # Problem values (+ positions values for entry/exit)
    for close_at_eod, nfev in ((False, intraday), (True, at_close), (None, intraday + at_close)):
        res = solve(problem, strategy, method="exact", close_at_eod=close_at_eod)
        assert res.nfev.tolist() == [nfev]
        assert res.syncs == checks + 1
        assert res.budget is None


def test_exact_batched_counts_and_syncs():
    """Batched exact: nfev per simulation, still a single read-back for all simulations and both policies."""
    batch, _ = batch_of(6, [1, 2, 3])
    res = solve(batch, "always_on", method="exact", close_at_eod=None)
    assert res.nfev.tolist() == [(13**2 + 1) + (2 * 13 + 1)] * 3
    assert res.syncs == 1 + 1


#: Simulations of the bundled backtest (entry/exit) whose close-at-eod supremum beats intraday's by more than
#: POLICY_TIE; on every other simulation, and for always-on, intraday is at least as good (often tied).
CLOSE_WINS = {"entry_exit": [26, 34, 35, 36], "always_on": []}


@pytest.mark.parametrize("strategy", ["entry_exit", "always_on"])
def test_exact_policy_search_picks_the_better_policy(strategy):
    """close_at_eod=None keeps, per simulation, the single-policy run with the larger supremum; within
    POLICY_TIE (float64 rounding of two different sums) it is a tie and intraday (the first) is kept."""
    batch = backtest().problem
    both = solve(batch, strategy, method="exact", close_at_eod=None)
    intraday = solve(batch, strategy, method="exact", close_at_eod=False)
    at_close = solve(batch, strategy, method="exact", close_at_eod=True)
    pick_close = at_close.supremum > intraday.supremum + POLICY_TIE
    assert both.close_at_eod.tolist() == pick_close.tolist()
    assert both.supremum.tolist() == np.where(pick_close, at_close.supremum, intraday.supremum).tolist()
    for field in ("h", "l", "profit"):
        want = np.where(pick_close, getattr(at_close, field), getattr(intraday, field))
        assert getattr(both, field).tolist() == want.tolist(), field
    assert both.nfev.tolist() == (intraday.nfev + at_close.nfev).tolist()
    assert both.policies == (False, True)
    # Real wins are far above the tie tolerance; ties are at rounding level.
    assert np.flatnonzero(pick_close).tolist() == CLOSE_WINS[strategy]
    gap = np.abs(at_close.supremum - intraday.supremum)
    assert np.all((gap <= 1e-15) | (gap > 1e-6))


def test_exact_ignores_budget_and_seed():
    """budget and seed do not change exact's answer (the enumeration is complete and deterministic)."""
    problem = synthetic_problem(20, seed=11)
    base = solve(problem, "entry_exit", method="exact").scalar
    for kwargs in (dict(budget=5), dict(seed=123), dict(budget=1000, seed=7)):
        other = solve(problem, "entry_exit", method="exact", **kwargs).scalar
        fields = ("h", "l", "profit", "supremum", "nfev")
        assert [getattr(other, f) for f in fields] == [getattr(base, f) for f in fields]


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("close_at_eod", [False, True])
def test_sweep_chunks_agree(monkeypatch, close_at_eod):
    """The intraday sweep in many small column chunks gives the same supremum and point as in one chunk."""
    from marketsim_opt.optimizers import exact

    batch, _ = batch_of(40, range(3))
    whole = solve(batch, "always_on", method="exact", close_at_eod=close_at_eod)
    monkeypatch.setattr(exact, "CHUNK_CELLS", 1)  # one column per chunk
    chunked = solve(batch, "always_on", method="exact", close_at_eod=close_at_eod)
    for field in ("h", "l", "profit", "supremum", "nfev"):
        assert getattr(chunked, field).tolist() == getattr(whole, field).tolist(), field


@pytest.mark.cpu_dependent
@pytest.mark.parametrize(
    ("s", "n", "n_legs", "inner"), [(140, 6, 2, True), (9, 4, 3, True), (6, 6, 2, False), (40, 5, 1, False)]
)
def test_rescoring_held_simulations_innermost_scores_the_same(s, n, n_legs, inner):
    """With more simulations than days and the legs stacked, exact re-scores an objective held
    simulations-innermost: the same numbers bit for bit as the usual layout's, for both policies' columns."""
    from marketsim_opt.optimizers import exact
    from marketsim_opt.strategies import Objective

    flat = synthetic_problem(s * n, 11, dtype=torch.float32)
    problem = Problem(**{key: v.reshape(s, n) for key, v in flat.tensors().items()})
    gen = torch.Generator().manual_seed(5)
    # Positions spanning seven orders of magnitude: the day sums' order of additions shows in their last bits.
    scale = 10 ** (torch.rand(n_legs, s, n, generator=gen) * 7 - 6)
    legs = tuple((torch.rand(n_legs, s, n, generator=gen) * 2 - 1) * scale)
    objective = Objective(problem, legs)
    held, simulations_inner = exact._rescoring_objective(objective, 2)
    assert simulations_inner is inner
    assert (held.problem.close.stride(0) == 1) is inner and (held.legs[0].stride(0) == 1) is inner
    wide = objective.as_float64()
    for f in ("close", "high", "low", "high_pred", "low_pred"):
        assert torch.equal(getattr(held.problem, f), getattr(wide.problem, f))
    rows = [np.linspace(-0.03, 0.03, s), np.linspace(0.02, -0.01, s)]  # one point per policy and simulation
    h, l = (exact._as_columns([r, r[::-1].copy()], problem.device, simulations_inner) for r in rows)
    policies = torch.tensor([False, True])
    got = held.score(h, l, policies=policies)
    want = wide.score(h.contiguous(), l.contiguous(), policies=policies)
    assert got.shape == (s, 2) and torch.equal(got, want)
    assert want.std() > 0
