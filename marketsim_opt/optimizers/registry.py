"""The one registry of optimization methods: each name's solver and what the faces need to know about it.

A `Method` holds its solver (`solve(objective, bounds, budget, seed) -> Solution`, one policy), whether it is
batched or sequential (one host read-back per candidate), whether it takes a budget, the optional extra it
needs, and whether it runs on a backtest by default.  A `Family` resolves open-ended names after a prefix
(`nevergrad:<any nevergrad optimizer>`, `optuna:<sampler>`) and lists the members the faces run by default.

`optimize`, the CLI, `compare`, the report and `oos` all ask this module (`get`, `names`, `takes_budget`), so
adding an optimizer means one module with its `solve` and one `register(Method(...))` call (README, "Adding an
optimizer").  The benchmark suite keeps its own list of `method@budget` parameters (benchmarks/optimizers.py):
asv maps a parameter by its index in the list the benchmark module builds at import, in every commit's
environment, so a list read from the package under test would shift between commits; a test checks that the
suite's list covers every method registered here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from ..errors import MissingExtraError
from . import direct, exact, gradient, grid, optuna_tpe, robust, zero
from . import nevergrad as ng_method
from .result import Solution

__all__ = [
    "Method",
    "Family",
    "Solver",
    "register",
    "register_family",
    "unregister",
    "registered",
    "get",
    "names",
    "takes_budget",
]

#: `solve(objective, bounds, budget, seed) -> Solution` for one policy (the objective carries it).
Solver = Callable[..., Solution]


@dataclass(frozen=True)
class Method:
    """One optimization method.

    `batched`: scores its candidates in batched kernel calls (False: one call and one host read-back per
    candidate, like DIRECT).  `budgeted`: takes a budget (False: `budget` is checked but unused).
    `backtest`: in the methods `compare` and the report run on a backtest by default (slow ones run only when
    named).  `requires`: a module that must be importable, from the optional `extra`.  `solve_policies`:
    optional, solves several policies at once (`(objective, bounds, policies) -> list[Solution]`).
    """

    name: str
    solve: Solver
    batched: bool
    budgeted: bool = True
    backtest: bool = True
    requires: str | None = None
    extra: str | None = None
    solve_policies: Callable[..., list[Solution]] | None = None
    about: str = ""

    @property
    def available(self) -> bool:
        """Whether its optional module (if any) can be imported here."""
        return self.requires is None or importlib.util.find_spec(self.requires) is not None


@dataclass(frozen=True)
class Family:
    """Methods named `<prefix>:<member>`.

    `check(member)` raises ValueError naming `method` for an unknown member (it may import the family's
    library); `make(member)` builds the Method of a valid one; `listed` are the members `names()` shows and the
    faces run by default (listing them imports nothing).
    """

    prefix: str
    check: Callable[[str], None]
    make: Callable[[str], Method]
    listed: tuple[str, ...]


_methods: dict[str, Method] = {}
_families: dict[str, Family] = {}


def register(method: Method, *, replace: bool = False) -> Method:
    """Add `method` under its name; ValueError when the name is taken (unless `replace`) or malformed."""
    if not isinstance(method, Method):
        raise ValueError(f"method: expected a registry.Method, got {type(method).__name__}")
    if not method.name or "@" in method.name or "," in method.name or method.name != method.name.strip():
        raise ValueError(f"method: {method.name!r} is not a valid method name (no '@', ',' or surrounding space)")
    if method.name.split(":", 1)[0] in _families and ":" in method.name:
        raise ValueError(f"method: {method.name!r} falls under the {method.name.split(':', 1)[0]!r} family")
    if method.name in _methods and not replace:
        raise ValueError(f"method: {method.name!r} is already registered")
    _methods[method.name] = method
    return method


def register_family(family: Family) -> Family:
    """Add a family of methods named `<prefix>:<member>`; ValueError when the prefix is taken."""
    if family.prefix in _families:
        raise ValueError(f"method: the family {family.prefix!r} is already registered")
    _families[family.prefix] = family
    return family


def unregister(name: str) -> None:
    """Remove a method registered with `register` (KeyError when there is none)."""
    del _methods[name]


@contextmanager
def registered(method: Method, *, replace: bool = False) -> Iterator[Method]:
    """`register(method, replace=replace)` for the duration of a `with` block (tests, experiments); a method it
    replaced is registered again afterwards."""
    previous = _methods.get(method.name)
    register(method, replace=replace)
    try:
        yield method
    finally:
        if previous is None:
            unregister(method.name)
        else:
            _methods[method.name] = previous


def _lookup(name: str) -> Method:
    if name in _methods:
        return _methods[name]
    prefix, sep, member = name.partition(":")
    if sep and prefix in _families:
        family = _families[prefix]
        if member not in family.listed:  # the listed ones are valid: checking them would import the library
            family.check(member)
        return family.make(member)
    raise ValueError(f"method: unknown method {name!r}; expected one of {', '.join(names())}")


def get(name: object) -> Method:
    """The Method called `name`.

    ValueError naming `method` for an unknown or malformed name; `errors.MissingExtraError` naming the extra when
    the method
    needs one that is not installed.
    """
    if not isinstance(name, str):
        raise ValueError(f"method: expected a string, got {type(name).__name__}")
    method = _lookup(name)
    if not method.available:
        install = f"pip install -c constraints.txt -e '.[{method.extra}]'"
        raise MissingExtraError(f"method {name} needs {method.requires}: {install}")
    return method


def names(*, backtest: bool | None = None, available: bool = True) -> tuple[str, ...]:
    """Registered methods and listed family members, in registration order.

    `backtest=True` keeps those run on a backtest by default (False: the others); `available=False` includes
    methods whose optional extra is missing.
    """
    listed = list(_methods.values()) + [f.make(m) for f in _families.values() for m in f.listed]
    out = []
    for method in listed:
        if (available and not method.available) or (backtest is not None and method.backtest != backtest):
            continue
        out.append(method.name)
    return tuple(out)


def takes_budget(name: str) -> bool:
    """Whether method `name` takes a budget (ValueError for an unknown name)."""
    return _lookup(name).budgeted


def _nevergrad(member: str) -> Method:
    return Method(
        f"nevergrad:{member}",
        partial(ng_method.solve, name=member),
        batched=True,
        backtest=member != "NGOpt",  # about 1.7 s per simulation and policy at budget 100
        about="a nevergrad optimizer per simulation, asked in rounds scored by one batched call",
    )


def _check_optuna(member: str) -> None:
    if member not in optuna_tpe.SAMPLERS:
        optuna_tpe.check_name(member)  # ValueError naming the method, with a hint (availability: `get`)


def _optuna(member: str) -> Method:
    return Method(
        f"optuna:{member}",
        partial(optuna_tpe.solve, name=member),
        batched=True,
        backtest=False,  # about 0.3 s per simulation and policy at budget 100
        requires="optuna",
        extra="optuna",
        about="an optuna study per simulation, asked in rounds scored by one batched call",
    )


def _builtins() -> None:
    for method in (
        Method("direct", direct.solve, batched=False, about="scipy's DIRECT, one read-back per candidate"),
        Method("grid", grid.solve, batched=True, about="a zooming G x G grid, one batched call per stage"),
        Method(
            "exact",
            exact.solve,
            batched=True,
            budgeted=False,
            solve_policies=exact.solve_policies,
            about="the exact supremum by a sorted sweep, and a point within 1e-9 of it",
        ),
        Method("gradient", gradient.solve, batched=True, about="multi-start Adam on the smoothed kernel"),
        Method("zero", zero.solve, batched=True, budgeted=False, about="the offsets left at 0"),
        Method(
            "exact:centre",
            robust.solve_centre,
            batched=True,
            budgeted=False,
            about="the centre of the exact optimum's cell",
        ),
        *(
            Method(
                f"robust:{criterion}",
                partial(robust.solve_box, criterion=criterion),
                batched=True,
                budgeted=False,
                about=f"the lattice point with the best {criterion} profit over a +-{robust.DELTA:g} box",
            )
            for criterion in robust.CRITERIA
        ),
    ):
        register(method)
    register_family(Family("nevergrad", ng_method.check_name, _nevergrad, ng_method.OPTIMIZERS))
    register_family(Family("optuna", _check_optuna, _optuna, optuna_tpe.SAMPLERS))


_builtins()
