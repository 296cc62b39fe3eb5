"""Filling missing or occluded data with a trained inpainter, lazily over dask chunks."""

from __future__ import annotations

import dataclasses
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
    restore_seam,
    warn_large_chunks,
)
from ._kernels import inpaint_kernel
from .errors import InputError
from .zoo import Model, load_model

__all__ = ["inpaint", "DEFAULT_INPAINTER"]

DEFAULT_INPAINTER = "inpaint-swe-vd"


def _check_mask(mask, p) -> xr.DataArray:
    """The user's mask as (..., variable=1, lat, lon) bool, oriented like ``p.da``."""
    lat, lon = p.lat, p.lon
    if not isinstance(mask, xr.DataArray):
        raise InputError(
            f"mask must be a boolean xarray.DataArray (True = missing) with dims including "
            f"{lat!r} and {lon!r}; got {type(mask).__name__}. E.g. mask=ds.vo.isnull()."
        )
    if mask.dtype != bool:
        raise InputError(
            f"mask must be boolean (True = missing); got dtype {mask.dtype}. Convert it, e.g. "
            "mask=(m > 0.5) or mask=m.astype(bool)."
        )
    if p.seam is not None and mask.sizes.get(lon) == p.da.sizes[lon] + 1:
        mask = mask.isel({lon: slice(0, -1)})  # the seam column, dropped from the data too
    data_dims = set(p.da.dims) - {v.CHANNEL}
    if lat not in mask.dims or lon not in mask.dims or not set(mask.dims) <= data_dims:
        raise InputError(
            f"mask has dims {tuple(mask.dims)}; expected {lat!r} and {lon!r} plus any of the "
            f"data's other dims {sorted(map(str, data_dims - {lat, lon}))}."
        )
    for d in (lat, lon):
        if mask.sizes[d] != p.da.sizes[d]:
            raise InputError(
                f"mask has {mask.sizes[d]} points along {d!r}, the data {p.da.sizes[d]}; "
                "the mask must be on the data's grid."
            )
        if d in mask.coords and d in p.da.coords:
            theirs = np.asarray(mask[d].values, dtype=np.float64)
            ours = np.asarray(p.da[d].values, dtype=np.float64)
            if p.lat_flipped and d == lat:
                ours = ours[::-1]
            if not np.allclose(theirs, ours):
                raise InputError(
                    f"mask's {d!r} coordinate differs from the data's; the mask must be on "
                    "the data's grid (e.g. mask = mask.reindex_like(data, method='nearest'))."
                )
    v.check_core_chunks(mask, [lat, lon])
    if p.lat_flipped:
        mask = mask.isel({lat: slice(None, None, -1)})
    mask = mask.drop_vars([d for d in (lat, lon) if d in mask.coords])
    mask = mask.expand_dims(v.CHANNEL).transpose(..., v.CHANNEL, lat, lon)
    if mask.chunks is not None:
        mask = mask.chunk({v.CHANNEL: -1})
    return mask


def inpaint(
    a: xr.Dataset | xr.DataArray,
    *,
    mask: xr.DataArray | None = None,
    model: str | Model | None = None,
    keep_observed: bool = True,
    variables: Mapping | Sequence | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    channel_dim: Hashable | None = None,
    members: int | None = None,
    seed: int = 0,
) -> xr.Dataset | xr.DataArray:
    """Fill missing or occluded regions with a trained inpainter.

    Parameters
    ----------
    a : Dataset or DataArray
        Fields with the model's variables (found as in :func:`xatmodist.distance`);
        spatial dims must each be one dask chunk.
    mask : DataArray of bool, optional
        True where values are missing or should be replaced (in every
        variable); dims: the two spatial dims plus any of ``a``'s others.
        Every NaN must lie under it.  Default: the NaNs of each variable (the
        network sees their union as the hole; each variable keeps all of its
        own non-NaN values).
    model : str, path or Model, optional
        An inpainter from the zoo (default ``"inpaint-swe-vd"``).
    keep_observed : bool
        If True (default) unmasked points are returned bit for bit.  If
        False, only the filled values are returned (NaN at the other points),
        e.g. to inspect or store the fill alone.  Either way fields without
        holes skip the network.
    variables, spatial_dims, channel_dim
        As in :func:`xatmodist.distance`.
    members : int, optional
        A sampling (ensemble) model only: fill every field this many times,
        returned along a new leading ``member`` dim (0 .. members - 1); the
        observed values are the same in every member.  None (default): one
        fill per field, a deterministic model's as always and a sampling
        model's zero-noise fill.
    seed : int
        Seeds the samples: a field's member ``m`` depends on ``seed``, ``m``
        and the field's position in the input, not on the chunking.

    Returns
    -------
    Dataset or DataArray
        Same type, dims, coordinates and dtype as the input (the model's
        variables only), holes filled; attributes kept, provenance attributes
        added.  Lazy if the input (or the mask) is dask-backed.  On a global
        grid whose last longitude column repeats the first (0..360 inclusive)
        the fields are filled on the distinct columns and the last column is
        returned as a copy of the first.

    Raises
    ------
    InputError
        When a hole reaches further from observed points than the model was
        trained for (the card's ``max_hole_radius``, in grid cells; edges of a
        regional domain count as mirrors) or NaNs lie outside a given mask.
        For dask-backed inputs these are raised on compute.  Holes may have
        any shape, touch the domain edge and, on global grids, cross the
        longitude seam.

    Warns
    -----
    UserWarning
        Fields with no observed value at all are returned as NaN (nothing to
        fill them from).
    """
    m = load_model(DEFAULT_INPAINTER if model is None else model, task="inpainter")
    v.check_bool(keep_observed, "keep_observed")
    check_members(m, members, seed)
    p = prepare(a, m, variables, spatial_dims, channel_dim, task="inpainter", keep_dtype=True)
    if not np.issubdtype(p.da.dtype, np.floating):
        p.da = p.da.astype(np.float32)
    inputs = [p]
    if mask is not None:
        mk = _check_mask(mask, p)
        inputs.append(dataclasses.replace(p, da=mk))
    lat, lon = p.lat, p.lon
    out = apply(
        inpaint_kernel,
        inputs,
        out_core_dims=[v.CHANNEL, lat, lon],
        output_sizes={v.CHANNEL: p.da.sizes[v.CHANNEL], lat: p.da.sizes[lat], lon: p.da.sizes[lon]},
        dtype=p.da.dtype,
        wrap=p.wrap,
        keep_observed=keep_observed,
        members=members,
        seed=seed,
    )
    out = out.assign_coords({d: p.da[d] for d in (v.CHANNEL, lat, lon) if d in p.da.coords})
    if members is not None:
        warn_large_chunks(
            out, f"x {members} members", "rechunk the input along time for smaller ones"
        )
    out = restore_seam(out, p)
    extra = {} if members is None else {"members": members, "seed": seed}
    attrs = provenance(m, keep_observed=keep_observed, **extra)
    result = relabel(out, a, p, variables, channel_dim, attrs)
    if isinstance(a, xr.Dataset):
        for n in result.data_vars:  # a float32 variable stacked with a float64 one
            if np.issubdtype(a[n].dtype, np.floating):
                result[n] = result[n].astype(a[n].dtype, copy=False)
    return result
