"""marketsim-opt: the strategy optimizer of a market simulator, and the harness that measures it.

The public API: the profit kernel (`profit_per_day`), the validated data
container (`Problem`, always `[S, N]`), `optimize(problem, strategy, ...)` and
the original simulator's signatures over it (`optimize_entry_exit`,
`optimize_always_on`), their result type (`[S]` fields, `SimulationResult`
for one simulation), host-sync counting (`count_syncs`) and profit quality
(`regret_bp`).
"""

from .data import DataError, Problem
from .instrument import count_syncs
from .kernel import profit_per_day, profit_per_day_f64
from .optimizers import METHODS, OptimizeResult, SimulationResult, optimize, optimize_always_on, optimize_entry_exit
from .quality import regret_bp

__all__ = [
    "DataError",
    "METHODS",
    "OptimizeResult",
    "Problem",
    "SimulationResult",
    "count_syncs",
    "optimize",
    "optimize_always_on",
    "optimize_entry_exit",
    "profit_per_day",
    "profit_per_day_f64",
    "regret_bp",
]
__version__ = "0.1.0"
