"""The trainers' inputs: integer lags, an out folder that holds a run, resume settings,
the default variables."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import xatmodist
from xatmodist.testing import TINY_ENCODER_TRAINING, synthetic_fields
from xatmodist.train import _checkpoint as checkpoint
from xatmodist.train import fit_downscaler, fit_encoder, fit_inpainter
from xatmodist.train._source import default_variables
from xatmodist.train.encoder import lag_setup

#: 1 epoch of 4 optimizer steps (OneCycle schedule) on a 32 x 64 grid
SMALL = {**TINY_ENCODER_TRAINING, "epochs": 1}
#: one optimizer step per epoch: a constant learning rate (LambdaLR, no total_steps)
ONE_STEP = {**SMALL, "pairs_per_epoch": 32, "val_pairs": 32}
DOWNSCALER = {
    "content_loss": "l2",
    "patch_size": 16,
    "epochs": 1,
    "samples_per_epoch": 16,
    "batch_size": 8,
    "width": 8,
    "blocks": 1,
    "progress": False,
}
INPAINTER = {
    "loss": "l2",
    "patch_size": 16,
    "hole": (2, 6),
    "levels": 2,
    "epochs": 1,
    "samples_per_epoch": 16,
    "batch_size": 8,
    "width": 8,
    "blocks": 1,
    "progress": False,
}


@pytest.fixture(scope="module")
def ds():
    return synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- 1. integer lags are data steps -------------------------------------------------------


@pytest.mark.parametrize(
    ("max_lag", "lag_step", "want"),
    [
        (12, None, (3600.0, 12, 1)),
        (np.int64(12), 2, (7200.0, 6, 2)),
        (12, np.int32(3), (10800.0, 4, 3)),
        ("12h", "2h", (7200.0, 6, 2)),
        (pd.Timedelta("12h"), np.timedelta64(2, "h"), (7200.0, 6, 2)),
        (np.timedelta64(12, "h"), 2, (7200.0, 6, 2)),
        ("1D", 6, (21600.0, 4, 6)),
    ],
)
def test_lag_setup_reads_integers_as_steps_and_the_rest_as_durations(max_lag, lag_step, want):
    assert lag_setup(3600.0, max_lag, lag_step) == want


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_lag": 12.0}, r"whole number of time steps or a duration; got 12\.0 \(float\)"),
        ({"max_lag": np.float64(6)}, r"got .*6\.0\)? \(float64\)"),
        ({"max_lag": True}, r"got True \(bool\)"),
        ({"max_lag": 12, "lag_step": 1.5}, r"lag_step must be a whole number"),
        ({"max_lag": 12, "lag_step": np.bool_(True)}, r"lag_step must be a whole number"),
        ({"max_lag": 0}, r"max_lag=0 is not a positive number of time steps"),
        ({"max_lag": -3}, r"max_lag=-3 is not a positive number"),
        ({"max_lag": 12, "lag_step": 0}, r"lag_step=0 is not a positive number"),
        ({"max_lag": "12"}, r"max_lag='12' has no unit.*'12h'.*integer"),
        ({"max_lag": "NaT"}, r"max_lag must be a duration"),
        ({"max_lag": "nonsense"}, r"max_lag must be a duration.*'6h'"),
        ({"max_lag": [12]}, r"max_lag must be a duration"),
        ({"max_lag": 5, "lag_step": 2}, r"max_lag=5 \(5h\) must be a whole multiple"),
        ({"max_lag": 1}, r"whole multiple \(>= 2\) of lag_step \(1h\)"),
        ({"max_lag": "12h", "lag_step": "90min"}, r"lag_step='90min' \(90min\).*time step \(1h\)"),
    ],
)
def test_lag_setup_refuses(kwargs, match):
    with pytest.raises(xatmodist.InputError, match=match):
        lag_setup(3600.0, **kwargs)


def test_lag_setup_needs_a_time_step():
    with pytest.raises(xatmodist.InputError, match="datetime time coordinate"):
        lag_setup(None, 12)


def test_fit_encoder_integer_lags_are_steps_of_the_data():
    hourly = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3, step="1h")
    args = {**SMALL, "epochs": 1, "pairs_per_epoch": 32, "val_pairs": 32}
    m = fit_encoder(hourly, **{**args, "max_lag": 6, "lag_step": 2})
    assert m.card.lag_step_seconds == 7200.0
    assert m.card.lag_classes == [7200.0, 14400.0, 21600.0]
    with pytest.raises(xatmodist.InputError, match=r"max_lag must be a whole number.*'6h'"):
        fit_encoder(hourly, **{**args, "max_lag": 6.0})


# --- 2. an out folder that holds a run ----------------------------------------------------


def test_fit_encoder_refuses_an_out_that_holds_a_run_then_overwrites_it(ds, tmp_path):
    out = tmp_path / "run"
    fit_encoder(ds, out=out, **ONE_STEP)
    before = _sha(out / "checkpoint.pt")
    with pytest.raises(xatmodist.InputError, match=r"already holds a training run") as err:
        fit_encoder(ds, out=out, **{**ONE_STEP, "seed": 1})
    assert str(out) in str(err.value)
    assert "resume=True" in str(err.value) and "overwrite=True" in str(err.value)
    assert _sha(out / "checkpoint.pt") == before
    # a saved model alone (checkpoint removed) is a run too
    (out / "checkpoint.pt").unlink()
    with pytest.raises(xatmodist.InputError, match=r"model"):
        fit_encoder(ds, out=out, **ONE_STEP)

    # overwrite: a fresh run; stopped before its first epoch, nothing of the old one is left
    (out / "model" / "notes.txt").write_text("mine")
    m = fit_encoder(ds, out=out, overwrite=True, stop_after=0, **{**ONE_STEP, "seed": 1})
    assert not (out / "checkpoint.pt").exists()
    assert (out / "metrics.jsonl").read_text() == ""
    assert m.card.training["seed"] == 1 and m.card.training["history"] == []
    assert xatmodist.load_model(out / "model").card.training["seed"] == 1
    assert (out / "model" / "notes.txt").read_text() == "mine"
    fit_encoder(ds, out=out, overwrite=True, **{**ONE_STEP, "seed": 2})
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resume": True, "overwrite": True}, "Pass only one of them"),
        ({"overwrite": "yes"}, "overwrite must be True or False"),
        ({"resume": 1}, "resume must be True or False"),
    ],
)
def test_resume_and_overwrite_are_checked(ds, tmp_path, kwargs, match):
    for fit, data, args in (
        (fit_encoder, ds, ONE_STEP),
        (fit_downscaler, ds, DOWNSCALER),
        (fit_inpainter, ds, INPAINTER),
    ):
        with pytest.raises(xatmodist.InputError, match=match):
            fit(data, out=tmp_path / "run", **args, **kwargs)
    assert not (tmp_path / "run").exists()


def test_clear_keeps_other_files(tmp_path):
    (tmp_path / "model").mkdir()
    for name in ("checkpoint.pt", "checkpoint.tmp", "metrics.jsonl", "model/card.json"):
        (tmp_path / name).write_text("x")
    checkpoint.clear(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.safetensors").write_text("x")
    (tmp_path / "model" / "README").write_text("x")
    checkpoint.clear(tmp_path)
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["README"]


@pytest.mark.parametrize(
    ("fit", "args"), [(fit_downscaler, DOWNSCALER), (fit_inpainter, INPAINTER)]
)
def test_field_trainers_refuse_an_out_that_holds_a_run(ds, tmp_path, fit, args):
    out = tmp_path / "run"
    fit(ds, out=out, **args)
    before = _sha(out / "checkpoint.pt")
    with pytest.raises(xatmodist.InputError, match=r"already holds a training run") as err:
        fit(ds, out=out, **args)
    assert str(out) in str(err.value) and "overwrite=True" in str(err.value)
    assert _sha(out / "checkpoint.pt") == before
    m = fit(ds, out=out, overwrite=True, **{**args, "seed": 4})
    assert m.card.training["seed"] == 4
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    # resuming the finished run with its settings does nothing more
    again = fit(ds, out=out, resume=True, **{**args, "seed": 4})
    for k, v in m.module.state_dict().items():
        assert torch.equal(v, again.module.state_dict()[k]), k


# --- 3. resuming with changed settings ----------------------------------------------------


def test_resume_of_a_constant_rate_run_with_other_settings_is_refused(ds, tmp_path):
    """One optimizer step per epoch: no schedule length to compare, the settings are."""
    out = tmp_path / "run"
    fit_encoder(ds, out=out, **{**ONE_STEP, "epochs": 3}, stop_after=1)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert "total_steps" not in state["scheduler"]
    before = _sha(out / "checkpoint.pt")
    changed = {**ONE_STEP, "epochs": 3, "lr": 2e-3, "widths": (8, 8), "max_lag": "6h"}
    with pytest.raises(xatmodist.InputError) as err:
        fit_encoder(ds, out=out, resume=True, seed=1, **changed)
    msg = str(err.value)
    for line in ("lr: 0.001 -> 0.002", "widths: [8, 16] -> [8, 8]", 'max_lag: "9h" -> "6h"'):
        assert line in msg
    assert "seed: 0 -> 1" in msg and "seed=1" in msg and "another out folder" in msg
    assert "epochs" not in msg and "batch_size" not in msg  # unchanged ones are not listed
    # the same settings in another spelling (9 h = 3 steps of 3 h) are the same run
    assert _sha(out / "checkpoint.pt") == before
    m = fit_encoder(ds, out=out, resume=True, **{**ONE_STEP, "epochs": 3, "max_lag": 3})
    assert len(m.card.training["history"]) == 3


def test_distance_may_change_only_once_the_run_is_finished(ds, tmp_path):
    out = tmp_path / "run"
    fit_encoder(ds, out=out, **{**ONE_STEP, "epochs": 2}, stop_after=1)
    with pytest.raises(xatmodist.InputError, match=r'distance: "squared" -> "l1"'):
        fit_encoder(ds, out=out, resume=True, **{**ONE_STEP, "epochs": 2, "distance": "l1"})
    squared = fit_encoder(ds, out=out, resume=True, **{**ONE_STEP, "epochs": 2})
    l1 = fit_encoder(ds, out=out, resume=True, **{**ONE_STEP, "epochs": 2, "distance": "l1"})
    assert l1.card.distance["kind"] == "l1" and squared.card.distance["kind"] == "squared"


def test_checkpoint_without_settings_keeps_the_schedule_check(ds, tmp_path):
    out = tmp_path / "run"
    fit_encoder(ds, out=out, **{**SMALL, "epochs": 2}, stop_after=1)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    del state["config"]
    torch.save(state, out / "checkpoint.pt")
    with pytest.raises(xatmodist.InputError, match=r"run of 8 optimizer steps.*epochs=3"):
        fit_encoder(ds, out=out, resume=True, **{**SMALL, "epochs": 3})
    # other settings of such a checkpoint cannot be compared: the run continues
    m = fit_encoder(ds, out=out, resume=True, **{**SMALL, "epochs": 2, "val_pairs": 32})
    assert len(m.card.training["history"]) == 2


@pytest.mark.parametrize(
    ("fit", "args", "change", "line"),
    [
        (fit_downscaler, DOWNSCALER, {"lr": 2e-3}, "lr: 0.001 -> 0.002"),
        (fit_downscaler, DOWNSCALER, {"upsample": "resize"}, 'upsample: "shuffle" -> "resize"'),
        (fit_inpainter, INPAINTER, {"hole": (2, 4)}, "hole: [2, 6] -> [2, 4]"),
        (fit_inpainter, INPAINTER, {"variables": ["vo"]}, 'variables: ["vo", "d"] -> ["vo"]'),
    ],
)
def test_field_trainers_refuse_resume_with_other_settings(ds, tmp_path, fit, args, change, line):
    out = tmp_path / "run"
    fit(ds, out=out, **{**args, "epochs": 2}, stop_after=1)
    with pytest.raises(xatmodist.InputError, match="other settings") as err:
        fit(ds, out=out, resume=True, **{**args, "epochs": 2, **change})
    assert line in str(err.value)


# --- 4. default variables -----------------------------------------------------------------


def _surface(seed: int = 5) -> xr.Dataset:
    base = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=seed)
    rng = np.random.default_rng(seed)
    shape = base["vo"].shape
    fields = {
        n: (base["vo"].dims, rng.standard_normal(shape).astype(np.float32), {"units": u})
        for n, u in (("u10", "m s-1"), ("v10", "m s-1"), ("t2m", "K"))
    }
    return xr.Dataset(
        {
            **fields,
            "lsm": (("lat", "lon"), (rng.random(shape[1:]) > 0.5).astype(np.float32)),
            "time_bnds": (("time", "nv"), np.zeros((shape[0], 2))),
            "time_weight": (("time",), np.ones(shape[0])),
        },
        coords=base.coords,
    )


def test_default_variables_are_the_fields_with_time_and_space(caplog):
    surface = _surface()
    with caplog.at_level(logging.INFO, logger="xatmodist.train._source"):
        m = fit_encoder(surface, **ONE_STEP)
    assert m.card.variable_names == ["u10", "v10", "t2m"]
    assert "['u10', 'v10', 't2m']" in caplog.text
    # vorticity and divergence, by standard_name, when both are there
    both = xr.merge([_surface(), synthetic_fields(n_time=40, nlat=32, nlon=64, seed=5)])
    assert list(both.data_vars)[:3] == ["u10", "v10", "t2m"]
    with caplog.at_level(logging.INFO, logger="xatmodist.train._source"):
        assert default_variables(both) == ["vo", "d"]
    assert "vorticity and divergence" in caplog.text


def test_default_variables_refuses_data_without_fields():
    static = _surface()[["lsm", "time_bnds"]]
    with pytest.raises(xatmodist.InputError, match=r"No field variable found.*'lsm'.*variables="):
        fit_encoder(static, **ONE_STEP)
    with pytest.raises(xatmodist.InputError, match=r"variables=\[\] selects no variable"):
        fit_encoder(_surface(), variables=[], **ONE_STEP)


def test_patch_size_defaults_to_what_fits_the_grid():
    """A user's first regional data set: no patch_size, a 25 x 53 box (NCEP's grid)."""
    ds = synthetic_fields(n_time=40, nlat=25, nlon=53, seed=1)
    ds = ds.assign_coords(lon=("lon", 200 + 2.5 * np.arange(53), ds.lon.attrs))  # regional
    kw = {k: v for k, v in SMALL.items() if k != "patch_size"}
    model = fit_encoder(ds, **kw)
    assert model.card.patch_size == 24  # 25 rows: the largest even side that fits
    with pytest.raises(xatmodist.InputError, match="smaller than one feature cell"):
        fit_encoder(ds.isel(lat=slice(0, 5)), **{**kw, "widths": (8, 16, 32, 64)})
