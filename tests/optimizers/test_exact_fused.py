"""The fused numba sweep (`exact_fused`) against the torch path of `exact.solve_policies`: the same candidates,
the same supremum bit for bit and the same `(j, k)` for every simulation and policy.

`python tests/optimizers/test_exact_fused.py` prints timings (fused, one and two threads, and the torch path).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
import torch

numba = pytest.importorskip("numba", reason="the fused exact sweep needs numba (pip install numba)")

from marketsim_opt.data import Problem, synthetic_problem  # noqa: E402
from marketsim_opt.optimizers import exact, exact_fused  # noqa: E402
from marketsim_opt.strategies import (  # noqa: E402
    Objective,
    always_on_objective,
    entry_exit_objective,
    stack_objectives,
)

pytestmark = pytest.mark.cpu_dependent  # torch's addcmul rounds once or twice by CPU capability; so does `fma`

BOX = ((-0.03, 0.03), (-0.03, 0.03))
CUT = ((-0.004, 0.006), (-0.007, 0.002))  # cuts most breakpoints off on both sides
WIDE = ((-10.5, 10.5), (-1.2, 1.2))  # reaches the clamp kinks at Hq = 10 and Lq = -1
BOUNDS = {"box": BOX, "cut": CUT, "wide": WIDE}
POLICIES = (False, True)


def torch_path(objective: Objective, bounds, policies=POLICIES) -> tuple[exact._Axes, list[tuple]]:
    """What `exact.solve_policies` computes before re-scoring: per policy `(supremum, j, k)` as numpy."""
    ax = exact._Axes(objective, bounds)
    out = []
    for close_at_eod in policies:
        w, z = ax.sides(close_at_eod)
        if close_at_eod:
            w_best, j = w.max(dim=-1)
            z_best, k = z.max(dim=-1)
            supremum = w_best + z_best
        else:
            supremum, j, k = exact._best_of_sweep(ax, w, z)
        out.append((supremum.numpy(), j.numpy(), k.numpy()))
    return ax, out


def fused_args(objective: Objective) -> list[np.ndarray]:
    """`fused_sweep`'s array arguments for `objective`: the five days `[S, N]` and the legs `[L, S, N]`."""
    p = objective.problem.as_float64()
    days = [t.numpy() for t in (p.close, p.high, p.low, p.high_pred, p.low_pred)]
    return days + [torch.stack(objective.legs).double().numpy()]


def fused_path(objective: Objective, bounds, policies=POLICIES):
    return exact_fused.fused_sweep(*fused_args(objective), float(objective.problem.trading_fee), bounds, policies)


def assert_same(objective: Objective, bounds, policies=POLICIES) -> None:
    ax, want = torch_path(objective, bounds, policies)
    got, h_ind, l_ind = fused_path(objective, bounds, policies)
    assert np.array_equal(h_ind, ax.h_ind.numpy()) and np.array_equal(l_ind, ax.l_ind.numpy())
    kl, kh = ax.l_val.shape[-1], ax.h_val.shape[-1]
    rows = np.arange(len(h_ind))
    for close_at_eod, (supremum, j, k), f in zip(policies, want, got, strict=True):
        where = f"close_at_eod={close_at_eod}"
        assert f.supremum.dtype == np.float64 and f.j.dtype == np.int64 and f.k.dtype == np.int64
        assert np.array_equal(f.supremum.view(np.int64), supremum.view(np.int64)), (where, f.supremum - supremum)
        assert np.array_equal(f.j, j), (where, f.j, j)
        assert np.array_equal(f.k, k), (where, f.k, k)
        assert np.array_equal(f.h, h_ind[rows, k]) and np.array_equal(f.l, l_ind[rows, j]), where
        assert f.scored == (kl + kh if close_at_eod else kl * kh)


def stack(
    n_days: int, seeds, *, crypto: bool = False, quantum: float | None = None, dtype: torch.dtype = torch.float64
) -> Problem:
    """Synthetic rows as one problem (each field of `dtype`); `quantum` rounds every field to its multiples and
    drops the fee, so that sums are exact and distinct corners can tie."""
    rows = [synthetic_problem(n_days, seed, dtype=dtype) for seed in seeds]
    fields = {f: torch.cat([r.tensors()[f] for r in rows]) for f in rows[0].tensors()}
    if quantum is not None:
        fields = {f: torch.round(t / quantum) * quantum for f, t in fields.items()}
        fields["high"] = torch.maximum(fields["high"], fields["low"])
    return Problem(**fields, is_crypto=crypto, trading_fee=None if quantum is None else 0.0)


