"""Limited-area (regional) and Gaussian grids: every function on real regional files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import xatmodist
from xatmodist._validate import is_global
from xatmodist.testing import raise_if_dask_computes, synthetic_fields


@pytest.fixture
def era5_vd(shared_data):
    """ERA5 850 hPa vorticity/divergence on a 41 x 41 box at 0.25 deg, 24 hourly steps."""
    d = shared_data / "era5_pl_2020-01-01"
    u = xr.open_dataset(d / "u.nc").u.sel(level=850)
    v = xr.open_dataset(d / "v.nc").v.sel(level=850)
    return xatmodist.vorticity_divergence(u, v).load()


@pytest.fixture(autouse=True)
def _quiet_ood():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
        yield


def test_encoder_functions_on_a_regional_box(era5_vd, tiny_model):
    """No longitude wrap: the patches tile the box with overlaps, edges included."""
    assert not is_global(era5_vd, "longitude")
    first = era5_vd.isel(time=slice(0, -3))
    later = era5_vd.isel(time=slice(3, None)).assign_coords(time=first.time)
    d = xatmodist.distance(first, later, model=tiny_model)
    dmap = xatmodist.distance(first, later, model=tiny_model, spatial=True)
    assert np.isfinite(d).all() and dmap.sizes["patch_lat"] == 3 == dmap.sizes["patch_lon"]
    # patch centres lie inside the box
    lon = era5_vd.longitude.values
    assert lon.min() < dmap.patch_lon.min() and dmap.patch_lon.max() < lon.max()
    p = xatmodist.predict_lag(era5_vd, lag=3, model=tiny_model)
    np.testing.assert_allclose(p.sum("lag"), 1.0, rtol=1e-5)
    curve = xatmodist.lag_curve(era5_vd, model=tiny_model, max_lag="6h")
    assert np.isfinite(curve.learned).all()
    e = xatmodist.embed(era5_vd, model=tiny_model)
    with raise_if_dask_computes():
        lazy = xatmodist.embed(era5_vd.chunk(time=5), model=tiny_model)
    xr.testing.assert_identical(lazy.compute(), e)


def test_downscale_a_10x10_regional_field(era5_vd):
    """A 40 x 40 ERA5 box coarsened x4 is 10 x 10, smaller than the training patch:
    a convolutional downscaler takes it (edges mirrored), back to 40 x 40."""
    box = era5_vd.isel(latitude=slice(0, 40), longitude=slice(0, 40))
    coarse = box.coarsen(latitude=4, longitude=4).mean(keep_attrs=True)
    for name in ("vo", "d"):
        coarse[name].attrs = box[name].attrs
    assert coarse.sizes["latitude"] == 10 == coarse.sizes["longitude"]
    hi = coarse.atmodist.downscale(factor=4)
    assert hi.sizes["latitude"] == 40 == hi.sizes["longitude"]
    assert np.isfinite(hi.vo).all() and np.isfinite(hi.d).all()
    # the block means of the output follow the coarse field (it is a downscaling)
    back = hi.coarsen(latitude=4, longitude=4).mean()
    r = np.corrcoef(back.vo.values.ravel(), coarse.vo.values.ravel())[0, 1]
    assert r > 0.9, r
    lazy = coarse.chunk(time=7).atmodist.downscale(factor=4)
    xr.testing.assert_identical(lazy.compute(), hi)
    with pytest.raises(xatmodist.GridError, match="needs fields of at least 2 x 2 points"):
        coarse.isel(latitude=[0]).atmodist.downscale(factor=4)


def test_inpaint_a_regional_box(era5_vd):
    gappy = era5_vd.copy(deep=True)
    gappy["vo"][:, 15:22, 10:17] = np.nan
    gappy["d"][:, 15:22, 10:17] = np.nan
    filled = gappy.atmodist.inpaint()
    assert np.isfinite(filled.vo).all()
    observed = gappy.vo.notnull()
    np.testing.assert_array_equal(filled.vo.values[observed], gappy.vo.values[observed])


def test_gaussian_grid_is_accepted():
    """A T63 Gaussian grid (latitudes 1.850 to 1.865 deg apart) is near-uniform."""
    x, _ = np.polynomial.legendre.leggauss(96)
    lat = np.rad2deg(np.arcsin(x))[::-1]
    steps = np.abs(np.diff(lat))
    assert steps.max() - steps.min() > 0.01  # really irregular
    ds = synthetic_fields(n_time=2, nlat=96, nlon=192)
    ds = ds.assign_coords(lat=("lat", lat, ds.lat.attrs))
    assert is_global(ds, "lon")
    d = xatmodist.distance(ds.isel(time=[0]), ds.isel(time=[1]).assign_coords(time=ds.time[:1]))
    assert np.isfinite(d).all()
    # the metrics use the true latitudes: cos-weights of the Gaussian latitudes
    w = np.cos(np.deg2rad(lat))
    err = xr.DataArray(
        np.ones((96, 192)) * np.linspace(0, 1, 96)[:, None],
        dims=("lat", "lon"),
        coords={"lat": lat, "lon": ds.lon.values},
    )
    expect = np.sqrt((w * np.linspace(0, 1, 96) ** 2).sum() / w.sum())
    np.testing.assert_allclose(float(xatmodist.metrics.rmse(err, 0 * err)), expect, rtol=1e-12)
