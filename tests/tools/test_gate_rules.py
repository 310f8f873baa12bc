"""The gate's judging rules on synthetic values and samples (fast; the planted commits are in test_gate.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("asv", reason="the timing rule uses asv's statistics (the bench extra)")

GATE = Path(__file__).resolve().parents[2] / "tools" / "gate.py"
_spec = importlib.util.spec_from_file_location("tools_gate_rules", GATE)
gate = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gate
_spec.loader.exec_module(gate)

WIDE_CI = {"ci_99_a": 0.0, "ci_99_b": 1e9}  # only the samples decide
SAMPLES = [1.0 + 0.005 * i for i in range(40)]  # 1.0 .. 1.195 s


def timing(base: list[float], head: list[float]) -> str:
    med = sorted(base)[len(base) // 2], sorted(head)[len(head) // 2]
    return gate.judge("kernel.X.time_x", "timing", med[0], med[1], (WIDE_CI, base), (WIDE_CI, head))


@pytest.mark.parametrize(
    ("name", "base", "head", "verdict"),
    [
        ("track_host_syncs", 523, 524, "regression"),
        ("track_host_syncs", 523, 3, "improvement"),
        ("track_evaluations", 500, 500, "unchanged"),
        ("track_regret_bp", 0.67, 0.67 + 5e-7, "unchanged"),
        ("track_regret_bp", 0.67, 0.67 + 2e-6, "regression"),
    ],
)
def test_deterministic_metrics_have_no_tolerance(name, base, head, verdict):
    assert gate.judge(f"optimizers.OptimizerMetrics.{name}", "deterministic", base, head) == verdict


def test_memory_threshold():
    assert gate.judge("m.track_region_peak_bytes", "memory", 100, 110) == "unchanged"
    assert gate.judge("m.track_region_peak_bytes", "memory", 100, 111) == "regression"


def test_timing_2x_everywhere_is_a_regression_and_half_an_improvement():
    assert timing(SAMPLES, [2 * x for x in SAMPLES]) == "regression"
    assert timing(SAMPLES, [x / 2 for x in SAMPLES]) == "improvement"


def test_timing_same_distribution_is_unchanged():
    assert timing(SAMPLES, list(reversed(SAMPLES))) == "unchanged"


def test_timing_needs_both_ratios():
    """Slow stretches lift HEAD's median past the factor but not its fastest samples: not a regression."""
    head = [1.0] * 5 + [2.0 + 0.01 * i for i in range(35)]
    assert timing(SAMPLES, head) == "unchanged"
    # a lucky fast window lowers BASE's minimum only: not a regression either
    base = [0.4] + SAMPLES[1:]
    assert timing(base, [1.6 * x for x in SAMPLES][:1] + SAMPLES[1:]) == "unchanged"


def test_timing_without_samples_falls_back_to_medians():
    stats = {"ci_99_a": 1.0, "ci_99_b": 1.1}, {"ci_99_a": 2.0, "ci_99_b": 2.2}
    assert gate.judge("k.time_x", "timing", 1.05, 2.1, (stats[0], None), (stats[1], None)) == "regression"
