"""benchmarks/ruler/counting.py: the harness's own count of evaluations and host read-backs."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import scipy.optimize
import torch
from torch.overrides import TorchFunctionMode

from benchmarks.ruler import counting as ruler
from benchmarks.ruler.counting import READBACKS, Tally, counting
from marketsim_opt import instrument, workloads
from marketsim_opt.strategies import Objective

T0 = torch.tensor(1.5)  # 0-d
T1 = torch.tensor([1.0, 2.0])

#: One call of each read-back kind, and the name it is counted under.
READBACK_CALLS = {
    "item": lambda: T0.item(),
    "__float__": lambda: float(T0),
    "__int__": lambda: int(T0),
    "__complex__": lambda: complex(T0),
    "__bool__": lambda: bool(T0),
    "__index__": lambda: [10, 20][torch.tensor(1)],
    "tolist": lambda: T1.tolist(),
    "cpu": lambda: T1.cpu(),
    "numpy": lambda: T1.numpy(),
    "__array__": lambda: np.asarray(T1),
    "__format__": lambda: f"{T0:.3f}",
    "__repr__": lambda: repr(T1),
    "__contains__": lambda: 2.0 in T1,
    "equal": lambda: torch.equal(T1, T1),
    "allclose": lambda: torch.allclose(T1, T1),
    "is_nonzero": lambda: T0.is_nonzero(),
}


def test_every_readback_kind_is_exercised():
    assert set(READBACK_CALLS) == READBACKS


@pytest.mark.parametrize("name", sorted(READBACK_CALLS))
def test_each_readback_counts_once(name):
    """Each kind counts exactly once, nested read-backs inside it (repr's, format's .item()) included."""
    with counting(cuda=False) as tally:
        READBACK_CALLS[name]()
    assert (tally.readbacks, tally.by_method, tally.syncs) == (1, {name: 1}, 1)


def test_asarray_counts_once_as_array():
    with counting(cuda=False) as tally:
        np.asarray(torch.arange(3.0))
    assert tally.by_method == {"__array__": 1}


def test_fstring_of_0d_tensor_counts_once():
    with counting(cuda=False) as tally:
        text = f"profit {T0:.2f}"
    assert text == "profit 1.50" and tally.readbacks == 1


def test_computation_without_readback_counts_nothing():
    with counting(cuda=False) as tally:
        x = (T1 * 2 + 1).sum()
        torch.where(T1 > 1, T1, -T1).to(torch.float64).copy_(T1)
    assert (tally.readbacks, tally.evaluations, x.shape) == (0, 0, ())


def test_regions_nest():
    with counting(cuda=False) as outer:
        T0.item()
        with counting(cuda=False) as inner:
            float(T0)
            T1.tolist()
        T0.item()
    assert inner.by_method == {"__float__": 1, "tolist": 1}
    assert outer.by_method == {"item": 2, "__float__": 1, "tolist": 1}
    with counting(cuda=False) as after:
        pass
    assert after.readbacks == 0


def test_other_threads_are_not_counted():
    done = threading.Event()

    def work():
        for _ in range(5):
            T0.item()
        done.set()

    with counting(cuda=False) as tally:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        T0.item()
    assert done.is_set() and tally.readbacks == 1


def test_region_closes_cleanly_after_an_exception():
    originals = {name: Objective.__dict__[name] for name in ruler.SCORING_METHODS if name in Objective.__dict__}
    problem = workloads.profile().problem
    from marketsim_opt.strategies import entry_exit_objective

    objective = entry_exit_objective(problem)
    with pytest.raises(RuntimeError, match="planted"):
        with counting(cuda=False) as tally:
            objective.score(0.0, 0.0).item()
            objective.score(torch.zeros(1, 7), torch.zeros(1, 7))
            assert Objective.__dict__["score"] is not originals["score"]  # wrapped while open
            raise RuntimeError("planted")
    assert (tally.evaluations, tally.readbacks) == (8, 1)
    assert {name: Objective.__dict__[name] for name in originals} == originals
    assert not any(isinstance(m, ruler._ReadbackMode) for m in torch.overrides._get_current_function_mode_stack())


def test_tally_syncs():
    assert Tally(readbacks=3, hidden_syncs=2).syncs == 5


def test_cuda_without_cuda_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="^cuda: "):
        with counting(cuda=True):
            pass


def _run(method: str, budget: int | None = 100):
    with counting(cuda=False) as tally:
        result = workloads.run(workloads.profile(), "entry_exit", method=method, budget=budget)
    return result, tally


@pytest.mark.parametrize("method", ["direct", "grid", "nevergrad:OnePlusOne"])
def test_evaluations_equal_the_package_nfev(method):
    result, tally = _run(method)
    assert result.nfev >= 100 and tally.evaluations == result.nfev


def test_exact_counts_its_rescoring_only():
    """exact's sweep never calls the objective: the harness sees the one float64 re-score of its point."""
    result, tally = _run("exact", None)
    assert result.nfev > 1000 and tally.evaluations == 1


