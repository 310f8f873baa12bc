"""Host-sync and evaluation counting (`marketsim_opt.instrument`): the observing `count_syncs` and the package's
own `accounting` of declared read-backs (`read_item`, `read_list`, `read_array`): exact counts, nesting, threads,
CUDA."""

from __future__ import annotations

import math
import operator
import threading

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode, _get_current_function_mode_stack

from marketsim_opt import instrument, optimize_entry_exit
from marketsim_opt.data import backtest_windows, synthetic_ohlc, synthetic_problem
from marketsim_opt.instrument import (
    READBACK_METHODS,
    SyncCounter,
    accounting,
    count_syncs,
    on_evaluations,
    read_array,
    read_item,
    read_list,
    record_evaluations,
    to_device,
)
from marketsim_opt.strategies import always_on_objective, entry_exit_objective

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


#: torch.Tensor's own attributes, by identity, as imported (count_syncs must never add or replace one).
TENSOR_ATTRS = {name: id(value) for name, value in vars(torch.Tensor).items()}


def tensor_changed() -> bool:
    """Whether torch.Tensor has an attribute added, removed or replaced since this module was imported."""
    return {name: id(value) for name, value in vars(torch.Tensor).items()} != TENSOR_ATTRS


def open_modes() -> list:
    """The counting modes on this thread's torch function mode stack, outermost first."""
    return [mode for mode in _get_current_function_mode_stack() if isinstance(mode, instrument._Readbacks)]


def declared_depth() -> int:
    """How many declared read-backs this thread is inside (0 outside `read_item` / `read_list`)."""
    return getattr(instrument._state, "declared", 0)


@pytest.fixture(autouse=True)
def clean_instrument_state():
    """Each test starts with no region open; a region leaked by a failing test is undone so it cannot skew others."""
    assert not instrument._open_counters() and not open_modes(), "a previous test left a count_syncs region open"
    assert not instrument._open_accounts(), "a previous test left an accounting region open"
    assert declared_depth() == 0, "a previous test left a declared read-back entered"
    assert not instrument._listeners, "a previous test left an on_evaluations callback registered"
    yield
    instrument._open_counters().clear()
    instrument._open_accounts().clear()
    instrument._state.declared = 0
    while open_modes():
        torch.overrides._pop_mode()
    instrument._listeners.clear()
    assert not tensor_changed(), "torch.Tensor was changed"


# (method name as counted in by_method, a call that makes exactly one read-back of that kind)
READBACK_CALLS = [
    ("item", lambda t: t.item()),
    ("__float__", lambda t: float(t)),
    ("__int__", lambda t: int(t)),
    ("__complex__", lambda t: complex(t)),
    ("__bool__", lambda t: bool(t)),
    ("__bool__", lambda t: 1 if t else 0),  # a Python `if` on a tensor
    ("__index__", lambda t: operator.index(t.long())),
    ("__index__", lambda t: [10, 20, 30][t.long()]),  # a tensor used as a list index
    ("tolist", lambda t: t.tolist()),
    ("cpu", lambda t: t.cpu()),
    ("numpy", lambda t: t.numpy()),
    ("numpy", lambda t: np.asarray(t)),  # Tensor.__array__, which calls .numpy(): counted once
    ("item", lambda t: 1.0 in t),  # Tensor.__contains__, which calls .item()
    ("item", lambda t: format(t, ".2f")),  # Tensor.__format__ of a plain 0-d tensor formats its .item()
    ("item", lambda t: f"{t:.3e}"),
    ("__repr__", lambda t: repr(t)),  # printing reads the values (torch's printer makes many calls inside)
    ("__repr__", lambda t: str(t.reshape(1, 1).expand(3, 4))),
    ("__repr__", lambda t: f"{t.reshape(1)}"),  # __format__ of a 1-d tensor prints it
]


def test_every_listed_method_is_exercised():
    """Each instrumented method has a call in READBACK_CALLS (so test_each_readback_kind_counts_once covers it)."""
    assert sorted({method for method, _ in READBACK_CALLS}) == sorted(READBACK_METHODS)


