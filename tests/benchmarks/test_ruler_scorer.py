"""benchmarks/ruler/scorer.py: the suite's own float64 scorer, checked against docs/kernel.md's cases and the
package."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.ruler import references, scorer
from marketsim_opt.data import Problem
from marketsim_opt.quality import score_f64
from marketsim_opt.strategies import always_on_objective, entry_exit_objective

RULER = Path(scorer.__file__).parent
ASV_PREFIXES = ("time_", "track_", "peakmem_", "mem_", "timeraw_")


def frozen_problem(ref: references.Reference) -> Problem:
    """The package's Problem on the frozen data (float32: the frozen values are float32 values, so exactly)."""
    fields = {f: torch.tensor(getattr(ref, f), dtype=torch.float32) for f in references.FIELDS}
    if ref.n_sims == 1:
        fields = {f: t[0] for f, t in fields.items()}
    return Problem(**fields, is_crypto=ref.is_crypto, trading_fee=ref.trading_fee)


@pytest.mark.parametrize(
    "close_at_eod, expected",
    [(False, 0.13), (True, 0.07)],
)
def test_spec_long_case(close_at_eod, expected):
    """docs/kernel.md's hand-checkable long: intraday 0.13 - f, close_at_eod 0.07 - f."""
    got = scorer.profit_per_day(0.02, 0.09, 0.08, -0.06, -0.05, 1.0, close_at_eod=close_at_eod, fee=0.001)
    assert got == pytest.approx(expected - 0.001, abs=1e-15)


def test_spec_short_cases():
    """A short whose entry is not reached earns exactly 0 (no fee); at the close with c == Hq exactly -f."""
    assert scorer.profit_per_day(0.0, 0.05, 0.05, -0.02, -0.01, -1.0, close_at_eod=False, fee=0.001) == 0.0
    got = scorer.profit_per_day(0.03, 0.05, 0.03, -0.02, -0.01, -1.0, close_at_eod=True, fee=0.001)
    assert got == pytest.approx(-0.001, abs=1e-18)


def test_profit_per_day_broadcasts():
    """Scalars against `[S, N]` arrays give `[S, N]` float64."""
    out = scorer.profit_per_day(np.zeros((3, 4)), 0.01, 0.005, -0.01, -0.005, 1.0, close_at_eod=False, fee=0.0)
    assert out.shape == (3, 4) and out.dtype == np.float64


