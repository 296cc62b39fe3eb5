"""Skill scores of a prediction against the truth on a latitude/longitude grid.

:func:`rmse` is the ``cos(lat)``-weighted root-mean-square error (xarray's
weighted mean: any dask chunking); :func:`spectral_error` compares zonal power spectra from
:func:`~xatmodist.metrics.zonal_power_spectrum` over a band of wavenumbers
(e.g. the band a downscaling model should super-resolve).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from .._grid import degrees, latlon_dims
from .._validate import check_dataarray, check_same_grid
from ..errors import InputError
from .spectra import WAVENUMBER, as_dims, band_means, zonal_power_spectrum

__all__ = ["rmse", "spectral_error"]


def rmse(
    a: xr.DataArray,
    b: xr.DataArray,
    *,
    lat: Hashable | None = None,
    lon: Hashable | None = None,
    dim: Hashable | Sequence[Hashable] | None = None,
    weighted: bool = True,
    skipna: bool = True,
) -> xr.DataArray:
    r"""Latitude-weighted root-mean-square error.

    .. math::

        \mathrm{RMSE} = \sqrt{\frac{\sum_i w_i (a_i - b_i)^2}{\sum_i w_i}},
        \qquad w_i = \cos\varphi_i,

    over latitude, longitude and the dimensions ``dim``, computed as xarray's
    weighted mean, which reduces dask arrays of any chunking (the result is
    :func:`xskillscore.rmse`'s with the same weights, which needs every reduced
    dim in one chunk).

    Parameters
    ----------
    a, b : xarray.DataArray
        Prediction and truth on the same latitude/longitude grid (degrees);
        other dimensions are broadcast against each other.
    lat, lon : hashable, optional
        Names of the latitude and longitude dimensions; found from CF
        attributes or usual names when not given.
    dim : hashable or sequence of hashable, optional
        Non-spatial dimensions to reduce over as well.  Default ``None``
        reduces over all of them (as xskillscore's ``dim=None``); ``dim=[]``
        gives one RMSE per field.
    weighted : bool, default True
        Weight by ``cos(lat)`` (area on a regular grid).  False gives every
        grid point the same weight.
    skipna : bool, default True
        Ignore points where ``a`` or ``b`` is NaN.

    Returns
    -------
    xarray.DataArray
        RMSE with the dimensions not reduced, in the units of ``a``.  Lazy
        for dask input.

    Raises
    ------
    InputError
        If an input is not a DataArray, latitude/longitude cannot be found or
        have no coordinates, or ``dim`` names an unknown or spatial dim.
    GridError
        If ``a`` and ``b`` are on different grids.

    Examples
    --------
    A constant offset of 2 K gives an RMSE of 2 K:

    >>> import numpy as np
    >>> import xarray as xr
    >>> from xatmodist.metrics import rmse
    >>> truth = xr.DataArray(
    ...     np.random.default_rng(0).normal(280.0, 5.0, (3, 19, 36)),
    ...     dims=("time", "lat", "lon"),
    ...     coords={"lat": np.linspace(-90, 90, 19), "lon": np.arange(0, 360, 10.0)},
    ...     attrs={"units": "K"},
    ... )
    >>> r = rmse(truth + 2.0, truth)
    >>> round(float(r), 6), r.attrs["units"]
    (2.0, 'K')
    >>> rmse(truth + 2.0, truth, dim=[]).dims
    ('time',)
    """
    check_dataarray(a, "a")
    check_dataarray(b, "b")
    lat, lon = latlon_dims(a, lat=lat, lon=lon)
    latlon_dims(b, lat=lat, lon=lon)
    check_same_grid(a, b, [lat, lon])
    a, b = xr.broadcast(a, b)  # xskillscore needs every reduced dim in both
    extra = as_dims(dim, a)
    if extra is None:
        extra = [d for d in a.dims if d not in (lat, lon)]
    bad = [d for d in extra if d in (lat, lon)]
    if bad:
        raise InputError(
            f"dim={dim!r} names the spatial dimension(s) {bad!r}; dim lists the extra "
            "dimensions to reduce over, latitude and longitude always are."
        )
    reduce = [lat, lon, *extra]
    if weighted:
        coslat = np.cos(np.deg2rad(degrees(a, lat, kind="latitude"))).clip(0.0, None)
        weights = xr.DataArray(coslat, dims=[lat])
    else:
        weights = xr.DataArray(np.ones(a.sizes[lat]), dims=[lat])
    out = np.sqrt(((a - b) ** 2).weighted(weights).mean(reduce, skipna=skipna))
    name = a.attrs.get("long_name", a.name)
    out.attrs = {
        "long_name": ("Latitude-weighted " if weighted else "")
        + "root-mean-square error"
        + (f" of {name}" if name is not None else ""),
    }
    if "units" in a.attrs:
        out.attrs["units"] = a.attrs["units"]
    return out.rename(a.name)


def spectral_error(
    pred: xr.DataArray,
    truth: xr.DataArray,
    *,
    k_min: int,
    k_max: int,
    dim: Hashable | Sequence[Hashable] | None = None,
    lat: Hashable | None = None,
    lon: Hashable | None = None,
) -> xr.DataArray:
    r"""Mean absolute log ratio of zonal power spectra over a wavenumber band.

    .. math::

        E = \frac{1}{k_{max} - k_{min} + 1}\sum_{k=k_{min}}^{k_{max}}
            \left|\ln\frac{P^{pred}_k}{P^{truth}_k}\right|

    with latitude-averaged spectra from :func:`zonal_power_spectrum`; 0 for
    a perfect spectrum, :math:`\ln 4` when the prediction's amplitude is
    twice (or half) the truth's at every wavenumber.  Use the band that a
    downscaling model has to create, e.g. from the coarse grid's Nyquist
    wavenumber to the fine grid's.

    Parameters
    ----------
    pred, truth : xarray.DataArray
        Prediction and truth on the same latitude/longitude grid.
    k_min, k_max : int
        Inclusive band of zonal wavenumbers, ``0 <= k_min <= k_max <= N // 2``.
    dim : hashable or sequence of hashable, optional
        Non-spatial dimensions over which the spectra are averaged before
        they are compared (averaging first makes the ratio far less noisy).
        Default ``None`` averages over all of them; ``dim=[]`` gives one
        error per field.
    lat, lon : hashable, optional
        Names of the latitude and longitude dimensions.

    Returns
    -------
    xarray.DataArray
        Dimensionless error with the dims not averaged over.  It is ``inf``
        where one spectrum is zero in the band and the other is not.

    Raises
    ------
    InputError
        If the band is invalid, or as for :func:`zonal_power_spectrum`.
    GridError
        If the two inputs are on different grids, or as for
        :func:`zonal_power_spectrum`.
    ChunkError
        As for :func:`zonal_power_spectrum`.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from xatmodist.metrics import spectral_error
    >>> truth = xr.DataArray(
    ...     np.random.default_rng(0).normal(size=(2, 9, 72)),
    ...     dims=("time", "lat", "lon"),
    ...     coords={"lat": np.linspace(-80, 80, 9), "lon": np.arange(0, 360, 5.0)},
    ... )
    >>> float(spectral_error(truth, truth, k_min=10, k_max=36))
    0.0
    >>> f"{float(spectral_error(2 * truth, truth, k_min=10, k_max=36)):.4f}"  # ln 4
    '1.3863'
    """
    check_dataarray(pred, "pred")
    check_dataarray(truth, "truth")
    lat, lon = latlon_dims(truth, lat=lat, lon=lon)
    latlon_dims(pred, lat=lat, lon=lon)
    check_same_grid(pred, truth, [lat, lon])
    for name, k in (("k_min", k_min), ("k_max", k_max)):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise InputError(f"{name} must be a non-negative integer wavenumber; got {k!r}.")
    if k_min > k_max:
        raise InputError(f"Expected k_min <= k_max; got k_min={k_min}, k_max={k_max}.")
    kw = {"lat": lat, "lon": lon, "average_lat": True}
    p_pred = zonal_power_spectrum(pred, **kw)
    p_truth = zonal_power_spectrum(truth, **kw)
    k_top = p_truth.sizes[WAVENUMBER] - 1
    if k_max > k_top:
        raise InputError(
            f"k_max={k_max} is above the largest zonal wavenumber {k_top} of a grid with "
            f"{truth.sizes[lon]} longitudes. Choose k_max <= {k_top}."
        )
    p_pred, p_truth = band_means(p_pred, p_truth, dim, WAVENUMBER, k_min, k_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.abs(np.log(p_pred / p_truth)).mean(WAVENUMBER)
    err = err.drop_vars("wavelength", errors="ignore")
    err.attrs = {
        "long_name": f"mean absolute log ratio of zonal power spectra, k = {k_min}..{k_max}",
        "units": "1",
        "k_min": int(k_min),
        "k_max": int(k_max),
    }
    return err.rename(None)