# Other ways a caller reads a tensor back: each must reach an instrumented method exactly once.
# complex(t) did not before issue 15 (torch's __complex__ was not instrumented).
INDIRECT_READBACKS = {
    "complex": lambda t: complex(t),
    "__array__": lambda t: t.__array__(),
    "format": lambda t: format(t, ".2f"),
    "in": lambda t: 1.0 in t,
    "math.floor": lambda t: math.floor(t),
    "np.float64": lambda t: np.float64(t),
    "hex": lambda t: hex(t.long()),
    "range": lambda t: range(t.long()),
    "bytes": lambda t: bytes(t.numpy()),
    "list index": lambda t: [0, 1, 2][t.long()],
    "np.asarray": lambda t: np.asarray(t),
    "print": lambda t: print(t),
    "f-string": lambda t: f"{t}",
}


@pytest.mark.parametrize("call", INDIRECT_READBACKS.values(), ids=INDIRECT_READBACKS.keys())
def test_indirect_readbacks_count_once(call):
    """Reading a tensor back through Python or numpy protocols counts exactly one sync (none goes unseen)."""
    t = torch.tensor(1.0)
    with count_syncs(cuda=False) as counter:
        call(t)
    assert counter.readbacks == 1, counter.by_method
    assert sum(counter.by_method.values()) == 1


def test_sync_counter_defaults_and_syncs_property():
    """A fresh counter is all zeros; syncs is readbacks + hidden_syncs."""
    counter = SyncCounter()
    assert (counter.evaluations, counter.readbacks, counter.hidden_syncs, counter.by_method) == (0, 0, 0, {})
    assert counter.syncs == 0
    assert SyncCounter(readbacks=3, hidden_syncs=2).syncs == 5


@pytest.mark.parametrize(
    ("method", "call"), READBACK_CALLS, ids=[f"{m}-{i}" for i, (m, _) in enumerate(READBACK_CALLS)]
)
def test_each_readback_kind_counts_once(method, call):
    """Each instrumented read-back kind is one sync, recorded under its method name."""
    t = torch.tensor(1.0)
    with count_syncs() as counter:
        call(t)
    assert counter.by_method == {method: 1}
    assert counter.readbacks == 1
    assert counter.hidden_syncs == 0
    assert counter.syncs == 1
    assert counter.evaluations == 0


def test_sequential_and_batched_objective_calls_exact_counts():
    """On one series (S = 1), 7 sequential obj.score(h, l).item() + 3 calls of [1, 64] candidates read back once
    each: 199 evaluations, 10 syncs."""
    problem = synthetic_problem(50, 3)
    obj = entry_exit_objective(problem)
    h = torch.linspace(-0.03, 0.03, 64)[None]
    l = torch.linspace(0.03, -0.03, 64)[None]
    with count_syncs() as counter:
        singles = [obj.score(0.001 * i, -0.001 * i).item() for i in range(7)]
        batches = [obj.score(h + 0.001 * j, l)[0].tolist() for j in range(3)]
    assert counter.evaluations == 7 + 3 * 64
    assert counter.syncs == 10
    assert counter.readbacks == 10
    assert counter.hidden_syncs == 0
    assert counter.by_method == {"item": 7, "tolist": 3}
    assert len(singles) == 7 and all(isinstance(v, float) for v in singles)
    assert [len(b) for b in batches] == [64, 64, 64]


def test_always_on_objective_counts_candidates_not_legs():
    """The two-leg always-on objective records one evaluation per candidate, not one per leg."""
    obj = always_on_objective(synthetic_problem(40, 5))
    assert len(obj.legs) == 2
    with count_syncs() as counter:
        obj.score(0.0, 0.0).item()
        obj.score(torch.zeros(1, 16), torch.zeros(1, 16)).cpu()
    assert counter.evaluations == 1 + 16
    assert counter.by_method == {"item": 1, "cpu": 1}
    assert counter.syncs == 2


def test_batched_problem_records_n_sims_per_candidate():
    """On a [70, 6] batch obj.score(h, l) on numbers records 70 evaluations, on [70, K] tensors 70*K."""
    problem = backtest_windows(synthetic_ohlc(120, 1))
    obj = entry_exit_objective(problem)
    with count_syncs() as counter:
        per_sim = obj.score(0.0, 0.0)
        grid = obj.score(torch.zeros(70, 5), torch.zeros(70, 5))
    assert per_sim.shape == (70, 1) and grid.shape == (70, 5)
    assert counter.evaluations == 70 + 70 * 5
    assert counter.syncs == 0
    assert counter.by_method == {}


