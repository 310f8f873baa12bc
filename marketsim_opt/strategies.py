"""The two strategies of SPEC section 2 and their objectives `sum_i profit_i(h, l)`.

A strategy is a tuple of *legs*, each a positions tensor scored by one kernel
call: entry/exit has one leg (its forecast-driven positions), always-on has a
buy leg (`+1` every day) and a sell leg (`-1` every day; none for crypto).

`Objective` scores one candidate `(h, l)` as the historical optimizer did (one
kernel call per leg, a sum; the caller reads the result back) or a batch of
candidates in one broadcast kernel call per leg.  It counts every candidate
it scores with `instrument.record_evaluations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from .compiled import summed_profit
from .data import Problem
from .instrument import record_evaluations
from .kernel import raw_profit_per_day, smoothed_profit_per_day

__all__ = [
    "CHUNK_ELEMENTS",
    "entry_exit_positions",
    "always_on_legs",
    "Objective",
    "entry_exit_objective",
    "always_on_objective",
    "stack_objectives",
]

#: The most candidate-days (`S * K * N`) one kernel call scores: each of the kernel's temporaries is then at most
#: 16 MiB in float32 (32 MiB in float64), whatever the budget.  The largest batch of the suite's workloads at
#: their budgets (grid at 500 on N = 20000: 121 x 20000) stays under it, so it is scored in one call as before.
CHUNK_ELEMENTS = 2**22


def entry_exit_positions(high_pred: Tensor, low_pred: Tensor, *, is_crypto: bool = False) -> Tensor:
    """MaxDiff positions: `+1` where `|Hp| > |Lp|`, else `-1`; `0` where `Hp <= Lp`; crypto never shorts."""
    positions = torch.where(high_pred.abs() > low_pred.abs(), 1.0, -1.0).to(high_pred.dtype)
    positions = torch.where(high_pred <= low_pred, torch.zeros_like(positions), positions)
    if is_crypto:
        positions = positions.clamp(min=0.0)
    return positions


def always_on_legs(like: Tensor, *, is_crypto: bool = False) -> tuple[Tensor, ...]:
    """The always-on positions: a buy leg of `+1` and (not for crypto) a sell leg of `-1`, shaped like `like`."""
    buy = torch.ones_like(like)
    return (buy,) if is_crypto else (buy, -buy)


@dataclass(frozen=True)
class Objective:
    """`sum_i profit_i(h, l)` of one strategy on a `Problem`, for one policy.

    `legs` are positions tensors shaped like the problem's (`[N]` or `[S, N]`).
    """

    problem: Problem
    legs: tuple[Tensor, ...]
    close_at_eod: bool = False

    def __post_init__(self) -> None:
        shape = tuple(self.problem.close.shape)
        for i, leg in enumerate(self.legs):
            if tuple(leg.shape) != shape:
                raise ValueError(f"positions: leg {i} has shape {tuple(leg.shape)}, expected {shape}")
            if leg.dtype != self.problem.dtype or leg.device != self.problem.device:
                raise ValueError(
                    f"positions: leg {i} is {leg.dtype} on {leg.device}, expected "
                    f"{self.problem.dtype} on {self.problem.device}"
                )

    def with_policy(self, close_at_eod: bool) -> Objective:
        return Objective(self.problem, self.legs, close_at_eod)

    def _score(self, h: Tensor | float, l: Tensor | float, expand, kernel=None) -> Tensor:
        kernel = raw_profit_per_day if kernel is None else kernel  # looked up per call, so a spy can replace it
        p = self.problem
        total = None
        for leg in self.legs:
            day = kernel(
                expand(p.close),
                expand(p.high),
                expand(p.high_pred) + h,
                expand(p.low),
                expand(p.low_pred) + l,
                expand(leg),
                close_at_eod=self.close_at_eod,
                trading_fee=p.trading_fee,
            ).sum(-1)
            total = day if total is None else total + day
        return total

    def __call__(self, h: float, l: float) -> Tensor:
        """Score one candidate: a 0-d tensor (`[S]` for a batched problem), not yet read back."""
        record_evaluations(self.problem.n_sims)
        return self._score(h, l, lambda t: t)

    def batch(self, h: Tensor, l: Tensor, *, compiled: bool = False) -> Tensor:
        """Score K candidates in one broadcast kernel call per leg.

        `h`, `l`: `[K]` for an unbatched problem, `[S, K]` for a batched one.
        Returns `[K]` or `[S, K]` profits on the problem's device.  `compiled=True`
        runs the kernel and its sum fused by torch.compile (`marketsim_opt.compiled`).
        More than `candidates_per_call()` candidates are scored in slices of that many, so the kernel's
        `[S, K, N]` temporaries stay bounded at any K (no host sync is added).
        """
        want = (self.problem.n_sims, -1) if self.problem.batched else (-1,)
        if h.dim() != len(want) or l.shape != h.shape or (self.problem.batched and h.shape[0] != want[0]):
            raise ValueError(
                f"h, l: expected matching shapes {'[S, K]' if self.problem.batched else '[K]'} "
                f"with S={self.problem.n_sims}, got {tuple(h.shape)} and {tuple(l.shape)}"
            )
        chunk = self.candidates_per_call()
        if h.shape[-1] <= chunk:
            return self._batch(h, l, compiled)
        # Huge K: score CHUNK_ELEMENTS-sized slices (same rows, same arithmetic), reporting each as it is done.
        parts = [
            self._batch(h[..., i : i + chunk], l[..., i : i + chunk], compiled) for i in range(0, h.shape[-1], chunk)
        ]
        return torch.cat(parts, dim=-1)

    def candidates_per_call(self) -> int:
        """The most candidates per simulation one kernel call scores: `S * K * N <= CHUNK_ELEMENTS` (at least 1)."""
        return max(1, CHUNK_ELEMENTS // (self.problem.n_sims * self.problem.n_days))

    def _batch(self, h: Tensor, l: Tensor, compiled: bool) -> Tensor:
        record_evaluations(h.numel())
        expand = lambda t: t.unsqueeze(-2)  # noqa: E731 - days [..., 1, N] against candidates [..., K, 1]
        if compiled:
            p = self.problem
            return summed_profit(
                *(expand(t) for t in (p.close, p.high, p.high_pred, p.low, p.low_pred)),
                tuple(expand(leg) for leg in self.legs),
                h.unsqueeze(-1),
                l.unsqueeze(-1),
                close_at_eod=self.close_at_eod,
                trading_fee=p.trading_fee,
            )
        return self._score(h.unsqueeze(-1), l.unsqueeze(-1), expand)

    def batch_rows(self, h: Tensor, l: Tensor) -> Tensor:
        """`batch` with a simulation axis for every problem: `[S, K]` candidates -> `[S, K]` profits.

        `S = 1` for an unbatched problem (whose `batch` takes and returns `[K]`).
        """
        if self.problem.batched:
            return self.batch(h, l)
        return self.batch(h[0], l[0])[None]

    def smoothed(self, h: Tensor, l: Tensor, *, tau: float | Tensor) -> Tensor:
        """The smooth surrogate (`kernel.smoothed_profit_per_day`, width `tau`) at `[S, K]` candidates.

        `S = 1` for an unbatched problem; returns `[S, K]`, differentiable in `h` and `l`.  Records no
        evaluations: the caller counts its forward and backward passes.
        """
        expand = lambda t: t.unsqueeze(-2)  # noqa: E731 - days [..., 1, N] against candidates [S, K, 1]
        kernel = partial(smoothed_profit_per_day, tau=tau)
        return self._score(h.unsqueeze(-1), l.unsqueeze(-1), expand, kernel)


def entry_exit_objective(problem: Problem, positions: Tensor | None = None, *, close_at_eod: bool = False) -> Objective:
    """The entry/exit objective; positions default to `entry_exit_positions` of the problem's forecasts."""
    if positions is None:
        positions = entry_exit_positions(problem.high_pred, problem.low_pred, is_crypto=problem.is_crypto)
    return Objective(problem, (positions,), close_at_eod)


