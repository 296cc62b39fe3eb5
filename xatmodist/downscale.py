"""Downscaling (super-resolution) with a trained downscaler, lazily over dask chunks."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import xarray as xr

from . import _validate as v
from ._apply import (
    apply,
    check_members,
    prepare,
    provenance,
    relabel,
    warn_large_chunks,
)
from ._kernels import downscale_kernel
from .errors import InputError
from .zoo import Model, load_model

__all__ = ["downscale", "refine_coord", "DEFAULT_DOWNSCALER"]

DEFAULT_DOWNSCALER = "downscale-swe-vd-x4"


def refine_coord(c: np.ndarray, factor: int) -> np.ndarray:
    """Cell-centred refinement: each coarse cell split into ``factor`` equal cells.

    Examples
    --------
    >>> refine_coord(np.array([0.0, 4.0]), 4)
    array([-1.5, -0.5,  0.5,  1.5,  2.5,  3.5,  4.5,  5.5])
    """
    c = np.asarray(c, dtype=np.float64)
    step = (c[1] - c[0]) if c.size > 1 else 1.0
    offsets = (np.arange(factor) + 0.5) / factor - 0.5
    return (c[:, None] + offsets[None, :] * step).ravel()


def downscale(
    a: xr.Dataset | xr.DataArray,
    *,
    factor: int = 4,
    model: str | Model | None = None,
    variables: Mapping | Sequence | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    channel_dim: Hashable | None = None,
    output_chunks: Mapping[Hashable, int] | None = None,
    members: int | None = None,
    seed: int = 0,
) -> xr.Dataset | xr.DataArray:
    """Refine fields to a ``factor`` times finer grid with a trained downscaler.

    The network is convolutional and sees each whole field with a halo of 8
    points: wrapped around in longitude on a global grid, mirrored at the
    edges of a regional (limited-area) one and at the poles.  Any field of at
    least 2 x 2 points works, also one smaller than the training patches (a 10
    x 10 box to 40 x 40); near a regional edge the mirrored halo stands in for
    the unknown surroundings.

    Parameters
    ----------
    a : Dataset or DataArray
        Coarse fields with the model's variables (see :func:`xatmodist.distance`
        for how they are found).  Spatial dims must each be one dask chunk.
    factor : int
        Refinement factor; must equal the model's.
    model : str, path or Model, optional
        A downscaler from the zoo (default ``"downscale-swe-vd-x4"``).
    variables, spatial_dims, channel_dim
        As in :func:`xatmodist.distance`.
    output_chunks : mapping, optional
        Chunks of the result along non-spatial dims (as in xESMF); default: the
        input's.  A warning is given when output chunks exceed 512 MiB.
    members : int, optional
        A sampling (ensemble) model only: draw this many samples per field,
        returned along a new leading ``member`` dim (0 .. members - 1).  None
        (default): one output per field, a deterministic model's as always and
        a sampling model's zero-noise output.
    seed : int
        Seeds the samples: a field's member ``m`` depends on ``seed``, ``m``
        and the field's position in the input, not on the chunking.

    Returns
    -------
    Dataset or DataArray
        Same type as the input, holding the model's variables on the refined
        grid: latitude and longitude are the cell-centred refinement of the
        input's (on a global grid whose last longitude column repeats the
        first, of its distinct columns: the result has no repeated column).
        Attributes are kept; provenance attributes added.  Lazy if the input
        was dask-backed.  Fields with NaN give NaN.
    """
    m = load_model(DEFAULT_DOWNSCALER if model is None else model, task="downscaler")
    if factor != m.card.factor:
        raise InputError(
            f"factor={factor} but model {m.name!r} refines by {m.card.factor}; "
            f"pass factor={m.card.factor} or choose another model."
        )
    check_members(m, members, seed)
    p = prepare(a, m, variables, spatial_dims, channel_dim, task="downscaler")
    lat, lon = p.lat, p.lon
    nlat, nlon = p.da.sizes[lat], p.da.sizes[lon]
    out = apply(
        downscale_kernel,
        [p],
        out_core_dims=[v.CHANNEL, lat, lon],
        output_sizes={v.CHANNEL: p.da.sizes[v.CHANNEL], lat: nlat * factor, lon: nlon * factor},
        wrap=p.wrap,
        members=members,
        seed=seed,
    )
    coords = {v.CHANNEL: p.da[v.CHANNEL].values}
    for d in (lat, lon):
        if d in p.da.coords:
            vals = refine_coord(p.da[d].values, factor)
            if d == lon and p.wrap:
                vals = np.mod(vals, 360.0)
            coords[d] = (d, vals, dict(p.da[d].attrs))
    out = out.assign_coords(coords)
    if output_chunks is not None:
        if out.chunks is None:
            out = out.chunk(dict(output_chunks))
        else:
            out = out.chunk({k: c for k, c in output_chunks.items() if k not in (lat, lon)})
    note = f", x {members} members" if members is not None else ""
    warn_large_chunks(
        out,
        f"{factor * factor}x the input's{note}",
        "pass output_chunks={'time': ...} for smaller ones",
    )
    extra = {} if members is None else {"members": members, "seed": seed}
    return relabel(out, a, p, variables, channel_dim, provenance(m, factor=factor, **extra))
