"""Helpers shared by the optimizer tests (a plain module, imported as `optimizer_helpers`).

A *strategy case* is one of `"entry_exit"`, `"always_on"` and `"always_on_crypto"`; `solve` runs the
matching historical entry point on a `Problem` (`[S, N]`; S = 1 for one series) with the problem's own fee.
"""

from __future__ import annotations

import torch

from marketsim_opt import Problem, optimize_always_on, optimize_entry_exit
from marketsim_opt.data import synthetic_problem
from marketsim_opt.strategies import entry_exit_positions

STRATEGIES = ("entry_exit", "always_on", "always_on_crypto")
FIELDS = ("close", "high", "low", "high_pred", "low_pred")


def stacked(problems: list[Problem]) -> Problem:
    """One `[S, N]` problem whose row `s` is `problems[s]`'s one row (same fee and crypto flag as the first)."""
    first = problems[0]
    return Problem(
        **{f: torch.cat([getattr(p, f) for p in problems]) for f in FIELDS},
        is_crypto=first.is_crypto,
        trading_fee=first.trading_fee,
    )


def batch_of(n_days: int, seeds, **kwargs) -> tuple[Problem, list[Problem]]:
    """A problem of synthetic rows (one per seed) and the one-row problems it was built from."""
    rows = [synthetic_problem(n_days, seed, **kwargs) for seed in seeds]
    return stacked(rows), rows


def solve(problem: Problem, strategy: str, **kwargs):
    """Run `strategy` on `problem` through the public API (entry/exit positions by the MaxDiff rule)."""
    args = (problem.close, problem.high, problem.high_pred, problem.low, problem.low_pred)
    if strategy == "entry_exit":
        positions = entry_exit_positions(problem.high_pred, problem.low_pred)
        return optimize_entry_exit(*args, positions, trading_fee=problem.trading_fee, **kwargs)
    if strategy in ("always_on", "always_on_crypto"):
        crypto = strategy == "always_on_crypto"
        return optimize_always_on(*args, is_crypto=crypto, trading_fee=problem.trading_fee, **kwargs)
    raise AssertionError(f"unknown strategy case {strategy!r}")


def elementwise_rows(self, h: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Stand-in for `Objective.score` at `[S, K]` candidates: `-(h - c)^2 - (l + c)^2` with `c` each simulation's
    first close.

    float64 and elementwise only (no reduction), so a row scores the same bits batched or alone on any CPU;
    the kernel's own batched-versus-single equality is tests/test_kernel.py's (cpu_dependent) business.
    """
    c = self.problem.close[:, :1].to(torch.float64)  # [S, 1]
    dh, dl = h.to(torch.float64) - c, l.to(torch.float64) + c
    return -(dh * dh) - (dl * dl)


def assert_batched_rows_equal_per_row_calls(monkeypatch, strategy: str, method: str, budget: int) -> None:
    """Each simulation of a batch has its own optimizer with the same seed and is told only its own row's scores,
    so every field of the batch equals the one-row call on that row (scores from `elementwise_rows`)."""
    from marketsim_opt.strategies import Objective

    real = Objective.score

    def scored(self, h, l, **kwargs):
        real(self, h, l, **kwargs)  # counts the evaluations, which the API checks
        return elementwise_rows(self, h, l)

    monkeypatch.setattr(Objective, "score", scored)
    batch, rows = batch_of(8, [31, 32, 33])
    res = solve(batch, strategy, method=method, budget=budget, close_at_eod=None, seed=4)
    assert len(set(res.h.tolist())) == 3  # the rows' optima differ, so a mixed-up row would show
    for s, row in enumerate(rows):
        one = solve(row, strategy, method=method, budget=budget, close_at_eod=None, seed=4).scalar
        got = (res.h[s], res.l[s], res.profit[s], res.close_at_eod[s], res.nfev[s])
        assert got == (one.h, one.l, one.profit, one.close_at_eod, one.nfev)
