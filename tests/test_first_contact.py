"""A new user's first hour: the mistakes and surprises met with real data.

Each test is one thing a user tried: a model of the wrong task, the model a
trainer just returned, strings instead of numbers, integer lags, an ERA5-style
``valid_time`` axis, a lag the model was never trained on, data without units,
values in the wrong units, warnings that point at the user's own line.
"""

from __future__ import annotations

import copy
import warnings

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xatmodist
from xatmodist import InputError, ModelError, ModelNotFoundError, OutOfDistributionWarning
from xatmodist.testing import raise_if_dask_computes

# --------------------------------------------------------------------------------------
# a model of the wrong task is refused once, by load_model(task=...), in every entry point
# --------------------------------------------------------------------------------------

ENCODER_CALLS = {
    "distance": lambda f, m: xatmodist.distance(f, f, model=m),
    "embed": lambda f, m: xatmodist.embed(f, model=m),
    "predict_lag": lambda f, m: xatmodist.predict_lag(f, lag="3h", model=m),
    "predict_lag-b": lambda f, m: xatmodist.predict_lag(f, f, model=m),
    "lag_curve": lambda f, m: xatmodist.lag_curve(f, model=m),
}


@pytest.mark.parametrize("model", ["downscale-swe-vd-x4", "inpaint-swe-vd"])
@pytest.mark.parametrize("call", list(ENCODER_CALLS), ids=str)
def test_encoder_functions_refuse_other_tasks(fields, call, model):
    with pytest.raises(ModelError, match=f"Model '{model}' is an? (downscaler|inpainter)") as e:
        ENCODER_CALLS[call](fields.isel(time=slice(0, 6)), model)
    msg = str(e.value)
    assert "this needs an encoder" in msg
    assert "atmodist-swe-vd-v6" in msg, "the message names the zoo's encoders"


def test_downscale_and_inpaint_refuse_an_encoder(fields, tiny_model):
    with pytest.raises(ModelError, match="is an encoder, but this needs a downscaler") as e:
        xatmodist.downscale(fields, model="atmodist-swe-vd-v6")
    assert "downscale-swe-vd-x4" in str(e.value)
    with pytest.raises(ModelError, match="is an encoder, but this needs an inpainter") as e:
        xatmodist.inpaint(fields, model=tiny_model)
    assert "inpaint-swe-vd" in str(e.value)


def test_load_model_task():
    assert xatmodist.load_model("inpaint-swe-vd", task="inpainter").name == "inpaint-swe-vd"
    with pytest.raises(ModelError, match="task must be one of"):
        xatmodist.load_model("inpaint-swe-vd", task="painter")


# --------------------------------------------------------------------------------------
# the model a trainer just returned works everywhere, before it is saved
# --------------------------------------------------------------------------------------


def _values(x: xr.Dataset | xr.DataArray) -> np.ndarray:
    return (x.to_array() if isinstance(x, xr.Dataset) else x).values


@pytest.fixture
def unsaved(tiny_model):
    """What fit_encoder(...) returns without out=: a Model with no folder."""
    m = xatmodist.Model(card=copy.deepcopy(tiny_model.card), module=tiny_model.module)
    m.card.sha256 = None
    assert m.path is None
    return m


def test_unsaved_model_works_eagerly_lazily_and_in_processes(fields, tiny_model, unsaved):
    f = fields.isel(time=slice(0, 6))
    g = f.isel(time=[5, 4, 3, 2, 1, 0]).assign_coords(time=f.time)
    ref = {
        "distance": xatmodist.distance(f, g, model=tiny_model),
        "embed": xatmodist.embed(f, model=tiny_model),
        "predict_lag": xatmodist.predict_lag(f, lag=1, model=tiny_model),
        "lag_curve": xatmodist.lag_curve(f, model=tiny_model, max_lag=2),
    }
    calls = {
        "distance": lambda x, y: xatmodist.distance(x, y, model=unsaved),
        "embed": lambda x, y: xatmodist.embed(x, model=unsaved),
        "predict_lag": lambda x, y: xatmodist.predict_lag(x, lag=1, model=unsaved),
        "lag_curve": lambda x, y: xatmodist.lag_curve(x, model=unsaved, max_lag=2),
    }
    for name, call in calls.items():
        np.testing.assert_array_equal(_values(call(f, g)), _values(ref[name]), err_msg=name)
        with raise_if_dask_computes():
            lazy = call(f.chunk(time=2), g.chunk(time=2))
        if name == "lag_curve":  # a mean over pairs: dask sums in another order
            np.testing.assert_allclose(_values(lazy), _values(ref[name]), rtol=1e-12)
        else:
            np.testing.assert_array_equal(_values(lazy), _values(ref[name]), err_msg=name)
    # worker processes of this machine load the private copy
    lazy = xatmodist.distance(f.chunk(time=3), g.chunk(time=3), model=unsaved)
    with dask.config.set(scheduler="processes", num_workers=2):
        np.testing.assert_array_equal(lazy.compute(), ref["distance"])
    assert unsaved.path is None, "the user's model is not changed"
    assert unsaved.card.sha256 is None
    assert "not saved" in repr(unsaved)