def test_rejected_batch_records_no_evaluations():
    """obj.score with mismatched or [K] shapes raises before recording any evaluation."""
    obj = entry_exit_objective(synthetic_problem(20, 1))
    with count_syncs() as counter:
        with pytest.raises(ValueError, match=r"^h, l: expected matching \[S, K\] tensors"):
            obj.score(torch.zeros(1, 4), torch.zeros(1, 5))
        with pytest.raises(ValueError, match=r"^h, l: expected matching \[S, K\] tensors"):
            obj.score(torch.zeros(4), torch.zeros(4))
    assert counter.evaluations == 0
    assert counter.syncs == 0


def test_no_readback_counts_zero_syncs():
    """Creating tensors, computing on them and scoring candidates without reading back is 0 syncs."""
    problem = synthetic_problem(30, 2)
    obj = entry_exit_objective(problem)
    with count_syncs() as counter:
        x = torch.randn(100, generator=torch.Generator().manual_seed(0))
        y = (x * 2 + 1).clamp(-1, 1).sum()
        z = torch.where(x > 0, x, -x).cumsum(0)
        scores = [obj.score(0.001 * i, 0.0) for i in range(5)]
        batch = obj.score(torch.zeros(1, 8), torch.zeros(1, 8))
    assert counter.syncs == 0
    assert counter.readbacks == 0
    assert counter.by_method == {}
    assert counter.evaluations == 5 + 8
    assert y.dim() == 0 and z.shape == (100,) and len(scores) == 5 and batch.shape == (1, 8)


def test_record_evaluations_outside_region_is_noop():
    """record_evaluations with no open region does nothing; inside one it adds exactly n."""
    record_evaluations(5)  # must not raise
    with count_syncs() as counter:
        record_evaluations(3)
        record_evaluations(4)
    record_evaluations(100)
    assert counter.evaluations == 7


def test_nested_readback_calls_count_once():
    """A read-back re-entering a counted call (subclass __torch_function__, np.asarray) counts once."""

    class Sub(torch.Tensor):
        pass

    s = torch.tensor([1.5]).as_subclass(Sub)
    with count_syncs() as counter:
        value = s.item()
        float(s)
        np.asarray(torch.tensor([1.0, 2.0]))
    assert value == 1.5
    assert counter.by_method == {"item": 1, "__float__": 1, "numpy": 1}
    assert counter.readbacks == 3


def test_nested_regions_see_counts_and_leave_torch_unpatched():
    """Inner counts reach the outer region, calls outside the inner only the outer; each region is one mode on the
    thread's stack while open, gone after it, and torch.Tensor is never changed."""
    t = torch.tensor(2.0)
    with count_syncs() as outer:
        t.item()
        with count_syncs() as inner:
            t.item()
            t.tolist()
            record_evaluations(4)
            assert [mode.counter for mode in open_modes()] == [outer, inner]
            assert not tensor_changed()
        assert [mode.counter for mode in open_modes()] == [outer]
        float(t)
        record_evaluations(1)
    assert not open_modes() and not tensor_changed()
    assert inner.by_method == {"item": 1, "tolist": 1}
    assert inner.syncs == 2 and inner.evaluations == 4
    assert outer.by_method == {"item": 2, "tolist": 1, "__float__": 1}
    assert outer.syncs == 4 and outer.evaluations == 5


def test_nested_regions_with_equal_counts():
    """Nesting works when the inner region opens first thing (both counters equal when the inner one closes).

    count_syncs removes its counter with list.remove, which matches by dataclass equality, so closing the inner
    region removes the (equal) outer counter instead: the outer then misses later calls and its exit raises
    ValueError.  This asserts the correct behaviour.
    """
    t = torch.tensor(2.0)
    with count_syncs() as outer:
        with count_syncs() as inner:
            t.item()
        t.item()
    assert not open_modes()
    assert inner.by_method == {"item": 1}
    assert outer.by_method == {"item": 2}
    assert outer.syncs == 2


def test_calls_after_region_are_not_counted():
    """Read-backs after a region closes reach neither its counter nor a later region's; torch's methods are its own."""
    t = torch.tensor([1.0, 2.0])
    with count_syncs() as first:
        t.tolist()
    assert not open_modes() and not tensor_changed()
    assert torch.Tensor.item is torch._C.TensorBase.item
    t.tolist()
    t.sum().item()
    record_evaluations(9)
    with count_syncs() as second:
        pass
    assert first.by_method == {"tolist": 1} and first.syncs == 1 and first.evaluations == 0
    assert second.by_method == {} and second.syncs == 0 and second.evaluations == 0


