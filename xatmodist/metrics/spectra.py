"""Zonal power spectra of fields on a regular latitude/longitude grid.

The wrapper functions own dimensions, coordinates and attributes; the array
kernel :func:`_power_kernel` owns the FFT.  Spectra are computed with
``xr.apply_ufunc(dask="parallelized")``, so dask-backed input stays lazy.

Latitude/longitude discovery, degrees and the seam rule come from
:mod:`xatmodist._grid` (the other metrics modules import them from there too).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from .._grid import describe, latlon_dims
from .._validate import check_core_chunks, check_dataarray, check_radius, check_same_grid
from ..derive import EARTH_RADIUS
from ..errors import GridError, InputError

__all__ = ["zonal_power_spectrum", "kinetic_energy_spectrum", "EARTH_RADIUS"]

WAVENUMBER = "zonal_wavenumber"

#: Shape parameter of the Tukey window used for regional grids (fraction tapered).
TUKEY_ALPHA = 0.5

Window = Literal["auto", "tukey", "hann", "none"]


# --------------------------------------------------------------------------
# public functions


def zonal_power_spectrum(
    da: xr.DataArray,
    *,
    lon: Hashable | None = None,
    lat: Hashable | None = None,
    average_lat: bool = True,
    window: Window = "auto",
    radius: float = EARTH_RADIUS,
) -> xr.DataArray:
    r"""Power spectrum along longitude, per latitude circle or latitude-averaged.

    Each latitude circle ``x_0 .. x_{N-1}`` is Fourier transformed along
    longitude, :math:`X_k = \frac1N\sum_n x_n e^{-2\pi i kn/N}`, and the
    one-sided power is :math:`P_0 = |X_0|^2`, :math:`P_k = 2|X_k|^2` for
    :math:`0 < k < N/2` and :math:`P_{N/2} = |X_{N/2}|^2` (``N`` even).  With
    this normalisation Parseval's theorem reads

    .. math:: \sum_k P_k = \frac1N\sum_n x_n^2,

    i.e. the spectrum splits the mean square of the field along the circle
    into wavenumbers, and a wave :math:`A\cos(k\lambda)` has power
    :math:`A^2/2` at ``k``.

    Parameters
    ----------
    da : xarray.DataArray
        Field on a regular latitude/longitude grid (degrees), numpy- or
        dask-backed, with any further dimensions (time, level, ...).
    lon, lat : hashable, optional
        Names of the longitude and latitude dimensions; found from CF
        attributes or usual names when not given.
    average_lat : bool, default True
        Average the spectra of all latitude circles with ``cos(lat)``
        weights (circles containing NaN are skipped).  If False, keep one
        spectrum per latitude.
    window : {"auto", "tukey", "hann", "none"}, default "auto"
        Taper applied along longitude before the transform.  ``"auto"`` uses
        none on a global grid (the field is periodic) and a Tukey window
        (``alpha=0.5``) on a regional one.  When a window is used, the mean
        of each circle is removed before tapering and reported as
        :math:`P_0` = mean², and the power is divided by the mean square of
        the window, so Parseval holds approximately rather than exactly.
    radius : float, default 6.37122e6
        Radius of the sphere in metres, for the ``wavelength`` coordinate.

    Returns
    -------
    xarray.DataArray
        Power with the non-spatial dims of ``da`` (and ``lat`` if
        ``average_lat=False``) plus ``zonal_wavenumber``: integer ``k``, the
        number of cycles per latitude circle on a global grid, or per domain
        width ``N * dlon`` on a regional grid.  Coordinate ``wavelength`` (m)
        is :math:`2\pi a\cos\varphi / k` scaled by the covered fraction of the
        circle, per latitude; after averaging over latitude it is given at
        the equator (:math:`\cos\varphi = 1`).  It is ``inf`` at ``k = 0``.
        Attributes: ``units`` (the input's units squared), ``long_name``,
        ``window`` and ``normalisation``.  float32 for float32 input,
        float64 otherwise; lazy for dask input.

    Raises
    ------
    InputError
        If ``da`` is not a DataArray, or latitude/longitude cannot be found
        or have no coordinate values.
    GridError
        If longitude is not a regular grid, or latitude is outside
        [-90, 90].
    ChunkError
        If a dask-backed ``da`` has several chunks along longitude.

    See Also
    --------
    kinetic_energy_spectrum, spectral_error

    Examples
    --------
    A wave of amplitude 3 and wavenumber 4 has power 3**2 / 2 at k = 4:

    >>> import numpy as np
    >>> import xarray as xr
    >>> from xatmodist.metrics import zonal_power_spectrum
    >>> lat = np.linspace(-80.0, 80.0, 9)
    >>> lon = np.arange(0.0, 360.0, 5.0)
    >>> wave = xr.DataArray(
    ...     3.0 * np.cos(4 * np.deg2rad(lon)) + 0 * lat[:, None],
    ...     dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, attrs={"units": "K"},
    ... )
    >>> p = zonal_power_spectrum(wave)
    >>> float(p.sel(zonal_wavenumber=4))
    4.5
    >>> p.attrs["units"]
    'K2'
    >>> f"{float(p.wavelength.sel(zonal_wavenumber=4)):.4g} m"  # at the equator
    '1.001e+07 m'
    """
    check_dataarray(da, "da")
    radius = check_radius(radius)
    grid = describe(da, lat=lat, lon=lon, require_coords=True)
    lat, lon, lat_deg = grid.lat, grid.lon, grid.lat_deg
    if grid.nlon < 2:
        raise GridError(
            f"A zonal spectrum needs at least 2 longitudes; {lon!r} has {grid.nlon}. Pass a "
            "field with several longitudes, or name the longitude dim with lon=...."
        )
    da = grid.drop_seam(da)  # a repeated seam column: dropped, the grid is periodic
    n, width, is_global = grid.nlon_unique, float(np.deg2rad(grid.width_deg)), grid.is_global
    taper = _window(window, n, is_global)
    check_core_chunks(da, [lon])

    dtype = np.dtype(np.float32 if da.dtype == np.float32 else np.float64)
    nk = n // 2 + 1
    power = xr.apply_ufunc(
        _power_kernel,
        da,
        input_core_dims=[[lon]],
        output_core_dims=[[WAVENUMBER]],
        dask="parallelized",
        dask_gufunc_kwargs={
            "output_sizes": {WAVENUMBER: nk},
            "meta": np.empty((0,) * da.ndim, dtype=dtype),
        },
        kwargs={"window": taper, "dtype": dtype},
    )
    k = np.arange(nk)
    coslat = xr.DataArray(np.cos(np.deg2rad(lat_deg)).clip(0.0, None), dims=lat)
    wn = xr.DataArray(k, dims=WAVENUMBER)
    with np.errstate(divide="ignore", invalid="ignore"):  # k = 0, poles
        if average_lat:
            if da.sizes[lat] > 1 and float(coslat.sum()) > 0:
                power = power.weighted(coslat.assign_coords({lat: da[lat]})).mean(lat)
            else:
                power = power.mean(lat)
            power = power.astype(dtype, copy=False)
            wavelength = xr.DataArray(radius * width / k, dims=WAVENUMBER)
            where = "at the equator"
        else:
            wavelength = (radius * width * coslat / wn).transpose(lat, WAVENUMBER)
            where = "along each latitude circle"
    power = power.assign_coords(
        {
            WAVENUMBER: wn.assign_attrs(
                long_name=f"zonal wavenumber (cycles per {'circle' if is_global else 'domain'})",
                units="1",
            ),
            "wavelength": wavelength.assign_attrs(long_name=f"wavelength {where}", units="m"),
        }
    )
    name = da.attrs.get("long_name", da.name)
    power.attrs = {
        "long_name": "Zonal power spectrum" + (f" of {name}" if name is not None else ""),
        "window": "none" if taper is None else taper_name(window),
        "normalisation": "sum over zonal_wavenumber equals the mean square along the "
        "latitude circle (Parseval)" + ("" if taper is None else ", approximately (windowed)"),
    }
    return like_square_of(power, da)


def kinetic_energy_spectrum(
    u: xr.DataArray,
    v: xr.DataArray,
    *,
    lon: Hashable | None = None,
    lat: Hashable | None = None,
    average_lat: bool = True,
    window: Window = "auto",
    radius: float = EARTH_RADIUS,
) -> xr.DataArray:
    r"""Zonal kinetic-energy spectrum :math:`E_k = \frac12 (P^u_k + P^v_k)`.

    Both power spectra come from :func:`zonal_power_spectrum` (same
    normalisation, so :math:`\sum_k E_k` is the mean kinetic energy per unit
    mass along the circle).

    Parameters
    ----------
    u, v : xarray.DataArray
        Eastward and northward wind (m s-1) on the same grid.
    lon, lat, average_lat, window, radius
        As for :func:`zonal_power_spectrum`.

    Returns
    -------
    xarray.DataArray
        Kinetic energy per zonal wavenumber, units ``m2 s-2`` (or the wind's
        units squared), with the coordinates of :func:`zonal_power_spectrum`.

    Raises
    ------
    InputError, GridError, ChunkError
        As for :func:`zonal_power_spectrum`; GridError also if ``u`` and
        ``v`` are on different grids.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from xatmodist.metrics import kinetic_energy_spectrum
    >>> lon = np.arange(0.0, 360.0, 10.0)
    >>> u = xr.DataArray(
    ...     [2.0 * np.cos(3 * np.deg2rad(lon))], dims=("lat", "lon"),
    ...     coords={"lat": [0.0], "lon": lon}, attrs={"units": "m s-1"},
    ... )
    >>> e = kinetic_energy_spectrum(u, 0 * u)
    >>> float(e.sel(zonal_wavenumber=3)), e.attrs["units"]
    (1.0, 'm2 s-2')
    """
    check_dataarray(u, "u")
    check_dataarray(v, "v")
    lat, lon = latlon_dims(u, lat=lat, lon=lon)
    check_same_grid(u, v, [lat, lon])
    kw: dict[str, Any] = {
        "lat": lat,
        "lon": lon,
        "average_lat": average_lat,
        "window": window,
        "radius": radius,
    }
    pu = zonal_power_spectrum(u, **kw)
    pv = zonal_power_spectrum(v, **kw)
    energy = 0.5 * (pu + pv)
    energy.attrs = dict(pu.attrs, long_name="Zonal kinetic energy spectrum")
    if "units" not in energy.attrs and "units" in v.attrs:
        energy.attrs["units"] = squared_units(v.attrs["units"])
    return energy.rename("kinetic_energy")


# --------------------------------------------------------------------------
# array kernel


def _power_kernel(x: np.ndarray, *, window: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    """One-sided power of the last axis, normalised so that Parseval holds."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    mean = None
    if window is not None:
        mean = x.mean(axis=-1)
        x = (x - mean[..., None]) * window
    spec = np.fft.rfft(x, axis=-1) / n
    power = spec.real**2 + spec.imag**2
    power[..., 1 : (n + 1) // 2] *= 2.0  # the negative wavenumbers, folded over
    if window is not None:
        power /= np.mean(window**2)
        power[..., 0] = mean**2
    return power.astype(dtype, copy=False)


# --------------------------------------------------------------------------
# helpers shared by the metrics modules


def like_square_of(out: xr.DataArray, da: xr.DataArray) -> xr.DataArray:
    """``out`` (a quantity in ``da``'s units squared) named as ``da``, with those units.

    Sets ``out.attrs["units"]`` (where ``da`` has units) and returns it renamed.
    """
    if "units" in da.attrs:
        out.attrs["units"] = squared_units(da.attrs["units"])
    return out.rename(da.name)


def squared_units(units: str) -> str:
    """CF units string of a squared quantity: ``'m s-1'`` -> ``'m2 s-2'``."""
    text = str(units).strip()
    if text in ("", "1"):
        return text
    out = []
    for token in text.split():
        m = re.fullmatch(r"([A-Za-z%]+)(?:\^|\*\*)?(-?\d+)?", token)
        if m is None:
            return f"({text})2"
        out.append(f"{m.group(1)}{2 * int(m.group(2) or 1)}")
    return " ".join(out)


def _window(window: str, n: int, is_global: bool) -> np.ndarray | None:
    if window not in ("auto", "tukey", "hann", "none"):
        raise InputError(
            f"window must be one of 'auto', 'tukey', 'hann' or 'none'; got {window!r}."
        )
    if window == "none" or (window == "auto" and is_global):
        return None
    from scipy.signal import windows

    if window == "hann":
        return windows.hann(n, sym=False)
    return windows.tukey(n, alpha=TUKEY_ALPHA, sym=False)


def taper_name(window: str) -> str:
    """Human-readable description of the taper, for attrs."""
    if window == "hann":
        return "hann (mean removed first)"
    return f"tukey(alpha={TUKEY_ALPHA}) (mean removed first)"


def band_means(
    p_pred: xr.DataArray,
    p_truth: xr.DataArray,
    dim: Hashable | Sequence[Hashable] | None,
    wavenumber: Hashable,
    k_min: int,
    k_max: int,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Two spectra over wavenumbers ``k_min..k_max`` (inclusive), averaged over ``dim``.

    ``dim=None`` averages over every dim but the wavenumber.
    """
    both = xr.broadcast(p_pred, p_truth)[0]
    averaged = as_dims(dim, both)
    if averaged is None:
        averaged = [d for d in both.dims if d != wavenumber]
    if wavenumber in averaged:
        raise InputError(f"dim={dim!r} must name non-spatial input dimensions only.")
    band = {wavenumber: slice(k_min, k_max)}
    return (
        p_pred.sel(band).mean([d for d in averaged if d in p_pred.dims]),
        p_truth.sel(band).mean([d for d in averaged if d in p_truth.dims]),
    )


def as_dims(dim: str | Hashable | Sequence[Hashable] | None, obj: xr.DataArray) -> list | None:
    """Normalise a ``dim`` argument to a list (``None`` stays ``None``)."""
    if dim is None:
        return None
    if isinstance(dim, str) or not isinstance(dim, Sequence):
        dims = [dim]
    else:
        dims = list(dim)
    missing = [d for d in dims if d not in obj.dims]
    if missing:
        raise InputError(
            f"dim={dim!r} names {missing!r}, which are not dimensions of the input "
            f"{tuple(obj.dims)!r}."
        )
    return dims