def always_on_objective(problem: Problem, *, close_at_eod: bool = False) -> Objective:
    """The always-on objective: the sum of its buy and (not for crypto) sell legs."""
    return Objective(problem, always_on_legs(problem.close, is_crypto=problem.is_crypto), close_at_eod)


def stack_objectives(objectives: list[Objective]) -> Objective:
    """Several objectives of one policy as one batched objective: their rows, in order, `[S1 + S2 + ..., N]`.

    Legs are padded with all-zero legs (which score exactly 0) to the largest
    leg count, so entry/exit (one leg) and always-on (two) stack into one batch.
    """
    if not objectives:
        raise ValueError("objectives: expected at least one objective")
    first = objectives[0]
    for i, obj in enumerate(objectives[1:], start=1):
        if obj.close_at_eod != first.close_at_eod:
            raise ValueError(
                f"objectives: objective {i} has close_at_eod={obj.close_at_eod}, the first {first.close_at_eod}"
            )
    problem = first.problem.concat(*(obj.problem for obj in objectives[1:]))
    n_legs = max(len(obj.legs) for obj in objectives)
    days = problem.n_days

    def padded(obj: Objective, i: int) -> Tensor:
        leg = obj.legs[i] if i < len(obj.legs) else torch.zeros_like(obj.legs[0])
        return leg.reshape(-1, days)

    legs = tuple(torch.cat([padded(obj, i) for obj in objectives]) for i in range(n_legs))
    return Objective(problem, legs, first.close_at_eod)