def objectives(problem: Problem) -> dict[str, Objective]:
    """Entry/exit (MaxDiff positions), always-on, and entry/exit with positions holding zeros and sizes."""
    gen = torch.Generator().manual_seed(problem.n_days * 1000 + problem.n_sims)
    sizes = torch.tensor([-2.5, -1.0, 0.0, 0.0, 1.0, 3.0], dtype=problem.dtype)
    positions = sizes[torch.randint(len(sizes), problem.close.shape, generator=gen)]
    if problem.is_crypto:
        positions = positions.clamp(min=0.0)
    return {
        "entry_exit": entry_exit_objective(problem),
        "always_on": always_on_objective(problem),
        "sized": entry_exit_objective(problem, positions),
    }


@pytest.mark.parametrize("bounds", BOUNDS, ids=str)
@pytest.mark.parametrize("crypto", [False, True], ids=["equity", "crypto"])
@pytest.mark.parametrize("n_sims", [1, 3])
@pytest.mark.parametrize("n_days", [1, 2, 3, 6, 30])
def test_small_problems_match_torch_bitwise(n_days: int, n_sims: int, crypto: bool, bounds: str) -> None:
    problem = stack(n_days, range(n_sims), crypto=crypto)
    for objective in objectives(problem).values():
        assert_same(objective, BOUNDS[bounds])


@pytest.mark.parametrize(
    "n_days, n_sims, crypto, dtype",
    [(200, 1, False, torch.float32), (200, 3, True, torch.float32), (30, 70, False, torch.float64)]
    + [(200, 70, False, torch.float32)],
)
def test_larger_problems_match_torch_bitwise(n_days: int, n_sims: int, crypto: bool, dtype: torch.dtype) -> None:
    """Float32 problems too: the torch path widens them (`.double()`), the fused one gets them widened."""
    problem = stack(n_days, range(100, 100 + n_sims), crypto=crypto, dtype=dtype)
    for name, objective in objectives(problem).items():
        bounds = CUT if name == "sized" else BOX
        assert_same(objective, bounds)


@pytest.mark.slow
@pytest.mark.parametrize("n_sims", [1, 3])
def test_n2000_matches_torch_bitwise(n_sims: int) -> None:
    assert_same(always_on_objective(stack(2000, range(50, 50 + n_sims))), BOX)


@pytest.mark.parametrize("n_days", [1, 6, 30])
@pytest.mark.parametrize("bounds", BOUNDS, ids=str)
def test_stacked_batches_reusing_their_days_match_torch_bitwise(n_days: int, bounds: str) -> None:
    """`run_stacked`'s batch (two objectives on one problem: its days repeat half a batch down, which the
    compiled loops reuse) matches the torch path; so do halves that differ only in one zero's sign, or one day."""
    problem = stack(n_days, range(5))
    both = stack_objectives([entry_exit_objective(problem), always_on_objective(problem)])
    assert both.problem.n_sims == 10 and torch.equal(both.problem.close[:5], both.problem.close[5:])
    assert_same(both, BOUNDS[bounds])
    for field, partner, row in (("high_pred", 0.0, -0.0), ("low", None, 1e-9)):
        days = {f: t.clone() for f, t in both.problem.tensors().items()}
        if partner is None:  # row 7 a little off its partner, row 2
            days[field][7, 0] += row
        else:  # rows 2 and 7 equal but for a zero's sign
            days[field][2, 0], days[field][7, 0] = partner, row
        days["high"] = torch.maximum(days["high"], days["low"])
        changed = Problem(**days)
        assert_same(Objective(changed, both.legs), BOUNDS[bounds])


@pytest.mark.parametrize("n_days", [2, 6, 30, 200])
def test_duplicate_breakpoints_match_torch_bitwise(n_days: int) -> None:
    """Repeated days give repeated breakpoints (zero gaps, zero nudges, equal thresholds)."""
    base = stack(n_days, range(7, 10))
    days = torch.arange(n_days).repeat_interleave(2)[:n_days]  # 0, 0, 1, 1, ...
    days[-1] = 0
    problem = Problem(**{f: t[:, days] for f, t in base.tensors().items()})
    for objective in objectives(problem).values():
        assert_same(objective, BOX)