def test_torch_tensor_gains_no_attributes_during_or_after_a_region():
    """A region counts through a torch function mode: torch.Tensor's attributes stay torch's own, during the region
    (with every kind of read-back made) and after it."""
    t = torch.tensor(1.0)
    with count_syncs() as counter:
        for _, call in READBACK_CALLS:
            call(t)
        assert not tensor_changed()
        assert not any(name in vars(torch.Tensor) for name in READBACK_METHODS if name != "__repr__")
        assert torch.Tensor.item is torch._C.TensorBase.item
    assert not tensor_changed()
    assert counter.readbacks == len(READBACK_CALLS)


def test_printing_a_tensor_counts_once():
    """Printing reads the tensor back once, whatever torch's printer calls inside (before, each of its calls
    counted: 7 for a 0-d tensor)."""
    big = torch.arange(3000.0).reshape(30, 100)
    with count_syncs() as counter:
        text = repr(big)
        str(torch.tensor(2.5))
    assert "..." in text
    assert counter.by_method == {"__repr__": 2}


def test_a_region_counts_only_its_own_thread():
    """Counting is per thread: a read-back or evaluation in another thread reaches none of this thread's regions,
    and a region opened in that thread counts only that thread's, while both regions are open at once."""
    both_open = threading.Barrier(2, timeout=30)
    main_done = threading.Event()
    seen: dict[str, SyncCounter] = {}
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            t = torch.tensor([1.0, 2.0])
            t.tolist()  # no region open in this thread: counted nowhere
            record_evaluations(100)
            with count_syncs(cuda=False) as mine:
                both_open.wait()
                t.sum().item()
                float(t[0])
                record_evaluations(5)
                main_done.wait(timeout=30)
            seen["worker"] = mine
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    thread = threading.Thread(target=worker)
    with count_syncs(cuda=False) as main:
        thread.start()
        both_open.wait()
        torch.tensor(3.0).item()
        record_evaluations(2)
        main_done.set()
        thread.join(timeout=30)
    assert not thread.is_alive() and not errors, errors
    assert main.by_method == {"item": 1} and main.evaluations == 2
    assert seen["worker"].by_method == {"item": 1, "__float__": 1} and seen["worker"].evaluations == 5


