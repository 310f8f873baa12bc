"""Counting objective evaluations and host syncs inside a region.

A *host sync* is a device-to-host read-back: `.item()`, `float(t)`, `int(t)`, `complex(t)`, `bool(t)`,
`t.__index__()`, `.tolist()`, `.cpu()`, `.numpy()`, and the Python-level ways into them: `np.asarray(t)`
(`Tensor.__array__`, counted as `numpy`), `x in t` (`Tensor.__contains__`, counted as `item`), `format(t)` /
f-strings (`Tensor.__format__`: a plain 0-d tensor is formatted through its value, counted as `item`; any
other tensor is printed, counted as `__repr__`) and printing (`repr(t)`, `str(t)`: `__repr__`, whatever the
printer reads inside).  Each such call counts once, however many read-backs it makes inside.

Read-backs are seen by a `torch.overrides.TorchFunctionMode` that each `count_syncs()` region enters; nothing
in torch is patched.  torch keeps its mode stack per thread, so **a region counts the read-backs made by the
thread that opened it** (before issue 16 a process-wide patch of `torch.Tensor` counted every thread's), and
`record_evaluations` adds to the regions open in the calling thread.  Regions nest: each pushes its own mode,
so a read-back inside an inner region reaches every enclosing one.  A read-back made where torch function
handling is off (`torch._C.DisableTorchFunction`) is not seen.  While a region is open every torch call in
its thread (attribute reads such as `.shape` included) goes through the mode's Python `__torch_function__`:
about 1 us a call on a 2-core CPU host, which made DIRECT at budget 500 on the `profile` workload about 1.7x
as slow as the patch of `torch.Tensor` it replaces (one noisy run).

On CUDA the region also turns on `torch.cuda.set_sync_debug_mode("warn")` and counts the synchronizations
torch reports that were *not* inside one of the counted calls above (`hidden_syncs`: a boolean mask index,
`torch.nonzero`, `.to("cpu")`, ...), so nothing hides.  That debug mode and Python's warning hooks are
process-wide: only the outermost CUDA region turns them on, and concurrent CUDA regions in several threads
are not supported.

Evaluations are counted by the objectives themselves (`record_evaluations`), one per candidate scored;
`on_evaluations(callback)` hears each of those counts (a progress bar, say) from every thread.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["SyncCounter", "count_syncs", "on_evaluations", "record_evaluations", "to_device", "READBACK_METHODS"]

#: The names read-backs are counted under in `SyncCounter.by_method`: torch.Tensor's read-back methods, and
#: `__repr__` for printing a tensor.
READBACK_METHODS = (
    "item",
    "__float__",
    "__int__",
    "__complex__",
    "__bool__",
    "__index__",
    "tolist",
    "cpu",
    "numpy",
    "__repr__",
)

#: The torch functions a region's mode counts, by the name they count under.  `Tensor.__format__` is
#: classified per call (`_format_kind`).
_READBACK_FUNCS: dict[object, str] = {getattr(torch.Tensor, name): name for name in READBACK_METHODS}
_READBACK_FUNCS[torch.Tensor.__array__] = "numpy"
_READBACK_FUNCS[torch.Tensor.__contains__] = "item"
_FORMAT = torch.Tensor.__format__

_state = threading.local()  # per thread: `counters` (its open regions, outermost first), `depth` (see _Readbacks)
_listeners: list[Callable[[int], None]] = []
_lock = threading.Lock()


@dataclass(eq=False)  # regions are told apart by identity, not by equal counts
class SyncCounter:
    """What a `count_syncs()` region saw in the thread that opened it.

    `syncs` is the total of host syncs: `readbacks` (the counted calls, by the name in `READBACK_METHODS`
    they count under in `by_method`) plus `hidden_syncs` (CUDA synchronizations reported by torch outside
    those calls; always 0 on CPU).
    """

    evaluations: int = 0
    readbacks: int = 0
    hidden_syncs: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    @property
    def syncs(self) -> int:
        """`readbacks + hidden_syncs`."""
        return self.readbacks + self.hidden_syncs


def _open_counters() -> list[SyncCounter]:
    """The counters of the regions open in this thread, outermost first (the list itself, to change)."""
    try:
        return _state.counters
    except AttributeError:
        _state.counters = []
        return _state.counters


def record_evaluations(n: int) -> None:
    """Add `n` scored candidates to the regions open in this thread and tell every `on_evaluations` callback.

    A no-op when there is neither.
    """
    for counter in _open_counters():
        counter.evaluations += n
    for callback in tuple(_listeners):  # a copy: a callback may open or close a region of its own
        callback(n)


@contextmanager
def on_evaluations(callback: Callable[[int], None]) -> Iterator[None]:
    """Call `callback(n)` whenever n candidates are scored inside the region (in any thread).

    Regions nest (each open callback hears every count, in the order they were opened) and the callback
    is removed on exit, also when the body raises.  An exception raised by the callback propagates out of
    the scoring call that reported the count.
    """
    if not callable(callback):
        raise ValueError(f"callback: expected a callable taking the number of candidates scored, got {callback!r}")
    with _lock:
        _listeners.append(callback)
    try:
        yield
    finally:
        with _lock:
            # by identity: the same callable may be registered by two nested regions
            del _listeners[max(i for i, c in enumerate(_listeners) if c is callback)]


def to_device(values, *, dtype: torch.dtype, device: str | torch.device) -> torch.Tensor:
    """Host values (a number, a nested list, a numpy array) as a tensor on `device`, without a host sync.

    A plain host-to-device copy waits for the device (torch's sync debug mode reports it); on CUDA the
    values go through pinned memory with a non-blocking copy instead, which only queues the transfer.
    """
    host = torch.as_tensor(values, dtype=dtype)
    if torch.device(device).type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)


def _depth() -> int:
    return getattr(_state, "depth", 0)


def _format_kind(tensor: torch.Tensor) -> str:
    """What `Tensor.__format__` reads: the value of a plain 0-d tensor (`item`), else the printed tensor."""
    if tensor.dim() == 0 and not tensor.is_meta and type(tensor) is torch.Tensor:  # torch's own test
        return "item"
    return "__repr__"


class _Readbacks(TorchFunctionMode):
    """Counts the read-back calls made in its thread while entered into one counter.

    torch hands the mode each call before running it and disables the mode while it handles one, so a
    read-back made inside another (`np.asarray` -> `.numpy()`, printing -> `.tolist()`) reaches it once.
    Enclosing regions' modes sit below it on the stack and see the call next.  `depth` (per thread) is
    non-zero while any counted call runs, which keeps its own synchronization out of `hidden_syncs`.
    """

    def __init__(self, counter: SyncCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        name = _READBACK_FUNCS.get(func)
        if name is None:
            if func is not _FORMAT:
                return func(*args, **kwargs)
            name = _format_kind(args[0])
        counter = self.counter
        counter.readbacks += 1
        counter.by_method[name] = counter.by_method.get(name, 0) + 1
        _state.depth = _depth() + 1
        try:
            return func(*args, **kwargs)
        finally:
            _state.depth -= 1


@contextmanager
def _cuda_sync_warnings() -> Iterator[None]:
    """Turn on CUDA's sync debug mode; count each sync it reports outside a counted read-back."""
    previous_mode = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        previous_show = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, UserWarning) and "synchroniz" in str(message):
                if _depth() == 0:
                    for counter in _open_counters():
                        counter.hidden_syncs += 1
                return
            previous_show(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(previous_mode)


@contextmanager
def count_syncs(*, cuda: bool | None = None) -> Iterator[SyncCounter]:
    """Count evaluations and host syncs made by this thread inside the `with` block.

    `cuda=None` turns on CUDA's sync debug mode when CUDA is available.  Regions nest: an inner region's
    counts also reach the outer ones.  Other threads' read-backs and evaluations are not counted.
    """
    counter = SyncCounter()
    use_cuda = torch.cuda.is_available() if cuda is None else cuda
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("cuda: CUDA sync counting was asked for, but CUDA is not available")
    counters = _open_counters()
    counters.append(counter)
    try:
        with _Readbacks(counter):
            # Only the outermost CUDA region listens; its handler feeds every region open in the syncing thread.
            if use_cuda and torch.cuda.get_sync_debug_mode() == 0:
                with _cuda_sync_warnings():
                    yield counter
            else:
                yield counter
    finally:
        counters.remove(counter)  # by identity (eq=False)
