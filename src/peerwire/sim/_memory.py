"""Memory per simulated node: the process's resident set (or Python heap) growth / N."""

from __future__ import annotations

import os
import tracemalloc
from typing import Literal

__all__ = ["MemoryProbe", "rss_bytes"]


def rss_bytes() -> int | None:
    """The process's current resident set size (Linux /proc), None where unavailable."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


class MemoryProbe:
    """Peak memory growth since creation, sampled at chosen points.

    ``"rss"``: resident set size now minus at creation (cheap; includes
    allocator slack and anything else the process allocates meanwhile).
    ``"tracemalloc"``: Python heap peak traced by :mod:`tracemalloc` (exact for
    Python objects, but it slows the run down about 2-3x). ``"off"``: nothing.
    """

    def __init__(self, mode: Literal["rss", "tracemalloc", "off"]) -> None:
        self.mode = mode
        self._peak = 0
        self._base = 0
        self._started_tracing = False
        if mode == "rss":
            self._base = rss_bytes() or 0
        elif mode == "tracemalloc":
            if not tracemalloc.is_tracing():
                tracemalloc.start()
                self._started_tracing = True
            tracemalloc.reset_peak()
            self._base = tracemalloc.get_traced_memory()[0]

    def sample(self) -> None:
        if self.mode == "rss":
            now = rss_bytes()
            if now is not None:
                self._peak = max(self._peak, now - self._base)
        elif self.mode == "tracemalloc":
            self._peak = max(self._peak, tracemalloc.get_traced_memory()[1] - self._base)

    def per_node(self, nodes: int) -> int | None:
        """Peak growth divided by ``nodes`` (bytes), None when off or unmeasurable."""
        if self.mode == "off" or nodes <= 0:
            return None
        self.sample()
        return self._peak // nodes if self._peak > 0 else None

    def close(self) -> None:
        if self._started_tracing:
            tracemalloc.stop()
            self._started_tracing = False