def test_counts_reach_a_foreign_mode_too():
    """Another torch function mode (a benchmark harness's) opened around or inside a region sees every read-back
    the region counts, and the region counts each once."""

    class Tally(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.items = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.items += func is torch.Tensor.item
            return func(*args, **(kwargs or {}))

    t = torch.tensor(1.0)
    with Tally() as around, count_syncs() as counter:
        t.item()
        with Tally() as inside:
            t.item()
            t.item()
    assert (around.items, inside.items) == (3, 2)
    assert counter.by_method == {"item": 3}


def test_exception_inside_region_counts_exactly_and_unpatches():
    """When the region's body raises, the counts up to the raise are exact and the region's mode is gone."""
    t = torch.tensor(3.0)
    with pytest.raises(RuntimeError, match="boom"):
        with count_syncs() as counter:
            t.item()
            int(t)
            record_evaluations(2)
            raise RuntimeError("boom")
    assert not open_modes() and not instrument._open_counters()
    assert counter.by_method == {"item": 1, "__int__": 1}
    assert counter.syncs == 2 and counter.evaluations == 2
    t.item()
    assert counter.syncs == 2


def test_exception_inside_nested_regions_closes_both():
    """An exception raised in an inner region propagates through both; both counters are exact, both modes gone."""
    t = torch.tensor(3.0)
    with pytest.raises(KeyError):
        with count_syncs() as outer:
            t.item()
            with count_syncs() as inner:
                t.cpu()
                raise KeyError("x")
    assert not open_modes() and not instrument._open_counters()
    assert inner.by_method == {"cpu": 1}
    assert outer.by_method == {"item": 1, "cpu": 1}


def test_failing_readback_call_keeps_counting():
    """A read-back call that itself raises is counted once and does not stop later calls from counting."""
    with count_syncs() as counter:
        with pytest.raises(RuntimeError):
            torch.zeros(2).item()  # more than one element: not a scalar
        torch.tensor(1.0).item()
    assert counter.by_method == {"item": 2}
    assert counter.syncs == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when CUDA is absent")
def test_cuda_true_without_cuda_raises():
    """count_syncs(cuda=True) without CUDA raises ValueError naming cuda, and opens nothing."""
    with pytest.raises(ValueError, match="^cuda: CUDA sync counting was asked for, but CUDA is not available"):
        with count_syncs(cuda=True):
            pass
    assert not open_modes()
    assert not instrument._open_counters()


@pytest.mark.parametrize("cuda", [None, False])
def test_cpu_region_has_no_hidden_syncs(cuda):
    """Without CUDA listening, hidden_syncs stays 0 even for ops that would sync on a GPU (nonzero, mask index)."""
    if cuda is None and torch.cuda.is_available():
        pytest.skip("cuda=None turns CUDA counting on here")
    x = torch.arange(-3.0, 5.0)
    with count_syncs(cuda=cuda) as counter:
        idx = torch.nonzero(x > 0)
        kept = x[x > 0]
    assert idx.shape == (4, 1) and kept.shape == (4,)
    assert counter.hidden_syncs == 0 and counter.syncs == 0


def test_region_is_keyword_only():
    """count_syncs takes `cuda` by keyword only."""
    with pytest.raises(TypeError):
        count_syncs(False).__enter__()
    assert not open_modes()


@needs_cuda
def test_cuda_python_if_counts_as_bool_readback():
    """On CUDA a tensor in a Python `if` is one __bool__ read-back, not also a hidden sync."""
    t = torch.tensor(1.0, device="cuda")
    torch.cuda.synchronize()
    with count_syncs(cuda=True) as counter:
        taken = 1 if t > 0 else 0
        value = t.item()
    assert taken == 1 and value == 1.0
    assert counter.by_method == {"__bool__": 1, "item": 1}
    assert counter.hidden_syncs == 0
    assert counter.syncs == 2
    assert torch.cuda.get_sync_debug_mode() == 0


@needs_cuda
def test_cuda_hidden_syncs_counted():
    """On CUDA torch.nonzero and .to('cpu') sync without an instrumented call: they are counted in hidden_syncs.

    The number of synchronizations torch reports inside one op is a torch implementation detail, so only
    "at least one each" is asserted; no instrumented read-back is made.
    """
    x = torch.arange(-3.0, 5.0, device="cuda")
    torch.cuda.synchronize()
    with count_syncs(cuda=True) as counter:
        idx = torch.nonzero(x > 0)
    after_nonzero = counter.hidden_syncs
    with count_syncs(cuda=True) as second:
        host = x.to("cpu")
    assert idx.shape == (4, 1) and host.device.type == "cpu"
    assert after_nonzero >= 1
    assert second.hidden_syncs >= 1
    assert counter.readbacks == 0 and second.readbacks == 0
    assert counter.syncs == counter.hidden_syncs
    assert torch.cuda.get_sync_debug_mode() == 0
    assert not open_modes()


@needs_cuda
def test_cuda_nested_regions_share_hidden_syncs():
    """A hidden sync inside nested CUDA regions reaches both counters."""
    x = torch.arange(-3.0, 5.0, device="cuda")
    torch.cuda.synchronize()
    with count_syncs(cuda=True) as outer:
        x.sum().item()
        with count_syncs(cuda=True) as inner:
            torch.nonzero(x > 0)
    assert inner.hidden_syncs >= 1
    assert outer.hidden_syncs == inner.hidden_syncs
    assert outer.by_method == {"item": 1} and inner.by_method == {}
    assert torch.cuda.get_sync_debug_mode() == 0


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (3.5, torch.float32),
        ([[1.0, 2.0], [3.0, 4.0]], torch.float64),
        (np.arange(6.0).reshape(2, 3), torch.float32),
        ([True, False], torch.bool),
    ],
)
def test_to_device_on_cpu_is_a_plain_tensor(values, dtype):
    """`to_device` on CPU: the values, in the dtype asked for, and no read-back counted."""
    with count_syncs(cuda=False) as counter:
        t = to_device(values, dtype=dtype, device="cpu")
    assert counter.syncs == 0 and t.dtype == dtype and t.device.type == "cpu"
    assert np.array_equal(np.asarray(t), np.asarray(values, dtype=np.asarray(t).dtype))


