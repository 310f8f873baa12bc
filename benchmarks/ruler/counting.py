"""Counting done by the harness: evaluations and host read-backs, which the code under test cannot switch off.

`with counting() as tally:` counts, on the calling thread, while the block runs:

- **read-backs**: every call of a torch.Tensor method in `READBACKS` (`.item()`, `float(t)`, `.tolist()`,
  `.cpu()`, `np.asarray(t)` via `__array__`, f-strings and `repr` of tensors, `x in t`, `torch.equal`,
  `torch.allclose`, ...) and every
  `Tensor.to` / `Tensor.copy_` that moves a CUDA tensor to the CPU (`by_method["to(cpu)"]`), seen by a
  `torch.overrides.TorchFunctionMode`.  A call made inside a counted call (`np.asarray` -> `.numpy()`) is not seen
  again, so each counts once.  Nothing in the package's own instrumentation (`marketsim_opt.instrument`) is used
  or consulted: redefining its method lists or patching `torch.Tensor` cannot narrow this count.
- **hidden syncs** (CUDA only): with `torch.cuda.set_sync_debug_mode("warn")` on, each synchronization torch
  reports outside a counted read-back (a boolean-mask index, `torch.nonzero`, ...).  The sync
  debug mode and `warnings.showwarning` are process-wide; both are restored when the region closes.  On CPU a
  read-back by a call not in READBACKS (none known on torch 2.13) would not be counted.
- **evaluations**: candidates scored through `marketsim_opt.strategies.Objective`'s scoring methods, counted
  from each call's returned tensor's numel: since issue 18 the one entry `score` (`[S, K]`; `[S, 1]` for one
  candidate; with `tau`, the gradient method's forward passes on the surrogate), before it `__call__` (1, or S
  for a batched problem), `batch` (K or S*K) and, where the class has it, `smoothed`.  Backward passes are not
  counted.  The class attributes are replaced by counting wrappers while any region is open
  (process-wide, restored when the last region closes); a scoring call made inside another counts once.
  So for `exact` this counts the float64 re-scoring of its returned points (S per policy), not the corners of
  its sweep, which never call the objective; for `gradient`, its forward passes and its final scoring.  The
  package's `nfev` is what it says it did; this is what the harness saw.

Regions nest: an inner region's counts also reach every region open around it.  Counting is per thread: other
threads' calls are not counted (torch's function-mode stack is thread-local), including threads the measured
code starts itself.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["READBACKS", "SCORING_METHODS", "Tally", "counting", "SyncWarningHandler"]

#: torch.Tensor methods and torch functions whose call is one host read-back (the mode sees each of them on torch 2.13).
READBACKS = frozenset(
    {
        "item",
        "__float__",
        "__int__",
        "__complex__",
        "__bool__",
        "__index__",
        "tolist",
        "cpu",
        "numpy",
        "__array__",
        "__format__",
        "__repr__",
        "__contains__",
        "equal",  # torch.equal, torch.allclose and is_nonzero answer with a Python bool: the values came to the host
        "allclose",
        "is_nonzero",
    }
)
#: `marketsim_opt.strategies.Objective` methods whose returned tensor's numel is the candidates they scored
#: (`score` since issue 18; the others before it).
SCORING_METHODS = ("score", "__call__", "batch", "smoothed")
#: `by_method` key of a `Tensor.to` / `Tensor.copy_` that moves a CUDA tensor to the CPU.
TO_CPU = "to(cpu)"


@dataclass(eq=False)  # regions are told apart by identity
class Tally:
    """What a `counting()` region saw: evaluations (candidates scored) and host syncs.

    `syncs = readbacks + hidden_syncs`; `by_method` splits `readbacks` by method name (and `"to(cpu)"`).
    """

    evaluations: int = 0
    readbacks: int = 0
    hidden_syncs: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    @property
    def syncs(self) -> int:
        return self.readbacks + self.hidden_syncs


class _Thread(threading.local):
    def __init__(self) -> None:
        self.tallies: list[Tally] = []  # the regions open on this thread, outermost first
        self.in_readback = 0  # > 0 while a counted read-back runs (its CUDA sync is not a hidden one)
        self.scoring = 0  # > 0 while a wrapped scoring method runs
        self.cuda = False  # whether a region of this thread listens to CUDA's sync warnings


_thread = _Thread()


def _count_readback(name: str) -> None:
    for tally in _thread.tallies:
        tally.readbacks += 1
        tally.by_method[name] = tally.by_method.get(name, 0) + 1


def _to_host(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether `Tensor.to(*args, **kwargs)` or `Tensor.copy_` moves a CUDA tensor to the CPU."""
    if not args or not isinstance(args[0], torch.Tensor):
        return False
    if name == "copy_":
        src = args[1] if len(args) > 1 else kwargs.get("src")
        return isinstance(src, torch.Tensor) and src.device.type == "cuda" and args[0].device.type == "cpu"
    if args[0].device.type != "cuda":
        return False
    try:
        device = torch._C._nn._parse_to(*args[1:], **kwargs)[0]
    except (TypeError, RuntimeError):
        return False
    return device is not None and torch.device(device).type == "cpu"


