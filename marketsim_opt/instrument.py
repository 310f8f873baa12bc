"""Counting objective evaluations and host syncs inside a region.

A *host sync* is a device-to-host read-back: `.item()`, `float(t)`, `int(t)`,
`complex(t)`, `bool(t)`, `t.__index__()`, `.tolist()`, `.cpu()`, `.numpy()` (and
`np.asarray(t)`, which goes through `.numpy()`).  On CPU these calls are counted by wrapping the
torch.Tensor methods while a region is open; a call made inside another counted
call (`np.asarray` -> `.numpy()`) counts once.  On CUDA the region also turns on
`torch.cuda.set_sync_debug_mode("warn")` and counts the synchronizations torch
reports that were *not* one of the calls above (`hidden_syncs`: a boolean mask
index, `torch.nonzero`, ...), so nothing hides.

Evaluations are counted by the objectives themselves (`record_evaluations`),
one per candidate scored; `on_evaluations(callback)` hears each of those counts
(a progress bar, say).
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

__all__ = ["SyncCounter", "count_syncs", "on_evaluations", "record_evaluations", "to_device", "READBACK_METHODS"]

#: The torch.Tensor methods whose call is one host read-back.
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
)

_state = threading.local()
_active: list[SyncCounter] = []
_listeners: list[Callable[[int], None]] = []
_lock = threading.Lock()


@dataclass(eq=False)  # regions are told apart by identity, not by equal counts
class SyncCounter:
    """What a `count_syncs()` region saw.

    `syncs` is the total of host syncs: `readbacks` (the instrumented calls,
    by method name in `by_method`) plus `hidden_syncs` (CUDA synchronizations
    reported by torch outside those calls; always 0 on CPU).
    """

    evaluations: int = 0
    readbacks: int = 0
    hidden_syncs: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    @property
    def syncs(self) -> int:
        return self.readbacks + self.hidden_syncs


def record_evaluations(n: int) -> None:
    """Add `n` scored candidates to every open region and tell every `on_evaluations` callback (no-op when none)."""
    for counter in _active:
        counter.evaluations += n
    for callback in tuple(_listeners):  # a copy: a callback may open or close a region of its own
        callback(n)


@contextmanager
def on_evaluations(callback: Callable[[int], None]) -> Iterator[None]:
    """Call `callback(n)` whenever n candidates are scored inside the region.

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


def _wrap(name: str, original):
    @functools.wraps(original)
    def counted(self, *args, **kwargs):
        if _depth() == 0:
            for counter in _active:
                counter.readbacks += 1
                counter.by_method[name] = counter.by_method.get(name, 0) + 1
        _state.depth = _depth() + 1
        try:
            return original(self, *args, **kwargs)
        finally:
            _state.depth -= 1

    return counted


def _install() -> None:
    for name in READBACK_METHODS:
        setattr(torch.Tensor, name, _wrap(name, getattr(torch._C.TensorBase, name)))


def _uninstall() -> None:
    for name in READBACK_METHODS:
        if name in torch.Tensor.__dict__:
            delattr(torch.Tensor, name)


@contextmanager
def _cuda_sync_warnings() -> Iterator[None]:
    """Turn on CUDA's sync debug mode; count each sync it reports outside an instrumented call."""
    previous_mode = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        previous_show = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, UserWarning) and "synchroniz" in str(message):
                if _depth() == 0:
                    for counter in _active:
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
    """Count evaluations and host syncs inside the `with` block.

    `cuda=None` turns on CUDA's sync debug mode when CUDA is available.
    Regions nest: an inner region's counts also reach the outer ones.
    """
    counter = SyncCounter()
    use_cuda = torch.cuda.is_available() if cuda is None else cuda
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("cuda: CUDA sync counting was asked for, but CUDA is not available")
    with _lock:
        if not _active:
            _install()
        _active.append(counter)
    try:
        # Only the outermost CUDA region listens; its handler feeds every open region.
        if use_cuda and torch.cuda.get_sync_debug_mode() == 0:
            with _cuda_sync_warnings():
                yield counter
        else:
            yield counter
    finally:
        with _lock:
            _active.remove(counter)
            if not _active:
                _uninstall()
