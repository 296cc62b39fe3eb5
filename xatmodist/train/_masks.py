"""Random hole masks for training inpainters: rectangles and irregular blobs."""

from __future__ import annotations

import numpy as np

__all__ = ["random_masks"]

KINDS = ("rect", "blob")


def _rect(rng: np.random.Generator, size: int, lo: int, hi: int) -> np.ndarray:
    h, w = rng.integers(lo, hi + 1, size=2)
    r = rng.integers(-h // 2, size - h // 2 + 1)  # may touch or cross the patch edge
    c = rng.integers(-w // 2, size - w // 2 + 1)
    m = np.zeros((size, size), dtype=bool)
    m[max(r, 0) : max(r + h, 0), max(c, 0) : max(c + w, 0)] = True
    return m


def _blob(rng: np.random.Generator, size: int, lo: int, hi: int) -> np.ndarray:
    """Union of 2-6 discs of diameter in [lo, hi] whose centres wander from a start point."""
    yy, xx = np.mgrid[:size, :size]
    m = np.zeros((size, size), dtype=bool)
    cy, cx = rng.uniform(0, size, size=2)
    for _ in range(int(rng.integers(2, 7))):
        rad = rng.uniform(lo, hi) / 2
        m |= (yy - cy) ** 2 + (xx - cx) ** 2 <= rad**2
        ang = rng.uniform(0, 2 * np.pi)
        step = rng.uniform(0.3, 1.0) * rad
        cy, cx = cy + step * np.sin(ang), cx + step * np.cos(ang)
    if not m.any():  # a disc entirely off the patch: fall back to a rectangle
        return _rect(rng, size, lo, hi)
    return m


def random_masks(
    rng: np.random.Generator,
    n: int,
    size: int,
    hole: tuple[int, int],
    kinds: tuple[str, ...] = KINDS,
) -> np.ndarray:
    """``n`` masks (n, 1, size, size), True = missing: one hole each of ``kinds``.

    Rectangles have sides, blobs disc diameters, uniformly in ``hole``
    (min, max) cells; holes may touch the patch edge.  Rectangles inside the
    patch reach at most ``(hole[1] + 1) / 2`` cells from an observed point;
    blobs (unions of overlapping discs) and holes cut by the patch edge reach
    further, so a model trained on them has seen holes beyond the
    ``hole[1] / 2`` limit that inference enforces.
    """
    lo, hi = hole
    out = np.zeros((n, 1, size, size), dtype=bool)
    for i in range(n):
        kind = kinds[int(rng.integers(len(kinds)))]
        m = _rect(rng, size, lo, hi) if kind == "rect" else _blob(rng, size, lo, hi)
        if not m.any():
            m[size // 2, size // 2] = True
        out[i, 0] = m
    return out