class _ReadbackMode(TorchFunctionMode):
    """Counts READBACKS calls and CUDA-to-CPU moves; torch runs the handler with this mode off, so the calls a
    counted call makes itself are not seen again."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in READBACKS:
            counted = name
        elif name in ("to", "copy_") and _to_host(name, args, kwargs):
            counted = TO_CPU
        else:
            return func(*args, **kwargs)
        _count_readback(counted)
        _thread.in_readback += 1
        try:
            return func(*args, **kwargs)
        finally:
            _thread.in_readback -= 1


class SyncWarningHandler:
    """A `warnings.showwarning` replacement: a CUDA sync warning outside a counted read-back is one hidden sync
    for every region open on the calling thread; sync warnings are swallowed, anything else goes to `previous`."""

    def __init__(self, previous: Callable) -> None:
        self.previous = previous

    @staticmethod
    def is_sync_warning(message, category) -> bool:
        return issubclass(category, UserWarning) and "synchroniz" in str(message)

    def __call__(self, message, category, filename, lineno, file=None, line=None) -> None:
        if self.is_sync_warning(message, category):
            if _thread.in_readback == 0:
                for tally in _thread.tallies:
                    tally.hidden_syncs += 1
            return
        self.previous(message, category, filename, lineno, file, line)


@contextmanager
def _cuda_sync_warnings() -> Iterator[None]:
    """CUDA's sync debug mode on ("warn") with `SyncWarningHandler` listening; both restored on exit."""
    previous_mode = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings():  # restores the filters and warnings.showwarning on exit
        warnings.filterwarnings("always", message=".*synchroniz", category=UserWarning)
        warnings.showwarning = SyncWarningHandler(warnings.showwarning)
        torch.cuda.set_sync_debug_mode("warn")
        _thread.cuda = True
        try:
            yield
        finally:
            _thread.cuda = False
            torch.cuda.set_sync_debug_mode(previous_mode)


# The scoring wrappers are process-wide (class attributes); one lock guards installing and restoring them.
_install_lock = threading.Lock()
_open_regions = 0
_restore: list[Callable[[], None]] = []


def _counted_scoring(original: Callable) -> Callable:
    @functools.wraps(original)
    def counted(self, *args, **kwargs):
        outermost = _thread.scoring == 0
        _thread.scoring += 1
        try:
            result = original(self, *args, **kwargs)
        finally:
            _thread.scoring -= 1
        if outermost and _thread.tallies:
            n = result.numel() if isinstance(result, torch.Tensor) else 1
            for tally in _thread.tallies:
                tally.evaluations += n
        return result

    counted.__ruler_original__ = original
    return counted


def _install_scoring_counter() -> None:
    """Wrap `marketsim_opt.strategies.Objective`'s scoring methods (those the class has) with counters."""
    from marketsim_opt import strategies

    cls = strategies.Objective
    for name in SCORING_METHODS:
        if not any(name in klass.__dict__ for klass in cls.__mro__[:-1]):  # not the class's (object's, type's)
            continue
        own = name in cls.__dict__
        original = cls.__dict__[name] if own else getattr(cls, name)
        setattr(cls, name, _counted_scoring(original))
        _restore.append(
            functools.partial(setattr, cls, name, original) if own else functools.partial(delattr, cls, name)
        )


def _open_region() -> None:
    global _open_regions
    with _install_lock:
        if _open_regions == 0:
            try:
                _install_scoring_counter()
            except BaseException:
                _restore_scoring()
                raise
        _open_regions += 1


def _restore_scoring() -> None:
    while _restore:
        _restore.pop()()


def _close_region() -> None:
    global _open_regions
    with _install_lock:
        _open_regions -= 1
        if _open_regions == 0:
            _restore_scoring()


@contextmanager
def counting(*, cuda: bool | None = None) -> Iterator[Tally]:
    """Count evaluations and host syncs of the `with` block on this thread (see the module docstring).

    `cuda=None` listens to CUDA's sync warnings when CUDA is available; `cuda=True` without CUDA is a ValueError.
    """
    available = torch.cuda.is_available()
    if cuda and not available:
        raise ValueError("cuda: CUDA sync counting was asked for, but torch.cuda.is_available() is False")
    use_cuda = available if cuda is None else bool(cuda)
    tally = Tally()
    with ExitStack() as stack:
        _open_region()
        stack.callback(_close_region)
        if not _thread.tallies:  # one mode per thread's outermost region; it feeds every open tally
            mode = _ReadbackMode()
            mode.__enter__()
            stack.callback(mode.__exit__, None, None, None)
        if use_cuda and not _thread.cuda:
            stack.enter_context(_cuda_sync_warnings())
        _thread.tallies.append(tally)
        stack.callback(_remove, tally)
        yield tally


def _remove(tally: Tally) -> None:
    tallies = _thread.tallies
    del tallies[next(i for i, t in enumerate(tallies) if t is tally)]
