"""Every bad input raises a specific xatmodist error whose message says what
was expected, what arrived and how to fix it; a few look-alike inputs work."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import xarray as xr

import xatmodist
from xatmodist import (
    ChunkError,
    GridError,
    InputError,
    ModelError,
    ModelNotFoundError,
    OutOfDistributionWarning,
    UnitsError,
    UnitsWarning,
    VariableNotFoundError,
    XatmodistError,
)


@pytest.fixture(scope="module")
def f2(fields):
    """Two time steps: enough for every check, cheap to run through the encoder."""
    return fields.isel(time=slice(0, 2))


def _with_attr(ds, var, **attrs):
    out = ds.copy()
    out[var] = ds[var].copy()
    out[var].attrs = {**ds[var].attrs, **attrs}
    return out


def _no_spatial_names(ds):
    out = ds.rename(lat="a", lon="b")
    out["a"].attrs = {}
    out["b"].attrs = {}
    return out


def _bumped_lat(ds):
    lat = ds.lat.values.copy()
    lat[5] += 0.7
    return ds.assign_coords(lat=("lat", lat, ds.lat.attrs))


def _transposed_d(ds):
    out = ds.copy()
    out["d"] = ds.d.transpose("time", "lon", "lat")
    return out


d, e, pl, lc = xatmodist.distance, xatmodist.embed, xatmodist.predict_lag, xatmodist.lag_curve

# (id, call(f2, fields, model), error, match (for pytest.raises), more patterns to find)
CASES = [
    # -- variables ---------------------------------------------------------------
    (
        "missing-variable",
        lambda f, full, m: d(f[["vo"]], f, model=m),
        VariableNotFoundError,
        r"needs 'd'",
        [r"has \['vo'\]", r"variables=\{'d': 'your_name'\}", "standard_name"],
    ),
    (
        "variables-maps-to-missing",
        lambda f, full, m: d(f, f, model=m, variables={"vo": "nope"}),
        VariableNotFoundError,
        r"'vo' to 'nope'",
        [r"has \['vo', 'd'\]", "one of those names"],
    ),
    (
        "variables-list-wrong-length",
        lambda f, full, m: d(f, f, model=m, variables=["vo"]),
        InputError,
        r"lists 1 names but the model takes 2",
        [r"\['vo', 'd'\]"],
    ),
    (
        "variables-not-a-mapping-int",
        lambda f, full, m: d(f, f, model=m, variables=5),
        InputError,
        r"got int 5",
        [r"variables= must map", r"\{'vo': 'your_name'\}"],
    ),
    (
        "variables-plain-string",
        lambda f, full, m: d(f, f, model=m, variables="vo"),
        InputError,
        r"got str 'vo'",
        [r"\['vo', 'd'\]"],
    ),
    (
        "variables-different-dims",
        lambda f, full, m: d(_transposed_d(f), f, model=m),
        InputError,
        r"different dims",
        [r"'vo'", r"'d'", "transpose"],
    ),
    # -- units -------------------------------------------------------------------
    (
        "wrong-units",
        lambda f, full, m: d(_with_attr(f, "vo", units="K"), f, model=m),
        UnitsError,
        r"units 'K' but the model expects 's-1'",
        [r"'vo'", "Convert", r"attrs\['units'\] = 's-1'"],
    ),
    (
        "wrong-units-in-b",
        lambda f, full, m: d(f, _with_attr(f, "d", units="m s-1"), model=m),
        UnitsError,
        r"'d' has units 'm s-1'",
        [r"expects 's-1'", "Convert"],
    ),
    # -- chunks ------------------------------------------------------------------
    (
        "chunked-over-lat",
        lambda f, full, m: d(f.chunk(lat=32), f, model=m),
        ChunkError,
        r"\['lat'\] are split into \[2\] dask chunks",
        [r"\.chunk\(\{'lat': -1, 'lon': -1\}\)"],
    ),
    (
        "chunked-over-lon",
        lambda f, full, m: d(f, f.chunk(lon=64), model=m),
        ChunkError,
        r"\['lon'\] are split",
        [r"\.chunk\("],
    ),
    (
        "embed-chunked-over-lat",
        lambda f, full, m: e(f.chunk(lat=16), model=m),
        ChunkError,
        r"\['lat'\] are split into \[4\]",
        [r"\.chunk\("],
    ),
    # -- grids -------------------------------------------------------------------
    (
        "smaller-than-patch-lat",
        lambda f, full, m: d(f.isel(lat=slice(0, 8)), f.isel(lat=slice(0, 8)), model=m),
        GridError,
        r"8 x 128",
        [r"patches of 16 x 16", "larger domain", "smaller patches"],
    ),
    (
        "smaller-than-patch-lon",
        lambda f, full, m: e(f.isel(lon=slice(0, 8)), model=m),
        GridError,
        r"64 x 8",
        [r"patches of 16 x 16", "at least 16 points"],
    ),
    (
        "mismatched-lat-size",
        lambda f, full, m: d(f, f.isel(lat=slice(0, 32)), model=m),
        GridError,
        r"different sizes along 'lat': 64 vs 32",
        ["same grid", "regrid"],
    ),
    (
        "shifted-lon",
        lambda f, full, m: d(f, f.assign_coords(lon=f.lon + 1.0), model=m),
        GridError,
        r"different 'lon' coordinates",
        ["same grid"],
    ),
    (
        "predict-lag-mismatched-grid",
        lambda f, full, m: pl(f, f.isel(lat=slice(0, 48)), model=m),
        GridError,
        r"64 vs 48",
        ["same grid"],
    ),
    (
        "irregular-latitude",
        lambda f, full, m: d(_bumped_lat(f), _bumped_lat(f), model=m),
        GridError,
        r"'lat' is not a monotonic grid with near-uniform steps",
        ["within 2% of the median", "Gaussian", "Regrid"],
    ),
    (
        "misaligned-time",
        lambda f, full, m: d(full.isel(time=[0, 1]), full.isel(time=[2, 3]), model=m),
        InputError,
        r"same coordinates along their shared non-spatial dims",
        [r"'time'", r"assign_coords\(time=a\.time\)"],
    ),
    (
        "predict-lag-misaligned-time",
        lambda f, full, m: pl(full.isel(time=[0, 1]), full.isel(time=[1, 2]), model=m),
        InputError,
        r"same coordinates",
        [r"'time'"],
    ),
    # -- model -------------------------------------------------------------------
    (
        "unknown-model",
        lambda f, full, m: d(f, f, model="no-such-model"),
        ModelNotFoundError,
        r"No model 'no-such-model'",
        [r"card\.json", r"list_models\(\)"],
    ),
    (
        "model-not-a-name",
        lambda f, full, m: e(f, model=5),
        ModelError,
        r"got int 5",
        ["zoo name", r"list_models\(\)"],
    ),
    # -- DataArray inputs and dims -------------------------------------------------
    (
        "unnamed-dataarray-two-variable-model",
        lambda f, full, m: d(f.vo.rename(None), f, model=m),
        InputError,
        r"single unnamed DataArray",
        [r"\['vo', 'd'\]", r"to_dataarray\('variable'\)"],
    ),
    (
        "bad-channel-dim",
        lambda f, full, m: e(f.to_dataarray("variable"), model=m, channel_dim="chan"),
        InputError,
        r"channel_dim='chan'",
        [r"'variable', 'time', 'lat', 'lon'"],
    ),
    (
        "numpy-input",
        lambda f, full, m: e(np.zeros((2, 64, 128)), model=m),
        InputError,
        r"got ndarray",
        [r"xr\.DataArray\("],
    ),
    (
        "no-spatial-dims",
        lambda f, full, m: d(_no_spatial_names(f), _no_spatial_names(f), model=m),
        InputError,
        r"Could not find the latitude dimension",
        [r"'a', 'b'", r"spatial_dims=\("],
    ),
    (
        "spatial-dims-not-in-input",
        lambda f, full, m: e(f, model=m, spatial_dims=("lat", "zz")),
        InputError,
        r"got \('lat', 'zz'\)",
        [r"input has dims", "two dimensions"],
    ),
    # -- keyword choices -----------------------------------------------------------
    (
        "bad-metric",
        lambda f, full, m: d(f, f, model=m, metric="l1"),
        InputError,
        r"metric must be one of \('learned', 'l2'\); got 'l1'",
        [],
    ),
    (
        "bad-pool",
        lambda f, full, m: e(f, model=m, pool="max"),
        InputError,
        r"pool must be one of \('mean', 'tile', 'none'\); got 'max'",
        [],
    ),
    (
        "bad-output",
        lambda f, full, m: pl(f, f, model=m, output="median"),
        InputError,
        r"output must be one of .*'probability'.*; got 'median'",
        [],
    ),
    # -- lags ----------------------------------------------------------------------
    (
        "predict-lag-without-b-or-lag",
        lambda f, full, m: pl(full, model=m),
        InputError,
        r"Without b, pass lag=",
        [r"lag='6h'"],
    ),
    (
        "lag-not-multiple-of-step",
        lambda f, full, m: pl(full, model=m, lag="4h"),
        InputError,
        r"lag='4h' must be a positive whole multiple of the data's time step",
        [r"time step 3h", "an int: that many steps"],
    ),
    (
        "lag-shorter-than-step",
        lambda f, full, m: pl(full, model=m, lag="1h"),
        InputError,
        r"lag='1h' must be a positive whole multiple",
        [],
    ),
    (
        "negative-lag",
        lambda f, full, m: pl(full, model=m, lag="-3h"),
        InputError,
        r"lag='-3h' must be a positive",
        [],
    ),
    (
        "lag-not-a-duration",
        lambda f, full, m: pl(full, model=m, lag="soon"),
        InputError,
        r"must be a duration such as '6h' or a number of time steps \(int\); got 'soon'",
        [],
    ),
    (
        "lag-longer-than-series",
        lambda f, full, m: pl(full, model=m, lag="30h"),
        InputError,
        r"lag='30h' is 10 steps but 'time' has only 8 values",
        [],
    ),
    (
        "lag-as-long-as-series",
        lambda f, full, m: pl(full, model=m, lag="24h"),
        InputError,
        r"8 steps but 'time' has only 8 values",
        [],
    ),
    (
        "descending-time",
        lambda f, full, m: pl(full.isel(time=slice(None, None, -1)), model=m, lag="3h"),
        InputError,
        r"'time' must be regular and increasing",
        [r"sortby\('time'\)"],
    ),
    (
        "irregular-time",
        lambda f, full, m: pl(full.isel(time=[0, 1, 2, 4, 5, 6]), model=m, lag="3h"),
        InputError,
        r"must be regular and increasing",
        [
            r"jumps by 0 days 06:00:00 where its usual step is 0 days 03:00:00 \(a gap\)",
            r"between index 2",
            "Sorting does not close a gap",
            "regular stretch",
            r"resample\(time='3h'\)",
        ],
    ),
    (
        "predict-lag-unknown-dim",
        lambda f, full, m: pl(full, model=m, lag="3h", dim="step"),
        InputError,
        r"dim='step' is not a dimension",
        [r"'time', 'lat', 'lon'"],
    ),
    (
        "lag-curve-max-lag-too-long",
        lambda f, full, m: lc(full.isel(time=slice(0, 3)), model=m),
        InputError,
        r"longest lag, 12h, is 4 steps of 3h but 'time' has only 3 values",
        [r"pass max_lag= \(at most 2 steps, e.g. max_lag='6h' or max_lag=2\)"],
    ),
    (
        "lag-curve-explicit-max-lag-too-long",
        lambda f, full, m: lc(full.isel(time=slice(0, 3)), model=m, max_lag=3),
        InputError,
        r"max_lag=3 is 3 steps but 'time' has only 3 values",
        [r"at most 2 steps"],
    ),
    (
        "lag-float",
        lambda f, full, m: pl(full, model=m, lag=1.5),
        InputError,
        r"lag must be a whole number of time steps or a duration; got 1.5 \(float\)",
        [r"lag=4 means 4 steps of 3h", "'6h'"],
    ),
    (
        "lag-bool",
        lambda f, full, m: pl(full, model=m, lag=True),
        InputError,
        r"lag must be a whole number of time steps or a duration; got True \(bool\)",
        [],
    ),
    (
        "lag-zero-steps",
        lambda f, full, m: pl(full, model=m, lag=0),
        InputError,
        r"lag=0 is not a positive number of time steps",
        [],
    ),
    (
        "lag-curve-max-lag-float",
        lambda f, full, m: lc(full, model=m, max_lag=2.0),
        InputError,
        r"max_lag must be a whole number of time steps or a duration; got 2.0",
        [],
    ),
    (
        "repeated-time",
        lambda f, full, m: pl(full.isel(time=[0, 1, 1, 2]), model=m, lag=1),
        InputError,
        r"repeats a time between index 1",
        [r"drop_duplicates\('time'\)"],
    ),
    (
        "time-dim-wrong-name-suggests",
        lambda f, full, m: pl(full.rename(time="valid_time"), model=m, lag=1, dim="time"),
        InputError,
        r"dim='time' is not a dimension",
        [r"Did you mean dim='valid_time'\?"],
    ),
    (
        "no-time-dim",
        lambda f, full, m: lc(full.rename(time="step").drop_vars("step"), model=m),
        InputError,
        r"Could not find a time dimension",
        [r"dim='your_time_dim'"],
    ),
    # -- options -------------------------------------------------------------------
    (
        "option-batch-size-zero",
        lambda f, full, m: xatmodist.set_options(batch_size=0),
        InputError,
        r"'batch_size' must be a positive int; got 0",
        [],
    ),
    (
        "option-batch-size-bool",
        lambda f, full, m: xatmodist.set_options(batch_size=True),
        InputError,
        r"'batch_size' must be a positive int; got True",
        [],
    ),
    (
        "option-unknown",
        lambda f, full, m: xatmodist.set_options(batchsize=8),
        InputError,
        r"Unknown option 'batchsize'",
        [r"\['batch_size', 'device', 'jit', 'precision', 'progress', 'torch_threads'\]"],
    ),
    (
        "option-torch-threads-str",
        lambda f, full, m: xatmodist.set_options(torch_threads="x"),
        InputError,
        r"'torch_threads' must be a positive int; got 'x'",
        [],
    ),
    (
        "option-progress-not-bool",
        lambda f, full, m: xatmodist.set_options(progress=1),
        InputError,
        r"'progress' must be True or False; got 1",
        [],
    ),
    (
        "option-jit-not-bool",
        lambda f, full, m: xatmodist.set_options(jit="yes"),
        InputError,
        r"'jit' must be True or False; got 'yes'",
        [],
    ),
]


@pytest.mark.parametrize(
    "call, error, match, more", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_raises(f2, fields, tiny_model, call, error, match, more):
    before = xatmodist.get_options()
    with pytest.raises(error, match=match) as info:
        call(f2, fields, tiny_model)
    assert isinstance(info.value, XatmodistError)
    msg = str(info.value)
    for pattern in more:
        assert re.search(pattern, msg), f"{pattern!r} not in message: {msg}"
    assert not msg.startswith(("'", '"')), "message must not be repr()-quoted (KeyError)"
    assert xatmodist.get_options() == before


def test_every_error_is_a_xatmodist_error():
    for err in (
        InputError,
        VariableNotFoundError,
        UnitsError,
        ChunkError,
        GridError,
        ModelError,
        ModelNotFoundError,
        xatmodist.WeightsError,
    ):
        assert issubclass(err, XatmodistError)
    # and the builtin bases users would reach for
    assert issubclass(VariableNotFoundError, KeyError)
    assert issubclass(GridError, ValueError)
    assert issubclass(ModelNotFoundError, LookupError)


def test_caught_as_base_class(f2, tiny_model):
    with pytest.raises(XatmodistError):
        xatmodist.distance(f2[["vo"]], f2, model=tiny_model)
    with pytest.raises(KeyError):  # a VariableNotFoundError is also a KeyError
        xatmodist.distance(f2[["vo"]], f2, model=tiny_model)


# -- look-alikes that must work ----------------------------------------------------


@pytest.mark.parametrize("units", ["s**-1", "1/s", "s^-1", "/s", " s-1 ", "S-1"])
def test_equivalent_unit_spellings_accepted(f2, tiny_model, units):
    one = f2.isel(time=[0])
    out = xatmodist.distance(_with_attr(one, "vo", units=units), one, model=tiny_model)
    assert float(out[0]) == pytest.approx(0.0, abs=1e-6)


def test_missing_units_attribute_is_trusted_with_a_warning(f2, tiny_model):
    one = f2.isel(time=[0]).copy()
    one["vo"] = one.vo.copy()
    one.vo.attrs.pop("units")
    with pytest.warns(UnitsWarning) as rec:
        out = one.atmodist.embed(model=tiny_model)
    msg = str(rec[0].message)
    assert "Variable 'vo' has no 'units'" in msg and "'s-1'" in msg, msg
    assert "attrs['units'] = 's-1'" in msg
    assert len(rec) == 1, "one warning for the one variable without units"
    assert rec[0].filename == __file__, "the warning should point at the caller's line"
    xr.testing.assert_identical(out, xatmodist.embed(f2.isel(time=[0]), model=tiny_model))


def test_chunked_over_time_is_fine(f2, tiny_model):
    lazy = xatmodist.distance(f2.chunk(time=1), f2, model=tiny_model)
    assert lazy.chunks is not None
    eager = xatmodist.distance(f2, f2.chunk(time=1), model=tiny_model)
    np.testing.assert_allclose(lazy.values, eager.values, atol=1e-6)


def test_dataarray_with_variable_dim_works(f2, tiny_model):
    da = f2.to_dataarray("variable")  # drops the variables' units: a warning says so
    with pytest.warns(UnitsWarning, match="'vo' has no 'units' attribute"):
        by_da = xatmodist.distance(
            da, f2.isel(time=[1, 0]).assign_coords(time=f2.time), model=tiny_model
        )
    da.attrs["units"] = "s-1"  # units of the DataArray hold for each variable
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitsWarning)
        xatmodist.distance(da, f2.isel(time=[1, 0]).assign_coords(time=f2.time), model=tiny_model)
    by_ds = xatmodist.distance(
        f2, f2.isel(time=[1, 0]).assign_coords(time=f2.time), model=tiny_model
    )
    np.testing.assert_allclose(by_da.values, by_ds.values, rtol=1e-5)
    assert (by_da.values > 0).all()


def test_spatial_dims_argument_finds_unnamed_dims(f2, tiny_model):
    g = _no_spatial_names(f2)
    out = xatmodist.embed(g, model=tiny_model, spatial_dims=("a", "b"))
    ref = xatmodist.embed(f2, model=tiny_model)
    np.testing.assert_allclose(out.values, ref.values, rtol=1e-5, atol=1e-6)


def test_broadcast_over_time_works(f2, tiny_model):
    one = f2.isel(time=0)  # no time dim: compared with every field of f2
    out = xatmodist.distance(one, f2, model=tiny_model)
    assert out.dims == ("time",)
    assert float(out[0]) == pytest.approx(0.0, abs=1e-6) and float(out[1]) > 0


def test_predict_lag_with_regular_time_works(fields, tiny_model):
    out = xatmodist.predict_lag(fields.isel(time=slice(0, 3)), model=tiny_model, lag="3h")
    assert out.sizes["time"] == 2
    np.testing.assert_allclose(out.sum("lag").values, 1.0, rtol=1e-5)


# -- options -------------------------------------------------------------------------


def test_options_restore_after_with():
    before = xatmodist.get_options()
    with xatmodist.set_options(batch_size=3, torch_threads=1, progress=False):
        now = xatmodist.get_options()
        assert (now["batch_size"], now["torch_threads"], now["progress"]) == (3, 1, False)
    assert xatmodist.get_options() == before


def test_options_restore_after_error_in_block():
    before = xatmodist.get_options()
    with pytest.raises(RuntimeError), xatmodist.set_options(batch_size=5):
        raise RuntimeError("boom")
    assert xatmodist.get_options() == before


def test_invalid_option_changes_nothing():
    before = xatmodist.get_options()
    with pytest.raises(InputError):
        xatmodist.set_options(batch_size=7, torch_threads=0)
    assert xatmodist.get_options() == before


def test_get_options_is_a_copy():
    xatmodist.get_options()["batch_size"] = -1
    assert xatmodist.get_options()["batch_size"] >= 1


def test_small_batch_size_gives_same_result(f2, tiny_model):
    ref = xatmodist.distance(f2, f2.isel(time=[1, 0]).assign_coords(time=f2.time), model=tiny_model)
    with xatmodist.set_options(batch_size=3):
        out = xatmodist.distance(
            f2, f2.isel(time=[1, 0]).assign_coords(time=f2.time), model=tiny_model
        )
    np.testing.assert_allclose(out.values, ref.values, rtol=1e-5)


# -- out of distribution and NaN --------------------------------------------------------


def test_coarser_grid_warns_out_of_distribution(f2, tiny_model):
    coarse = f2.coarsen(lat=2, lon=2).mean(keep_attrs=True)
    with pytest.warns(OutOfDistributionWarning, match=r"differs from the .* deg") as rec:
        out = xatmodist.distance(coarse, coarse, model=tiny_model)
    msg = str(rec[0].message)
    assert "tiny-test-encoder" in msg and "Regrid" in msg
    assert rec[0].filename == __file__, "the warning should point at the caller's line"
    assert np.isfinite(out.values).all()


def test_right_grid_does_not_warn(f2, tiny_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDistributionWarning)
        xatmodist.distance(f2, f2, model=tiny_model)
        xatmodist.embed(f2, model=tiny_model)


def test_nan_field_gives_nan_distance_others_finite(fields, tiny_model):
    a = fields.isel(time=slice(0, 4)).copy(deep=True)
    b = fields.isel(time=slice(4, 8)).assign_coords(time=a.time)
    a["vo"][2, 10, 20] = np.nan
    out = xatmodist.distance(a, b, model=tiny_model)
    assert np.isnan(out.values[2])
    assert np.isfinite(out.values[[0, 1, 3]]).all()
    spatial = xatmodist.distance(a, b, model=tiny_model, spatial=True)
    assert np.isnan(spatial.values[2]).all()
    assert np.isfinite(spatial.values[[0, 1, 3]]).all()


def test_inf_in_b_gives_nan(f2, tiny_model):
    b = f2.copy(deep=True)
    b["d"][0, 0, 0] = np.inf
    out = xatmodist.distance(f2, b, model=tiny_model)
    assert np.isnan(out.values[0]) and np.isfinite(out.values[1])


def test_nan_field_gives_nan_features(f2, tiny_model):
    a = f2.copy(deep=True)
    a["d"][1, 0, 0] = np.nan
    feats = xatmodist.embed(a, model=tiny_model)
    assert np.isnan(feats.values[1]).all()
    assert np.isfinite(feats.values[0]).all()
    assert isinstance(feats, xr.DataArray)


def test_numeric_time_coordinate_is_refused(tiny_model, fields):
    numeric = fields.assign_coords(time=np.arange(fields.sizes["time"], dtype=float))
    with pytest.raises(xatmodist.InputError, match="not datetimes"):
        xatmodist.predict_lag(numeric, lag="3h", model=tiny_model)
