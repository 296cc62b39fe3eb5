"""The lazy plumbing: the one place where xarray meets dask and the kernels.

``prepare`` turns a user's Dataset/DataArray into a (..., variable, lat, lon)
DataArray checked against the model card (a repeated seam column of a global
grid dropped: :func:`restore_seam` puts it back on results on the input grid);
``apply`` maps a kernel from :mod:`xatmodist._kernels` over the non-spatial
dims with ``xr.apply_ufunc(dask="parallelized")``: one task per chunk, nothing
computed until asked, the model referenced by path (loaded once per process).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import _validate as v
from ._grid import closure
from ._kernels import Tiling, ensemble_kernel, make_tiling
from .errors import GridError, InputError
from .options import get_options
from .zoo import Model, load_model

#: smallest field a downscaler takes: its convolutions see mirrored edges
MIN_DOWNSCALER_INPUT = 2
#: the dim of a sampling model's ensemble members (leading in the results)
MEMBER = "member"

__all__ = [
    "MEMBER",
    "Prepared",
    "prepare",
    "apply",
    "tile_centres",
    "provenance",
    "relabel",
    "restore_seam",
    "check_members",
]


@dataclass
class Prepared:
    """An input ready for a kernel."""

    da: xr.DataArray
    lat: Hashable
    lon: Hashable
    model: Model
    tiling: Tiling
    wrap: bool
    #: whether ``da`` is the input reversed along latitude (to the model's orientation)
    lat_flipped: bool = False
    #: the input's repeated seam column's longitude coordinate (one value), dropped from
    #: ``da`` (the seam rule of :mod:`xatmodist._grid`); None on other grids
    seam: xr.DataArray | None = None


def prepare(
    obj: xr.Dataset | xr.DataArray,
    model: str | Model | None = None,
    variables: Mapping | Sequence | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    channel_dim: Hashable | None = None,
    *,
    task: str = "encoder",
    keep_dtype: bool = False,
) -> Prepared:
    """Resolve the model (of ``task``) and the variables and dims; validate; stack channels."""
    m = load_model(model, task=task)
    card = m.card
    da = v.to_channels(obj, card.variable_dicts, variables, channel_dim, keep_dtype=keep_dtype)
    lat, lon = v.spatial_dims(da, spatial_dims)
    da = da.transpose(..., v.CHANNEL, lat, lon)
    v.check_core_chunks(da, [lat, lon])
    # present the grid in the model's north-south orientation (lazy reversal)
    flipped = False
    if lat in da.coords and da.sizes[lat] > 1:
        descending = bool(da[lat].values[0] > da[lat].values[-1])
        if descending != card.grid.descending:
            da = da.isel({lat: slice(None, None, -1)})
            flipped = True
    if da.chunks is not None:
        da = da.chunk({v.CHANNEL: -1})  # our own stacking dim, never the user's
    factor = card.input_factor
    # smallest input the model takes: an encoder's patch; a downscaler is fully
    # convolutional (edges mirrored: 2 points); an inpainter's card says
    if card.task == "downscaler":
        patch = MIN_DOWNSCALER_INPUT
    else:
        patch = int(getattr(card, "min_input_size", None) or card.patch_size)
    # a global grid with a repeated seam column (0..360 inclusive): the kernels see
    # the distinct columns only; results on the input grid get it back (restore_seam)
    wrap, has_seam = closure(da, lon)
    seam = None
    if has_seam:
        seam = da[lon].isel({lon: [-1]})
        da = da.isel({lon: slice(0, da.sizes[lon] - 1)})
    nlat, nlon = da.sizes[lat], da.sizes[lon]
    if nlat < patch or nlon < patch:
        what = "works on patches of" if card.task == "encoder" else "needs fields of at least"
        raise GridError(
            f"The field is {nlat} x {nlon} ({lat!r} x {lon!r}) but model {card.name!r} "
            f"{what} {patch} x {patch} points. Use a larger domain (at least "
            f"{patch} points along each spatial dim) or a model with smaller patches "
            "(xatmodist.train.fit_encoder(patch_size=...) for your grid)."
        )
    dlat, dlon = v.grid_spacing(da, lat, lon)
    v.check_grid(card, dlat, dlon, input_factor=factor)
    offset = 0
    if wrap:
        x = np.asarray(da[lon].values, dtype=np.float64)
        offset = int(np.argmin(np.abs((x + 180.0) % 360.0 - 180.0)))
    tiling = make_tiling(nlat, nlon, patch, wrap, offset)
    return Prepared(da, lat, lon, m, tiling, wrap, flipped, seam)


def restore_seam(out: xr.DataArray, p: Prepared) -> xr.DataArray:
    """``out`` (on ``p.da``'s grid) with the seam column that :func:`prepare` dropped.

    The column is a copy of the first (the same longitude, once round the
    circle) at the input's seam coordinate; lazy for dask.  Without a seam,
    ``out`` itself.
    """
    if p.seam is None:
        return out
    col = out.isel({p.lon: [0]})
    if p.lon in out.coords:
        col = col.assign_coords({p.lon: p.seam.values})
    return xr.concat([out, col], dim=p.lon, coords="minimal", compat="override")


def apply(
    kernel: Callable,
    inputs: Sequence[Prepared],
    *,
    out_core_dims: Sequence[Hashable],
    output_sizes: Mapping[Hashable, int],
    dtype=np.float32,
    members: int | None = None,
    seed: int = 0,
    **kwargs,
) -> xr.DataArray:
    """Map ``kernel`` over all but the (variable, lat, lon) core dims, lazily for dask.

    ``members``: run a sampling model's ``kernel`` once per member
    (:func:`~xatmodist._kernels.ensemble_kernel`); the result gets a leading
    core dim ``member`` (coordinates 0 .. members - 1) before ``out_core_dims``.
    Each field's noise follows from ``seed``, the member and the field's
    position in the input, passed along as one more array chunked like the
    input, so the result does not depend on chunking.
    """
    p0 = inputs[0]
    core = [v.CHANNEL, p0.lat, p0.lon]
    opts = get_options()
    kwargs = {
        "model": p0.model.reference(),
        "tiling": p0.tiling,
        "batch": opts["batch_size"],
        "threads": opts["torch_threads"],
        # as strings: each process resolves them ("auto": each dask worker its own GPU)
        "device": opts["device"],
        "precision": opts["precision"],
        **kwargs,
    }
    if p0.model.task == "encoder":
        kwargs["jit"] = opts["jit"]
    arrays = [p.da for p in inputs]
    if len(arrays) > 1:
        try:
            xr.align(*arrays, join="exact", exclude=core, copy=False)  # a check only
        except ValueError as err:
            raise InputError(
                "The inputs must have the same coordinates along their shared non-spatial dims "
                f"to be paired field by field; got {err}. Select matching fields or relabel "
                "one input first, e.g. b.assign_coords(time=a.time)."
            ) from err
    in_core = [core] * len(arrays)
    if members is not None:
        members = int(members)
        kwargs = {"kernel": kernel, "members": members, "seed": int(seed), **kwargs}
        kernel = ensemble_kernel
        arrays = [*arrays, field_index(p0.da, core)]
        in_core = [*in_core, []]
        out_core_dims = [MEMBER, *out_core_dims]
        output_sizes = {MEMBER: members, **output_sizes}
    n_out = len(out_core_dims)
    out = xr.apply_ufunc(
        kernel,
        *arrays,
        input_core_dims=in_core,
        output_core_dims=[list(out_core_dims)],
        exclude_dims=set(core),
        kwargs=kwargs,
        dask="parallelized",
        dask_gufunc_kwargs={
            "output_sizes": dict(output_sizes),
            "meta": np.empty((0,) * (max(a.ndim for a in arrays) - 3 + n_out), dtype=dtype),
        },
        keep_attrs=False,
    )
    if members is not None:
        out = out.assign_coords({MEMBER: np.arange(members)})
    return out


def check_members(m: Model, members, seed) -> None:
    """Refuse a bad ``members``/``seed``, or members of a model that does not sample.

    ``members``: None (the model's single, zero-noise output) or a positive
    int; ``seed``: an int >= 0.  Only a sampling model (``card.noise_maps >
    0``) takes ``members``; the error names the zoo's sampling models of its task.
    """
    from .errors import ModelError
    from .zoo import _zoo_cards

    if members is None:
        return
    if isinstance(members, bool) or not isinstance(members, int | np.integer) or members < 1:
        raise InputError(
            f"members must be a positive integer (the ensemble size) or None; got {members!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be an integer >= 0; got {seed!r}.")
    if not m.card.noise_maps:
        task = m.card.task
        ens = [n for n, c in _zoo_cards(task) if c is not None and c.noise_maps]
        raise ModelError(
            f"Model {m.name!r} is deterministic: it has one answer per input, so members="
            f"{members} would repeat it. The zoo's {task}s that sample are {ens}; pass one as "
            f"model= (or train one with noise=... in xatmodist.train), or leave members=None."
        )


#: output chunks larger than this many bytes trigger a warning
LARGE_CHUNK_BYTES = 512 * 2**20


def warn_large_chunks(out: xr.DataArray, why: str, fix: str) -> None:
    """Warn if a chunk of the lazy ``out`` exceeds :data:`LARGE_CHUNK_BYTES`.

    ``why`` says what makes the chunks large, ``fix`` what the caller's user can do.
    """
    from .errors import warn

    if out.chunks is None:
        return
    biggest = max(np.prod([max(c) for c in out.chunks]) * out.dtype.itemsize, 0)
    if biggest > LARGE_CHUNK_BYTES:
        warn(
            f"Output chunks are up to {biggest / 2**20:.0f} MiB ({why}); {fix}.",
            UserWarning,
        )


def field_index(da: xr.DataArray, core: Sequence[Hashable]) -> xr.DataArray:
    """Each field's position in ``da`` (int64 over the non-core dims, chunked like ``da``)."""
    lead = [d for d in da.dims if d not in core]
    shape = tuple(da.sizes[d] for d in lead)
    idx = xr.DataArray(np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape), dims=lead)
    if da.chunks is not None:
        idx = idx.chunk({d: da.chunksizes[d] for d in lead})
    return idx


def tile_centres(p: Prepared) -> dict[Hashable, xr.DataArray]:
    """Latitude/longitude of the centres of the tiling's patches (``lat``/``lon`` dims)."""
    t = p.tiling
    half = (t.patch - 1) / 2
    out = {}
    for dim, starts, name in ((p.lat, t.rows, "lat"), (p.lon, t.cols, "lon")):
        if dim in p.da.coords:
            c = np.asarray(p.da[dim].values, dtype=np.float64)
            step = c[1] - c[0] if c.size > 1 else 0.0
            vals = np.array([c[0] + (s + half) * step for s in starts])
            if dim == p.lon and p.wrap:
                vals = np.mod(vals, 360.0)
            attrs = dict(p.da[dim].attrs)
        else:
            vals = np.array([s + half for s in starts])
            attrs = {"long_name": f"centre index along {dim}"}
        out[f"patch_{name}"] = xr.DataArray(vals, dims=f"patch_{name}", attrs=attrs)
    return out


def provenance(m: Model, **extra) -> dict:
    """Attributes that say which model produced a result."""
    attrs = {
        "xatmodist_model": m.name,
        "xatmodist_model_sha256": m.sha256 or "",
    }
    from . import __version__

    attrs["xatmodist_version"] = __version__
    attrs.update({k: str(val) for k, val in extra.items()})
    return attrs


def relabel(
    out: xr.DataArray,
    a: xr.Dataset | xr.DataArray,
    p: Prepared,
    variables: Mapping | Sequence | None,
    channel_dim: Hashable | None,
    attrs: Mapping,
) -> xr.Dataset | xr.DataArray:
    """Turn a (..., variable, lat, lon) result of ``p`` back into ``a``'s form.

    The latitude orientation of ``a`` is restored; a Dataset gets its variable
    names, dim order and attributes back, a DataArray its channel dim (or
    none for single-variable models); ``attrs`` (provenance) are added.
    """
    if p.lat_flipped:
        out = out.isel({p.lat: slice(None, None, -1)})
    card = p.model.card
    if isinstance(a, xr.Dataset):
        names = v.resolve_variables(a, card.variable_dicts, variables, check_units=False)
        ds = out.to_dataset(dim=v.CHANNEL)
        ds = ds.rename(dict(zip(card.variable_names, names, strict=True)))
        for n in names:
            ds[n] = ds[n].transpose(..., *a[n].dims)  # an ensemble's member dim leads
            ds[n].attrs = {**a[n].attrs, **attrs}
        ds.attrs = {**a.attrs, **attrs}
        return ds
    dim = channel_dim if channel_dim is not None else v.CHANNEL
    if dim in a.dims:  # keep the caller's channel dim name and labels
        labels = v.resolve_variables(
            a.to_dataset(dim=dim), card.variable_dicts, variables, check_units=False
        )
        out = out.rename({v.CHANNEL: dim}).assign_coords({dim: labels})
    else:  # single-variable model
        out = out.isel({v.CHANNEL: 0}, drop=True)
    out.attrs = {**a.attrs, **attrs}
    out.name = a.name
    return out.transpose(..., *a.dims)
