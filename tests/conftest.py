"""Shared fixtures: the real sample CSV files, which live outside the repository.

The files are read from `../shared/data` next to the repository root (or from
`$MARKETSIM_DATA_DIR`) and are never copied into it; tests that need them skip
when the folder is absent.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property-based tests: no per-example deadline (2 shared cores make timings noisy) and a fixed example
# sequence (derandomize), so a run on CI draws the same cases as a run here and a failure reproduces.
settings.register_profile(
    "marketsim", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("marketsim")

# torch.compile's C++ cache (precompiled headers included) is not keyed by ATEN_CPU_CAPABILITY: a header built by a
# native (AVX2/AVX-512) run breaks a later compile under `default` ("'at::vec' has not been declared"), and
# compiled.py then falls back to eager with a RuntimeWarning.  Each capability gets its own cache folder, so
# `ATEN_CPU_CAPABILITY=default python -m pytest` after a native run tests what it should.
os.environ.setdefault(
    "TORCHINDUCTOR_CACHE_DIR",
    os.path.join(tempfile.gettempdir(), f"marketsim-inductor-{os.environ.get('ATEN_CPU_CAPABILITY') or 'native'}"),
)

#: `<repo root>/../shared/data`, or the folder named by MARKETSIM_DATA_DIR (for a clone elsewhere).
DATA_DIR = Path(os.environ.get("MARKETSIM_DATA_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "data")

#: The sample files of `../shared/data`; SUIUSDT is the crypto one (with a `timestamp` column).
REAL_FILES = ("HEI.csv", "IBKR.csv", "NIO.csv", "SUIUSDT.csv")
CRYPTO_FILES = frozenset({"SUIUSDT.csv"})


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data folder, or a skip when this checkout has no `../shared/data` beside it."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data folder {DATA_DIR} is absent (expected at <repo root>/../shared/data)")
    return DATA_DIR


@pytest.fixture(params=REAL_FILES)
def real_csv(request: pytest.FixtureRequest, data_dir: Path) -> Path:
    """Each real sample CSV in turn (skipped when that file is missing)."""
    path = data_dir / request.param
    if not path.is_file():
        pytest.skip(f"real data file {path} is absent")
    return path


def is_crypto_file(path: Path) -> bool:
    """Whether a sample file is the crypto series (crypto fee, no shorts)."""
    return path.name in CRYPTO_FILES


@pytest.fixture
def crypto_of():
    """`is_crypto_file` as a fixture, so test modules need not import conftest."""
    return is_crypto_file
