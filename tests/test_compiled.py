"""The compiled batched path (`Objective.batch(..., compiled=True)`): the same scores as eager, counted the
same way, and an eager fallback with one warning when compilation fails."""

from __future__ import annotations

import pytest
import torch

from marketsim_opt import compiled, count_syncs
from marketsim_opt.data import synthetic_problem
from marketsim_opt.strategies import always_on_objective, entry_exit_objective


@pytest.fixture
def fresh(monkeypatch):
    """A process state with nothing compiled and no fallback recorded."""
    monkeypatch.setattr(compiled, "_compiled", None)
    monkeypatch.setattr(compiled, "_fallback", None)


def candidates(shape, dtype):
    gen = torch.Generator().manual_seed(5)
    return tuple(torch.rand(shape, generator=gen, dtype=torch.float64).mul(0.06).sub(0.03).to(dtype) for _ in "hl")


@pytest.mark.parametrize("close_at_eod", [False, True])
def test_compiled_matches_eager_float64(fresh, close_at_eod):
    """float64, batched always-on (two legs): compiled scores equal eager's to rounding, evaluations counted."""
    problem = synthetic_problem(30, seed=2, dtype=torch.float64).concat(
        synthetic_problem(30, seed=3, dtype=torch.float64)
    )
    obj = always_on_objective(problem, close_at_eod=close_at_eod)
    h, l = candidates((2, 257), torch.float64)
    with count_syncs() as counter:
        fused = obj.batch(h, l, compiled=True)
    assert counter.evaluations == 2 * 257 and counter.syncs == 0
    assert compiled.fallback_reason() is None
    torch.testing.assert_close(fused, obj.batch(h, l), rtol=0, atol=1e-12)


@pytest.mark.cpu_dependent
def test_compiled_matches_eager_float32(fresh):
    """float32 entry/exit: equal to eager up to float32 summation order."""
    obj = entry_exit_objective(synthetic_problem(200, seed=4))
    h, l = candidates((4096,), torch.float32)
    torch.testing.assert_close(obj.batch(h, l, compiled=True), obj.batch(h, l), rtol=0, atol=1e-5)


def test_failed_compilation_falls_back_to_eager_once(fresh, monkeypatch):
    """A compiler failure warns once, names the reason and leaves eager scores; later calls stay eager."""
    calls = []

    def broken():
        def run(*args):
            calls.append(1)
            raise torch._dynamo.exc.BackendCompilerFailed(run, OSError("no C++ compiler found"), None)

        return run

    monkeypatch.setattr(compiled, "_compile", broken)
    obj = entry_exit_objective(synthetic_problem(20, seed=6, dtype=torch.float64))
    h, l = candidates((33,), torch.float64)
    with pytest.warns(RuntimeWarning, match="torch.compile unavailable, using eager torch: no C\\+\\+ compiler found"):
        first = obj.batch(h, l, compiled=True)
    assert torch.equal(first, obj.batch(h, l))
    second = obj.batch(h, l, compiled=True)  # no second warning, no second attempt
    assert torch.equal(second, first) and len(calls) == 1
    assert compiled.fallback_reason() == "no C++ compiler found"


def test_warm_up_reports_seconds(fresh):
    obj = entry_exit_objective(synthetic_problem(12, seed=8))
    assert compiled.warm_up(obj, 16) > 0
    assert compiled.fallback_reason() is None
