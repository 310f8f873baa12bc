"""The GPU check (tools/gpu_check.py) fails clearly where there is no GPU: it never passes by skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a GPU")


def test_gpu_check_exits_2_without_cuda():
    """No CUDA device: exit 2 and a message saying so, before any test or benchmark runs."""
    proc = subprocess.run(
        [sys.executable, "tools/gpu_check.py", "--machine", "should-not-exist"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no CUDA device" in proc.stderr and "nothing was checked" in proc.stderr
    assert "CUDA tests" not in proc.stdout  # it stopped at the first step
    assert not (REPO / "results" / "should-not-exist").exists()


def test_cuda_tests_fail_rather_than_skip_when_required():
    """`MARKETSIM_REQUIRE_CUDA=1` turns the CUDA tests' skips into failures on a machine without CUDA."""
    env = {**os.environ, "MARKETSIM_REQUIRE_CUDA": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "torch sees no CUDA device" in proc.stdout and " passed" not in proc.stdout
