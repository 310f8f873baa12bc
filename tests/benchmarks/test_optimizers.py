"""benchmarks/optimizers.py: a method the commit at hand does not know is skipped, never a failing setup_cache."""

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
    """At this commit both methods run and their metrics come from the cache."""
    bench = optimizers.OptimizerMetrics()
    cache = bench.setup_cache()
    assert cache["unknown"] == {}
    bench.setup(cache, "profile", "entry_exit", "gradient@100")
    assert bench.track_evaluations(cache, "profile", "entry_exit", "gradient@100") == 99
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
