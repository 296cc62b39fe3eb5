"""Index maths of the lag pretext task, kept apart from data access.

A *block* is a contiguous stretch of one series (one run, member or level) in
time; pairs never straddle two blocks, and every block is either training or
validation, so nearby times never leak between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Block", "make_blocks", "sample_pairs", "patch_index"]


@dataclass(frozen=True)
class Block:
    """Times ``[start, stop)`` of series ``series`` (index into the stacked sample dims)."""

    series: int
    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


def make_blocks(
    *, n_series: int, n_time: int, block_length: int, max_lag: int, val_every: int
) -> tuple[list[Block], list[Block]]:
    """Split each series into blocks; every ``val_every``-th block is validation.

    Blocks shorter than ``max_lag + 1`` are dropped (no pair fits).  The
    validation blocks are staggered between series so validation covers all
    parts of the time axis.
    """
    if block_length < max_lag + 1:
        raise ValueError(f"block_length {block_length} must exceed max_lag {max_lag}")
    train, val = [], []
    k = 0
    for s in range(n_series):
        for start in range(0, n_time, block_length):
            stop = min(n_time, start + block_length)
            if stop - start < max_lag + 1:
                continue
            (val if val_every and k % val_every == val_every - 1 else train).append(
                Block(s, start, stop)
            )
            k += 1
    return train, val


def sample_pairs(
    rng: np.random.Generator, block: Block, n: int, n_classes: int, lag_stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` pairs in ``block``: first times (block-relative) and classes.

    Classes are uniform; class ``k`` is a lag of ``(k + 1) * lag_stride`` steps.
    """
    classes = rng.integers(0, n_classes, size=n)
    lags = (classes + 1) * lag_stride
    t0 = rng.integers(0, block.length - lags)
    return t0, classes


def patch_index(
    rng: np.random.Generator,
    n: int,
    *,
    nlat: int,
    nlon: int,
    patch: int,
    lat_rows: tuple[int, int] | None = None,
    wrap: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (row, col) of ``n`` random patches.

    Rows stay inside ``lat_rows`` (a half-open row range, default all rows);
    columns wrap around when ``wrap`` (global grids), else stay inside.
    """
    r0, r1 = lat_rows if lat_rows is not None else (0, nlat)
    if r1 - r0 < patch or (not wrap and nlon < patch):
        raise ValueError(f"patch {patch} does not fit rows {r0}:{r1} x {nlon} columns")
    rows = rng.integers(r0, r1 - patch + 1, size=n)
    cols = rng.integers(0, nlon if wrap else nlon - patch + 1, size=n)
    return rows, cols


def take_patches(
    fields: np.ndarray, t: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch: int
) -> np.ndarray:
    """Gather patches from ``fields`` (T, C, H, W) -> (N, C, patch, patch); columns wrap."""
    nlon = fields.shape[-1]
    r = rows[:, None] + np.arange(patch)[None, :]  # (N, P)
    c = (cols[:, None] + np.arange(patch)[None, :]) % nlon  # (N, P)
    return fields[t[:, None, None], :, r[:, :, None], c[:, None, :]].transpose(0, 3, 1, 2)
