"""The embedded sample and the shallow-water generator."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xatmodist
from xatmodist.datasets import shallow_water

pytest.importorskip("torch_harmonics")

SMALL = {"nlat": 16, "spinup": "1D", "step": "6h"}


def test_sample_is_cf_and_small():
    ds = xatmodist.datasets.sample()
    assert ds.vo.dims == ("run", "time", "lat", "lon")
    assert ds.sizes == {"run": 2, "time": 40, "lat": 64, "lon": 128}
    assert ds.vo.attrs["standard_name"] == "atmosphere_relative_vorticity"
    assert ds.d.attrs["units"] == "s-1"
    assert ds.lat.attrs["units"] == "degrees_north" and ds.lat[0] == 90
    assert ds.vo.dtype == np.float32
    # atmosphere-like amplitude (500 hPa relative vorticity: ~1e-5 s-1)
    assert 5e-6 < float(ds.vo.std()) < 5e-5
    assert np.isfinite(ds.to_dataarray()).all()


def test_shallow_water_cf_output_and_reproducible():
    ds = shallow_water(n_runs=2, n_steps=3, seed=7, progress=False, **SMALL)
    assert ds.vo.dims == ("run", "time", "lat", "lon")
    assert ds.sizes == {"run": 2, "time": 3, "lat": 16, "lon": 32}
    assert list(ds.run.values) == [7, 8]
    assert (np.diff(ds.time.values) == np.timedelta64(6, "h")).all()
    assert ds.cf["latitude"].name == "lat" and ds.cf["longitude"].name == "lon"
    assert ds.z.attrs["units"] == "m" and float(ds.z.mean()) == pytest.approx(1e4, rel=0.05)
    one = shallow_water(n_runs=1, n_steps=3, seed=8, progress=False, **SMALL)
    np.testing.assert_array_equal(one.vo.isel(run=0).values, ds.vo.sel(run=8).values)
    batched = shallow_water(n_runs=2, n_steps=3, seed=7, batch_size=1, progress=False, **SMALL)
    xr.testing.assert_identical(batched, ds)


def test_shallow_water_writes_zarr_incrementally(tmp_path):
    out = shallow_water(
        n_runs=3, n_steps=2, seed=1, batch_size=2, path=tmp_path / "s.zarr", progress=False, **SMALL
    )
    assert out.vo.chunks is not None and out.sizes["run"] == 3
    mem = shallow_water(n_runs=3, n_steps=2, seed=1, progress=False, **SMALL)
    np.testing.assert_allclose(out.vo.values, mem.vo.values)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"nlat": 16, "nlon": 40}, "nlon == 2 \\* nlat"),
        ({"nlat": 16, "step": "7min"}, "multiple of the model time step"),
        ({"n_runs": 0}, "n_runs and n_steps must be >= 1"),
    ],
)
def test_shallow_water_errors(kw, match):
    args = {"n_runs": 1, "n_steps": 1, "seed": 0, "progress": False, **kw}
    with pytest.raises(xatmodist.InputError, match=match):
        shallow_water(**args)