def test_on_evaluations_hears_each_objective_count():
    """The callback gets each count the objectives record: n_sims per obj.score on numbers, S*K on [S, K]."""
    problem = backtest_windows(synthetic_ohlc(120, 1))
    obj = entry_exit_objective(problem)
    heard: list[int] = []
    with on_evaluations(heard.append):
        obj.score(0.0, 0.0)
        obj.score(torch.zeros(70, 5), torch.zeros(70, 5))
    obj.score(0.0, 0.0)  # after the region: not heard
    assert heard == [70, 350]
    assert not instrument._listeners


def test_on_evaluations_nests_and_works_with_count_syncs():
    """Nested callbacks each hear the counts made while they are open; a count_syncs region sees the same total."""
    outer: list[int] = []
    inner: list[int] = []
    with count_syncs() as counter, on_evaluations(outer.append):
        record_evaluations(2)
        with on_evaluations(inner.append):
            record_evaluations(3)
        record_evaluations(5)
    assert outer == [2, 3, 5]
    assert inner == [3]
    assert counter.evaluations == sum(outer)


def test_on_evaluations_same_callback_twice():
    """The same callable opened in two nested regions is called twice per count while both are open."""
    heard: list[int] = []
    with on_evaluations(heard.append):
        with on_evaluations(heard.append):
            record_evaluations(1)
        record_evaluations(4)
    assert heard == [1, 1, 4]
    assert not instrument._listeners


def test_on_evaluations_removed_when_the_body_raises():
    """An exception in the region removes the callback (later counts are not heard) and propagates."""
    heard: list[int] = []
    with pytest.raises(RuntimeError, match="boom"):
        with on_evaluations(heard.append):
            record_evaluations(7)
            raise RuntimeError("boom")
    record_evaluations(9)
    assert heard == [7]
    assert not instrument._listeners


def test_on_evaluations_callback_error_propagates_and_unregisters():
    """A callback that raises (a user's Ctrl-C handler, say) stops the scoring call and is still removed."""

    def stop(n: int) -> None:
        raise KeyboardInterrupt

    obj = entry_exit_objective(synthetic_problem(20, 1))
    with pytest.raises(KeyboardInterrupt):
        with on_evaluations(stop):
            obj.score(torch.zeros(1, 4), torch.zeros(1, 4))
    assert not instrument._listeners


@pytest.mark.parametrize("callback", [None, 3, "print"])
def test_on_evaluations_rejects_a_non_callable(callback):
    """A callback that cannot be called is a ValueError naming `callback`, and nothing is registered."""
    with pytest.raises(ValueError, match="^callback: expected a callable"):
        with on_evaluations(callback):
            pass
    assert not instrument._listeners


@pytest.mark.parametrize("method", ["direct", "grid", "exact", "gradient", "nevergrad:OnePlusOne"])
def test_on_evaluations_total_matches_nfev_of_every_method(method):
    """Through the public API every method reports all its candidates: the callback's total equals result.nfev."""
    problem = synthetic_problem(40, 3)
    # the historical entry point on one [N] series (the problem holds it as row 0 of [1, N])
    tensors = tuple(t[0] for t in (problem.close, problem.high, problem.high_pred, problem.low, problem.low_pred))
    positions = torch.ones_like(tensors[0])
    heard: list[int] = []
    with on_evaluations(heard.append):
        result = optimize_entry_exit(*tensors, positions, method=method, budget=60, close_at_eod=None)
    assert heard and all(n > 0 for n in heard)
    assert result.nfev.shape == (1,)
    assert sum(heard) == result.nfev[0] == result.scalar.nfev


# --- accounting: the package's declared read-backs ------------------------------------------------


def test_declared_readbacks_return_the_values_and_are_accounted():
    """read_item / read_list return what .item() / .tolist() do, each recorded once under that method's name."""
    t = torch.tensor([[1.5, -2.0], [3.0, 4.25]])
    with accounting(cuda=False) as account:
        value = read_item(t[1, 1])
        rows = read_list(t)
        scalar = read_list(torch.tensor(7))
        count = read_item((t > 0).sum())
        record_evaluations(6)
    assert value == 4.25 and isinstance(value, float)
    assert rows == [[1.5, -2.0], [3.0, 4.25]]
    assert scalar == 7 and count == 3 and isinstance(count, int)
    assert account.by_method == {"item": 2, "tolist": 2}
    assert account.readbacks == 4 and account.hidden_syncs == 0 and account.syncs == 4
    assert account.evaluations == 6
    assert declared_depth() == 0