def test_unsaved_copy_gone_says_why(tmp_path):
    gone = tmp_path / "xatmodist-unsaved-abc123"
    with pytest.raises(ModelNotFoundError, match="was never saved") as e:
        xatmodist.load_model(gone)
    assert "model.save(folder)" in str(e.value)


# --------------------------------------------------------------------------------------
# numbers only
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "convert, what",
    [
        (lambda x: x.astype(str), "strings"),
        (lambda x: x.astype(object), "Python objects"),
        (lambda x: x > 0, "booleans"),
        (lambda x: x.astype(np.complex64), "complex numbers"),
        (lambda x: xr.full_like(x, np.datetime64("2020-01-01"), dtype="M8[ns]"), "datetimes"),
    ],
    ids=["str", "object", "bool", "complex", "datetime"],
)
def test_non_numeric_variables_are_refused(fields, tiny_model, convert, what):
    f = fields.isel(time=slice(0, 2))
    bad = f.assign(vo=convert(f.vo))
    with pytest.raises(InputError, match=f"Variable 'vo' holds {what}") as e:
        xatmodist.distance(bad, f, model=tiny_model)
    assert "astype('float32')" in str(e.value)


# --------------------------------------------------------------------------------------
# lags: an int is that many time steps, everywhere
# --------------------------------------------------------------------------------------


def test_integer_lag_means_time_steps(fields, tiny_model):
    by_int = xatmodist.predict_lag(fields, lag=2, model=tiny_model)
    by_np_int = xatmodist.predict_lag(fields, lag=np.int64(2), model=tiny_model)
    by_duration = xatmodist.predict_lag(fields, lag="6h", model=tiny_model)
    xr.testing.assert_identical(by_int, by_duration)
    xr.testing.assert_identical(by_np_int, by_duration)
    curve_int = xatmodist.lag_curve(fields, max_lag=3, model=tiny_model)
    curve_td = xatmodist.lag_curve(fields, max_lag=pd.Timedelta("9h"), model=tiny_model)
    xr.testing.assert_identical(curve_int, curve_td)


def test_valid_time_is_found_by_every_function(fields, tiny_model):
    """ERA5 from the CDS names its time dim valid_time (standard_name time)."""
    era5 = fields.rename(time="valid_time")
    era5.valid_time.attrs = {"standard_name": "time", "long_name": "time"}
    ref_p = xatmodist.predict_lag(fields, lag=1, model=tiny_model)
    ref_c = xatmodist.lag_curve(fields, model=tiny_model)
    p = era5.atmodist.predict_lag(lag=1, model=tiny_model)
    c = era5.atmodist.lag_curve(model=tiny_model)
    np.testing.assert_array_equal(p.values, ref_p.values)
    assert p.dims == ("valid_time", "lag")
    np.testing.assert_array_equal(c.learned.values, ref_c.learned.values)
    assert c.attrs["dim"] == "valid_time"
    # no attributes at all: the dim holding datetimes is the time axis
    bare = fields.rename(time="when")
    bare.when.attrs = {}
    np.testing.assert_array_equal(
        xatmodist.predict_lag(bare, lag=1, model=tiny_model).values, ref_p.values
    )


def test_lag_outside_the_classes_warns(fields, tiny_model):
    """The tiny model knows 3h..12h; 15h is not a class."""
    with pytest.warns(OutOfDistributionWarning, match="A lag of 15h is not one of") as rec:
        fields.atmodist.predict_lag(lag=5, model=tiny_model)
    msg = str(rec[0].message)
    assert "3h to 12h in steps of 3h" in msg
    assert rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDistributionWarning)
        xatmodist.predict_lag(fields, lag=4, model=tiny_model)  # 12h: a class


