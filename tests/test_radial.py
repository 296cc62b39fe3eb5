"""Spectra for limited-area grids: the 2-D DCT spectrum and the log-spectral distance."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xatmodist import ChunkError, InputError
from xatmodist.metrics import log_spectral_distance, radial_power_spectrum
from xatmodist.testing import raise_if_dask_computes


def regional(values, lat0=15.0, lon0=200.0, step=2.5):
    ny, nx = values.shape[-2:]
    dims = ("time", "lat", "lon")[-values.ndim :]
    coords = {"lat": lat0 + step * np.arange(ny), "lon": lon0 + step * np.arange(nx)}
    return xr.DataArray(values, dims=dims, coords=coords, attrs={"units": "K"})


def test_parseval_on_random_fields():
    x = np.random.default_rng(0).normal(280.0, 5.0, (4, 25, 53))
    p = radial_power_spectrum(regional(x))
    np.testing.assert_allclose(p.sum("wavenumber").values, (x**2).mean(axis=(1, 2)), rtol=1e-12)
    # band 0 is the squared mean, the rest the variance
    np.testing.assert_allclose(p.isel(wavenumber=0).values, x.mean(axis=(1, 2)) ** 2, rtol=1e-12)
    np.testing.assert_allclose(
        p.isel(wavenumber=slice(1, None)).sum("wavenumber").values, x.var(axis=(1, 2)), rtol=1e-9
    )
    assert p.attrs["units"] == "K2"


@pytest.mark.parametrize("k", [1, 3, 7])
def test_analytic_wave_lands_in_its_band(k):
    """A DCT basis function with k half waves along the shorter (lat) side: all its
    variance, half its squared amplitude, in band k, whose wavelength is 2 L / k."""
    ny, nx = 16, 40
    i = np.arange(ny)
    wave = 3.0 * np.cos(np.pi * k * (i + 0.5) / ny)[:, None] * np.ones((1, nx))
    da = regional(wave, lat0=40.0, step=0.5)
    p = radial_power_spectrum(da)
    assert int(p.argmax("wavenumber")) == k
    np.testing.assert_allclose(float(p.isel(wavenumber=k)), 4.5, rtol=1e-12)
    np.testing.assert_allclose(float(p.sum()), 4.5, rtol=1e-12)
    dy = 6.37122e6 * np.deg2rad(0.5) / 1e3
    dx = dy * np.cos(np.deg2rad(da.lat.values.mean()))
    expect = 2 * np.sqrt(dx * dy) * ny / k
    np.testing.assert_allclose(float(p.wavelength.isel(wavenumber=k)), expect, rtol=1e-12)
    assert np.isinf(p.wavelength.isel(wavenumber=0))


def test_lazy_any_other_chunking_and_nan():
    x = np.random.default_rng(1).normal(size=(6, 17, 33))
    x[2, 3, 4] = np.nan
    da = regional(x)
    eager = radial_power_spectrum(da)
    assert np.isnan(eager.isel(time=2)).all() and np.isfinite(eager.isel(time=[0, 1, 3])).all()
    with raise_if_dask_computes():
        lazy = radial_power_spectrum(da.chunk(time=2))
    xr.testing.assert_identical(lazy.compute(), eager)
    with pytest.raises(ChunkError, match="lat"):
        radial_power_spectrum(da.chunk(lat=5))


def test_log_spectral_distance():
    rng = np.random.default_rng(2)
    truth = regional(rng.normal(size=(5, 25, 53)))
    assert float(log_spectral_distance(truth, truth)) == 0.0
    np.testing.assert_allclose(
        float(log_spectral_distance(2 * truth, truth)), 10 * np.log10(4), rtol=1e-12
    )
    smooth = truth.rolling(lon=5, center=True, min_periods=1).mean()
    per_field = log_spectral_distance(smooth, truth, dim=[])
    assert per_field.dims == ("time",) and (per_field > 1.0).all()
    assert per_field.attrs["units"] == "dB"
    with raise_if_dask_computes():
        lazy = log_spectral_distance(smooth.chunk(time=2), truth)
    np.testing.assert_allclose(float(lazy), float(log_spectral_distance(smooth, truth)))
    for bad in (0, 26, 2.5, True):
        with pytest.raises(InputError, match="k_max"):
            log_spectral_distance(smooth, truth, k_max=bad)
    with pytest.raises(InputError, match="not dimensions of the input"):
        log_spectral_distance(smooth, truth, dim="lat")
