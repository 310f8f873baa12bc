"""The two strategies of docs/kernel.md and their objectives `sum_i profit_i(h, l)`.

A strategy is a tuple of *legs*, each a positions tensor scored by one kernel
call: entry/exit has one leg (its forecast-driven positions), always-on has a
buy leg (`+1` every day) and a sell leg (`-1` every day; none for crypto).

`Objective.score` is the one scoring entry: `[S, K]` candidates in, `[S, K]`
profits out, in one broadcast kernel call per leg (small calls: one for all legs
stacked, the same numbers); two numbers score one
candidate as the historical optimizer did (one kernel call per leg, a sum; the
caller reads the result back).  It counts every candidate it scores with
`instrument.record_evaluations`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import torch
from torch import Tensor

from .compiled import summed_profit
from .data import Problem, row_index
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
    "build_objective",
    "STRATEGIES",
]

#: The most candidate-days (`S * K * N`) one kernel call scores: each of the kernel's temporaries is then at most
#: 16 MiB in float32 (32 MiB in float64), whatever the budget.  The largest batch of the suite's workloads at
#: their budgets (grid at 500 on N = 20000: 121 x 20000) stays under it, so it is scored in one call as before.
CHUNK_ELEMENTS = 2**22
#: Up to this many leg-candidate-days (`L * S * K * N`), `score` runs every leg in one kernel call on the legs
#: stacked (`[L, S, K, N]`): such calls cost torch's per-operation dispatch, not arithmetic, so one call for all
#: legs costs about half of one per leg (the backtest's exact re-scoring: 57 against 99 us per policy), and its
#: temporaries stay under 4 MiB.  The sums are the same numbers (tests/test_strategies.py).
STACKED_LEGS_ELEMENTS = 2**19


def entry_exit_positions(high_pred: Tensor, low_pred: Tensor, *, is_crypto: bool = False) -> Tensor:
    """MaxDiff positions: `+1` where `|Hp| > |Lp|`, else `-1`; `0` where `Hp <= Lp`; crypto never shorts."""
    positions = torch.where(high_pred.abs() > low_pred.abs(), 1.0, -1.0).to(high_pred.dtype)
    positions = torch.where(high_pred <= low_pred, 0.0, positions)
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

    `legs` are positions tensors shaped like the problem's, `[S, N]` (for S = 1, an `[N]` leg is taken as its
    one row).  `strategy` names it: the label results carry and the key of the default budget
    (`"entry_exit"`, `"always_on"`, their stack `"entry_exit+always_on"`, or a name of the caller's).
    """

    problem: Problem
    legs: tuple[Tensor, ...]
    close_at_eod: bool = False
    strategy: str = "custom"

    def __post_init__(self) -> None:
        shape = tuple(self.problem.close.shape)
        one_row = lambda leg: isinstance(leg, Tensor) and shape[0] == 1 and tuple(leg.shape) == shape[1:]  # noqa: E731
        legs = tuple(leg.unsqueeze(0) if one_row(leg) else leg for leg in self.legs)
        for i, leg in enumerate(legs):
            if not isinstance(leg, Tensor) or tuple(leg.shape) != shape:
                raise ValueError(f"positions: leg {i} has shape {_shape(leg)}, expected {shape}")
            if leg.dtype != self.problem.dtype or leg.device != self.problem.device:
                raise ValueError(
                    f"positions: leg {i} is {leg.dtype} on {leg.device}, expected "
                    f"{self.problem.dtype} on {self.problem.device}"
                )
        object.__setattr__(self, "legs", legs)

    def with_policy(self, close_at_eod: bool) -> Objective:
        return replace(self, close_at_eod=close_at_eod)

    def rows(self, index: int | slice | Tensor) -> Objective:
        """The objective of simulation(s) `index` alone (an int gives S = 1), as `Problem.__getitem__` selects."""
        rows = row_index(index, self.problem.n_sims)
        return replace(self, problem=self.problem[rows], legs=tuple(leg[rows] for leg in self.legs))

    def as_float64(self) -> Objective:
        """The same objective in float64 (the exact solver's re-scoring arithmetic): the problem's days and the
        legs widened in one conversion of them stacked, whose rows the copy holds."""
        block = torch.stack([*self.problem.tensors().values(), *self.legs]).double()  # [5 + L, S, N]
        days = block.unbind(0)
        return replace(self, problem=self.problem.with_tensors(days[:5]), legs=days[5:])

    def score(
        self,
        h: Tensor | float,
        l: Tensor | float,
        *,
        tau: float | Tensor | None = None,
        compiled: bool = False,
        policies: Tensor | None = None,
    ) -> Tensor:
        """The objective at candidates `(h, l)`: `[S, K]` offsets in -> `[S, K]` profits out, on the problem's
        device and not read back.

        Two numbers score one candidate for every simulation (`[S, 1]`), one kernel call per leg: the
        historical sequential evaluation.  `tau` scores the smooth surrogate instead
        (`kernel.smoothed_profit_per_day` of width `tau`, differentiable in `h` and `l`) and records no
        evaluations: the caller counts its forward and backward passes.  Otherwise every candidate is counted
        (`instrument.record_evaluations`).  `compiled=True` runs the kernel and its sum fused by torch.compile
        (`marketsim_opt.compiled`).  More than `candidates_per_call()` candidates are scored in slices of that
        many, so the kernel's `[S, K, N]` temporaries stay bounded at any K (no host sync is added).
        `policies`, a bool `[K]` tensor on the problem's device, scores column `k` under `close_at_eod =
        policies[k]` instead of the objective's policy: each column the number its policy's own call gives, all
        in one call (exact's re-scoring of every policy's point).
        """
        if not isinstance(h, Tensor) and not isinstance(l, Tensor):  # the sequential hot path: no frame to spare
            if compiled or policies is not None:
                raise ValueError(
                    f"{'compiled' if compiled else 'policies'}: scores [S, K] candidate tensors, got numbers"
                )
            p = self.problem
            days = (p.close, p.high, p.high_pred, p.low, p.low_pred)
            if tau is None:
                record_evaluations(p.close.shape[0])
                return self._sum(days, self.legs, h, l, raw_profit_per_day, True)  # [S, 1] from the sum itself
            return self._sum(days, self.legs, h, l, partial(smoothed_profit_per_day, tau=tau), True)
        s = self.problem.n_sims
        if not isinstance(h, Tensor) or not isinstance(l, Tensor) or h.dim() != 2 or l.shape != h.shape:
            raise ValueError(f"h, l: expected matching [S, K] tensors with S={s}, got {_shape(h)} and {_shape(l)}")
        if h.shape[0] != s:
            raise ValueError(f"h, l: expected [S, K] with S={s}, got {tuple(h.shape)}")
        if policies is None:
            policy = self.close_at_eod
        else:
            _check_policies(policies, h.shape[-1], self.problem.device, compiled)
            policy = policies[:, None]  # [K, 1] against [S, K, N]
        chunk = self.candidates_per_call()
        if h.shape[-1] <= chunk:
            return self._batch(h, l, tau, compiled, policy)
        # Huge K: score CHUNK_ELEMENTS-sized slices (same rows, same arithmetic).
        parts = [
            self._batch(h[:, i : i + chunk], l[:, i : i + chunk], tau, compiled, _columns(policy, i, chunk))
            for i in range(0, h.shape[-1], chunk)
        ]
        return torch.cat(parts, dim=-1)

    def stacks_legs(self, k: int) -> bool:
        """Whether `score` of `k` candidates per simulation (the exact kernel, eager) runs every leg in one kernel
        call on the legs stacked (`STACKED_LEGS_ELEMENTS`)."""
        p = self.problem
        return len(self.legs) > 1 and len(self.legs) * p.n_sims * k * p.n_days <= STACKED_LEGS_ELEMENTS

    def candidates_per_call(self) -> int:
        """The most candidates per simulation one kernel call scores: `S * K * N <= CHUNK_ELEMENTS` (at least 1)."""
        return max(1, CHUNK_ELEMENTS // (self.problem.n_sims * self.problem.n_days))

    def _sum(
        self, days: tuple[Tensor, ...], legs: tuple[Tensor, ...], h, l, kernel, keepdim: bool, policy=None
    ) -> Tensor:
        """`kernel` summed over days (kept as a size-1 axis with `keepdim`) and legs at `h`, `l`.

        `days` is `(close, high, high_pred, low, low_pred)`; they and `legs` broadcast against `h` and `l`.
        The kernel is passed in by the caller, which reads the module's at call time (a spy can replace it).
        `policy`: the kernel's `close_at_eod` (a bool, or a `[K, 1]` bool tensor), the objective's for None.
        """
        close, high, high_pred, low, low_pred = days
        fee = self.problem.trading_fee
        policy = self.close_at_eod if policy is None else policy
        total = None
        for leg in legs:
            day = kernel(close, high, high_pred + h, low, low_pred + l, leg, close_at_eod=policy, trading_fee=fee)
            day = day.sum(-1, keepdim=keepdim)
            total = day if total is None else total + day
        return total

    def _sum_stacked(self, days: tuple[Tensor, ...], legs: Tensor, h: Tensor, l: Tensor, policy) -> Tensor:
        """`_sum` of the exact kernel with the legs stacked `[L, ...]` in one kernel call: each leg's sum over
        days is the per-leg call's (the same elementwise arithmetic, the same reduction of each row), and the
        legs' sums are added in leg order as `_sum` adds them.

        The inputs may be held simulations-innermost (exact's re-scoring: `exact._rescoring_objective`), and the
        kernel's result then is too; the days are summed on its contiguous copy, as a sum's order of additions
        follows the layout."""
        close, high, high_pred, low, low_pred = days
        fee = self.problem.trading_fee
        per_leg = raw_profit_per_day(
            close, high, high_pred + h, low, low_pred + l, legs, close_at_eod=policy, trading_fee=fee
        )
        per_leg = per_leg.contiguous().sum(-1)
        total, *rest = per_leg.unbind(0)
        for day in rest:
            total = total + day
        return total

    def _batch(self, h: Tensor, l: Tensor, tau, compiled: bool, policy) -> Tensor:
        """`[S, K]` candidates against the days as `[S, 1, N]` (and legs), in one kernel call per leg, or one for
        all legs when the call is small (`STACKED_LEGS_ELEMENTS`; not for the surrogate, whose gradients would
        be summed in another order); `policy` is the kernel's `close_at_eod` (see `_sum`)."""
        if tau is None:
            record_evaluations(h.numel())
        p = self.problem
        days = tuple(t.unsqueeze(-2) for t in (p.close, p.high, p.high_pred, p.low, p.low_pred))
        if tau is None and not compiled and self.stacks_legs(h.shape[-1]):
            if p.close.stride(-1) == 1:
                legs = torch.stack(self.legs)
            else:  # held simulations-innermost: stacked in that layout, so every kernel input shares it
                legs = torch.stack([leg.t() for leg in self.legs]).transpose(-1, -2)
            return self._sum_stacked(days, legs.unsqueeze(-2), h.unsqueeze(-1), l.unsqueeze(-1), policy)
        h, l = h.unsqueeze(-1), l.unsqueeze(-1)  # [S, K, 1]
        legs = tuple(leg.unsqueeze(-2) for leg in self.legs)
        if compiled:
            if tau is not None:
                raise ValueError("compiled: the smoothed surrogate has no compiled path")
            return summed_profit(*days, legs, h, l, close_at_eod=policy, trading_fee=p.trading_fee)
        kernel = raw_profit_per_day if tau is None else partial(smoothed_profit_per_day, tau=tau)
        return self._sum(days, legs, h, l, kernel, False, policy)


def _shape(x) -> object:
    return tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__


def _check_policies(policies, k: int, device: torch.device, compiled: bool) -> None:
    """ValueError naming `policies` unless it is a bool `[K]` tensor on `device` (and not for `compiled`)."""
    if compiled:
        raise ValueError("policies: the compiled path scores one policy per call")
    if not isinstance(policies, Tensor) or policies.dtype != torch.bool or tuple(policies.shape) != (k,):
        got = f"{policies.dtype} {tuple(policies.shape)}" if isinstance(policies, Tensor) else type(policies).__name__
        raise ValueError(f"policies: expected a bool tensor of shape ({k},), one per candidate column, got {got}")
    if policies.device != device:
        raise ValueError(f"policies: on {policies.device}, expected the problem's device {device}")


def _columns(policy, start: int, width: int):
    """Columns `start:start + width` of a `[K, 1]` policy tensor; a bool policy as it is."""
    return policy[start : start + width] if isinstance(policy, Tensor) else policy


def entry_exit_objective(problem: Problem, positions: Tensor | None = None, *, close_at_eod: bool = False) -> Objective:
    """The entry/exit objective; positions default to `entry_exit_positions` of the problem's forecasts."""
    if positions is None:
        positions = entry_exit_positions(problem.high_pred, problem.low_pred, is_crypto=problem.is_crypto)
    return Objective(problem, (positions,), close_at_eod, "entry_exit")


def always_on_objective(problem: Problem, *, close_at_eod: bool = False) -> Objective:
    """The always-on objective: the sum of its buy and (not for crypto) sell legs."""
    return Objective(problem, always_on_legs(problem.close, is_crypto=problem.is_crypto), close_at_eod, "always_on")


#: The two optimizations every simulation runs (docs/kernel.md), by name.
STRATEGIES = ("entry_exit", "always_on")


def build_objective(problem: Problem, strategy: str) -> Objective:
    """The objective of a strategy named in `STRATEGIES` on `problem` (entry/exit with its MaxDiff positions)."""
    if strategy == "entry_exit":
        return entry_exit_objective(problem)
    if strategy == "always_on":
        return always_on_objective(problem)
    raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)} or an Objective, got {strategy!r}")


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

    def padded(obj: Objective, i: int) -> Tensor:
        return obj.legs[i] if i < len(obj.legs) else torch.zeros_like(obj.legs[0])

    legs = tuple(torch.cat([padded(obj, i) for obj in objectives]) for i in range(n_legs))
    return Objective(problem, legs, first.close_at_eod, "+".join(obj.strategy for obj in objectives))
