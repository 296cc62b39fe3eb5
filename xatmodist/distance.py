"""The learned AtmoDist distance and encoder features, DataArray in -> DataArray out."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import xarray as xr

from . import _validate as v
from ._apply import Prepared, apply, prepare, provenance, tile_centres
from ._kernels import distance_kernel, embed_kernel
from .errors import InputError
from .zoo import Model

__all__ = ["distance", "embed", "embed_prepared"]

_METRICS = ("learned", "l2")


def distance(
    a: xr.Dataset | xr.DataArray,
    b: xr.Dataset | xr.DataArray,
    *,
    model: str | Model | None = None,
    variables: Mapping | Sequence | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    spatial: bool = False,
    metric: str = "learned",
    channel_dim: Hashable | None = None,
) -> xr.DataArray:
    """Learned AtmoDist distance between two sets of atmospheric fields.

    Both inputs go through the frozen encoder patch by patch (fields larger
    than the model's patch are tiled: on global grids the patches are equally
    spaced around the circle and wrap across the seam; on regional grids they
    overlap so that the first and last start and end at the domain's edges,
    and no patch reaches outside it; a last longitude column that repeats the
    first, as in 0..360 inclusive, is left out); the
    distance is ``alpha * mean((f(a) - f(b))**2)`` over features, or
    ``alpha * mean(|f(a) - f(b)|)`` where the card's ``distance.kind`` is
    ``"l1"`` (as the default encoder's), averaged over the patches.
    ``alpha`` (from the model card) scales it to match the MSE of the
    normalised fields at large lags.

    Parameters
    ----------
    a, b : Dataset or DataArray
        Fields on the same grid, with the model's variables (by CF
        standard_name, name, or ``variables=``).  Non-spatial dims are
        broadcast and aligned like any xarray operation.
    model : str, path or Model, optional
        Encoder to use (default: the zoo's default, ``xatmodist.zoo.DEFAULT_ENCODER``).
    variables : mapping or sequence, optional
        Model variable name -> dataset variable name.
    spatial_dims : (lat, lon), optional
        Spatial dims when cf-xarray cannot find them.
    spatial : bool
        Return the distance per patch, with dims ``patch_lat``/``patch_lon``
        holding the patch centres, instead of its mean.
    metric : {"learned", "l2"}
        ``"l2"`` gives the mean squared difference of the normalised fields
        over the same patches, for comparison.
    channel_dim : str, optional
        Dim of a DataArray that holds the variables.

    Returns
    -------
    DataArray
        Dims: the broadcast non-spatial dims (plus ``patch_lat``,
        ``patch_lon`` if ``spatial``); lazy if an input was dask-backed.
        Fields with NaN or inf give NaN.

    Examples
    --------
    >>> ds = xatmodist.datasets.sample().isel(run=0)
    >>> first = ds.isel(time=slice(0, -4))
    >>> later = ds.isel(time=slice(4, None)).assign_coords(time=first.time)
    >>> d = xatmodist.distance(first, later)
    >>> d.dims
    ('time',)
    """
    if metric not in _METRICS:
        raise InputError(f"metric must be one of {_METRICS}; got {metric!r}.")
    pa = prepare(a, model, variables, spatial_dims, channel_dim)
    pb = prepare(b, pa.model, variables, spatial_dims, channel_dim)
    v.check_same_grid(pa.da, pb.da, [pa.lat, pa.lon])
    ny, nx = pa.tiling.shape
    out_dims = ["patch_lat", "patch_lon"] if spatial else []
    out = apply(
        distance_kernel,
        [pa, pb],
        out_core_dims=out_dims,
        output_sizes={"patch_lat": ny, "patch_lon": nx} if spatial else {},
        spatial=spatial,
        metric=metric,
    )
    if spatial:
        out = out.assign_coords(tile_centres(pa))
    out.name = "distance" if metric == "learned" else "l2_distance"
    out.attrs = {
        "long_name": "AtmoDist learned distance"
        if metric == "learned"
        else "mean squared difference of normalised fields",
        "units": "1",
        **provenance(pa.model, metric=metric),
    }
    return out


def embed(
    a: xr.Dataset | xr.DataArray,
    *,
    model: str | Model | None = None,
    pool: str = "mean",
    variables: Mapping | Sequence | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    channel_dim: Hashable | None = None,
) -> xr.DataArray:
    """Encoder features of each field.

    Parameters
    ----------
    a : Dataset or DataArray
        Fields with the model's variables.
    model : str, path or Model, optional
        Encoder (default: ``xatmodist.zoo.DEFAULT_ENCODER``).
    pool : {"mean", "tile", "none"}
        ``"mean"``: one feature vector per field (dim ``feature``);
        ``"tile"``: one per patch (``patch_lat``, ``patch_lon``, ``feature``);
        ``"none"``: the feature grid, patches side by side (``feature_lat``,
        ``feature_lon``, ``feature``; each cell covers ``r x r`` grid points,
        r = the encoder's reduction).
    variables, spatial_dims, channel_dim
        As in :func:`distance`.

    Returns
    -------
    DataArray
        Lazy if the input was dask-backed.
    """
    pools = ("mean", "tile", "none")
    if pool not in pools:
        raise InputError(f"pool must be one of {pools}; got {pool!r}.")
    p = prepare(a, model, variables, spatial_dims, channel_dim)
    return embed_prepared(p, pool)


def embed_prepared(p: Prepared, pool: str) -> xr.DataArray:
    """:func:`embed` of an input already resolved by :func:`xatmodist._apply.prepare`."""
    net = p.model.module
    nf = net.encoder.out_channels
    ny, nx = p.tiling.shape
    g = p.tiling.patch // net.encoder.reduction
    dims = {
        "mean": ["feature"],
        "tile": ["patch_lat", "patch_lon", "feature"],
        "none": ["feature_lat", "feature_lon", "feature"],
    }[pool]
    sizes = {
        "feature": nf,
        "patch_lat": ny,
        "patch_lon": nx,
        "feature_lat": ny * g,
        "feature_lon": nx * g,
    }
    out = apply(
        embed_kernel, [p], out_core_dims=dims, output_sizes={d: sizes[d] for d in dims}, pool=pool
    )
    if pool == "tile":
        out = out.assign_coords(tile_centres(p))
    out = out.assign_coords(feature=range(nf))
    out.name = "features"
    out.attrs = {"long_name": "AtmoDist encoder features", **provenance(p.model, pool=pool)}
    return out