def test_the_package_cannot_narrow_the_readback_count(monkeypatch):
    """Emptying the package's own lists of read-back methods changes the package's count, never the harness's."""
    _, before = _run("direct")
    names = [n for n in ("READBACK_METHODS", "READBACKS", "_READBACK_FUNCS") if hasattr(instrument, n)]
    assert names
    for name in names:
        monkeypatch.setattr(instrument, name, type(getattr(instrument, name))())
    result, after = _run("direct")
    assert result.syncs < before.readbacks  # the package now under-counts ...
    assert (after.readbacks, after.by_method, after.evaluations) == (
        before.readbacks,
        before.by_method,
        before.evaluations,
    )


def test_direct_calling_its_objective_twice_doubles_the_count(monkeypatch):
    """A planted DIRECT that scores (and reads back) every candidate twice: the package's nfev (scipy's) stays,
    the harness sees twice the evaluations and twice the per-evaluation read-backs."""
    base, base_tally = _run("direct")
    original = scipy.optimize.direct

    def twice(func, bounds, **kwargs):
        return original(lambda x: (func(x), func(x))[0], bounds, **kwargs)

    monkeypatch.setattr(scipy.optimize, "direct", twice)
    planted, tally = _run("direct")
    assert planted.nfev == base.nfev
    assert tally.evaluations == 2 * base_tally.evaluations == 2 * base.nfev
    assert tally.by_method["item"] == 2 * base_tally.by_method["item"] == 2 * base.nfev
    assert tally.syncs - base_tally.syncs == base.nfev


def test_smoothed_counts_forward_passes():
    """The surrogate's forward passes count, from what `score(..., tau=)` returns (the package records none)."""
    from marketsim_opt.strategies import entry_exit_objective

    objective = entry_exit_objective(workloads.profile().problem)
    with counting(cuda=False) as tally:
        objective.score(torch.zeros(1, 5), torch.zeros(1, 5), tau=0.01)
    assert tally.evaluations == 5


class _WarnDuringItem(TorchFunctionMode):
    """Stands in for CUDA: emits a sync warning from inside every `.item()` (as torch's sync debug mode would)."""

    def __init__(self, handler):
        super().__init__()
        self.handler = handler

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") == "item":
            self.handler("called a synchronizing CUDA operation", UserWarning, __file__, 1)
        return func(*args, **(kwargs or {}))


def test_sync_warning_handler_counts_only_outside_readbacks():
    passed_on = []
    handler = ruler.SyncWarningHandler(lambda *a: passed_on.append(a[0]))
    with _WarnDuringItem(handler):  # pushed first: the ruler's mode (on top) is inside its counted .item()
        with counting(cuda=False) as tally:
            T0.item()  # its sync is the read-back's own
            handler("called a synchronizing CUDA operation", UserWarning, __file__, 1)  # a hidden one
            handler("something else", UserWarning, __file__, 1)
            handler("synchronizing, but a DeprecationWarning", DeprecationWarning, __file__, 1)
    assert (tally.readbacks, tally.hidden_syncs, tally.syncs) == (1, 1, 2)
    assert passed_on == ["something else", "synchronizing, but a DeprecationWarning"]


def test_cuda_sync_warnings_restore_mode_and_handler(monkeypatch):
    """The CUDA listener (mode and showwarning) is restored on exit; torch.cuda's mode calls are faked here."""
    modes = [0]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_sync_debug_mode", lambda: modes[-1])
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", lambda m: modes.append({"warn": 1}.get(m, m)))
    before = warnings.showwarning
    with counting(cuda=True) as tally:
        assert isinstance(warnings.showwarning, ruler.SyncWarningHandler) and modes[-1] == 1
        warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)
        with counting(cuda=True) as inner:  # the outer listener feeds it; no second one
            assert modes.count(1) == 1
            warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)
    assert (tally.hidden_syncs, inner.hidden_syncs) == (2, 1)
    assert warnings.showwarning is before and modes[-1] == 0
