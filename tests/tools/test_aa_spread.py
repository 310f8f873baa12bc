"""tools/aa_spread.py's tables (the measurement itself runs asv: see docs/benchmarking.md)."""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

import pytest

pytest.importorskip("asv", reason="aa_spread loads the gate, which needs asv (the bench extra)")

TOOL = Path(__file__).resolve().parents[2] / "tools" / "aa_spread.py"
_spec = importlib.util.spec_from_file_location("tools_aa_spread", TOOL)
aa_spread = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = aa_spread
_spec.loader.exec_module(aa_spread)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def test_spread_table_is_markdown_sorted_by_benchmark_with_the_numbers_right_aligned():
    ratios = {"b.track": [1.0, 1.002, 0.999], "a.track": [1.0077]}
    head, rule, *rows = aa_spread.spread_table(ratios)
    assert _cells(head)[0] == "benchmark" and len(rows) == 2
    assert [c.endswith(":") for c in _cells(rule)] == [False] + [True] * 5
    assert _cells(rows[0])[:2] == ["`a.track`", "1"] and _cells(rows[1])[0] == "`b.track`"
    spread = sorted(abs(r - 1) for r in ratios["b.track"])
    assert _cells(rows[1])[2:] == [
        f"{min(ratios['b.track']):.6f}",
        f"{max(ratios['b.track']):.6f}",
        f"{statistics.median(spread):.2e}",
        f"{spread[-1]:.2e}",
    ]
    assert len({len(line) for line in (head, rule, *rows)}) == 1  # the columns line up
