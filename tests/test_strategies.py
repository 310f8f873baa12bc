"""Strategies (SPEC section 2): positions, legs, and the Objective's single and batched evaluation."""

from __future__ import annotations

import pytest
import torch

from marketsim_opt import DataError, Problem, count_syncs, profit_per_day, strategies
from marketsim_opt.data import synthetic_problem
from marketsim_opt.instrument import on_evaluations
from marketsim_opt.strategies import (
    Objective,
    always_on_legs,
    always_on_objective,
    entry_exit_objective,
    entry_exit_positions,
    stack_objectives,
)

# (Hp, Lp, expected position, expected crypto position)
POSITION_CASES = [
    (0.03, -0.01, 1.0, 1.0),  # |Hp| > |Lp|: long
    (0.01, -0.03, -1.0, 0.0),  # |Hp| < |Lp|: short (crypto: flat)
    (0.02, -0.02, -1.0, 0.0),  # tie: not |Hp| > |Lp|, so short
    (0.05, 0.01, 1.0, 1.0),  # both positive, valid, |Hp| > |Lp|
    (-0.01, -0.05, -1.0, 0.0),  # both negative, valid, |Hp| < |Lp|
    (-0.01, 0.01, 0.0, 0.0),  # Hp < Lp: invalid forecast
    (0.01, 0.01, 0.0, 0.0),  # Hp == Lp: invalid forecast
    (0.0, 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_entry_exit_positions(dtype):
    """+1 where |Hp| > |Lp|, else -1; 0 where Hp <= Lp; crypto shorts become 0."""
    hp = torch.tensor([c[0] for c in POSITION_CASES], dtype=dtype)
    lp = torch.tensor([c[1] for c in POSITION_CASES], dtype=dtype)
    got = entry_exit_positions(hp, lp)
    assert got.dtype == dtype
    assert got.tolist() == [c[2] for c in POSITION_CASES]
    assert entry_exit_positions(hp, lp, is_crypto=True).tolist() == [c[3] for c in POSITION_CASES]


def test_entry_exit_positions_batched_shape():
    """Positions keep the [S, N] shape of the forecasts."""
    problem = synthetic_problem(30, 1)
    hp, lp = problem.high_pred.reshape(5, 6), problem.low_pred.reshape(5, 6)
    got = entry_exit_positions(hp, lp)
    assert got.shape == (5, 6)
    assert torch.equal(got.reshape(-1), entry_exit_positions(problem.high_pred, problem.low_pred))


def test_always_on_legs():
    """Always-on: a +1 buy leg and a -1 sell leg shaped like the input; crypto has the buy leg only."""
    like = torch.zeros(3, 4, dtype=torch.float64)
    buy, sell = always_on_legs(like)
    assert buy.shape == sell.shape == (3, 4)
    assert buy.dtype == sell.dtype == torch.float64
    assert torch.equal(buy, torch.ones(3, 4, dtype=torch.float64))
    assert torch.equal(sell, -torch.ones(3, 4, dtype=torch.float64))
    legs = always_on_legs(like, is_crypto=True)
    assert len(legs) == 1
    assert torch.equal(legs[0], torch.ones(3, 4, dtype=torch.float64))


# --- Objective ----------------------------------------------------------------------------------


def problem64(n: int = 40, seed: int = 0, **kw) -> Problem:
    return synthetic_problem(n, seed, dtype=torch.float64, **kw)


def batched_problem(s: int = 4, n: int = 12, seed: int = 5, *, is_crypto: bool = False) -> Problem:
    flat = synthetic_problem(s * n, seed, dtype=torch.float64)
    return Problem(**{k: v.reshape(s, n) for k, v in flat.tensors().items()}, is_crypto=is_crypto)


def kernel_sum(problem: Problem, positions: torch.Tensor, h: float, l: float, close_at_eod: bool) -> torch.Tensor:
    return profit_per_day(
        problem.close,
        problem.high,
        problem.high_pred + h,
        problem.low,
        problem.low_pred + l,
        positions,
        close_at_eod=close_at_eod,
        trading_fee=problem.trading_fee,
    ).sum(-1)


@pytest.mark.parametrize("close_at_eod", [False, True])
def test_entry_exit_objective_is_kernel_sum(close_at_eod):
    """The entry/exit objective at (h, l) is the sum of one kernel call with the MaxDiff positions."""
    problem = problem64()
    objective = entry_exit_objective(problem, close_at_eod=close_at_eod)
    positions = entry_exit_positions(problem.high_pred, problem.low_pred)
    assert len(objective.legs) == 1
    assert torch.equal(objective.legs[0], positions)
    for h, l in [(0.0, 0.0), (0.01, -0.02), (-0.03, 0.03)]:
        got = objective(h, l)
        assert got.shape == ()
        assert got.item() == pytest.approx(kernel_sum(problem, positions, h, l, close_at_eod).item(), abs=1e-12)


@pytest.mark.parametrize("close_at_eod", [False, True])
def test_always_on_objective_is_sum_of_two_kernel_calls(close_at_eod):
    """Always-on = kernel sum with p = +1 plus kernel sum with p = -1."""
    problem = problem64(50, 2)
    objective = always_on_objective(problem, close_at_eod=close_at_eod)
    ones = torch.ones_like(problem.close)
    for h, l in [(0.0, 0.0), (0.005, -0.01), (-0.02, 0.02)]:
        want = kernel_sum(problem, ones, h, l, close_at_eod) + kernel_sum(problem, -ones, h, l, close_at_eod)
        assert objective(h, l).item() == pytest.approx(want.item(), abs=1e-12)


def test_always_on_crypto_objective_is_buy_leg_only():
    """Crypto always-on is the buy leg alone."""
    problem = problem64(50, 2, trading_fee=0.0015)
    crypto = Problem(**problem.tensors(), is_crypto=True)
    objective = always_on_objective(crypto)
    assert len(objective.legs) == 1
    want = kernel_sum(crypto, torch.ones_like(crypto.close), 0.01, -0.01, False)
    assert objective(0.01, -0.01).item() == pytest.approx(want.item(), abs=1e-12)


def test_crypto_entry_exit_objective_never_shorts():
    """Crypto entry/exit positions are all >= 0 and include longs."""
    problem = problem64(100, 3)
    crypto = Problem(**problem.tensors(), is_crypto=True)
    legs = entry_exit_objective(crypto).legs
    assert (legs[0] >= 0).all()
    assert (legs[0] == 1).any()


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("close_at_eod", [False, True])
@pytest.mark.parametrize("make", [entry_exit_objective, always_on_objective])
def test_batch_equals_sequential_unbatched(make, close_at_eod):
    """Objective.batch on [K] candidates equals K sequential Objective calls."""
    objective = make(problem64(60, 4), close_at_eod=close_at_eod)
    gen = torch.Generator().manual_seed(0)
    h = torch.empty(25, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen)
    l = torch.empty(25, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen)
    got = objective.batch(h, l)
    assert got.shape == (25,)
    want = torch.stack([objective(hk, lk) for hk, lk in zip(h.tolist(), l.tolist())])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    assert got.std() > 0  # the candidates really differ


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("close_at_eod", [False, True])
@pytest.mark.parametrize("make", [entry_exit_objective, always_on_objective])
def test_batch_equals_sequential_batched(make, close_at_eod):
    """Objective.batch on [S, K] candidates equals per-simulation sequential calls, row by row."""
    problem = batched_problem()
    objective = make(problem, close_at_eod=close_at_eod)
    gen = torch.Generator().manual_seed(1)
    h = torch.empty(4, 9, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen)
    l = torch.empty(4, 9, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen)
    got = objective.batch(h, l)
    assert got.shape == (4, 9)
    for s in range(4):
        single = Objective(problem[s], tuple(leg[s] for leg in objective.legs), close_at_eod)
        for k in range(9):
            assert got[s, k].item() == pytest.approx(single(h[s, k].item(), l[s, k].item()).item(), abs=1e-12)
    # a scalar candidate on a batched problem scores every simulation: [S]
    same = objective(0.01, -0.01)
    assert same.shape == (4,)
    torch.testing.assert_close(
        same,
        objective.batch(torch.full((4, 1), 0.01, dtype=torch.float64), torch.full((4, 1), -0.01, dtype=torch.float64))[
            :, 0
        ],
    )


@pytest.mark.cpu_dependent
def test_batch_float32_close_to_float64():
    """A float32 problem's batch scores stay close to the float64 ones."""
    p64 = problem64(200, 42)
    p32 = p64.to(dtype=torch.float32)
    h = torch.linspace(-0.03, 0.03, 31, dtype=torch.float64)
    got32 = entry_exit_objective(p32).batch(h.float(), -h.float())
    got64 = entry_exit_objective(p64).batch(h, -h)
    assert got32.dtype == torch.float32
    torch.testing.assert_close(got32.double(), got64, rtol=0, atol=1e-4)


def test_with_policy():
    """with_policy switches close_at_eod and keeps problem and legs."""
    objective = always_on_objective(problem64())
    other = objective.with_policy(True)
    assert other.close_at_eod is True and objective.close_at_eod is False
    assert other.problem is objective.problem and other.legs is objective.legs
    assert other(0.0, 0.0).item() != objective(0.0, 0.0).item()


@pytest.mark.parametrize(
    ("h_shape", "l_shape"),
    [((5, 1), (5, 1)), ((5,), (4,)), ((), ()), ((1, 5), (1, 5))],
)
def test_batch_bad_shapes_unbatched(h_shape, l_shape):
    """Unbatched problems take [K] candidates of matching shape; anything else raises ValueError."""
    objective = entry_exit_objective(problem64())
    with pytest.raises(ValueError, match="^h, l: expected matching shapes"):
        objective.batch(torch.zeros(h_shape, dtype=torch.float64), torch.zeros(l_shape, dtype=torch.float64))


@pytest.mark.parametrize(
    ("h_shape", "l_shape"),
    [((5,), (5,)), ((3, 5), (3, 5)), ((4, 5), (4, 6)), ((4, 5, 1), (4, 5, 1))],
)
def test_batch_bad_shapes_batched(h_shape, l_shape):
    """Batched problems take [S, K] candidates with the problem's S; anything else raises ValueError."""
    objective = always_on_objective(batched_problem())
    with pytest.raises(ValueError, match="S=4"):
        objective.batch(torch.zeros(h_shape, dtype=torch.float64), torch.zeros(l_shape, dtype=torch.float64))


def test_objective_rejects_bad_legs():
    """Legs of the wrong shape, dtype or device raise ValueError naming positions."""
    problem = problem64(10)
    with pytest.raises(ValueError, match="^positions: leg 0 has shape"):
        Objective(problem, (torch.ones(9, dtype=torch.float64),))
    with pytest.raises(ValueError, match="^positions: leg 1 is torch.float32"):
        Objective(problem, (torch.ones(10, dtype=torch.float64), torch.ones(10)))
    with pytest.raises(ValueError, match="^positions: leg 0 is .* on meta"):
        Objective(problem, (torch.ones(10, dtype=torch.float64, device="meta"),))


@pytest.mark.cpu_dependent
def test_stack_objectives_scores_each_row_as_its_own_objective():
    """Stacked entry/exit (one leg, padded with a zero leg) and always-on score, row for row, what each
    scores alone."""
    batch = synthetic_problem(8, seed=3).concat(synthetic_problem(8, seed=4))
    ee, ao = entry_exit_objective(batch), always_on_objective(batch)
    both = stack_objectives([ee, ao])
    assert both.problem.n_sims == 4 and len(both.legs) == 2
    h = torch.linspace(-0.03, 0.03, 5, dtype=batch.dtype).expand(4, -1)
    l = torch.linspace(0.03, -0.03, 5, dtype=batch.dtype).expand(4, -1)
    # float32 sums over days of a [4, K, N] and a [2, K, N] batch may round apart on another CPU: a tolerance
    separate = torch.cat([ee.batch(h[:2], l[:2]), ao.batch(h[2:], l[2:])])
    torch.testing.assert_close(both.batch(h, l), separate, rtol=1e-6, atol=1e-7)


def test_stack_objectives_rejects_mixed_policies_and_problems():
    p = synthetic_problem(8, seed=3)
    with pytest.raises(ValueError, match="objective 1 has close_at_eod=True"):
        stack_objectives([entry_exit_objective(p), always_on_objective(p, close_at_eod=True)])
    with pytest.raises(DataError, match="problem 1 has"):
        stack_objectives([entry_exit_objective(p), always_on_objective(synthetic_problem(9, seed=3))])
    with pytest.raises(ValueError, match="at least one"):
        stack_objectives([])


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("batched", [False, True])
def test_batch_scores_huge_k_in_bounded_slices(batched, monkeypatch):
    """Past CHUNK_ELEMENTS candidate-days, `batch` scores slices of `candidates_per_call()` candidates: the same
    profits (within float32 tolerance), the same evaluation count (reported slice by slice), no host sync."""
    problem = synthetic_problem(10, seed=3).concat(synthetic_problem(10, seed=4)) if batched else synthetic_problem(10)
    objective = always_on_objective(problem)
    k = 23
    shape = (problem.n_sims, k) if batched else (k,)
    h = torch.linspace(-0.03, 0.03, k, dtype=problem.dtype).expand(shape)
    l = torch.linspace(0.03, -0.03, k, dtype=problem.dtype).expand(shape)
    whole = objective.batch(h, l)
    monkeypatch.setattr(strategies, "CHUNK_ELEMENTS", 5 * problem.n_sims * problem.n_days)
    assert objective.candidates_per_call() == 5
    heard: list[int] = []
    with count_syncs(cuda=False) as counter, on_evaluations(heard.append):
        sliced = objective.batch(h, l)
    assert heard == [5 * problem.n_sims] * 4 + [3 * problem.n_sims]
    assert counter.evaluations == h.numel() and counter.syncs == 0
    assert sliced.shape == whole.shape
    torch.testing.assert_close(sliced, whole, rtol=1e-6, atol=1e-7)


def test_candidates_per_call_is_at_least_one(monkeypatch):
    """A problem larger than CHUNK_ELEMENTS days still scores one candidate per call."""
    monkeypatch.setattr(strategies, "CHUNK_ELEMENTS", 3)
    assert entry_exit_objective(synthetic_problem(10)).candidates_per_call() == 1
