"""Timing helper shared by the benchmarks (no heavy imports)."""

from __future__ import annotations

import time


def best(fn, repeat: int) -> float:
    """Fastest of ``repeat`` wall-clock timings of ``fn()`` in seconds."""
    return min(interleaved({"fn": fn}, repeat)["fn"])


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


def paired_ratio(times: dict, base: str, other: str) -> float:
    """Median over rounds of ``times[base][r] / times[other][r]`` (> 1: ``other`` faster).

    Each round's two timings ran back to back, so their ratio cancels slow
    phases of the machine that a ratio of two separate minima would not.
    """
    import statistics

    return statistics.median(b / o for b, o in zip(times[base], times[other], strict=True))


def rates_against(fns: dict, base: str, n: int, repeat: int) -> dict:
    """Fields/s of each function on ``n`` fields and its ratio to ``fns[base]``.

    ``{name: {"fields_per_s": n / fastest round, "ratio_to_bare": paired ratio
    to base (> 1: faster), "seconds": every round}}``, timed by :func:`interleaved`.
    """
    t = interleaved(fns, repeat)
    return {
        name: {
            "fields_per_s": n / min(secs),
            "ratio_to_bare": paired_ratio(t, base, name),
            "seconds": secs,
        }
        for name, secs in t.items()
    }