@pytest.mark.parametrize(
    "n_days, n_sims, quantum, decided",
    [(6, 70, 2.0**-6, True), (30, 70, 2.0**-7, True), (6, 3, 2.0**-8, False), (200, 1, 2.0**-8, False)],
)
def test_ties_follow_torch_chunks(
    n_days: int, n_sims: int, quantum: float, decided: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values on a coarse binary grid with no fee tie exactly: among equal maxima the winner follows torch's
    column chunks (smallest chunk, then row, then column), not just the first in row-major order.

    Both paths agree with a small cell budget (one column a chunk) and the default one; on the `decided` data
    the two budgets pick different corners for some simulation, so the chunk rule is really exercised.
    """
    problem = stack(n_days, range(20, 20 + n_sims), quantum=quantum)
    picks = []
    for cells in (2**8, exact.CHUNK_CELLS):
        monkeypatch.setattr(exact, "CHUNK_CELLS", cells)
        monkeypatch.setattr(exact_fused, "CHUNK_CELLS", cells)
        for objective in objectives(problem).values():
            assert_same(objective, BOX, (False,))
            got = fused_path(objective, BOX, (False,))[0][0]
            picks.append(np.stack([got.j, got.k]))
    half = len(picks) // 2
    if decided:
        assert any(not np.array_equal(a, b) for a, b in zip(picks[:half], picks[half:], strict=True))


def test_blocks_agree() -> None:
    """A simulation's column blocks (2N+1 = 401 columns: two blocks of `BLOCK`) combine by the tie rule, for one
    simulation and for two."""
    problem = stack(200, range(40, 42), quantum=2.0**-8)
    assert_same(entry_exit_objective(problem), BOX)
    assert_same(entry_exit_objective(problem[0]), BOX)


def test_the_solver_leaves_torch_threads_alone() -> None:
    """The compiled loops run on the calling thread: a parallel numba loop would set torch's thread count (they
    share libgomp), so a caller's single-threaded torch would come back with numba's threads."""
    import torch

    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            exact.solve_policies(entry_exit_objective(stack(300, range(2))), BOX, (False, True))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_constants_follow_exact() -> None:
    assert exact_fused.NUDGE == exact.NUDGE and exact_fused.CHUNK_CELLS == exact.CHUNK_CELLS


def test_shapes_are_checked() -> None:
    days = [np.zeros((2, 3))] * 5
    for bad in (days[:4] + [np.zeros((2, 4)), np.zeros((1, 2, 3))], days + [np.zeros((1, 2, 4))]):
        with pytest.raises(ValueError, match=r"\[S, N\] shape"):
            exact_fused.fused_sweep(*bad, 0.0, BOX, POLICIES)
    with pytest.raises(ValueError, match=r"legs \[L >= 1"):
        exact_fused.fused_sweep(*days, np.zeros((0, 2, 3)), 0.0, BOX, POLICIES)


def _counted(points: np.ndarray, base: float, ref: float, lo: float, hi: float, strict: bool) -> int:
    """How many leading points pass `clamp(base + x, lo, hi) < ref` (`<=` unless `strict`), one by one."""
    y = np.clip(base + points, lo, hi)
    passed = (y < ref) if strict else (y <= ref)
    return len(points) if passed.all() else int(np.argmin(passed))


def test_searches_agree_with_a_plain_count() -> None:
    """`_search` (early exits at both ends) is numpy's searchsorted, and `_leading_at_most` (a galloping search
    from the strict count) is `_leading_true`'s non-strict count, on random ascending points and on points built
    to tie: exact hits of `ref`, long runs clamped to the bound that equals `ref`, values beyond either end."""
    rng = np.random.default_rng(11)
    for trial in range(3000):
        k = int(rng.integers(1, 40))
        points = np.sort(rng.choice(np.linspace(-2.0, 2.0, 9), k) if trial % 2 else rng.uniform(-2.0, 2.0, k))
        lo, hi = (-1.0, 0.0) if trial % 3 else (0.0, 10.0)
        base = float(rng.choice([0.0, 0.5, -0.5, rng.uniform(-3.0, 3.0)]))
        ref = float(rng.choice([lo, hi, base + points[int(rng.integers(k))], rng.uniform(-3.0, 3.0)]))
        ref = min(max(ref, lo), hi) if trial % 5 == 0 else ref
        strict = exact_fused._leading_true(points, base, ref, lo, hi, True)
        assert strict == _counted(points, base, ref, lo, hi, True)
        at_most = exact_fused._leading_at_most(points, strict, base, ref, lo, hi)
        assert at_most == exact_fused._leading_true(points, base, ref, lo, hi, False)
        assert at_most == _counted(points, base, ref, lo, hi, False)
        x = float(rng.choice([points[0] - 1.0, points[-1] + 1.0, points[int(rng.integers(k))], rng.uniform(-3, 3)]))
        for right in (False, True):
            want = int(np.searchsorted(points, x, side="right" if right else "left"))
            assert exact_fused._search(points, x, right) == want


def test_leg_sides_follow_exact() -> None:
    """The compiled leg sums equal `exact.leg_sides` bit for bit: signed zeros (Python's `sum` starts from 0),
    the clamps at +-10, and a NaN kept as torch's clamp keeps it."""
    values = torch.tensor([-0.0, 0.0, -12.0, 12.0, -3.5, 2.25, 10.0, -10.0, float("nan")], dtype=torch.float64)
    legs = torch.cartesian_prod(values, values).T.reshape(2, 1, -1)  # every pair of values, as two legs
    problem = Problem(*(torch.zeros(legs.shape[1:], dtype=torch.float64) for _ in range(5)))
    want = exact.leg_sides(Objective(problem, tuple(legs)))
    pl, ps = np.empty(legs.shape[1:]), np.empty(legs.shape[1:])
    exact_fused._leg_sides(legs.numpy(), pl, ps)
    for got, expected in zip((pl, ps), want, strict=True):
        assert np.array_equal(got.view(np.int64), expected.numpy().view(np.int64))


def test_unfused_addcmul_path_matches_plain_arithmetic() -> None:
    """`fma=False` (torch's DEFAULT kernel) differs from `fma=True` only through addcmul's rounding: a check that
    the flag reaches both the sides and the sweep (bitwise agreement with torch runs under that capability)."""
    problem = stack(30, range(3))
    objective = always_on_objective(problem)
    args = fused_args(objective)
    fused = exact_fused.fused_sweep(*args, float(problem.trading_fee), BOX, POLICIES, fma=True)[0]
    plain = exact_fused.fused_sweep(*args, float(problem.trading_fee), BOX, POLICIES, fma=False)[0]
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a.supremum, b.supremum, rtol=0, atol=1e-12)


