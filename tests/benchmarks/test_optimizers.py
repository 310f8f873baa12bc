"""benchmarks/optimizers.py: counts and regret come from the harness's ruler; a method the commit at hand does not
know is skipped, never a failing setup_cache."""

from __future__ import annotations

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
