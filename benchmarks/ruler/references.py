"""The frozen references: exact suprema of the suite's workloads, committed as data (never import the package here).

`frozen/<workload>.json` holds a workload's data (float64 `[S, N]`, the float32 values the suite optimizes),
its fee, crypto flag, search box, the policy set the suite optimizes it under, and the exact supremum per
simulation for both strategies and both policies, as the package's exact solver found them when the file was
written by `python tools/freeze_references.py` (which also checks them: `--check`).  The suite's regret is the
frozen supremum minus `scorer.score` at the returned point, so neither side depends on the code under test.

The backtest's file also holds `next_day` (format 2): each simulation's test day, the bar right after its
fitted window (float64 `[S]` moves relative to the previous close: close, high, low and the forecasts
high_pred, low_pred; and its date), as the package's walk-forward defined it when the file was written.  The
suite's out-of-sample loss is `next_day_loss_bp`, minus `scorer.next_day_profit` at the returned point, in bp.
Profile has no next day (`"next_day": null`).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import scorer

__all__ = [
    "REFERENCE_DIR",
    "WORKLOADS",
    "STRATEGIES",
    "POLICIES",
    "POLICY_NAMES",
    "FIELDS",
    "NEXT_DAY_FIELDS",
    "NEXT_DAY_WORKLOADS",
    "NEXT_DAY_RTOL",
    "FORMAT",
    "GENERATED_BY",
    "REGENERATE",
    "ReferenceError",
    "NextDay",
    "Reference",
    "load",
    "check_same_data",
    "check_same_next_day",
    "regret_bp",
    "next_day_loss_bp",
    "display_path",
]

REFERENCE_DIR = Path(__file__).parent / "frozen"
WORKLOADS = ("profile", "backtest")
STRATEGIES = scorer.STRATEGIES
POLICIES = (False, True)
#: The JSON key of each policy (`close_at_eod` value) under `suprema.<strategy>`.
POLICY_NAMES = {False: "intraday", True: "close_at_eod"}
#: The day fields under `data`, each `[S, N]`.
FIELDS = ("close", "high", "low", "high_pred", "low_pred")
#: The test-day fields under `next_day`, each `[S]` float64 (moves relative to the previous close).
NEXT_DAY_FIELDS = FIELDS
#: The workloads whose file has a `next_day` block (the others have `"next_day": null`).
NEXT_DAY_WORKLOADS = ("backtest",)
#: Relative tolerance of `check_same_next_day`: the test days are float64 moves, recomputed the same way.
NEXT_DAY_RTOL = 1e-12
#: 2: the `next_day` block (issue 17).
FORMAT = 2
GENERATED_BY = "tools/freeze_references.py"
REGENERATE = "python tools/freeze_references.py"
#: Relative tolerance of `check_same_data`: float32 data whose last bits may differ across CPUs agree within it.
DATA_RTOL = 1e-6
_REPO = Path(__file__).resolve().parents[2]


class ReferenceError(ValueError):
    """A missing, malformed or outdated reference file; the message names the file and the field."""


def display_path(path: Path) -> str:
    """`path` relative to the repository root when it lies inside it (as messages show it), else as given."""
    try:
        return Path(path).resolve().relative_to(_REPO).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True, eq=False)
class NextDay:
    """Each simulation's test day: the bar after its fitted window.  Moves are float64 `[S]`, fractions of the
    previous close; `high_pred`/`low_pred` are the test day's forecasts (without offsets); `dates[s]` its date."""

    close: np.ndarray
    high: np.ndarray
    low: np.ndarray
    high_pred: np.ndarray
    low_pred: np.ndarray
    dates: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Reference:
    """One workload's frozen data and exact suprema.

    Day fields are float64 `[S, N]` (S = 1 for profile).  `policies` is the policy set the suite optimizes the
    workload under (profile `(False,)`, backtest `(False, True)`); `suprema[(strategy, close_at_eod)]` is `[S]`
    for both policies whatever `policies` says.  `bounds` is `((h_lo, h_hi), (l_lo, l_hi))`.  `next_day`: the
    test day of each simulation (NEXT_DAY_WORKLOADS), None for the others.
    """

    path: Path
    workload: str
    close: np.ndarray
    high: np.ndarray
    low: np.ndarray
    high_pred: np.ndarray
    low_pred: np.ndarray
    trading_fee: float
    is_crypto: bool
    policies: tuple[bool, ...]
    bounds: tuple[tuple[float, float], tuple[float, float]]
    suprema: dict[tuple[str, bool], np.ndarray] = field(repr=False)
    frozen_from: str = ""
    next_day: NextDay | None = field(default=None, repr=False)

    @property
    def n_sims(self) -> int:
        """S, the simulations (rows) of the data."""
        return self.close.shape[0]

    def supremum(self, strategy: str) -> np.ndarray:
        """The exact supremum of `strategy` over the box and `self.policies`, per simulation `[S]`."""
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
        return np.max([self.suprema[(strategy, policy)] for policy in self.policies], axis=0)