def _timing(n_days_list=(200, 2000, 20000), torch_limit: int = 2000) -> None:
    """ms per solve and ns per `Kl x Kh` cell of the intraday sweep (S = 1), fused and torch."""
    for n_days in n_days_list:
        objective = entry_exit_objective(synthetic_problem(n_days, 0))
        p = objective.problem
        args = fused_args(objective)
        cells = (2 * n_days + 1) ** 2
        exact_fused.fused_sweep(*args, float(p.trading_fee), BOX, (False,))
        reps = max(1, int(3e8 // cells))
        start = time.perf_counter()
        for _ in range(reps):
            exact_fused.fused_sweep(*args, float(p.trading_fee), BOX, (False,))
        took = (time.perf_counter() - start) / reps
        print(f"N={n_days:6d} fused  one thread: {took * 1e3:9.2f} ms  {took / cells * 1e9:6.3f} ns/cell")
        if n_days <= torch_limit:
            torch.set_num_threads(1)
            torch_path(objective, BOX, (False,))
            reps = max(1, int(3e7 // cells))
            start = time.perf_counter()
            for _ in range(reps):
                torch_path(objective, BOX, (False,))
            took = (time.perf_counter() - start) / reps
            print(f"N={n_days:6d} torch  one thread: {took * 1e3:9.2f} ms  {took / cells * 1e9:6.3f} ns/cell")


if __name__ == "__main__":
    _timing(torch_limit=int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
