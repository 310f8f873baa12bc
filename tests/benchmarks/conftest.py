"""The suite's getters tune the process they run in (`common.tune_process`: one torch thread, malloc pinned).

Tests that call them in pytest's own process get torch's thread count back afterwards, so the rest of the
run keeps its threads.  The malloc pin stays: it only changes when glibc hands freed memory back.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