def load(workload: str, directory: Path | str = REFERENCE_DIR) -> Reference:
    """The reference of `workload` (one of WORKLOADS) from `<directory>/<workload>.json`, fully validated.

    ReferenceError naming the file and the field for anything missing or malformed.
    """
    if workload not in WORKLOADS:
        raise ValueError(f"workload: expected one of {', '.join(WORKLOADS)}, got {workload!r}")
    path = Path(directory).resolve() / f"{workload}.json"
    if not path.is_file():
        raise ReferenceError(f"{display_path(path)}: reference file is missing; create it with `{REGENERATE}`")
    stat = path.stat()
    return _load_path(path, workload, stat.st_mtime_ns, stat.st_size)


@functools.cache
def _load_path(path: Path, workload: str, mtime_ns: int, size: int) -> Reference:
    """The parsed file; the cache is keyed on its modification time and size too, so a rewritten file is re-read."""
    where = display_path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReferenceError(f"{where}: not a readable JSON file ({exc}); regenerate with `{REGENERATE}`") from None
    return _parse(doc, path, workload)


def _fail(path: Path, name: str, problem: str) -> ReferenceError:
    return ReferenceError(f"{display_path(path)}: {name}: {problem}")


def _get(path: Path, obj: dict, key: str, prefix: str = ""):
    name = f"{prefix}{key}"
    if not isinstance(obj, dict):
        raise _fail(path, prefix.rstrip(".") or "(top level)", f"expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise _fail(path, name, "missing")
    return obj[key]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bool(path: Path, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, name, f"expected a JSON boolean (true/false), got {json.dumps(value)}")
    return value


def _numbers(path: Path, name: str, value, length: int | None = None) -> np.ndarray:
    """A JSON list of finite numbers as float64 `[n]`; `length` checks n."""
    want = "finite numbers" if length is None else f"{length} finite numbers"
    if not isinstance(value, list):
        raise _fail(path, name, f"expected a list of {want}, got {type(value).__name__}")
    bad = [i for i, v in enumerate(value) if not _is_number(v) or not math.isfinite(v)]
    if bad:
        raise _fail(path, f"{name}[{bad[0]}]", f"expected a finite number, got {json.dumps(value[bad[0]])}")
    if length is not None and len(value) != length:
        raise _fail(path, name, f"expected {want}, got {len(value)}")
    if not value:
        raise _fail(path, name, "expected at least one number, got an empty list")
    return np.asarray(value, dtype=np.float64)


def _matrix(path: Path, name: str, value) -> np.ndarray:
    """A JSON list of equal-length rows of finite numbers as float64 `[S, N]`."""
    if not isinstance(value, list) or not value:
        raise _fail(path, name, "expected a non-empty list of rows [S, N]")
    rows = [_numbers(path, f"{name}[{i}]", row) for i, row in enumerate(value)]
    for i, row in enumerate(rows):
        if len(row) != len(rows[0]):
            raise _fail(path, f"{name}[{i}]", f"expected {len(rows[0])} numbers like row 0, got {len(row)}")
    return _frozen(np.stack(rows))


def _frozen(arr: np.ndarray) -> np.ndarray:
    """`arr` made read-only: a cached Reference is shared by every caller."""
    arr.flags.writeable = False
    return arr


def _parse(doc, path: Path, workload: str) -> Reference:
    if not isinstance(doc, dict):
        raise _fail(path, "(top level)", f"expected a JSON object, got {type(doc).__name__}")
    version = _get(path, doc, "format")
    if not _is_number(version) or version != FORMAT:
        raise _fail(path, "format", f"expected {FORMAT}, got {json.dumps(version)}; regenerate with `{REGENERATE}`")
    name = _get(path, doc, "workload")
    if name != workload:
        raise _fail(path, "workload", f"expected {workload!r} (the file's name), got {json.dumps(name)}")
    frozen_from = _get(path, doc, "frozen_from")
    if not isinstance(frozen_from, str):
        raise _fail(path, "frozen_from", f"expected a string, got {json.dumps(frozen_from)}")
    fee = _get(path, doc, "trading_fee")
    if not _is_number(fee) or not math.isfinite(fee) or not 0.0 <= fee < 1.0:
        raise _fail(path, "trading_fee", f"expected a number in [0, 1), got {json.dumps(fee)}")
    is_crypto = _bool(path, "is_crypto", _get(path, doc, "is_crypto"))

    raw_policies = _get(path, doc, "policies")
    if not isinstance(raw_policies, list) or not raw_policies:
        raise _fail(path, "policies", f"expected a non-empty list of booleans, got {json.dumps(raw_policies)}")
    policies = tuple(_bool(path, f"policies[{i}]", v) for i, v in enumerate(raw_policies))
    if len(set(policies)) != len(policies):
        raise _fail(path, "policies", f"expected distinct booleans, got {json.dumps(raw_policies)}")

    raw_bounds = _get(path, doc, "bounds")
    if not isinstance(raw_bounds, list) or len(raw_bounds) != 2:
        raise _fail(path, "bounds", f"expected [[h_lo, h_hi], [l_lo, l_hi]], got {json.dumps(raw_bounds)}")
    bounds = []
    for i, axis in enumerate("hl"):
        lo, hi = _numbers(path, f"bounds[{i}]", raw_bounds[i], 2)
        if not lo < hi:
            raise _fail(path, f"bounds[{i}]", f"{axis} lower bound {lo} must be below its upper bound {hi}")
        bounds.append((float(lo), float(hi)))

    data = _get(path, doc, "data")
    arrays = {f: _matrix(path, f"data.{f}", _get(path, data, f, "data.")) for f in FIELDS}
    shape = arrays["close"].shape
    for f, arr in arrays.items():
        if arr.shape != shape:
            raise _fail(path, f"data.{f}", f"expected shape {list(shape)} like data.close, got {list(arr.shape)}")

    raw_suprema = _get(path, doc, "suprema")
    suprema = {}
    for strategy in STRATEGIES:
        per_policy = _get(path, raw_suprema, strategy, "suprema.")
        for policy in POLICIES:
            key = POLICY_NAMES[policy]
            values = _get(path, per_policy, key, f"suprema.{strategy}.")
            suprema[(strategy, policy)] = _frozen(_numbers(path, f"suprema.{strategy}.{key}", values, shape[0]))
    next_day = _next_day(path, workload, _get(path, doc, "next_day"), shape[0])
    return Reference(
        path=path,
        workload=workload,
        **arrays,
        trading_fee=float(fee),
        is_crypto=is_crypto,
        policies=policies,
        bounds=(bounds[0], bounds[1]),
        suprema=suprema,
        frozen_from=frozen_from,
        next_day=next_day,
    )


def _next_day(path: Path, workload: str, value, n_sims: int) -> NextDay | None:
    """The `next_day` block: an object of `[S]` lists for NEXT_DAY_WORKLOADS, null for the others."""
    if workload not in NEXT_DAY_WORKLOADS:
        if value is not None:
            raise _fail(path, "next_day", f"expected null ({workload} has no test day), got {type(value).__name__}")
        return None
    if not isinstance(value, dict):
        got = "null" if value is None else type(value).__name__
        raise _fail(path, "next_day", f"expected an object of the test days ({workload} has one), got {got}")
    arrays = {
        f: _frozen(_numbers(path, f"next_day.{f}", _get(path, value, f, "next_day."), n_sims)) for f in NEXT_DAY_FIELDS
    }
    dates = _get(path, value, "dates", "next_day.")
    if not isinstance(dates, list) or len(dates) != n_sims:
        got = f"{len(dates)} items" if isinstance(dates, list) else type(dates).__name__
        raise _fail(path, "next_day.dates", f"expected {n_sims} date strings (one per simulation), got {got}")
    bad = [i for i, d in enumerate(dates) if not isinstance(d, str) or not d]
    if bad:
        raise _fail(path, f"next_day.dates[{bad[0]}]", f"expected a non-empty string, got {json.dumps(dates[bad[0]])}")
    return NextDay(**arrays, dates=tuple(dates))


def check_same_data(
    reference: Reference, *, close, high, low, high_pred, low_pred, trading_fee: float, is_crypto: bool
) -> None:
    """Check that a commit's workload data (numpy float64, `[N]` or `[S, N]`) is the frozen data.

    Values must agree within `DATA_RTOL` relative (float32 data whose last bits differ across CPUs; anything
    larger is other data), the fee within 1e-12 relative, the crypto flag exactly.  ReferenceError naming the
    workload, the field and the first differing index with both values otherwise.
    """
    where = f"{display_path(reference.path)} ({reference.workload})"
    redo = f"regenerate with `{REGENERATE}` if the change is deliberate"
    given = dict(close=close, high=high, low=low, high_pred=high_pred, low_pred=low_pred)
    for name in FIELDS:
        frozen = getattr(reference, name)
        now = np.asarray(given[name], dtype=np.float64)
        if now.ndim == 1 and frozen.shape[0] == 1:
            now = now[None]
        if now.shape != frozen.shape:
            raise ReferenceError(f"{where}: {name}: shape {list(now.shape)} now, {list(frozen.shape)} frozen; {redo}")
        same = np.isclose(now, frozen, rtol=DATA_RTOL, atol=0.0)
        if not same.all():
            index = tuple(int(i) for i in np.argwhere(~same)[0])
            raise ReferenceError(
                f"{where}: {name}{list(index)}: {float(now[index])!r} now, {float(frozen[index])!r} frozen; {redo}"
            )
    if not math.isclose(float(trading_fee), reference.trading_fee, rel_tol=1e-12, abs_tol=0.0):
        raise ReferenceError(f"{where}: trading_fee: {trading_fee!r} now, {reference.trading_fee!r} frozen; {redo}")
    if bool(is_crypto) != reference.is_crypto:
        raise ReferenceError(f"{where}: is_crypto: {is_crypto!r} now, {reference.is_crypto!r} frozen; {redo}")


def check_same_next_day(reference: Reference, *, close, high, low, high_pred, low_pred, dates) -> None:
    """Check that freshly computed test days (float64 `[S]` each, `dates` `S` strings) are the frozen ones.

    Moves must agree within NEXT_DAY_RTOL relative, dates exactly.  ReferenceError naming the file, the field and
    the first differing simulation with both values otherwise (also when the reference has no next day).
    """
    where = f"{display_path(reference.path)} ({reference.workload})"
    redo = f"regenerate with `{REGENERATE}` if the change is deliberate"
    frozen = reference.next_day
    if frozen is None:
        raise ReferenceError(f"{where}: next_day: none frozen; {redo}")
    given = dict(close=close, high=high, low=low, high_pred=high_pred, low_pred=low_pred)
    for name in NEXT_DAY_FIELDS:
        old = getattr(frozen, name)
        now = np.asarray(given[name], dtype=np.float64)
        if now.shape != old.shape:
            raise ReferenceError(
                f"{where}: next_day.{name}: shape {list(now.shape)} now, {list(old.shape)} frozen; {redo}"
            )
        same = np.isclose(now, old, rtol=NEXT_DAY_RTOL, atol=0.0)
        if not same.all():
            s = int(np.flatnonzero(~same)[0])
            raise ReferenceError(
                f"{where}: next_day.{name}[{s}]: {float(now[s])!r} now, {float(old[s])!r} frozen; {redo}"
            )
    dates = [str(d) for d in dates]
    if len(dates) != len(frozen.dates):
        raise ReferenceError(f"{where}: next_day.dates: {len(dates)} now, {len(frozen.dates)} frozen; {redo}")
    for s, (a, b) in enumerate(zip(dates, frozen.dates)):
        if a != b:
            raise ReferenceError(f"{where}: next_day.dates[{s}]: {a!r} now, {b!r} frozen; {redo}")


def regret_bp(reference: Reference, strategy: str, h, l, close_at_eod) -> np.ndarray:
    """`(frozen supremum - float64 score at (h, l) under close_at_eod) * 1e4`, basis points, per simulation `[S]`.

    The units of `marketsim_opt.quality.regret_bp`: profits are fractions of the previous close, 1 bp = 1e-4.
    """
    return (reference.supremum(strategy) - scorer.score(reference, strategy, h, l, close_at_eod)) * 1e4


def next_day_loss_bp(reference: Reference, strategy: str, h, l, close_at_eod) -> np.ndarray:
    """`-scorer.next_day_profit(...) * 1e4`: each simulation's loss on its frozen test day at `(h, l)` under
    `close_at_eod`, in basis points of the previous close, `[S]` (lower is better; negative is a profit).

    ValueError when the reference has no next day (profile).
    """
    return -scorer.next_day_profit(reference, strategy, h, l, close_at_eod) * 1e4