def test_read_array_is_one_numpy_readback_of_a_copy():
    """read_array returns the values as a new numpy array (not a view: writing to it leaves the tensor alone),
    also for a tensor that requires grad, declared once as `numpy` and observed once as `numpy`."""
    t = torch.tensor([[1.5, -2.0], [3.0, 4.25]], dtype=torch.float64, requires_grad=True)
    with accounting(cuda=False) as account, count_syncs(cuda=False) as seen:
        host = read_array(t)
    assert isinstance(host, np.ndarray) and host.dtype == np.float64
    assert host.tolist() == [[1.5, -2.0], [3.0, 4.25]]
    host[0, 0] = 99.0
    assert t[0, 0].item() == 1.5
    assert account.by_method == seen.by_method == {"numpy": 1}
    assert declared_depth() == 0


def test_declared_readbacks_outside_any_region_are_plain_readbacks():
    """With no region open the helpers just read back (nothing to record, nothing left entered)."""
    assert read_item(torch.tensor(2.0)) == 2.0
    assert read_list(torch.arange(3)) == [0, 1, 2]
    assert declared_depth() == 0 and not instrument._open_accounts()


def test_accounting_does_not_see_undeclared_readbacks():
    """An accounting region counts only what is declared: a plain .item(), float(t) or .tolist() is not seen
    (on CPU), and the region puts no torch function mode on the thread's stack (no per-call cost)."""
    t = torch.tensor(1.0)
    with accounting(cuda=False) as account:
        assert not _get_current_function_mode_stack()
        t.item()
        float(t)
        t.reshape(1).tolist()
        repr(t)
        read_item(t)
    assert account.by_method == {"item": 1} and account.syncs == 1
    assert not tensor_changed()


def test_observing_region_counts_declared_readbacks_once():
    """Inside count_syncs a declared read-back is one observed call (the mode sees .item() / .tolist()), not two."""
    t = torch.tensor([1.0, 2.0])
    with count_syncs(cuda=False) as seen:
        read_item(t[0])
        read_list(t)
        t.sum().item()  # undeclared: observed only
    assert seen.by_method == {"item": 2, "tolist": 1} and seen.syncs == 3


@pytest.mark.parametrize("order", ["observer outside", "observer inside"])
def test_both_kinds_open_count_without_double_counting(order):
    """With an accounting and an observing region both open (either one inside the other): declared read-backs
    reach the account once and the observer once; undeclared ones only the observer; evaluations reach both."""
    t = torch.tensor(3.0)

    def body() -> None:
        read_item(t)
        read_list(t.reshape(1))
        int(t)  # undeclared
        record_evaluations(5)

    if order == "observer outside":
        with count_syncs(cuda=False) as seen, accounting(cuda=False) as account:
            body()
    else:
        with accounting(cuda=False) as account, count_syncs(cuda=False) as seen:
            body()
    assert account.by_method == {"item": 1, "tolist": 1} and account.syncs == 2
    assert seen.by_method == {"item": 1, "tolist": 1, "__int__": 1} and seen.syncs == 3
    assert account.evaluations == seen.evaluations == 5


def test_accounting_regions_nest():
    """An inner accounting region's counts reach the outer one too; counts after it closes reach the outer only;
    nested regions with equal counters are told apart (identity, not equality)."""
    t = torch.tensor(2.0)
    with accounting(cuda=False) as outer:
        with accounting(cuda=False) as first:  # opened first thing: equal to the outer when it closes
            read_item(t)
        with accounting(cuda=False) as inner:
            read_list(t.reshape(1))
            record_evaluations(4)
            assert instrument._open_accounts() == [outer, inner]
        read_item(t)
        record_evaluations(1)
    assert not instrument._open_accounts()
    assert first.by_method == {"item": 1}
    assert inner.by_method == {"tolist": 1} and inner.evaluations == 4
    assert outer.by_method == {"item": 2, "tolist": 1} and outer.syncs == 3 and outer.evaluations == 5