def test_hourly_data_and_a_3_hourly_model(fields, tiny_model):
    """'1h' is not a class; the message says the data are hourly and the model 3-hourly."""
    hourly = fields.assign_coords(time=pd.date_range("2000-01-01", periods=8, freq="1h"))
    with pytest.warns(OutOfDistributionWarning, match="A lag of 1h is not one of") as rec:
        xatmodist.predict_lag(hourly, lag="1h", model=tiny_model)
    msg = str(rec[0].message)
    assert "The data's time step is 1h; the model's lags come in steps of 3h" in msg
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDistributionWarning)
        xatmodist.predict_lag(hourly, lag=3, model=tiny_model)  # 3 hours: a class


# --------------------------------------------------------------------------------------
# values and warnings
# --------------------------------------------------------------------------------------


def test_out_of_range_message_names_the_variable(fields, tiny_model):
    f = fields.isel(time=slice(0, 2))
    wrong = f.assign(d=f.d * 1e9)  # e.g. 1e-9 s-1 units given as s-1
    wrong.d.attrs = f.d.attrs
    with pytest.raises(InputError, match=r"Variable 'd' has values .* training standard") as e:
        xatmodist.distance(wrong, f, model=tiny_model)
    assert "(the model expects 's-1')" in str(e.value)
    with pytest.raises(InputError, match="Variable 'd'"):
        xatmodist.embed(wrong.chunk(time=1), model=tiny_model).compute()


def test_warnings_point_at_the_users_line_and_lag_curve_warns_once(fields, tiny_model):
    coarse = fields.coarsen(lat=2, lon=2).mean(keep_attrs=True)
    for call in (
        lambda: coarse.atmodist.distance(coarse, model=tiny_model),
        lambda: coarse.atmodist.embed(model=tiny_model),
        lambda: coarse.atmodist.lag_curve(model=tiny_model),
        lambda: xatmodist.lag_curve(coarse, model=tiny_model),
    ):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            call()
        ood = [w for w in rec if issubclass(w.category, OutOfDistributionWarning)]
        assert ood, "a coarser grid is out of distribution"
        assert all(w.filename == __file__ for w in ood), [w.filename for w in ood]
    assert len(ood) == 1, "lag_curve warns once"


def test_model_repr_is_a_short_summary():
    text = repr(xatmodist.load_model())
    assert len(text) < 250, text
    for part in ("atmodist-swe-vd-v9", "encoder", "vo [s-1]", "d [s-1]", "held-out rho 0.901"):
        assert part in text, text
    assert "vo RMSE" in repr(xatmodist.load_model("inpaint-swe-vd"))


def test_temperature_data_points_to_the_trainers(fields):
    """WFDE5-like near-surface temperature given to the vorticity/divergence models."""
    from xatmodist.train import fit_inpainter

    tas = xr.Dataset(
        {"tas": (fields.vo.dims, 280.0 + 1e5 * fields.vo.values, {"units": "K"})},
        coords=fields.coords,
    )
    tas.tas.attrs["standard_name"] = "air_temperature"
    gappy = tas.where(tas.lat < 60)
    with pytest.raises(xatmodist.VariableNotFoundError, match="holds none of the model's") as e:
        gappy.atmodist.inpaint()
    assert "fit_inpainter(ds, loss='l2')" in str(e.value)
    with pytest.raises(xatmodist.UnitsError, match="this model does not fit it") as e:
        gappy.atmodist.inpaint(variables={"vo": "tas", "d": "tas"})
    assert "xatmodist.list_models()" in str(e.value)
    with pytest.raises(InputError, match="this encoder cannot judge them") as e:
        fit_inpainter(tas, epochs=1, progress=False)
    assert "fit_inpainter(loss='l2')" in str(e.value) and "fit_encoder" in str(e.value)


def test_land_sea_mask_warns_that_every_result_is_nan(fields, tiny_model):
    """WFDE5-like data: NaN over the ocean in every field."""
    masked = fields.where(fields.lon < 300)
    with pytest.warns(UserWarning, match="All 8 fields of this chunk have NaN/inf at the same"):
        d = xatmodist.distance(masked, masked.isel(time=0), model=tiny_model)
    assert d.isnull().all()


def test_daily_data_and_a_3_hourly_model_warns(fields, tiny_model):
    daily = fields.assign_coords(time=pd.date_range("2000-01-01", periods=8, freq="1D"))
    with pytest.warns(OutOfDistributionWarning, match="The data's time step is 1D but model"):
        xatmodist.lag_curve(daily, model=tiny_model, max_lag=2)
    with pytest.warns(OutOfDistributionWarning, match="learned lags in steps of 3h"):
        xatmodist.predict_lag(daily, lag=1, model=tiny_model)
