"""benchmarks/optimizers.py: counts and regret come from the harness's ruler; a method the commit at hand does not
know is skipped, never a failing setup_cache."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import optimizers
from marketsim_opt.optimizers import api


@pytest.fixture
def small_suite(monkeypatch):
    """The suite cut down to one workload, one strategy and two cheap methods."""
    monkeypatch.setattr(optimizers, "WORKLOADS", ("profile",))
    monkeypatch.setattr(optimizers, "STRATEGIES", ("entry_exit",))
    monkeypatch.setattr(optimizers, "METHODS", ("grid@100", "gradient@100"))


def test_new_methods_are_tracked():
    """gradient and optuna:TPE are in the suite at 100 and the default budget; gradient also on the backtest."""
    for label in ("gradient@100", "gradient@default", "optuna:TPE@100", "optuna:TPE@default"):
        assert label in optimizers.METHODS
    assert {"gradient@100", "gradient@default"} <= set(optimizers.BACKTEST_FAST)
    assert not any(m.startswith("optuna:") for m in optimizers.BACKTEST_FAST)


def test_setup_cache_runs_known_methods(small_suite):
    """At this commit both methods run and their metrics come from the cache (the harness counts gradient's 50
    forward passes of one candidate, not its backward passes: the package's nfev says 99)."""
    bench = optimizers.OptimizerMetrics()
    cache = bench.setup_cache()
    assert cache["unknown"] == {}
    bench.setup(cache, "profile", "entry_exit", "gradient@100")
    assert bench.track_evaluations(cache, "profile", "entry_exit", "gradient@100") == 50
    assert bench.track_host_syncs(cache, "profile", "entry_exit", "gradient@100") == 3
    assert bench.track_evaluations(cache, "profile", "entry_exit", "grid@100") == 100


def test_an_older_commit_skips_the_methods_it_lacks(small_suite, monkeypatch):
    """An older commit's check_method rejects `gradient`: setup_cache still returns, gradient's metrics skip
    with the reason, and the methods it knows are measured as usual."""
    real = api.check_method

    def older(method):
        if method == "gradient":
            raise ValueError(f"method: unknown method {method!r}; expected one of direct, grid, exact")
        return real(method)

    monkeypatch.setattr(api, "check_method", older)
    bench = optimizers.OptimizerMetrics()
    cache = bench.setup_cache()
    assert ("profile", "entry_exit", "gradient@100") not in cache
    assert list(cache["unknown"]) == ["gradient@100"]
    with pytest.raises(NotImplementedError, match="gradient is not available at this commit: method: unknown"):
        bench.setup(cache, "profile", "entry_exit", "gradient@100")
    bench.setup(cache, "profile", "entry_exit", "grid@100")
    assert bench.track_evaluations(cache, "profile", "entry_exit", "grid@100") == 100

    timed = optimizers.OptimizeTime()
    with pytest.raises(NotImplementedError, match="gradient is not available"):
        timed.setup("profile", "gradient@100")


def test_a_missing_extra_is_a_skip(small_suite, monkeypatch):
    """Without optuna installed, optuna:TPE's metrics skip (check_method's RuntimeError names the extra)."""
    import sys

    monkeypatch.setattr(optimizers, "METHODS", ("optuna:TPE@100",))
    monkeypatch.setitem(sys.modules, "optuna", None)
    bench = optimizers.OptimizerMetrics()
    cache = bench.setup_cache()
    assert list(cache["unknown"]) == ["optuna:TPE@100"]
    with pytest.raises(NotImplementedError, match=r"needs optuna: pip install -c constraints.txt -e '\.\[optuna\]'"):
        bench.setup(cache, "profile", "entry_exit", "optuna:TPE@100")


def test_the_package_cannot_move_its_own_figures(monkeypatch):
    """The package's exact optimum, evaluation records and list of counted read-backs are not consulted: with all
    three broken the figures are the same, and exact's regret against the frozen supremum stays ~0."""
    from marketsim_opt import instrument, quality, strategies

    monkeypatch.setattr(optimizers, "WORKLOADS", ("profile",))
    monkeypatch.setattr(optimizers, "METHODS", ("direct@100", "grid@100", "exact"))
    bench = optimizers.OptimizerMetrics()
    honest = bench.setup_cache()

    def no_optimum(result):
        raise AssertionError("the suite consulted the package's exact optimum")

    monkeypatch.setattr(quality, "exact_optimum", no_optimum)
    monkeypatch.setattr(strategies, "record_evaluations", lambda n: None)
    monkeypatch.setattr(instrument, "READBACK_METHODS", ())
    bent = bench.setup_cache()
    for key, figures in honest.items():
        if key == "unknown":
            continue
        for metric in ("evaluations", "syncs", "regret_bp"):
            assert bent[key][metric] == figures[metric], (key, metric)
    for strategy in optimizers.STRATEGIES:
        assert abs(honest["profile", strategy, "exact"]["regret_bp"]) < 1e-6
        direct = honest["profile", strategy, "direct@100"]
        assert direct["evaluations"] > 100  # DIRECT overshoots maxfun a little
        assert direct["syncs"] >= direct["evaluations"]  # one .item() per evaluation


def test_other_data_than_the_frozen_reference_fail_setup_cache(monkeypatch):
    """A commit whose profile workload builds other data fails setup_cache naming the field, rather than scoring
    its methods against a supremum that belongs to other data."""
    import dataclasses

    from benchmarks import common
    from benchmarks.ruler.references import ReferenceError

    real = common.workload("profile")
    p = real.problem
    shifted = dataclasses.replace(real, problem=dataclasses.replace(p, close=p.close * 1.01))
    monkeypatch.setattr(optimizers, "WORKLOADS", ("profile",))
    monkeypatch.setattr(optimizers, "METHODS", ("grid@100",))
    monkeypatch.setattr(common, "workload", lambda name, device="cpu": shifted)
    monkeypatch.setattr(common, "reference", common.reference.__wrapped__)
    with pytest.raises(ReferenceError, match="close"):
        optimizers.OptimizerMetrics().setup_cache()


# --- OutOfSample: the next-day loss on the backtest ---------------------------------------------------------


def test_budgetless_methods_are_tracked_on_the_backtest():
    """zero, exact:centre and the robust points are in the suite and its fast backtest tier, without a budget."""
    for label in ("zero", "exact:centre", "robust:worst", "robust:mean"):
        assert label in optimizers.METHODS and label in optimizers.BACKTEST_FAST
        assert "@" not in label
    assert set(optimizers.BACKTEST_FAST) <= set(optimizers.METHODS)
    assert optimizers.OutOfSample.params == (optimizers.STRATEGIES, optimizers.METHODS)
    assert optimizers.OutOfSample.track_next_day_loss_bp.unit == "bp"


@pytest.fixture
def oos_suite(monkeypatch):
    """OutOfSample cut down to three cheap methods, one of them unknown at this commit."""
    monkeypatch.setattr(optimizers, "METHODS", ("zero", "exact", "grid@100", "no:such"))


def _check_method_without_no_such(monkeypatch):
    real = api.check_method

    def check(method):
        if method == "no:such":
            raise ValueError(f"method: unknown method {method!r}")
        return real(method)

    monkeypatch.setattr(api, "check_method", check)


def test_out_of_sample_is_the_rulers_next_day_loss(oos_suite, monkeypatch):
    """Each figure is minus the mean of the ruler's next-day profit at the method's own answer, in bp; an unknown
    method is skipped with its reason; the figures match the package's walk-forward (same answers, same days)."""
    from benchmarks import common
    from benchmarks.ruler import references
    from marketsim_opt import oos, workloads

    _check_method_without_no_such(monkeypatch)
    bench = optimizers.OutOfSample()
    cache = bench.setup_cache()
    assert list(cache["unknown"]) == ["no:such"]
    with pytest.raises(NotImplementedError, match="no:such is not available at this commit"):
        bench.setup(cache, "entry_exit", "no:such")
    frozen = references.load("backtest")
    rows = oos.walk_forward(oos.bundled_series(), sims=70, methods=("zero", "exact"), budgets=(100,), progress=False)
    for strategy in optimizers.STRATEGIES:
        for method in ("zero", "exact", "grid@100"):
            bench.setup(cache, strategy, method)
            figure = bench.track_next_day_loss_bp(cache, strategy, method)
            name, budget = common.split_method(method)
            result = workloads.run(common.workload("backtest"), strategy, method=name, budget=budget)
            loss = references.next_day_loss_bp(frozen, strategy, result.h, result.l, result.close_at_eod)
            assert figure == pytest.approx(float(np.mean(loss)), abs=1e-12)
            if method in ("zero", "exact"):
                profits = [r.next_day_profit for r in rows if (r.strategy, r.method) == (strategy, method)]
                assert figure == pytest.approx(-1e4 * float(np.mean(profits)), abs=1e-7)
        zero = bench.track_next_day_loss_bp(cache, strategy, "zero")
        assert zero != pytest.approx(bench.track_next_day_loss_bp(cache, strategy, "exact"), abs=1e-6)


def test_out_of_sample_does_not_consult_the_package_walk_forward(oos_suite, monkeypatch):
    """The package's test days and profit are not used: broken, the figures are the same."""
    from marketsim_opt import oos, quality

    _check_method_without_no_such(monkeypatch)
    honest = optimizers.OutOfSample().setup_cache()

    def broken(*args, **kwargs):
        raise AssertionError("the suite consulted the package's walk-forward")

    monkeypatch.setattr(oos, "next_days", broken)
    monkeypatch.setattr(oos, "walk_forward", broken)
    monkeypatch.setattr(quality, "score_f64", broken)
    assert optimizers.OutOfSample().setup_cache() == honest


def test_out_of_sample_slow_tier_and_older_commits(monkeypatch):
    """A backtest method outside BACKTEST_FAST is skipped as the slow tier; a commit without workloads.run skips all."""
    from benchmarks import common

    monkeypatch.setattr(optimizers, "METHODS", ("zero", "nevergrad:NGOpt@100"))
    monkeypatch.setattr(optimizers.common, "SLOW", False)
    bench = optimizers.OutOfSample()
    cache = bench.setup_cache()
    assert ("always_on", "nevergrad:NGOpt@100") not in cache
    with pytest.raises(NotImplementedError, match="MARKETSIM_BENCH_SLOW=1"):
        bench.setup(cache, "always_on", "nevergrad:NGOpt@100")

    def missing(module, name):
        raise NotImplementedError(f"marketsim_opt.{module}.{name} does not exist at this commit")

    monkeypatch.setattr(common, "api", missing)
    cache = bench.setup_cache()
    with pytest.raises(NotImplementedError, match="workloads.run does not exist"):
        bench.setup(cache, "entry_exit", "zero")


@pytest.mark.parametrize("raised", ["MissingExtraError", "RuntimeError"])
def test_a_method_whose_extra_is_missing_skips(small_suite, monkeypatch, raised):
    """Without optuna (as in the gate's asv environments) optuna:TPE skips with the reason and the rest is
    measured: whether the commit says so with MissingExtraError (an ImportError, since issue 18) or, as older
    commits did, a RuntimeError."""
    from marketsim_opt.errors import MissingExtraError

    real = api.check_method
    error = {"MissingExtraError": MissingExtraError, "RuntimeError": RuntimeError}[raised]

    def without_optuna(method):
        if method.startswith("optuna:"):
            raise error(f"method {method} needs optuna: pip install -c constraints.txt -e '.[optuna]'")
        return real(method)

    monkeypatch.setattr(api, "check_method", without_optuna)
    monkeypatch.setattr(optimizers, "METHODS", ("grid@100", "optuna:TPE@100"))
    bench = optimizers.OptimizerMetrics()
    cache = bench.setup_cache()
    assert list(cache["unknown"]) == ["optuna:TPE@100"]
    with pytest.raises(NotImplementedError, match="optuna:TPE is not available at this commit: method optuna:TPE"):
        bench.setup(cache, "profile", "entry_exit", "optuna:TPE@100")
    assert bench.track_evaluations(cache, "profile", "entry_exit", "grid@100") == 100