def test_accounting_counts_only_its_own_thread():
    """A declared read-back or evaluation in another thread reaches none of this thread's accounting regions, and
    that thread's own region counts only its own, while both are open at once."""
    both_open = threading.Barrier(2, timeout=30)
    main_done = threading.Event()
    seen: dict[str, SyncCounter] = {}
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            t = torch.tensor([1.0, 2.0])
            read_list(t)  # no region open in this thread: recorded nowhere
            with accounting(cuda=False) as mine:
                both_open.wait()
                read_item(t[0])
                read_item(t[1])
                record_evaluations(5)
                main_done.wait(timeout=30)
            seen["worker"] = mine
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    thread = threading.Thread(target=worker)
    with accounting(cuda=False) as main:
        thread.start()
        both_open.wait()
        read_list(torch.tensor([3.0]))
        record_evaluations(2)
        main_done.set()
        thread.join(timeout=30)
    assert not thread.is_alive() and not errors, errors
    assert main.by_method == {"tolist": 1} and main.evaluations == 2
    assert seen["worker"].by_method == {"item": 2} and seen["worker"].evaluations == 5


def test_accounting_closes_when_the_body_raises():
    """An exception in nested accounting regions propagates through both; the counts up to it are exact and
    both regions are closed (a later declared read-back reaches neither)."""
    t = torch.tensor(3.0)
    with pytest.raises(KeyError):
        with accounting(cuda=False) as outer:
            read_item(t)
            with accounting(cuda=False) as inner:
                read_list(t.reshape(1))
                raise KeyError("x")
    assert not instrument._open_accounts() and declared_depth() == 0
    read_item(t)
    assert inner.by_method == {"tolist": 1}
    assert outer.by_method == {"item": 1, "tolist": 1} and outer.syncs == 2


def test_failing_declared_readback_is_counted_and_leaves_no_depth():
    """A declared read-back that raises (.item() of two elements) is still one read-back; afterwards the thread
    is no longer inside a read-back (so a later hidden CUDA sync would be counted)."""
    with accounting(cuda=False) as account:
        with pytest.raises(RuntimeError):
            read_item(torch.zeros(2))
        assert declared_depth() == 0
        read_item(torch.tensor(1.0))
    assert account.by_method == {"item": 2}


def test_declared_readback_is_inside_a_readback_while_it_runs():
    """While the read-back itself runs the thread is marked as inside a declared read-back (what keeps its own
    CUDA synchronization out of hidden_syncs), and only then."""
    depths: list[int] = []

    class Probe(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in (torch.Tensor.item, torch.Tensor.tolist):
                depths.append(declared_depth())
            return func(*args, **(kwargs or {}))

    t = torch.tensor([1.0])
    with Probe():
        read_item(t)
        read_list(t)
        t.item()
    assert depths == [1, 1, 0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when CUDA is absent")
def test_accounting_cuda_true_without_cuda_raises():
    """accounting(cuda=True) without CUDA raises ValueError naming cuda, and opens nothing."""
    with pytest.raises(ValueError, match="^cuda: CUDA sync counting was asked for, but CUDA is not available"):
        with accounting(cuda=True):
            pass
    assert not instrument._open_accounts()


def test_accounting_is_keyword_only():
    """accounting takes `cuda` by keyword only."""
    with pytest.raises(TypeError):
        accounting(False).__enter__()
    assert not instrument._open_accounts()


@needs_cuda
def test_cuda_accounting_counts_undeclared_syncs_as_hidden():
    """On CUDA an accounting region counts a declared read-back as one read-back (its synchronization is not
    hidden), and an undeclared .item() or torch.nonzero as hidden syncs, with or without an observer open; the
    observer counts the undeclared .item() as a read-back, not hidden."""
    x = torch.arange(-3.0, 5.0, device="cuda")
    torch.cuda.synchronize()
    with accounting(cuda=True) as alone:
        read_item(x.sum())
    assert alone.by_method == {"item": 1} and alone.hidden_syncs == 0
    with accounting(cuda=True) as account:
        with count_syncs(cuda=True) as seen:
            read_item(x.sum())
            x.max().item()
        torch.nonzero(x > 0)
    assert account.by_method == {"item": 1} and account.hidden_syncs >= 2
    assert seen.by_method == {"item": 2} and seen.hidden_syncs == 0
    assert torch.cuda.get_sync_debug_mode() == 0
