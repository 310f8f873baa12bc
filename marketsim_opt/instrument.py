"""Counting objective evaluations and host syncs inside a region: the package's own account, and an observer.

A *host sync* is a device-to-host read-back: `.item()`, `float(t)`, `int(t)`, `complex(t)`, `bool(t)`,
`t.__index__()`, `.tolist()`, `.cpu()`, `.numpy()`, and the Python-level ways into them: `np.asarray(t)`
(`Tensor.__array__`, counted as `numpy`), `x in t` (`Tensor.__contains__`, counted as `item`), `format(t)` /
f-strings (`Tensor.__format__`: a plain 0-d tensor is formatted through its value, counted as `item`; any
other tensor is printed, counted as `__repr__`) and printing (`repr(t)`, `str(t)`: `__repr__`, whatever the
printer reads inside).  Each such call counts once, however many read-backs it makes inside.

Two kinds of region count them, each per thread and nestable (a count inside an inner region also reaches
every enclosing region of its kind):

- `accounting()`: **what the package says it did**, at no cost per torch call.  The package makes each of
  its own read-backs through a *declared read-back* (`read_item(t)`, `read_list(t)`, `read_array(t)`), which records one
  read-back, by method name, into every accounting region open in the calling thread.  An undeclared
  read-back is not seen on CPU.  The optimizers' `OptimizeResult.syncs` is such an account.
- `count_syncs()`: **what really happened**, for users and tests: a `torch.overrides.TorchFunctionMode`
  that each region enters sees every read-back the thread makes, whoever makes it; nothing in torch is
  patched.  While a region is open every torch call in its thread (attribute reads such as `.shape`
  included) goes through the mode's Python `__torch_function__`: about 1 us a call on a 2-core CPU host;
  DIRECT at budget 500 on the `profile` workload ran about 1.7x as long inside one (one noisy run).  A
  read-back made where torch function handling is off (`torch._C.DisableTorchFunction`) is not seen.

The two never add to each other: a declared read-back does not add to observing regions (their mode sees
the real call) and an observed call does not add to accounting regions.  `record_evaluations` reaches both.
So with both open around an optimization, equal counts mean the package declared every read-back it made.

On CUDA a region also turns on `torch.cuda.set_sync_debug_mode("warn")` and counts the synchronizations
torch reports that were *not* inside one of its kind's read-backs (`hidden_syncs`: a boolean mask index,
`torch.nonzero`, `.to("cpu")`, an undeclared `.item()` for an accounting region, ...), so nothing hides.
That debug mode and Python's warning hooks are process-wide: only the outermost CUDA region (of either
kind) turns them on, and concurrent CUDA regions in several threads are not supported.

Evaluations are counted by the objectives themselves (`record_evaluations`), one per candidate scored;
`on_evaluations(callback)` hears each of those counts (a progress bar, say) from every thread.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

__all__ = [
    "SyncCounter",
    "accounting",
    "count_syncs",
    "read_item",
    "read_list",
    "read_array",
    "on_evaluations",
    "record_evaluations",
    "to_device",
    "READBACK_METHODS",
]

#: The names observed read-backs are counted under in `SyncCounter.by_method` (`count_syncs`): torch.Tensor's
#: read-back methods, and `__repr__` for printing a tensor.  Declared read-backs count under their own names.
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

# Per thread: `counters` and `accounts` (its open count_syncs and accounting regions, outermost first), `depth`
# (non-zero inside an observed read-back, see _Readbacks) and `declared` (non-zero inside a declared one).
_state = threading.local()
_listeners: list[Callable[[int], None]] = []
_lock = threading.Lock()


@dataclass(eq=False)  # regions are told apart by identity, not by equal counts
class SyncCounter:
    """What a `count_syncs()` or `accounting()` region counted in the thread that opened it.

    `syncs` is the total of host syncs: `readbacks` (the counted calls: observed ones by the name in
    `READBACK_METHODS` they count under in `by_method`, or declared ones by the helper's name) plus
    `hidden_syncs` (CUDA synchronizations reported by torch outside those calls; always 0 on CPU).
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
    """The counters of the `count_syncs` regions open in this thread, outermost first (the list itself, to change)."""
    try:
        return _state.counters
    except AttributeError:
        _state.counters = []
        return _state.counters


def _open_accounts() -> list[SyncCounter]:
    """The counters of the `accounting` regions open in this thread, outermost first (the list itself, to change)."""
    try:
        return _state.accounts
    except AttributeError:
        _state.accounts = []
        return _state.accounts


def record_evaluations(n: int) -> None:
    """Add `n` scored candidates to this thread's open regions (both kinds); tell every `on_evaluations` callback.

    A no-op when there is neither.
    """
    for counter in _open_counters():
        counter.evaluations += n
    for counter in _open_accounts():
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


def _declare(name: str) -> None:
    """Record one declared read-back `name` into this thread's accounting regions; enter the read-back."""
    for counter in _open_accounts():
        counter.readbacks += 1
        counter.by_method[name] = counter.by_method.get(name, 0) + 1
    _state.declared = getattr(_state, "declared", 0) + 1


def read_item(t: torch.Tensor) -> bool | int | float | complex:
    """`t.item()` (a one-element tensor's value as a Python number), declared as one `item` read-back.

    Counts in this thread's `accounting` regions (also when `.item()` raises); an observing `count_syncs`
    region sees the `.item()` call itself.
    """
    _declare("item")
    try:
        return t.item()
    finally:
        _state.declared -= 1


def read_list(t: torch.Tensor) -> list | bool | int | float | complex:
    """`t.tolist()` (nested Python lists, a number for a 0-d tensor), declared as one `tolist` read-back.

    Counts like `read_item`.
    """
    _declare("tolist")
    try:
        return t.tolist()
    finally:
        _state.declared -= 1


def read_array(t: torch.Tensor) -> np.ndarray:
    """`t`'s values as a new host numpy array, declared as one read-back: `t.numpy()` copied for a CPU tensor
    (a `numpy` read-back; no Python number per element, unlike `tolist`), `t.tolist()` on another device.

    Counts like `read_item`.
    """
    cpu = t.device.type == "cpu"
    _declare("numpy" if cpu else "tolist")
    try:
        return t.detach().numpy().copy() if cpu else np.asarray(t.tolist())
    finally:
        _state.declared -= 1


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
                # Each kind counts as hidden what is outside its own read-backs: an undeclared `.item()` is
                # hidden to the accounting regions, whatever an observing region sees of it.
                if _depth() == 0:
                    for counter in _open_counters():
                        counter.hidden_syncs += 1
                if getattr(_state, "declared", 0) == 0:
                    for counter in _open_accounts():
                        counter.hidden_syncs += 1
                return
            previous_show(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(previous_mode)


def _check_cuda(cuda: bool | None) -> bool:
    """Whether a region listens to CUDA's sync debug mode: `cuda`, or for None whether CUDA is available."""
    use_cuda = torch.cuda.is_available() if cuda is None else cuda
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("cuda: CUDA sync counting was asked for, but CUDA is not available")
    return bool(use_cuda)


@contextmanager
def _listening(use_cuda: bool) -> Iterator[None]:
    """Only the outermost CUDA region listens; its handler feeds every region open in the syncing thread."""
    if use_cuda and torch.cuda.get_sync_debug_mode() == 0:
        with _cuda_sync_warnings():
            yield
    else:
        yield


@contextmanager
def count_syncs(*, cuda: bool | None = None) -> Iterator[SyncCounter]:
    """Observe the evaluations and host syncs made by this thread inside the `with` block.

    Every read-back is seen, declared or not (a torch function mode: about 1 us per torch call inside).
    `cuda=None` turns on CUDA's sync debug mode when CUDA is available.  Regions nest: an inner region's
    counts also reach the outer ones.  Other threads' read-backs and evaluations are not counted.
    """
    counter = SyncCounter()
    use_cuda = _check_cuda(cuda)
    counters = _open_counters()
    counters.append(counter)
    try:
        with _Readbacks(counter), _listening(use_cuda):
            yield counter
    finally:
        counters.remove(counter)  # by identity (eq=False)


@contextmanager
def accounting(*, cuda: bool | None = None) -> Iterator[SyncCounter]:
    """Count this thread's evaluations and declared read-backs (`read_item`, `read_list`) inside the `with` block.

    No cost per torch call: read-backs the package does not declare are not seen (on CPU), and a
    `count_syncs` region's observations do not add here.  `cuda=None` turns on CUDA's sync debug mode
    when CUDA is available; the synchronizations it reports outside a declared read-back are
    `hidden_syncs`.  Regions nest: an inner region's counts also reach the outer ones.
    """
    counter = SyncCounter()
    use_cuda = _check_cuda(cuda)
    accounts = _open_accounts()
    accounts.append(counter)
    try:
        with _listening(use_cuda):
            yield counter
    finally:
        accounts.remove(counter)  # by identity (eq=False)