def test_entry_exit_positions_follow_the_spec():
    hp = np.array([0.02, 0.01, -0.01, 0.01, 0.01])
    lp = np.array([-0.01, -0.02, -0.005, 0.01, -0.01])
    # |Hp| > |Lp| -> +1; else -1; Hp <= Lp -> 0 (index 2: Hp < Lp, index 3: equal); |Hp| == |Lp| -> -1
    np.testing.assert_array_equal(scorer.entry_exit_positions(hp, lp, is_crypto=False), [1.0, -1.0, 0.0, 0.0, -1.0])
    np.testing.assert_array_equal(scorer.entry_exit_positions(hp, lp, is_crypto=True), [1.0, 0.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("is_crypto", [False, True])
def test_legs(is_crypto):
    hp, lp = np.full((2, 3), 0.01), np.full((2, 3), -0.02)
    (ee,) = scorer.legs("entry_exit", hp, lp, is_crypto=is_crypto)
    np.testing.assert_array_equal(ee, np.zeros((2, 3)) if is_crypto else -np.ones((2, 3)))
    ao = scorer.legs("always_on", hp, lp, is_crypto=is_crypto)
    assert len(ao) == (1 if is_crypto else 2)
    np.testing.assert_array_equal(ao[0], np.ones((2, 3)))
    if not is_crypto:
        np.testing.assert_array_equal(ao[1], -np.ones((2, 3)))


def test_positions_agree_with_the_package():
    """The scorer's legs equal the package's on both workloads' frozen data (read, not imported, by the scorer)."""
    from marketsim_opt.strategies import always_on_legs, entry_exit_positions

    for workload in references.WORKLOADS:
        ref = references.load(workload)
        for crypto in (False, True):
            hp, lp = torch.tensor(ref.high_pred), torch.tensor(ref.low_pred)
            ours = scorer.entry_exit_positions(ref.high_pred, ref.low_pred, is_crypto=crypto)
            np.testing.assert_array_equal(ours, entry_exit_positions(hp, lp, is_crypto=crypto).numpy())
            theirs = [leg.numpy() for leg in always_on_legs(hp, is_crypto=crypto)]
            ours_ao = scorer.legs("always_on", ref.high_pred, ref.low_pred, is_crypto=crypto)
            assert len(ours_ao) == len(theirs)
            for a, b in zip(ours_ao, theirs):
                np.testing.assert_array_equal(a, b)


def _points(ref: references.Reference, rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n` random `[S]` (h, l) in the box, and `n` on breakpoints `H - Hp`, `L - Lp` of random days."""
    (h_lo, h_hi), (l_lo, l_hi) = ref.bounds
    s, days = ref.close.shape
    out = [(rng.uniform(h_lo, h_hi, s), rng.uniform(l_lo, l_hi, s)) for _ in range(n)]
    for _ in range(n):
        rows, cols = np.arange(s), rng.integers(0, days, s)
        out.append(((ref.high - ref.high_pred)[rows, cols], (ref.low - ref.low_pred)[rows, cols]))
    return out


@pytest.mark.parametrize("workload", references.WORKLOADS)
@pytest.mark.parametrize("strategy", references.STRATEGIES)
def test_score_agrees_with_the_package_score_f64(workload, strategy):
    """Two independent float64 implementations agree within 1e-12 at random points and breakpoints, both policies
    (and a per-simulation mix of them)."""
    ref = references.load(workload)
    problem = frozen_problem(ref)
    objective = (entry_exit_objective if strategy == "entry_exit" else always_on_objective)(problem)
    rng = np.random.default_rng(2024)
    mixed = rng.integers(0, 2, ref.n_sims).astype(bool)
    for h, l in _points(ref, rng, 8):
        for policy in (False, True, mixed):
            ours = scorer.score(ref, strategy, h, l, policy)
            theirs = score_f64(objective, h, l, np.broadcast_to(policy, h.shape))
            assert ours.shape == (ref.n_sims,) and ours.dtype == np.float64
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_score_accepts_scalars_and_bool_arrays():
    ref = references.load("backtest")
    per_sim = scorer.score(ref, "entry_exit", np.full(ref.n_sims, 0.01), np.full(ref.n_sims, -0.01), np.array(False))
    np.testing.assert_array_equal(scorer.score(ref, "entry_exit", 0.01, -0.01, False), per_sim)
    np.testing.assert_array_equal(
        scorer.score(ref, "entry_exit", 0.01, -0.01, np.zeros(ref.n_sims, dtype=bool)), per_sim
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(strategy="maxdiff"), "strategy"),
        (dict(h=np.zeros(3)), "h"),
        (dict(l=np.zeros((70, 1))), "l"),
        (dict(close_at_eod=np.zeros(69, dtype=bool)), "close_at_eod"),
        (dict(close_at_eod=0), "close_at_eod"),
        (dict(h="0.01"), "h"),
        (dict(h=True), "h"),
        (dict(l=float("nan")), "h, l"),
    ],
)
def test_score_bad_arguments_name_themselves(kwargs, name):
    ref = references.load("backtest")
    args = dict(strategy="always_on", h=0.0, l=0.0, close_at_eod=True) | kwargs
    with pytest.raises(ValueError, match=f"^{name}: "):
        scorer.score(ref, **args)


# --- the next day ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def walk_forward_rows():
    """The package's walk-forward on the bundled series, 70 simulations, two budgetless methods (about 2 s)."""
    from marketsim_opt import oos

    return oos.walk_forward(oos.bundled_series(), sims=70, methods=("zero", "exact"), progress=False)


def test_next_day_profit_equals_the_package_walk_forward(walk_forward_rows):
    """Per simulation, the ruler's next-day profit on the frozen test days at each row's (h, l, policy) equals
    `oos.walk_forward`'s `next_day_profit` within 1e-9, and the frozen test days are the rows' (same order)."""
    ref = references.load("backtest")
    day = ref.next_day
    groups: dict[tuple[str, str], list] = {}
    for row in walk_forward_rows:
        groups.setdefault((row.strategy, row.method), []).append(row)
    assert sorted(groups) == sorted((s, m) for s in scorer.STRATEGIES for m in ("zero", "exact"))
    nonzero = 0
    for (strategy, _), rows in groups.items():
        assert [r.sim for r in rows] == list(range(ref.n_sims))
        h, l = np.array([r.h for r in rows]), np.array([r.l for r in rows])
        eod = np.array([r.close_at_eod for r in rows])
        ours = scorer.next_day_profit(ref, strategy, h, l, eod)
        theirs = np.array([r.next_day_profit for r in rows])
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
        nonzero += int(np.count_nonzero(np.abs(theirs) > 1e-6))
        for name in references.NEXT_DAY_FIELDS:
            np.testing.assert_allclose(
                getattr(day, name), [getattr(r, f"test_{name}") for r in rows], rtol=1e-12, atol=0.0
            )
        assert list(day.dates) == [r.test_date for r in rows]
        assert all(r.fit_last_date < r.test_date for r in rows)
        assert all(r.fee == ref.trading_fee for r in rows)
    assert nonzero > 100  # most test days trade: the agreement above is not 0 == 0


def test_next_day_profit_is_profit_per_day_of_the_test_days_legs():
    """By hand for two simulations: entry/exit's one leg from the test day's forecast, always-on's two legs."""
    ref = references.load("backtest")
    d = ref.next_day
    h, l = np.full(ref.n_sims, 0.001), np.full(ref.n_sims, -0.002)
    eod = np.zeros(ref.n_sims, dtype=bool)
    eod[1] = True
    for s in (0, 1):
        kw = dict(close_at_eod=bool(eod[s]), fee=ref.trading_fee)
        day = (d.close[s], d.high[s], d.high_pred[s] + h[s], d.low[s], d.low_pred[s] + l[s])
        c, H, Hp, L, Lp = day
        position = scorer.entry_exit_positions(d.high_pred[s], d.low_pred[s], is_crypto=False)
        expected = scorer.profit_per_day(c, H, Hp, L, Lp, position, **kw)
        assert scorer.next_day_profit(ref, "entry_exit", h, l, eod)[s] == pytest.approx(float(expected), abs=1e-15)
        both = scorer.profit_per_day(c, H, Hp, L, Lp, 1.0, **kw) + scorer.profit_per_day(c, H, Hp, L, Lp, -1.0, **kw)
        assert scorer.next_day_profit(ref, "always_on", h, l, eod)[s] == pytest.approx(float(both), abs=1e-15)
    scalar = scorer.next_day_profit(ref, "always_on", 0.001, -0.002, False)
    np.testing.assert_array_equal(scalar, scorer.next_day_profit(ref, "always_on", h, l, np.zeros(70, dtype=bool)))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(strategy="maxdiff"), "strategy"),
        (dict(h=np.zeros(3)), "h"),
        (dict(close_at_eod=np.zeros(69, dtype=bool)), "close_at_eod"),
        (dict(l=float("inf")), "h, l"),
    ],
)
def test_next_day_profit_bad_arguments_name_themselves(kwargs, name):
    args = dict(strategy="always_on", h=0.0, l=0.0, close_at_eod=True) | kwargs
    with pytest.raises(ValueError, match=f"^{name}: "):
        scorer.next_day_profit(references.load("backtest"), **args)


def test_profile_has_no_next_day():
    with pytest.raises(ValueError, match="^next_day: the profile reference has no test days"):
        scorer.next_day_profit(references.load("profile"), "entry_exit", 0.0, 0.0, False)


def _module_level_imports(tree: ast.Module) -> list[str]:
    """Modules imported by statements that run at import time (not inside a def)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _docstrings(tree: ast.Module) -> set[int]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]
    return {
        id(n.body[0].value)
        for n in nodes
        if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
    }


@pytest.mark.parametrize("path", sorted(RULER.glob("*.py")), ids=lambda p: p.name)
def test_no_module_level_import_of_the_package(path):
    imports = _module_level_imports(ast.parse(path.read_text()))
    assert not [m for m in imports if m.split(".")[0] == "marketsim_opt"], f"{path.name} imports {imports}"


@pytest.mark.parametrize("name", ["scorer.py", "references.py"])
def test_scorer_and_references_never_mention_the_package(name):
    """No import, name, attribute or string (docstrings aside) of `marketsim_opt` anywhere in the file."""
    tree = ast.parse((RULER / name).read_text())
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if "marketsim_opt" in a.name]
        elif isinstance(node, ast.ImportFrom) and "marketsim_opt" in (node.module or ""):
            found.append(node.module)
        elif isinstance(node, ast.Name) and "marketsim_opt" in node.id:
            found.append(node.id)
        elif isinstance(node, ast.Attribute) and "marketsim_opt" in node.attr:
            found.append(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if "marketsim_opt" in node.value:
                found.append(node.value)
    assert found == []


@pytest.mark.parametrize("path", sorted(RULER.glob("*.py")), ids=lambda p: p.name)
def test_no_names_asv_would_take_for_benchmarks(path):
    module = importlib.import_module(f"benchmarks.ruler.{path.stem}" if path.stem != "__init__" else "benchmarks.ruler")
    assert not [n for n in vars(module) if n.startswith(ASV_PREFIXES)]


def test_tests_reference_is_the_ruler():
    from tests.reference import reference_profit

    assert reference_profit is scorer.profit_per_day
