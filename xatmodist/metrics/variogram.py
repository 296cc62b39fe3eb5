"""Empirical semivariogram over great-circle distance on the sphere.

Random point pairs are drawn once per grid by :func:`_sample_pairs` (index
maths only, no data), then :func:`_binned_squared_differences` (the array
kernel) sums squared differences per distance bin for every field.  The
wrapper pools the sums over the requested dimensions and owns coordinates
and attributes; dask-backed input stays lazy.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import NamedTuple

import numpy as np
import xarray as xr

from .._grid import degrees, latlon_dims
from .._validate import check_core_chunks, check_dataarray, check_radius, positive_float
from ..derive import EARTH_RADIUS
from ..errors import InputError
from .spectra import as_dims, like_square_of

__all__ = ["semivariogram"]

DISTANCE = "distance"


class Pairs(NamedTuple):
    """Random point pairs on a lat/lon grid: flat (row-major) indices and distance."""

    first: np.ndarray
    second: np.ndarray
    angle: np.ndarray  # central angle in radians


def semivariogram(
    da: xr.DataArray,
    *,
    bins: int | Sequence[float] = 20,
    max_distance: float | None = None,
    n_pairs: int = 20000,
    seed: int = 0,
    dim: Hashable | Sequence[Hashable] | None = None,
    lat: Hashable | None = None,
    lon: Hashable | None = None,
    radius: float = EARTH_RADIUS,
) -> xr.DataArray:
    r"""Empirical semivariogram :math:`\gamma(h) = \frac12 E[(z(x) - z(y))^2]`.

    ``h`` is the great-circle (haversine) distance between ``x`` and ``y``.
    The expectation is estimated from ``n_pairs`` random pairs of grid
    points, drawn with probability proportional to ``cos(lat)`` (the area a
    point of a regular grid stands for) and binned by distance.  The pairs
    depend only on the grid, ``n_pairs`` and ``seed``, so every field on the
    same grid is evaluated on the same pairs and two semivariograms are
    directly comparable.

    Parameters
    ----------
    da : xarray.DataArray
        Field(s) with 1-D latitude and longitude coordinates in degrees (the
        grid need not be regular or global), numpy- or dask-backed.
    bins : int or sequence of float, default 20
        Number of equal-width distance bins from 0 to ``max_distance``, or
        the bin edges in metres (increasing; then ``max_distance`` must not
        be given).
    max_distance : float, optional
        Largest distance in metres.  Default: half the largest distance
        among the sampled pairs (the usual rule for variograms).  Pairs
        farther apart are not used.
    n_pairs : int, default 20000
        Number of random point pairs.
    seed : int, default 0
        Seed of the pair sampler.
    dim : hashable or sequence of hashable, optional
        Non-spatial dimensions to pool over (the squared differences of all
        fields along them enter one estimate per bin).  Default ``None``
        pools over all of them, as xskillscore's ``dim=None``; ``dim=[]``
        gives one semivariogram per field.
    lat, lon : hashable, optional
        Names of the latitude and longitude dimensions; found from CF
        attributes or usual names when not given.
    radius : float, default 6.37122e6
        Radius of the sphere in metres.

    Returns
    -------
    xarray.DataArray
        :math:`\gamma` with the dims of ``da`` not pooled over, plus
        ``distance`` (bin centres in m).  Coordinate ``n_pairs`` along
        ``distance`` counts the sampled pairs per bin.  Pairs with a NaN are
        ignored; a bin without any valid pair is NaN.  Attributes: ``units``
        (the input's units squared) and ``long_name``.  Lazy for dask input.

    Raises
    ------
    InputError
        If ``da`` is not a DataArray, latitude/longitude cannot be found or
        have no coordinates, ``dim`` names a spatial or unknown dimension, or
        ``bins``, ``max_distance`` or ``n_pairs`` are invalid.
    GridError
        If latitude is outside [-90, 90].
    ChunkError
        If a dask-backed ``da`` has several chunks along latitude or
        longitude.

    Examples
    --------
    White noise of variance 4 has :math:`\gamma \approx 4` at every distance:

    >>> import numpy as np
    >>> import xarray as xr
    >>> from xatmodist.metrics import semivariogram
    >>> noise = xr.DataArray(
    ...     np.random.default_rng(0).normal(0.0, 2.0, (4, 36, 72)),
    ...     dims=("time", "lat", "lon"),
    ...     coords={"lat": np.arange(-87.5, 90, 5.0), "lon": np.arange(0, 360, 5.0)},
    ... )
    >>> g = semivariogram(noise, bins=5)
    >>> g.dims, g.distance.attrs["units"]
    (('distance',), 'm')
    >>> bool(abs(g.isel(distance=slice(1, None)) - 4.0).max() < 0.3)
    True
    """
    check_dataarray(da, "da")
    radius = check_radius(radius)
    lat, lon = latlon_dims(da, lat=lat, lon=lon)
    lat_deg = degrees(da, lat, kind="latitude")
    lon_deg = degrees(da, lon, kind="longitude")
    other = [d for d in da.dims if d not in (lat, lon)]
    pooled = as_dims(dim, da)
    if pooled is None:
        pooled = other
    bad = [d for d in pooled if d in (lat, lon)]
    if bad:
        raise InputError(
            f"dim={dim!r} names the spatial dimension(s) {bad!r}; dim lists the non-spatial "
            f"dimensions to pool over (any of {other!r}), the spatial ones always are."
        )
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise InputError(f"n_pairs must be a positive integer; got {n_pairs!r}.")
    if lat_deg.size * lon_deg.size < 2:
        raise InputError(
            f"A semivariogram needs at least two grid points; the grid is "
            f"{lat_deg.size} x {lon_deg.size}."
        )
    check_core_chunks(da, [lat, lon])

    pairs = _sample_pairs(lat_deg=lat_deg, lon_deg=lon_deg, n_pairs=int(n_pairs), seed=seed)
    distance = pairs.angle * radius
    edges = _bin_edges(bins, max_distance, distance)
    which = np.searchsorted(edges, distance, side="right") - 1
    which[distance == edges[-1]] = edges.size - 2  # the last edge belongs to the last bin
    keep = (which >= 0) & (which < edges.size - 1)
    n_bins = edges.size - 1
    kwargs = {
        "first": pairs.first[keep],
        "second": pairs.second[keep],
        "bin_index": which[keep],
        "n_bins": n_bins,
    }
    sums, counts = xr.apply_ufunc(
        _binned_squared_differences,
        da,
        input_core_dims=[[lat, lon]],
        output_core_dims=[[DISTANCE], [DISTANCE]],
        dask="parallelized",
        dask_gufunc_kwargs={
            "output_sizes": {DISTANCE: n_bins},
            "meta": (np.empty((0,) * (da.ndim - 1)),) * 2,
        },
        kwargs=kwargs,
    )
    sums = sums.sum(pooled)
    counts = counts.sum(pooled)
    gamma = 0.5 * sums / counts.where(counts > 0)
    gamma = gamma.assign_coords(
        {
            DISTANCE: xr.DataArray(
                0.5 * (edges[:-1] + edges[1:]),
                dims=DISTANCE,
                attrs={"long_name": "great-circle distance (bin centre)", "units": "m"},
            ),
            "n_pairs": xr.DataArray(
                np.bincount(which[keep], minlength=n_bins),
                dims=DISTANCE,
                attrs={"long_name": "number of sampled point pairs in the bin"},
            ),
        }
    )
    name = da.attrs.get("long_name", da.name)
    gamma.attrs = {
        "long_name": "Semivariogram" + (f" of {name}" if name is not None else ""),
        "estimator": f"half the mean squared difference over {int(n_pairs)} random "
        f"area-weighted point pairs (seed={seed}), pooled over {list(pooled)!r}",
    }
    return like_square_of(gamma, da)


# --------------------------------------------------------------------------
# index maths and array kernel


def _sample_pairs(*, lat_deg: np.ndarray, lon_deg: np.ndarray, n_pairs: int, seed: int) -> Pairs:
    """Draw ``n_pairs`` pairs of distinct grid points, area-weighted.

    Rows are drawn with probability proportional to ``cos(lat)`` and columns
    uniformly; indices are flat row-major indices into the (lat, lon) grid.
    """
    rng = np.random.default_rng(seed)
    nlat, nlon = lat_deg.size, lon_deg.size
    weight = np.cos(np.deg2rad(lat_deg)).clip(0.0, None)
    if np.count_nonzero(weight) * nlon < 2:
        weight = np.ones(nlat)  # e.g. only polar rows: fall back to uniform
    p = weight / weight.sum()

    def draw(size: int) -> np.ndarray:
        return rng.choice(nlat, size=size, p=p) * nlon + rng.integers(0, nlon, size=size)

    first, second = draw(n_pairs), draw(n_pairs)
    for _ in range(100):  # redraw the (rare) pairs of a point with itself
        same = first == second
        if not same.any():
            break
        second[same] = draw(int(same.sum()))
    else:  # pragma: no cover - only on degenerate grids
        keep = first != second
        first, second = first[keep], second[keep]

    phi1, phi2 = np.deg2rad(lat_deg[first // nlon]), np.deg2rad(lat_deg[second // nlon])
    dlam = np.deg2rad(lon_deg[second % nlon] - lon_deg[first % nlon])
    hav = np.sin(0.5 * (phi2 - phi1)) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(0.5 * dlam) ** 2
    angle = 2.0 * np.arcsin(np.sqrt(np.clip(hav, 0.0, 1.0)))
    return Pairs(first, second, angle)


def _bin_edges(
    bins: int | Sequence[float], max_distance: float | None, distance: np.ndarray
) -> np.ndarray:
    """Bin edges in metres from ``bins`` and ``max_distance``."""
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise InputError(f"bins must be a positive number of bins or edges; got {bins!r}.")
        if max_distance is None:
            top = 0.5 * float(distance.max()) if distance.size else 0.0
        else:
            top = positive_float(
                max_distance,
                f"max_distance must be a positive number of metres; got {max_distance!r}.",
            )
        if top <= 0:
            raise InputError("All sampled pairs are at distance 0; the grid is degenerate.")
        return np.linspace(0.0, top, int(bins) + 1)
    if max_distance is not None:
        raise InputError(
            "Pass either bin edges (bins=[...]) or a number of bins with max_distance=..., "
            f"not both; got bins={bins!r} and max_distance={max_distance!r}."
        )
    try:
        edges = np.asarray(bins, dtype=np.float64)
    except (TypeError, ValueError):
        edges = np.array([np.nan])
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)):
        raise InputError(
            f"bins must be a number of bins or at least two finite bin edges in metres; "
            f"got {bins!r}."
        )
    if edges[0] < 0 or np.any(np.diff(edges) <= 0):
        raise InputError(
            f"Bin edges must be non-negative and strictly increasing; got {edges.tolist()!r}."
        )
    return edges


def _binned_squared_differences(
    x: np.ndarray,
    *,
    first: np.ndarray,
    second: np.ndarray,
    bin_index: np.ndarray,
    n_bins: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin sum of squared pair differences and count of valid pairs.

    ``x`` is (..., lat, lon); both outputs are (..., n_bins).
    """
    flat = np.asarray(x, dtype=np.float64).reshape(*x.shape[:-2], -1)
    diff = flat[..., first] - flat[..., second]
    sq = diff * diff
    valid = np.isfinite(sq)
    onehot = np.zeros((bin_index.size, n_bins))
    onehot[np.arange(bin_index.size), bin_index] = 1.0
    sums = np.where(valid, sq, 0.0) @ onehot
    counts = valid.astype(np.float64) @ onehot
    return sums, counts
