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


def interleaved(fns: dict, repeat: int) -> dict:
    """``repeat`` wall-clock timings of each function, measured in alternating rounds.

    Every round times each function once, in turn, so that a slow phase of a
    shared machine (other load, frequency changes) hits all of them alike
    instead of biasing whichever ran during it.  Returns ``{name: [seconds per
    round]}``.
    """
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return times


def best_interleaved(fns: dict, repeat: int) -> dict:
    """Fastest of the :func:`interleaved` timings of each function."""
    return {k: min(v) for k, v in interleaved(fns, repeat).items()}


def paired_ratio(times: dict, base: str, other: str) -> float:
    """Median over rounds of ``times[base][r] / times[other][r]`` (> 1: ``other`` faster).

    Each round's two timings ran back to back, so their ratio cancels slow
    phases of the machine that a ratio of two separate minima would not.
    """
    import statistics

    return statistics.median(b / o for b, o in zip(times[base], times[other], strict=True))
