"""Real reanalysis files from ../shared/data: read, derive, process or refuse clearly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import xatmodist
from xatmodist.cli import open_data


def _storm(shared):
    d = shared / "ncl_storm_1996"
    u = xr.open_dataset(d / "U500storm.cdf", decode_times=False)["u"]
    v = xr.open_dataset(d / "V500storm.cdf", decode_times=False)["v"]
    return xatmodist.vorticity_divergence(u, v, lat="lat", lon="lon")


def test_storm_nan_wedges_give_nan_distance_not_garbage(shared_data, tiny_model):
    vd = _storm(shared_data)
    assert vd.vo.isnull().any()  # the corners are NaN
    vd = vd.assign_coords(timestep=np.arange(vd.sizes["timestep"]))
    first = vd.isel(timestep=slice(0, -1))
    later = vd.isel(timestep=slice(1, None)).assign_coords(timestep=first.timestep)
    with pytest.warns(xatmodist.OutOfDistributionWarning, match="dlat=1.25"):
        d = xatmodist.distance(first, later, model=tiny_model)
    # every field has NaN corners: the distance is NaN for each, never a silent number
    assert d.isnull().all()
    # the valid interior (lon columns 8..27, all rows without NaN) gives finite distances
    inner = vd.isel(lon=slice(8, 28))
    good = inner.vo.notnull().all(["lat", "lon"]) & inner.d.notnull().all(["lat", "lon"])
    inner = inner.isel(timestep=np.nonzero(good.values)[0])
    rows = inner.vo.notnull().all(["timestep", "lon"]) & inner.d.notnull().all(["timestep", "lon"])
    inner = inner.isel(lat=np.nonzero(rows.values)[0])
    if inner.sizes["lat"] >= 16:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
            e = xatmodist.embed(inner, model=tiny_model)
        assert np.isfinite(e).all()


def test_era5_850hpa_vorticity_divergence_runs_with_ood_warning(shared_data):
    d = shared_data / "era5_pl_2020-01-01"
    u = xr.open_dataset(d / "u.nc").u.sel(level=850)
    v = xr.open_dataset(d / "v.nc").v.sel(level=850)
    vd = xatmodist.vorticity_divergence(u, v)
    assert np.isfinite(vd.vo).all()
    with pytest.warns(xatmodist.OutOfDistributionWarning, match="trained on"):
        p = xatmodist.predict_lag(vd, lag="6h", output="expected")
    assert p.sizes["time"] == 18 and p.notnull().all()


def test_grib_via_cfgrib_extra_dims(shared_data, tmp_path, tiny_model):
    pytest.importorskip("cfgrib")
    src = shared_data / "era5_ensemble_grib" / "era5-levels-members.grib"
    ds = open_data([str(src)], chunks={})  # cfgrib writes an index next to the file
    assert "number" in ds.dims
    # geopotential is not what the vorticity/divergence model takes: a clear error
    renamed = ds.rename({"z": "vo", "t": "d"})
    with pytest.raises(xatmodist.UnitsError, match="expects 's-1'"):
        xatmodist.embed(renamed, model=tiny_model)


def test_erainterim_odd_time_encoding_decodes(shared_data):
    ds = open_data([str(shared_data / "erainterim_daily" / "synoptreg_z500_ei.nc")])
    assert np.issubdtype(ds.time.dtype, np.datetime64)
    step = np.diff(ds.time.values[:10]).astype("timedelta64[h]")
    assert (step == np.timedelta64(24, "h")).all()


def test_storm_nan_wedges_inpainted_observed_bitwise(shared_data):
    vd = _storm(shared_data)
    missing = vd.vo.isnull() | vd.d.isnull()
    assert missing.any()
    with (
        pytest.warns(xatmodist.OutOfDistributionWarning, match="dlat=1.25"),
        pytest.warns(UserWarning, match="no observed values"),
    ):
        out = vd.atmodist.inpaint()
    assert out.vo.dtype == vd.vo.dtype and out.vo.dims == vd.vo.dims
    # one time step is missing entirely: it stays NaN (with a warning); the rest is filled
    empty = missing.all(["lat", "lon"])
    assert int(empty.sum()) == 1
    assert out.vo[empty].isnull().all() and out.vo[~empty].notnull().all()
    assert out.d[~empty].notnull().all()
    for v in ("vo", "d"):
        obs = vd[v].notnull().values
        np.testing.assert_array_equal(out[v].values[obs], vd[v].values[obs])
        # the fills are of the field's magnitude, not garbage
        fill = out[v].values[~obs & ~empty.values[:, None, None]]
        assert np.abs(fill).max() < 3 * np.abs(vd[v].values[obs]).max()
    with pytest.warns(xatmodist.OutOfDistributionWarning):
        lazy = vd.chunk(timestep=16).atmodist.inpaint()
    with pytest.warns(UserWarning, match="no observed values"):
        xr.testing.assert_identical(lazy.compute(), out)


def test_training_from_grib_warns_to_copy_first(shared_data, tmp_path):
    pytest.importorskip("cfgrib")
    from xatmodist.train._source import FieldSource

    src = shared_data / "era5_ensemble_grib" / "era5-levels-members.grib"
    ds = open_data([str(src)], chunks={})
    with pytest.warns(UserWarning, match="GRIB .* is slow to index") as rec:
        FieldSource(ds, ["t"])
    assert "to_zarr('copy.zarr')" in str(rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        FieldSource(ds.load(), ["t"])  # an in-memory copy: no warning
