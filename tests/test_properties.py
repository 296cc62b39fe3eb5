"""Property-based tests (hypothesis): odd but valid inputs give the documented answer,
invalid ones a specific xatmodist error — never a deep traceback or a silent wrong number."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xatmodist
from xatmodist.testing import synthetic_fields

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
BASE = synthetic_fields(n_time=4, nlat=32, nlon=64, seed=11)


@pytest.fixture(autouse=True)
def _quiet_ood():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
        # inputs without units are trusted with a UnitsWarning (tests/test_errors.py)
        warnings.simplefilter("ignore", xatmodist.UnitsWarning)
        yield


def _ref(model):
    return xatmodist.distance(BASE, BASE.isel(time=0), model=model)


@SETTINGS
@given(
    order=st.permutations(["time", "lat", "lon"]),
    dtype=st.sampled_from(["float16", "float32", "float64"]),
    flip_lat=st.booleans(),
    pm180=st.booleans(),
    drop_attrs=st.booleans(),
    chunk=st.sampled_from([None, 1, 2, 4]),
)
def test_equivalent_representations_same_distance(
    tiny_model, order, dtype, flip_lat, pm180, drop_attrs, chunk
):
    ds = BASE.transpose(*order).astype(dtype)
    if flip_lat:
        ds = ds.isel(lat=slice(None, None, -1))
    if pm180:
        ds = ds.assign_coords(lon=((ds.lon + 180) % 360) - 180).sortby("lon")
    if drop_attrs:  # no units: matched by name, units unchecked
        ds = ds.drop_attrs(deep=False)
        for n in ds.data_vars:
            ds[n].attrs = {}
    if chunk:
        ds = ds.chunk({"time": chunk})
    got = xatmodist.distance(ds, ds.isel(time=0), model=tiny_model).compute()
    tol = 2e-2 if dtype == "float16" else 1e-5
    np.testing.assert_allclose(
        got.transpose("time").values, _ref(tiny_model).values, rtol=tol, atol=tol * 1e-3
    )


@SETTINGS
@given(
    t=st.integers(0, 3),
    value=st.sampled_from([np.nan, np.inf, -np.inf]),
    var=st.sampled_from(["vo", "d"]),
    i=st.integers(0, 31),
    j=st.integers(0, 63),
)
def test_non_finite_values_poison_only_their_field(tiny_model, t, value, var, i, j):
    ds = BASE.copy(deep=True)
    ds[var][t, i, j] = value
    d = xatmodist.distance(ds, BASE.isel(time=0), model=tiny_model)
    ref = _ref(tiny_model)
    assert np.isnan(d.values[t])
    others = [k for k in range(4) if k != t]
    np.testing.assert_allclose(d.values[others], ref.values[others], rtol=1e-6)


@SETTINGS
@given(scale=st.sampled_from([1e-30, 1e-10, 1e-3, 1e3, 1e10, 1e30]))
def test_extreme_magnitudes_finite_or_refused(tiny_model, scale):
    """Values beyond 1000 training standard deviations (wrong units) raise; others work."""
    sigma = float(np.abs(BASE.vo).max() / 2e-5) * scale  # tiny model's std_in for vo: 2e-5
    if sigma > 1000:
        with pytest.raises(xatmodist.InputError, match="standard deviations"):
            xatmodist.distance(BASE * scale, BASE.isel(time=0) * scale, model=tiny_model)
    else:
        d = xatmodist.distance(BASE * scale, BASE.isel(time=0) * scale, model=tiny_model)
        assert np.isfinite(d.values).all()


@SETTINGS
@given(
    extra=st.dictionaries(
        st.sampled_from(["member", "level", "run"]), st.integers(1, 2), max_size=2
    )
)
def test_extra_and_size_one_dims_broadcast(tiny_model, extra):
    ds = BASE.expand_dims(extra) if extra else BASE
    d = xatmodist.distance(ds, BASE.isel(time=0), model=tiny_model)
    assert set(d.dims) == set(extra) | {"time"}
    ref = _ref(tiny_model)
    np.testing.assert_allclose(
        d.transpose(..., "time").values.reshape(-1, 4),
        np.broadcast_to(ref.values, (int(np.prod(list(extra.values()) or [1])), 4)),
        rtol=1e-6,
    )


@SETTINGS
@given(calendar=st.sampled_from(["noleap", "360_day", "standard", "julian"]))
def test_cftime_calendars_pair_by_lag(tiny_model, calendar):
    times = xr.date_range("2001-02-27", periods=4, freq="3h", calendar=calendar, use_cftime=True)
    ds = BASE.assign_coords(time=times)
    p = xatmodist.predict_lag(ds, lag="6h", model=tiny_model, output="expected")
    ref = xatmodist.predict_lag(BASE, lag="6h", model=tiny_model, output="expected")
    np.testing.assert_array_equal(p.values, ref.values)


@SETTINGS
@given(
    n_time=st.integers(0, 1),
    op=st.sampled_from(["predict_lag", "lag_curve"]),
)
def test_too_short_series_raise_input_error(tiny_model, n_time, op):
    ds = BASE.isel(time=slice(0, n_time))
    with pytest.raises(xatmodist.InputError):
        if op == "predict_lag":
            xatmodist.predict_lag(ds, lag="3h", model=tiny_model)
        else:
            xatmodist.lag_curve(ds, model=tiny_model)


@SETTINGS
@given(
    time=st.lists(st.integers(0, 20), min_size=3, max_size=4, unique=True).filter(
        lambda x: x != sorted(x) or len(set(np.diff(sorted(x)))) > 1
    )
)
def test_irregular_or_unsorted_time_is_refused(tiny_model, time):
    ds = BASE.isel(time=slice(0, len(time))).assign_coords(
        time=np.datetime64("2001-01-01") + np.array(time) * np.timedelta64(3, "h")
    )
    with pytest.raises(xatmodist.InputError, match="regular and increasing"):
        xatmodist.predict_lag(ds, lag="3h", model=tiny_model)


@SETTINGS
@given(dtype=st.sampled_from(["int16", "int32", "int64"]))
def test_integer_fields_are_converted_or_refused(tiny_model, dtype):
    """Integer input is cast to float32; integer counts of s-1 are far out of range."""
    zeros = (BASE * 0).astype(dtype)
    d = xatmodist.distance(zeros, zeros.isel(time=0), model=tiny_model)
    assert d.dtype == np.float32 and (d.values == 0).all()
    counts = (BASE / 1e-7).astype(dtype)
    with pytest.raises(xatmodist.InputError, match="Check its units"):
        xatmodist.distance(counts, counts.isel(time=0), model=tiny_model)


def test_empty_time_dim_gives_empty_result(tiny_model):
    d = xatmodist.distance(BASE.isel(time=slice(0, 0)), BASE.isel(time=0), model=tiny_model)
    assert d.sizes["time"] == 0
    lazy = xatmodist.distance(
        BASE.isel(time=slice(0, 0)).chunk(), BASE.isel(time=0), model=tiny_model
    )
    assert lazy.compute().sizes["time"] == 0
