"""A progress bar over the passes of a profiled or tracked run: each pass is both strategies of a workload."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack

from ..instrument import on_evaluations
from ..workloads import STRATEGIES

__all__ = ["pass_bar", "REFRESH_S"]

#: Seconds between refreshes of the evaluation count shown beside the bar.
REFRESH_S = 0.5


class pass_bar:  # noqa: N801 - used like a function returning a context manager
    """`with pass_bar(("warm-up", "timed"), enabled) as bar:`; `bar.step(strategy)` after each optimization.

    The bar (tqdm, on stderr) says which pass and strategy runs next, how many are left and, while one runs,
    how many candidates it has scored so far (so a long optimization shows progress too).  A disabled bar
    listens to nothing, so a run without progress measures exactly what it did before.
    """

    def __init__(self, passes: Sequence[str], enabled: bool = True) -> None:
        from tqdm.auto import tqdm

        self._labels = [f"{p} {s}" for p in passes for s in STRATEGIES]
        self._bar = tqdm(total=len(self._labels), unit="run", disable=not enabled, dynamic_ncols=True)
        self._enabled = enabled
        self._done = 0
        self.evaluations = 0  # scored in the optimization under way
        self._shown_at = time.monotonic()
        self._hooks = ExitStack()
        self._bar.set_description(self._labels[0])

    def _scored(self, n: int) -> None:
        self.evaluations += n
        now = time.monotonic()
        if now - self._shown_at >= REFRESH_S:
            self._shown_at = now
            self._bar.set_postfix_str(f"{self.evaluations:,} evaluations")

    def step(self, strategy: str) -> None:
        self._done += 1
        self.evaluations = 0
        self._bar.set_postfix_str("", refresh=False)
        self._bar.update(1)
        if self._done < len(self._labels):
            self._bar.set_description(self._labels[self._done])

    def __enter__(self) -> pass_bar:
        if self._enabled:
            self._hooks.enter_context(on_evaluations(self._scored))
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.close()
        self._bar.close()
