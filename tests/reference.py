"""The kernel of docs/kernel.md, in plain float64 numpy, written independently of the package, for the tests.

It lives in `benchmarks/ruler/scorer.py` (the suite's ruler, which never imports `marketsim_opt`); this name is
kept for the tests that import it.
"""

from benchmarks.ruler.scorer import profit_per_day as reference_profit  # noqa: F401 - the re-export
