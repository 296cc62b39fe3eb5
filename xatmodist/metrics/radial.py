"""Spectra of limited-area (regional) fields: the 2-D DCT of Denis et al. (2002).

A regional field is not periodic, so a zonal Fourier transform sees the jump
between its edges as power at every wavenumber.  The discrete cosine
transform (DCT-II) mirrors the field at its edges instead, and the variance
of its coefficients, binned by their total wavenumber, is the spectrum used
for limited-area models (Denis, Côté and Laprise 2002, *Mon. Wea. Rev.* 130,
1812-1829).  :func:`log_spectral_distance` compares two such spectra (the
radially averaged log-spectral distance of the CORDEX ML downscaling
benchmark).

The wrappers own dims, coordinates and attributes; :func:`_radial_kernel`
owns the transform; ``xr.apply_ufunc(dask="parallelized")`` keeps dask input
lazy (latitude and longitude must each be one chunk).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from .._grid import describe, latlon_dims
from .._validate import check_core_chunks, check_dataarray, check_same_grid
from ..derive import EARTH_RADIUS
from ..errors import GridError, InputError
from .spectra import band_means, like_square_of

__all__ = ["radial_power_spectrum", "log_spectral_distance"]

WAVENUMBER = "wavenumber"


def _bands(ny: int, nx: int) -> tuple[np.ndarray, int]:
    """Band index of each DCT coefficient (ny, nx) and the number of bands.

    ``alpha = sqrt((m/ny)^2 + (n/nx)^2)``; band ``k = round(alpha * min(ny, nx))``,
    at least 1 for every coefficient but the mean (band 0 holds the mean alone).
    """
    m = np.arange(ny)[:, None] / ny
    n = np.arange(nx)[None, :] / nx
    k = np.rint(np.sqrt(m**2 + n**2) * min(ny, nx)).astype(int)
    k = np.maximum(k, 1)
    k[0, 0] = 0
    return k, int(k.max()) + 1


def _radial_kernel(x: np.ndarray, *, bands: np.ndarray, n_bands: int) -> np.ndarray:
    """(..., ny, nx) fields -> (..., n_bands) variance per band (sums to the mean square)."""
    from scipy.fft import dctn

    lead, (ny, nx) = x.shape[:-2], x.shape[-2:]
    flat = x.reshape((-1, ny, nx)).astype(np.float64)
    if flat.shape[0] == 0:
        return np.zeros(lead + (n_bands,))
    coef = dctn(flat, type=2, norm="ortho", axes=(-2, -1))
    var = coef**2 / (ny * nx)
    out = np.zeros((flat.shape[0], n_bands))
    for i in range(flat.shape[0]):
        out[i] = np.bincount(bands.ravel(), weights=var[i].ravel(), minlength=n_bands)
    out[~np.isfinite(flat).all(axis=(1, 2))] = np.nan
    return out.reshape(lead + (n_bands,))


def _spacing_km(da: xr.DataArray, lat: Hashable, lon: Hashable, radius: float) -> float:
    """Geometric mean of the meridional and (mid-latitude) zonal grid spacing, km."""
    grid = describe(da, lat=lat, lon=lon, require_coords=True)
    if grid.nlat < 2 or grid.nlon < 2:
        raise GridError(
            f"A spectrum needs at least 2 points along {lat!r} and {lon!r}; got "
            f"{grid.nlat} x {grid.nlon}."
        )
    return grid.spacing_km(radius)


def radial_power_spectrum(
    da: xr.DataArray,
    *,
    lat: Hashable | None = None,
    lon: Hashable | None = None,
    radius: float = EARTH_RADIUS,
) -> xr.DataArray:
    r"""Variance spectrum of each field from its 2-D DCT, radially binned (Denis et al. 2002).

    Each field :math:`x_{ij}` (``ny x nx``) is transformed with the
    orthonormal DCT-II, :math:`F = \mathrm{DCT}(x)`; the coefficient
    :math:`(m, n)` carries the variance :math:`\sigma^2_{mn} = F_{mn}^2 / (n_y
    n_x)` at the normalised wavenumber :math:`\alpha = \sqrt{(m/n_y)^2 +
    (n/n_x)^2}`.  Coefficients are summed in bands ``k = round(alpha *
    min(ny, nx))`` (band 0 holds the squared mean alone), so Parseval's
    theorem reads

    .. math:: \sum_k P_k = \frac{1}{n_y n_x}\sum_{ij} x_{ij}^2 .

    Band ``k`` has the wavelength :math:`\lambda_k = 2 L / k`, ``L`` the
    domain's shorter side (``min(ny, nx)`` grid spacings): a DCT fits half
    waves into the domain.  Bands above ``min(ny, nx)`` hold the corner
    coefficients (:math:`\alpha > 1`), which no direction of the grid resolves
    fully; compare spectra up to ``k = min(ny, nx)``.

    Parameters
    ----------
    da : xarray.DataArray
        Fields on a latitude/longitude grid (regional or global), numpy- or
        dask-backed, with any further dims.  Fields with NaN give NaN.
    lat, lon : hashable, optional
        Names of the latitude and longitude dims (found from CF attributes
        or usual names when not given).
    radius : float
        Sphere radius in metres, for the ``wavelength`` coordinate.

    Returns
    -------
    xarray.DataArray
        Variance per band over the non-spatial dims plus ``wavenumber``
        (band index ``k``), with coordinate ``wavelength`` (km; ``inf`` at
        ``k = 0``).  The grid spacing is the geometric mean of the meridional
        and the zonal spacing at the domain's mean latitude.  ``units`` are the
        input's squared.  float64; lazy for dask input.

    Raises
    ------
    InputError
        If ``da`` is not a real DataArray or latitude/longitude cannot be found
        or have no coordinates.
    ChunkError
        If a dask-backed ``da`` has several chunks along latitude or longitude.

    Examples
    --------
    A cosine of two half waves along 16 points (``cos(2 pi j / 16)`` sampled at
    the DCT's points) has all its variance, half its squared amplitude, in band 2:

    >>> import numpy as np
    >>> import xarray as xr
    >>> from xatmodist.metrics import radial_power_spectrum
    >>> j = np.arange(16)
    >>> wave = np.cos(np.pi * 2 * (j + 0.5) / 16) * np.ones((16, 1))
    >>> da = xr.DataArray(wave, dims=("lat", "lon"),
    ...                   coords={"lat": 30 + 0.25 * np.arange(16), "lon": 0.25 * j})
    >>> p = radial_power_spectrum(da)
    >>> int(p.argmax("wavenumber")), round(float(p.sum()), 6)
    (2, 0.5)
    """
    check_dataarray(da, "da")
    lat, lon = latlon_dims(da, lat=lat, lon=lon)
    check_core_chunks(da, [lat, lon])
    ny, nx = da.sizes[lat], da.sizes[lon]
    spacing = _spacing_km(da, lat, lon, radius)
    bands, n_bands = _bands(ny, nx)
    out = xr.apply_ufunc(
        _radial_kernel,
        da.drop_vars([c for c in da.coords if set(da[c].dims) & {lat, lon}]),
        input_core_dims=[[lat, lon]],
        output_core_dims=[[WAVENUMBER]],
        kwargs={"bands": bands, "n_bands": n_bands},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {WAVENUMBER: n_bands}},
    )
    k = np.arange(n_bands)
    with np.errstate(divide="ignore"):
        wavelength = np.where(k > 0, 2.0 * spacing * min(ny, nx) / np.maximum(k, 1), np.inf)
    out = out.assign_coords(
        {
            WAVENUMBER: (WAVENUMBER, k, {"long_name": "DCT band: half waves per shorter side"}),
            "wavelength": (WAVENUMBER, wavelength, {"units": "km", "long_name": "wavelength"}),
        }
    )
    out.attrs = {
        "long_name": "radially binned DCT variance spectrum (Denis et al. 2002)",
        "normalisation": "sum over wavenumber = mean square of the field",
    }
    return like_square_of(out, da)


def log_spectral_distance(
    pred: xr.DataArray,
    truth: xr.DataArray,
    *,
    lat: Hashable | None = None,
    lon: Hashable | None = None,
    dim: Hashable | Sequence[Hashable] | None = None,
    k_max: int | None = None,
) -> xr.DataArray:
    r"""Radially averaged log-spectral distance (dB) between prediction and truth.

    .. math::

        \mathrm{LSD} = \sqrt{\frac{1}{K}\sum_{k=1}^{K}
        \left(10 \log_{10} \frac{\bar P^{\,pred}_k}{\bar P^{\,truth}_k}\right)^2}

    with :math:`\bar P` the :func:`radial_power_spectrum` averaged over the
    dims ``dim`` (all non-spatial dims by default; ``dim=[]`` gives one value
    per field) and ``K = k_max`` (default ``min(ny, nx)``, the bands every
    direction resolves).  0 dB is a perfect spectrum; 3 dB is a factor 2 in
    power on average.  The mean (band 0) is left out.

    Parameters
    ----------
    pred, truth : xarray.DataArray
        Fields on the same grid.
    lat, lon : hashable, optional
        Latitude and longitude dims.
    dim : hashable or sequence, optional
        Non-spatial dims whose spectra are averaged before comparing.
    k_max : int, optional
        Highest band compared (1 <= k_max <= min(ny, nx)).

    Returns
    -------
    xarray.DataArray
        LSD in dB (``units="dB"``) over the dims not averaged.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from xatmodist.metrics import log_spectral_distance
    >>> rng = np.random.default_rng(0)
    >>> truth = xr.DataArray(rng.normal(size=(3, 20, 30)), dims=("time", "lat", "lon"),
    ...                      coords={"lat": np.arange(20.0), "lon": np.arange(30.0)})
    >>> float(log_spectral_distance(truth, truth))
    0.0
    >>> round(float(log_spectral_distance(2 * truth, truth)), 4)  # 10 log10(4)
    6.0206
    """
    check_dataarray(pred, "pred")
    check_dataarray(truth, "truth")
    lat, lon = latlon_dims(truth, lat=lat, lon=lon)
    latlon_dims(pred, lat=lat, lon=lon)
    check_same_grid(pred, truth, [lat, lon])
    kmax_default = min(truth.sizes[lat], truth.sizes[lon])
    if k_max is None:
        k_max = kmax_default
    if isinstance(k_max, bool) or not isinstance(k_max, int | np.integer):
        raise InputError(f"k_max must be an integer band; got {k_max!r}.")
    if not 1 <= k_max <= kmax_default:
        raise InputError(
            f"k_max={k_max} must be between 1 and min(ny, nx) = {kmax_default}, the bands every "
            "direction of the grid resolves."
        )
    p_pred = radial_power_spectrum(pred, lat=lat, lon=lon)
    p_truth = radial_power_spectrum(truth, lat=lat, lon=lon)
    p_pred, p_truth = band_means(p_pred, p_truth, dim, WAVENUMBER, 1, k_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_db = 10.0 * np.log10(p_pred / p_truth)
    out = np.sqrt((ratio_db**2).mean(WAVENUMBER))
    out = out.drop_vars("wavelength", errors="ignore")
    out.attrs = {
        "long_name": f"radially averaged log-spectral distance, bands 1..{k_max}",
        "units": "dB",
    }
    return out.rename(None)
