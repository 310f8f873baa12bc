"""A progress bar over the passes of a profiled or tracked run: each pass is both strategies of a workload."""

from __future__ import annotations

from collections.abc import Sequence

from ..workloads import STRATEGIES

__all__ = ["pass_bar"]


class pass_bar:  # noqa: N801 - used like a function returning a context manager
    """`with pass_bar(("warm-up", "timed"), enabled) as bar:`; `bar.step(strategy)` after each optimization.

    The bar (tqdm, on stderr) says which pass and strategy runs next and how many are left.
    """

    def __init__(self, passes: Sequence[str], enabled: bool = True) -> None:
        from tqdm.auto import tqdm

        self._labels = [f"{p} {s}" for p in passes for s in STRATEGIES]
        self._bar = tqdm(total=len(self._labels), unit="run", disable=not enabled, dynamic_ncols=True)
        self._done = 0
        self._bar.set_description(self._labels[0])

    def step(self, strategy: str) -> None:
        self._done += 1
        self._bar.update(1)
        if self._done < len(self._labels):
            self._bar.set_description(self._labels[self._done])

    def __enter__(self) -> pass_bar:
        return self

    def __exit__(self, *exc) -> None:
        self._bar.close()
