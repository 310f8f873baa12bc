"""The method registry: one entry per method, read by optimize, compare, the CLI and oos; the suite covers it."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from optimizer_helpers import batch_of, solve

from benchmarks import optimizers as suite
from marketsim_opt import METHODS
from marketsim_opt.cli import main
from marketsim_opt.comparison import trials_for
from marketsim_opt.errors import MissingExtraError
from marketsim_opt.instrument import to_device
from marketsim_opt.optimizers import registry
from marketsim_opt.optimizers.result import Solution


def _centre_solve(objective, bounds, budget, seed) -> Solution:
    """A toy method: the box's centre for every simulation, scored once (budget unused)."""
    problem = objective.problem
    (h_lo, h_hi), (l_lo, l_hi) = bounds
    x = to_device([[(h_lo + h_hi) / 2, (l_lo + l_hi) / 2]], dtype=problem.dtype, device=problem.device)
    x = x.expand(problem.n_sims, 2)
    h, l = x[:, 0].contiguous(), x[:, 1].contiguous()
    profit = objective.score(h[:, None], l[:, None])[:, 0]
    return Solution(h, l, profit, np.full(problem.n_sims, 1))


TOY = registry.Method("toy:centre", _centre_solve, batched=True, budgeted=False, about="the box's centre")


def test_a_registered_method_runs_everywhere_without_other_edits(capsys):
    """One `register` call: the method is listed, optimizes through the public API, is in compare's default
    trials (once: it takes no budget) and runs from the CLI; afterwards it is gone."""
    with registry.registered(TOY):
        assert "toy:centre" in registry.names() and "toy:centre" in registry.names(backtest=True)
        batch, _ = batch_of(10, range(3))
        res = solve(batch, "entry_exit", method="toy:centre", close_at_eod=None)
        assert res.h.tolist() == [0.0] * 3 and res.l.tolist() == [0.0] * 3 and res.budget is None
        assert res.nfev.tolist() == [2] * 3  # one candidate per simulation and policy
        toy_trials = [t for t in trials_for("profile") if t.method == "toy:centre"]
        assert [(t.strategy, t.budget) for t in toy_trials] == [("entry_exit", None), ("always_on", None)]
        assert main(["compare", "--methods", "toy:centre", "--no-progress"]) == 0
        out = capsys.readouterr().out
        assert re.search(r"^\| profile +\| entry_exit +\| toy:centre +\| - +\|", out, re.MULTILINE)
    assert "toy:centre" not in registry.names()
    with pytest.raises(ValueError, match="method: unknown method 'toy:centre'"):
        registry.get("toy:centre")


def test_the_suite_lists_every_registered_method():
    """asv maps a parameter by its index in the list the benchmark module builds, in every commit's environment,
    so the suite keeps its own list rather than reading the package's; it must cover every built-in method
    (budgeted ones at 100 and the default, the others without a budget)."""
    for name in registry.names(available=False):
        labels = [f"{name}@100", f"{name}@default"] if registry.takes_budget(name) else [name]
        for label in labels:
            assert label in suite.METHODS, f"{label}: add it to benchmarks/optimizers.py METHODS"


def test_register_refuses_taken_and_malformed_names():
    with pytest.raises(ValueError, match="'direct' is already registered"):
        registry.register(registry.Method("direct", _centre_solve, batched=True))
    for bad in ("", "a@b", "a,b", " x"):
        with pytest.raises(ValueError, match="not a valid method name"):
            registry.register(registry.Method(bad, _centre_solve, batched=True))
    with pytest.raises(ValueError, match="falls under the 'nevergrad' family"):
        registry.register(registry.Method("nevergrad:Mine", _centre_solve, batched=True))
    with pytest.raises(ValueError, match="expected a registry.Method"):
        registry.register("direct")


def test_replacing_restores_the_original():
    original = registry.get("grid")
    with registry.registered(registry.Method("grid", _centre_solve, batched=True), replace=True):
        assert registry.get("grid").solve is _centre_solve
    assert registry.get("grid") is original


def test_lookups_and_errors():
    assert registry.get("direct").batched is False and registry.get("grid").batched is True
    assert registry.takes_budget("grid") and not registry.takes_budget("exact")
    assert registry.get("nevergrad:RandomSearch").name == "nevergrad:RandomSearch"  # any nevergrad optimizer
    with pytest.raises(ValueError, match="method: unknown nevergrad optimizer 'Nope'"):
        registry.get("nevergrad:Nope")
    with pytest.raises(ValueError, match=r"method: unknown method 'simplex'; expected one of direct, grid"):
        registry.get("simplex")
    with pytest.raises(ValueError, match="method: expected a string, got int"):
        registry.get(3)


def test_a_missing_extra_names_it():
    needy = registry.Method("toy:needy", _centre_solve, batched=True, requires="no_such_module_x", extra="x")
    with registry.registered(needy):
        with pytest.raises(MissingExtraError, match=r"toy:needy needs no_such_module_x: .*-e '\.\[x\]'"):
            registry.get("toy:needy")
        assert "toy:needy" not in registry.names() and "toy:needy" in registry.names(available=False)


def test_backtest_flags_and_the_exported_snapshot():
    slow = set(registry.names(backtest=False))
    assert "nevergrad:NGOpt" in slow and slow <= {"nevergrad:NGOpt", "optuna:TPE"}
    assert METHODS == registry.names()


def test_listing_methods_imports_no_optimizer_library():
    code = (
        "import sys, marketsim_opt; from marketsim_opt.optimizers import registry; registry.names(); "
        "registry.takes_budget('nevergrad:CMA'); print(sorted(m for m in ('nevergrad', 'optuna', 'scipy.optimize') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
