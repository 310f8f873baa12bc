"""Strategies (docs/kernel.md): positions, legs, and `Objective.score`, the one scoring entry."""

from __future__ import annotations

import pytest
import torch

from marketsim_opt import DataError, Problem, count_syncs, profit_per_day, strategies
from marketsim_opt.data import synthetic_problem
from marketsim_opt.instrument import on_evaluations
from marketsim_opt.kernel import smoothed_profit_per_day
from marketsim_opt.strategies import (
    STRATEGIES,
    Objective,
    always_on_legs,
    always_on_objective,
    build_objective,
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
    one_row = entry_exit_positions(problem.high_pred, problem.low_pred)  # the one series is held as [1, N]
    assert one_row.shape == (1, 30)
    assert torch.equal(got.reshape(1, -1), one_row)


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
        got = objective.score(h, l)
        assert got.shape == (1, 1)
        assert got.item() == pytest.approx(kernel_sum(problem, positions, h, l, close_at_eod).item(), abs=1e-12)


@pytest.mark.parametrize("close_at_eod", [False, True])
def test_always_on_objective_is_sum_of_two_kernel_calls(close_at_eod):
    """Always-on = kernel sum with p = +1 plus kernel sum with p = -1."""
    problem = problem64(50, 2)
    objective = always_on_objective(problem, close_at_eod=close_at_eod)
    ones = torch.ones_like(problem.close)
    for h, l in [(0.0, 0.0), (0.005, -0.01), (-0.02, 0.02)]:
        want = kernel_sum(problem, ones, h, l, close_at_eod) + kernel_sum(problem, -ones, h, l, close_at_eod)
        assert objective.score(h, l).item() == pytest.approx(want.item(), abs=1e-12)


def test_always_on_crypto_objective_is_buy_leg_only():
    """Crypto always-on is the buy leg alone."""
    problem = problem64(50, 2, trading_fee=0.0015)
    crypto = Problem(**problem.tensors(), is_crypto=True)
    objective = always_on_objective(crypto)
    assert len(objective.legs) == 1
    want = kernel_sum(crypto, torch.ones_like(crypto.close), 0.01, -0.01, False)
    assert objective.score(0.01, -0.01).item() == pytest.approx(want.item(), abs=1e-12)


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
def test_score_tensor_equals_sequential_numbers_one_series(make, close_at_eod):
    """On one series (S = 1), `score` of [1, K] candidates equals K sequential `score(h, l)` calls on numbers."""
    objective = make(problem64(60, 4), close_at_eod=close_at_eod)
    gen = torch.Generator().manual_seed(0)
    h = torch.empty(1, 25, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen)
    l = torch.empty(1, 25, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen)
    got = objective.score(h, l)
    assert got.shape == (1, 25)
    want = torch.cat([objective.score(hk, lk) for hk, lk in zip(h[0].tolist(), l[0].tolist())], dim=-1)
    assert want.shape == (1, 25)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    assert got.std() > 0  # the candidates really differ


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("close_at_eod", [False, True])
@pytest.mark.parametrize("make", [entry_exit_objective, always_on_objective])
def test_score_equals_sequential_per_simulation(make, close_at_eod):
    """`score` on [S, K] candidates equals per-simulation sequential calls on numbers, row by row."""
    problem = batched_problem()
    objective = make(problem, close_at_eod=close_at_eod)
    gen = torch.Generator().manual_seed(1)
    h = torch.empty(4, 9, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen)
    l = torch.empty(4, 9, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen)
    got = objective.score(h, l)
    assert got.shape == (4, 9)
    for s in range(4):
        # an [N] leg is taken as the one row of an S = 1 problem
        single = Objective(problem[s], tuple(leg[s] for leg in objective.legs), close_at_eod)
        assert single.problem.n_sims == 1 and all(leg.shape == (1, 12) for leg in single.legs)
        for k in range(9):
            want = single.score(h[s, k].item(), l[s, k].item())
            assert want.shape == (1, 1)
            assert got[s, k].item() == pytest.approx(want.item(), abs=1e-12)
    # two numbers score one candidate for every simulation: [S, 1]
    same = objective.score(0.01, -0.01)
    assert same.shape == (4, 1)
    torch.testing.assert_close(
        same,
        objective.score(torch.full((4, 1), 0.01, dtype=torch.float64), torch.full((4, 1), -0.01, dtype=torch.float64)),
    )


@pytest.mark.cpu_dependent
def test_score_float32_close_to_float64():
    """A float32 problem's scores stay close to the float64 ones."""
    p64 = problem64(200, 42)
    p32 = p64.to(dtype=torch.float32)
    h = torch.linspace(-0.03, 0.03, 31, dtype=torch.float64)[None]
    got32 = entry_exit_objective(p32).score(h.float(), -h.float())
    got64 = entry_exit_objective(p64).score(h, -h)
    assert got32.dtype == torch.float32
    torch.testing.assert_close(got32.double(), got64, rtol=0, atol=1e-4)


def test_with_policy():
    """with_policy switches close_at_eod and keeps problem, legs (the same tensors) and strategy label."""
    objective = always_on_objective(problem64())
    other = objective.with_policy(True)
    assert other.close_at_eod is True and objective.close_at_eod is False
    assert other.problem is objective.problem
    assert len(other.legs) == len(objective.legs) == 2
    assert all(mine is theirs for mine, theirs in zip(other.legs, objective.legs))
    assert other.strategy == objective.strategy == "always_on"
    assert other.score(0.0, 0.0).item() != objective.score(0.0, 0.0).item()


@pytest.mark.parametrize(
    ("h_shape", "l_shape"),
    [((5,), (5,)), ((5, 1), (5, 1)), ((5,), (4,)), ((), ()), ((1, 5), (1, 4)), ((1, 5, 1), (1, 5, 1))],
)
def test_score_bad_shapes_one_series(h_shape, l_shape):
    """One series (S = 1) takes [1, K] candidates of matching shape: [K] tensors, another S, mismatched h and l
    or other ranks raise ValueError naming h, l (and S)."""
    objective = entry_exit_objective(problem64())
    with pytest.raises(ValueError, match=r"^h, l: expected .*S=1"):
        objective.score(torch.zeros(h_shape, dtype=torch.float64), torch.zeros(l_shape, dtype=torch.float64))


@pytest.mark.parametrize(
    ("h_shape", "l_shape"),
    [((5,), (5,)), ((3, 5), (3, 5)), ((4, 5), (4, 6)), ((4, 5, 1), (4, 5, 1))],
)
def test_score_bad_shapes_batched(h_shape, l_shape):
    """S > 1 problems take [S, K] candidates with the problem's S; anything else raises ValueError naming h, l."""
    objective = always_on_objective(batched_problem())
    with pytest.raises(ValueError, match=r"^h, l: expected .*S=4"):
        objective.score(torch.zeros(h_shape, dtype=torch.float64), torch.zeros(l_shape, dtype=torch.float64))


def test_objective_rejects_bad_legs():
    """Legs of the wrong shape, dtype or device raise ValueError naming positions."""
    problem = problem64(10)
    with pytest.raises(ValueError, match="^positions: leg 0 has shape"):
        Objective(problem, (torch.ones(9, dtype=torch.float64),))
    with pytest.raises(ValueError, match="^positions: leg 1 is torch.float32"):
        Objective(problem, (torch.ones(10, dtype=torch.float64), torch.ones(10)))
    with pytest.raises(ValueError, match="^positions: leg 0 is .* on meta"):
        Objective(problem, (torch.ones(10, dtype=torch.float64, device="meta"),))
    # an [N] leg is one row only for S = 1: an S = 4 problem needs [4, N] legs
    with pytest.raises(ValueError, match=r"^positions: leg 0 has shape \(12,\), expected \(4, 12\)"):
        Objective(batched_problem(), (torch.ones(12, dtype=torch.float64),))


@pytest.mark.cpu_dependent
def test_stack_objectives_scores_each_row_as_its_own_objective():
    """Stacked entry/exit (one leg, padded with a zero leg) and always-on score, row for row, what each
    scores alone."""
    batch = synthetic_problem(8, seed=3).concat(synthetic_problem(8, seed=4))
    ee, ao = entry_exit_objective(batch), always_on_objective(batch)
    both = stack_objectives([ee, ao])
    assert both.problem.n_sims == 4 and len(both.legs) == 2
    assert both.strategy == "entry_exit+always_on"
    h = torch.linspace(-0.03, 0.03, 5, dtype=batch.dtype).expand(4, -1)
    l = torch.linspace(0.03, -0.03, 5, dtype=batch.dtype).expand(4, -1)
    # float32 sums over days of a [4, K, N] and a [2, K, N] batch may round apart on another CPU: a tolerance
    separate = torch.cat([ee.score(h[:2], l[:2]), ao.score(h[2:], l[2:])])
    torch.testing.assert_close(both.score(h, l), separate, rtol=1e-6, atol=1e-7)


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
def test_score_scores_huge_k_in_bounded_slices(batched, monkeypatch):
    """Past CHUNK_ELEMENTS candidate-days, `score` scores slices of `candidates_per_call()` candidates: the same
    profits (within float32 tolerance), the same evaluation count (reported slice by slice), no host sync."""
    problem = synthetic_problem(10, seed=3).concat(synthetic_problem(10, seed=4)) if batched else synthetic_problem(10)
    assert problem.n_sims == (2 if batched else 1)
    objective = always_on_objective(problem)
    k = 23
    shape = (problem.n_sims, k)
    h = torch.linspace(-0.03, 0.03, k, dtype=problem.dtype).expand(shape)
    l = torch.linspace(0.03, -0.03, k, dtype=problem.dtype).expand(shape)
    whole = objective.score(h, l)
    monkeypatch.setattr(strategies, "CHUNK_ELEMENTS", 5 * problem.n_sims * problem.n_days)
    assert objective.candidates_per_call() == 5
    heard: list[int] = []
    with count_syncs(cuda=False) as counter, on_evaluations(heard.append):
        sliced = objective.score(h, l)
    assert heard == [5 * problem.n_sims] * 4 + [3 * problem.n_sims]
    assert counter.evaluations == h.numel() and counter.syncs == 0
    assert sliced.shape == whole.shape
    torch.testing.assert_close(sliced, whole, rtol=1e-6, atol=1e-7)


def test_candidates_per_call_is_at_least_one(monkeypatch):
    """A problem larger than CHUNK_ELEMENTS days still scores one candidate per call."""
    monkeypatch.setattr(strategies, "CHUNK_ELEMENTS", 3)
    assert entry_exit_objective(synthetic_problem(10)).candidates_per_call() == 1


# --- Objective.score: the one scoring entry -----------------------------------------------------


def candidates(s: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """[S, K] float64 offsets (h, l) drawn uniformly from the default box."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.empty(s, k, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen)
    l = torch.empty(s, k, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen)
    return h, l


@pytest.mark.parametrize("s", [1, 4])
@pytest.mark.parametrize("make", [entry_exit_objective, always_on_objective])
def test_score_tensors_in_same_shape_out(make, s):
    """[S, K] candidates in -> [S, K] profits out (the problem's dtype and device), recording exactly S * K
    evaluations and no host sync."""
    problem = batched_problem(s)
    objective = make(problem)
    h, l = candidates(s, 7)
    with count_syncs(cuda=False) as counter:
        got = objective.score(h, l)
    assert got.shape == (s, 7)
    assert got.dtype == problem.dtype and got.device == problem.device
    assert counter.evaluations == s * 7
    assert counter.syncs == 0


@pytest.mark.parametrize("close_at_eod", [False, True])
@pytest.mark.parametrize("make", [entry_exit_objective, always_on_objective])
def test_score_numbers_equal_the_one_column_tensor_call(make, close_at_eod):
    """Two numbers score one candidate for every simulation: [S, 1], equal to the [S, 1] tensor call at that
    candidate; each call records S evaluations."""
    objective = make(batched_problem(), close_at_eod=close_at_eod)
    with count_syncs(cuda=False) as numbers:
        got = objective.score(0.012, -0.007)
    assert got.shape == (4, 1)
    assert numbers.evaluations == 4
    with count_syncs(cuda=False) as tensors:
        want = objective.score(
            torch.full((4, 1), 0.012, dtype=torch.float64), torch.full((4, 1), -0.007, dtype=torch.float64)
        )
    assert tensors.evaluations == 4
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def smoothed_reference(objective: Objective, h: torch.Tensor, l: torch.Tensor, tau: float) -> torch.Tensor:
    """`kernel.smoothed_profit_per_day` summed over legs and days, one candidate and one simulation at a time."""
    p = objective.problem
    out = torch.zeros(h.shape, dtype=torch.float64)
    for s in range(h.shape[0]):
        for k in range(h.shape[1]):
            for leg in objective.legs:
                day = smoothed_profit_per_day(
                    p.close[s],
                    p.high[s],
                    p.high_pred[s] + h[s, k].item(),
                    p.low[s],
                    p.low_pred[s] + l[s, k].item(),
                    leg[s],
                    tau=tau,
                    close_at_eod=objective.close_at_eod,
                    trading_fee=p.trading_fee,
                )
                out[s, k] += day.sum()
    return out


@pytest.mark.parametrize("close_at_eod", [False, True])
@pytest.mark.parametrize("make", [entry_exit_objective, always_on_objective])
def test_score_tau_is_the_smoothed_surrogate(make, close_at_eod):
    """`tau=` scores the smooth surrogate: [S, K], the sum of `kernel.smoothed_profit_per_day` over legs and days,
    differentiable in h and l, and records no evaluations, where the plain call records exactly S * K."""
    objective = make(batched_problem(), close_at_eod=close_at_eod)
    h, l = candidates(4, 6, seed=2)
    h.requires_grad_(True)
    tau = 2e-3
    with count_syncs(cuda=False) as smooth:
        got = objective.score(h, l, tau=tau)
    assert smooth.evaluations == 0
    assert got.shape == (4, 6) and got.dtype == torch.float64
    torch.testing.assert_close(got.detach(), smoothed_reference(objective, h.detach(), l, tau), rtol=0, atol=1e-12)
    (grad,) = torch.autograd.grad(got.sum(), h)
    assert grad.shape == (4, 6) and torch.isfinite(grad).all() and (grad != 0).any()
    with count_syncs(cuda=False) as plain:
        raw = objective.score(h.detach(), l)
    assert plain.evaluations == 4 * 6
    assert not torch.allclose(got.detach(), raw, rtol=0, atol=1e-12)  # a surrogate, not the objective
    # two numbers with tau: the surrogate at one candidate for every simulation, [S, 1], no evaluations either
    with count_syncs(cuda=False) as numbers:
        one = objective.score(0.01, -0.01, tau=tau)
    assert numbers.evaluations == 0
    assert one.shape == (4, 1)
    at = torch.full((4, 1), 0.01, dtype=torch.float64), torch.full((4, 1), -0.01, dtype=torch.float64)
    torch.testing.assert_close(one, smoothed_reference(objective, *at, tau), rtol=0, atol=1e-12)


def test_score_mixed_numbers_and_tensors_raise():
    """h and l are both numbers or both [S, K] tensors: one of each raises ValueError naming h, l."""
    objective = entry_exit_objective(problem64())
    t = torch.zeros(1, 3, dtype=torch.float64)
    for h, l in ((t, 0.0), (0.0, t)):
        with pytest.raises(ValueError, match=r"^h, l: expected matching \[S, K\] tensors with S=1"):
            objective.score(h, l)


def test_score_rejects_before_counting():
    """A rejected call (bad shapes) records no evaluations."""
    objective = always_on_objective(batched_problem())
    with count_syncs(cuda=False) as counter:
        with pytest.raises(ValueError, match="^h, l:"):
            objective.score(torch.zeros(3, 5, dtype=torch.float64), torch.zeros(3, 5, dtype=torch.float64))
    assert counter.evaluations == 0


def test_score_compiled_takes_tensors_only():
    """`compiled=True` scores [S, K] tensors: numbers raise ValueError naming compiled, and so does `tau`
    (the surrogate has no compiled path); neither records an evaluation."""
    objective = entry_exit_objective(problem64())
    zeros = torch.zeros(1, 3, dtype=torch.float64)
    with count_syncs(cuda=False) as counter:
        with pytest.raises(ValueError, match=r"^compiled: scores \[S, K\] candidate tensors, got numbers"):
            objective.score(0.0, 0.0, compiled=True)
        with pytest.raises(ValueError, match="^compiled: the smoothed surrogate has no compiled path"):
            objective.score(zeros, zeros, tau=1e-3, compiled=True)
    assert counter.evaluations == 0


@pytest.mark.parametrize("tau", [None, 2e-3])
def test_score_chunked_equals_one_call(tau, monkeypatch):
    """Past `candidates_per_call()` candidates, `score` (plain or `tau=`) gives the values of one call (float64:
    the same arithmetic per candidate) and records the same evaluations."""
    objective = always_on_objective(batched_problem())
    h, l = candidates(4, 11, seed=3)
    with count_syncs(cuda=False) as whole_count:
        whole = objective.score(h, l, tau=tau)
    monkeypatch.setattr(strategies, "CHUNK_ELEMENTS", 3 * 4 * 12)
    assert objective.candidates_per_call() == 3
    with count_syncs(cuda=False) as sliced_count:
        sliced = objective.score(h, l, tau=tau)
    assert sliced.shape == whole.shape == (4, 11)
    torch.testing.assert_close(sliced, whole, rtol=0, atol=1e-12)
    assert sliced_count.evaluations == whole_count.evaluations == (0 if tau else 4 * 11)


def test_strategy_labels_and_build_objective():
    """`build_objective` builds each strategy of STRATEGIES on the problem, labelled by its name; a hand-built
    Objective is "custom"; an unknown name raises ValueError naming strategy."""
    problem = batched_problem()
    assert STRATEGIES == ("entry_exit", "always_on")
    for name, make in zip(STRATEGIES, (entry_exit_objective, always_on_objective)):
        built, direct = build_objective(problem, name), make(problem)
        assert built.problem is problem
        assert built.strategy == direct.strategy == name
        assert len(built.legs) == len(direct.legs)
        assert all(torch.equal(a, b) for a, b in zip(built.legs, direct.legs))
    assert Objective(problem, (torch.ones_like(problem.close),)).strategy == "custom"
    with pytest.raises(ValueError, match="^strategy: expected one of entry_exit, always_on"):
        build_objective(problem, "custom")


def test_rows_select_simulations():
    """`rows(i)` is simulation i alone (S = 1; negative counts from the end), a slice or index tensor its rows;
    each scores what the whole objective scores on those rows and keeps policy and label."""
    objective = always_on_objective(batched_problem(), close_at_eod=True)
    h, l = candidates(4, 5, seed=4)
    whole = objective.score(h, l)
    for index, rows in ((2, [2]), (-1, [3]), (slice(1, 3), [1, 2]), (torch.tensor([3, 0]), [3, 0])):
        part = objective.rows(index)
        assert part.problem.n_sims == len(rows)
        assert all(leg.shape == (len(rows), 12) for leg in part.legs)
        assert part.close_at_eod is True and part.strategy == "always_on"
        torch.testing.assert_close(part.score(h[rows], l[rows]), whole[rows], rtol=0, atol=1e-12)
    with pytest.raises(IndexError, match="simulation 4 out of range for S = 4"):
        objective.rows(4)


def test_as_float64():
    """`as_float64` is the same objective in float64: problem and legs widened, policy and label kept."""
    p32 = batched_problem().to(dtype=torch.float32)
    objective = entry_exit_objective(p32, close_at_eod=True)
    wide = objective.as_float64()
    assert wide.problem.dtype == torch.float64 and all(leg.dtype == torch.float64 for leg in wide.legs)
    assert wide.close_at_eod is True and wide.strategy == "entry_exit"
    assert torch.equal(wide.legs[0], objective.legs[0].double())
    h, l = candidates(4, 5, seed=5)
    want = entry_exit_objective(p32.to(dtype=torch.float64), close_at_eod=True).score(h, l)
    torch.testing.assert_close(wide.score(h, l), want, rtol=0, atol=1e-12)


def random_case(s: int, k: int, n: int, dtype: torch.dtype, *, seed: int):
    """An `[S, N]` synthetic problem, three random legs in [-12, 12] and `[S, K]` candidates in the default box."""
    flat = synthetic_problem(s * n, 7, dtype=dtype)
    problem = Problem(**{key: v.reshape(s, n) for key, v in flat.tensors().items()})
    gen = torch.Generator().manual_seed(seed)
    legs = tuple((torch.rand(s, n, generator=gen, dtype=torch.float64) * 24 - 12).to(dtype) for _ in range(3))
    h = torch.empty(s, k, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen).to(dtype)
    l = torch.empty(s, k, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen).to(dtype)
    return problem, legs, h, l


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("close_at_eod", [False, True])
@pytest.mark.parametrize(("s", "k", "n"), [(1, 1, 6), (140, 1, 6), (3, 40, 37), (2, 300, 200)])
def test_stacked_legs_score_equals_one_call_per_leg(monkeypatch, s, k, n, close_at_eod, dtype):
    """A small call scores all legs in one kernel call on the stacked legs: bit for bit the per-leg calls' sum,
    for two legs (always-on) and three arbitrary ones, in float32 and float64."""
    problem, legs, h, l = random_case(s, k, n, dtype, seed=3)
    calls = []
    kernel = strategies.raw_profit_per_day

    def counted(*args, **kwargs):
        calls.append(1)
        return kernel(*args, **kwargs)

    for objective in (always_on_objective(problem, close_at_eod=close_at_eod), Objective(problem, legs, close_at_eod)):
        assert len(objective.legs) * s * k * n <= strategies.STACKED_LEGS_ELEMENTS
        calls.clear()
        monkeypatch.setattr(strategies, "raw_profit_per_day", counted)
        stacked = objective.score(h, l)
        assert len(calls) == 1
        monkeypatch.setattr(strategies, "STACKED_LEGS_ELEMENTS", 0)
        per_leg = objective.score(h, l)
        assert len(calls) == 1 + len(objective.legs)
        monkeypatch.undo()
        assert stacked.shape == (s, k) and stacked.dtype == dtype
        assert torch.equal(stacked, per_leg)
        if s * k > 1:
            assert per_leg.std() > 0  # the candidates really differ


@pytest.mark.cpu_dependent
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("s", "k", "n"), [(1, 2, 6), (140, 2, 6), (3, 40, 37)])
@pytest.mark.parametrize("path", ["stacked", "per_leg", "sliced"])
def test_policy_columns_equal_each_policys_own_call(monkeypatch, s, k, n, dtype, path):
    """`score(h, l, policies=...)` scores column `k` under policy `policies[k]`: bit for bit the column of that
    policy's own call, for one, two and three legs, whether the legs are stacked, scored one by one, or the
    candidates sliced; every candidate is counted once, no host sync."""
    problem, legs, h, l = random_case(s, k, n, dtype, seed=4)
    policies = torch.arange(k) % 2 == 1
    if path == "per_leg":
        monkeypatch.setattr(strategies, "STACKED_LEGS_ELEMENTS", 0)
    if path == "sliced":
        monkeypatch.setattr(strategies, "CHUNK_ELEMENTS", s * n)  # one candidate per kernel call
    for objective in (entry_exit_objective(problem), always_on_objective(problem), Objective(problem, legs)):
        with count_syncs(cuda=False) as counter:
            mixed = objective.score(h, l, policies=policies)
        assert counter.evaluations == h.numel() and counter.syncs == 0
        assert mixed.shape == (s, k) and mixed.dtype == dtype
        for policy in (False, True):
            own = objective.with_policy(policy).score(h, l)
            columns = policies == policy
            assert torch.equal(mixed[:, columns], own[:, columns])
            if s * k > 2:  # the other policy scores otherwise (one day and one candidate may tie)
                assert not torch.equal(mixed[:, ~columns], own[:, ~columns])


@pytest.mark.parametrize(
    ("policies", "match"),
    [
        ([False, True], "bool tensor of shape \\(2,\\)"),
        (torch.tensor([0, 1]), "bool tensor of shape \\(2,\\)"),
        (torch.tensor([False, True, True]), "bool tensor of shape \\(2,\\)"),
        (torch.tensor([[False, True]]), "bool tensor of shape \\(2,\\)"),
    ],
)
def test_score_rejects_bad_policies(policies, match):
    """`policies` must be one bool per candidate column."""
    objective = always_on_objective(synthetic_problem(10))
    h = torch.zeros(1, 2)
    with pytest.raises(ValueError, match=f"policies: expected a {match}"):
        objective.score(h, h, policies=policies)


def test_score_policies_need_candidate_tensors_and_the_eager_path():
    """`policies` scores `[S, K]` candidate tensors on the eager kernel: not numbers, not `compiled=True`."""
    objective = always_on_objective(synthetic_problem(10))
    with pytest.raises(ValueError, match="policies: scores \\[S, K\\] candidate tensors, got numbers"):
        objective.score(0.01, -0.01, policies=torch.tensor([True]))
    h = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="policies: the compiled path scores one policy per call"):
        objective.score(h, h, policies=torch.tensor([False, True]), compiled=True)
