"""Evaluation metrics for fields on a latitude/longitude grid (numpy/xarray only).

Meant for judging downscaling and inpainting against the truth with
well-understood, self-describing quantities:

- :func:`zonal_power_spectrum` and :func:`kinetic_energy_spectrum`: spectra
  along longitude with ``zonal_wavenumber`` and ``wavelength`` coordinates;
- :func:`radial_power_spectrum` (2-D DCT, Denis et al. 2002) and
  :func:`log_spectral_distance` for limited-area (regional) grids;
- :func:`semivariogram`: the empirical semivariogram over great-circle
  distance;
- :func:`rmse`: latitude-weighted RMSE;
- :func:`spectral_error`: mean absolute log ratio of spectra over a band of
  wavenumbers.

All work on numpy- or dask-backed :class:`xarray.DataArray` objects and stay
lazy on dask input.
"""

from .radial import log_spectral_distance, radial_power_spectrum
from .skill import rmse, spectral_error
from .spectra import EARTH_RADIUS, kinetic_energy_spectrum, zonal_power_spectrum
from .variogram import semivariogram

__all__ = [
    "EARTH_RADIUS",
    "kinetic_energy_spectrum",
    "log_spectral_distance",
    "radial_power_spectrum",
    "rmse",
    "semivariogram",
    "spectral_error",
    "zonal_power_spectrum",
]
