"""Timing helper shared by the benchmarks (no heavy imports)."""

from __future__ import annotations

import time


def best(fn, repeat: int) -> float:
    """Fastest of ``repeat`` wall-clock timings of ``fn()`` in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
