"""inpaint() with the pretrained inpainters, fit_inpainter, the hole masks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import xatmodist
from xatmodist._kernels import hole_radius
from xatmodist.testing import raise_if_dask_computes
from xatmodist.train import fit_inpainter
from xatmodist.train._masks import random_masks

MODEL = "inpaint-swe-vd"


@pytest.fixture(scope="module")
def truth():
    """Held-out simulator fields (the embedded sample), 6 fields."""
    return xatmodist.datasets.sample()[["vo", "d"]].isel(run=0, time=slice(0, 6)).load()


def _with_holes(ds: xr.Dataset, boxes) -> xr.Dataset:
    """NaN in every variable inside (time index or None, lat slice, lon index array) boxes."""
    m = xr.zeros_like(ds.vo, dtype=bool)
    for t, rows, cols in boxes:
        sel = {"lat": rows, "lon": cols}
        if t is not None:
            sel["time"] = t
        m[sel] = True
    return ds.where(~m), m


def test_fills_holes_keeps_observed_bitwise(truth):
    gappy, m = _with_holes(truth, [(None, slice(20, 36), np.arange(40, 56))])
    gappy = gappy.assign(vo=gappy.vo.copy())
    gappy.vo[1] = truth.vo[1]  # one field without holes in vo; d still has them
    out = xatmodist.inpaint(gappy)
    assert isinstance(out, xr.Dataset) and set(out.data_vars) == {"vo", "d"}
    assert out.vo.dtype == gappy.vo.dtype and out.vo.dims == gappy.vo.dims
    assert out.notnull().all().to_array().all()
    for v in ("vo", "d"):
        obs = gappy[v].notnull().values
        np.testing.assert_array_equal(out[v].values[obs], gappy[v].values[obs])
    # each variable keeps its own values: vo[1] had no NaN, d[1] did
    np.testing.assert_array_equal(out.vo[1].values, truth.vo[1].values)
    assert gappy.d[1].isnull().any() and out.d[1].notnull().all()
    assert out.attrs["xatmodist_model"] == MODEL and out.vo.attrs["units"] == "s-1"
    # a plausible fill: far better than zeros or the field's mean
    err = float(np.sqrt(((out.vo - truth.vo).where(m) ** 2).mean()))
    assert err < 0.9 * float(np.sqrt((truth.vo.where(m) ** 2).mean()))


def test_fields_without_holes_skip_the_network(truth):
    net = xatmodist.load_model(MODEL).module
    calls = []
    h = net.register_forward_hook(lambda *a: calls.append(1))
    try:
        out = xatmodist.inpaint(truth)
        xr.testing.assert_identical(out.drop_attrs(), truth.drop_attrs())
        assert not calls
        gappy, _ = _with_holes(truth, [(2, slice(0, 8), np.arange(8))])
        xatmodist.inpaint(gappy)
        assert len(calls) == 1  # one batch holding the single field with a hole
    finally:
        h.remove()


def test_float64_observed_values_bitwise(truth):
    t64 = truth.astype("float64") * (1 + 1e-9)  # values float32 cannot hold
    gappy, _ = _with_holes(t64, [(None, slice(30, 40), np.arange(60, 70))])
    out = xatmodist.inpaint(gappy)
    assert out.vo.dtype == np.float64
    obs = gappy.vo.notnull().values
    np.testing.assert_array_equal(out.vo.values[obs], gappy.vo.values[obs])


def test_lazy_and_chunk_invariant(truth):
    gappy, m = _with_holes(truth, [(None, slice(10, 26), np.arange(100, 116))])
    eager = xatmodist.inpaint(gappy)
    for chunks in ({"time": 1}, {"time": 4}, {"time": -1}):
        with raise_if_dask_computes():
            lazy = gappy.chunk(chunks).atmodist.inpaint()
            lazy_m = gappy.chunk(chunks).atmodist.inpaint(mask=m.chunk(chunks))
        assert lazy.vo.chunks is not None
        with raise_if_dask_computes(max_computes=2):
            xr.testing.assert_identical(lazy.compute(), eager)
            xr.testing.assert_identical(lazy_m.compute(), eager)


def test_dataarray_with_channel_dim_and_accessor(truth):
    gappy, _ = _with_holes(truth, [(None, slice(10, 20), np.arange(10, 20))])
    da = gappy.to_dataarray("variable").assign_attrs(units="s-1")  # to_dataarray drops them
    out = da.atmodist.inpaint()
    assert out.dims == da.dims and list(out["variable"].values) == ["vo", "d"]
    np.testing.assert_array_equal(out.values, xatmodist.inpaint(gappy).to_dataarray("variable"))


def test_holes_across_seam_and_at_poles_and_orientation(truth):
    cols = np.r_[120:128, 0:8]  # crosses 0 deg E
    gappy, m = _with_holes(truth, [(None, slice(0, 12), cols)])  # touches the north pole row
    out = xatmodist.inpaint(gappy)
    obs = ~m.values
    np.testing.assert_array_equal(out.vo.values[obs], gappy.vo.values[obs])
    assert out.vo.notnull().all()
    # -180..180 longitudes and ascending latitudes: the same numbers at the same points
    alt = gappy.assign_coords(lon=((gappy.lon + 180) % 360) - 180).sortby("lon").sortby("lat")
    out_alt = xatmodist.inpaint(alt)
    assert out_alt.lat[0] < out_alt.lat[-1]  # the input's orientation is kept
    back = out_alt.assign_coords(lon=out_alt.lon % 360).sortby("lon").sortby("lat", ascending=False)
    np.testing.assert_array_equal(back.vo.values, out.vo.values)
    # the fill across the seam is continuous: close to the fill of the same hole moved inland
    rolled = gappy.roll(lon=64, roll_coords=False)
    out_r = xatmodist.inpaint(rolled).roll(lon=-64, roll_coords=False)
    diff = float(np.abs(out_r.vo - out.vo).max()) / float(truth.vo.std())
    assert diff < 0.5


def test_explicit_mask_replaces_observed_points(truth):
    m = xr.zeros_like(truth.vo.isel(time=0), dtype=bool)
    m[30:40, 50:60] = True  # occluded (observed but bad) values, the same at every time
    out = xatmodist.inpaint(truth, mask=m)
    assert not np.array_equal(out.vo.values[:, 30:40, 50:60], truth.vo.values[:, 30:40, 50:60])
    np.testing.assert_array_equal(out.vo.values[:, ~m.values], truth.vo.values[:, ~m.values])


def test_keep_observed_false_returns_the_fill_alone(truth):
    gappy, m = _with_holes(truth, [(None, slice(20, 30), np.arange(20, 30))])
    fill = xatmodist.inpaint(gappy, keep_observed=False)
    full = xatmodist.inpaint(gappy)
    np.testing.assert_array_equal(fill.vo.notnull().values, m.values)
    xr.testing.assert_identical(fill.fillna(gappy).drop_attrs(), full.drop_attrs())
    assert fill.attrs["keep_observed"] == "False"


def test_too_large_hole_is_refused_eagerly_and_on_compute(truth):
    gappy, _ = _with_holes(truth, [(0, slice(5, 60), np.arange(10, 70))])
    with pytest.raises(xatmodist.InputError, match="reaches .* grid cells.*fit_inpainter"):
        xatmodist.inpaint(gappy)
    lazy = xatmodist.inpaint(gappy.chunk(time=1))  # the mask is data: checked on compute
    with pytest.raises(xatmodist.InputError, match="trained on holes up to 32"):
        lazy.compute()


@pytest.mark.parametrize(
    "kw, err, match",
    [
        (
            {"model": "atmodist-swe-vd"},
            xatmodist.ModelError,
            "is an encoder, but this needs an inpainter",
        ),
        ({"model": "no-such-inpainter"}, xatmodist.ModelNotFoundError, "no-such-inpainter"),
        ({"keep_observed": "yes"}, xatmodist.InputError, "True or False"),
        ({"mask": np.zeros((64, 128), bool)}, xatmodist.InputError, "boolean xarray.DataArray"),
        ({"mask": "float"}, xatmodist.InputError, "must be boolean"),
        ({"mask": "dims"}, xatmodist.InputError, "expected 'lat' and 'lon'"),
        ({"mask": "size"}, xatmodist.InputError, "points along 'lon'"),
        ({"mask": "coords"}, xatmodist.InputError, "coordinate differs"),
        ({"mask": "chunks"}, xatmodist.ChunkError, "lat"),
        ({"mask": "time"}, xatmodist.InputError, "same coordinates"),
    ],
)
def test_errors(truth, kw, err, match):
    m = xr.zeros_like(truth.vo, dtype=bool)
    masks = {
        "float": m.astype(float),
        "dims": m.rename(lat="y"),
        "size": m.isel(lon=slice(0, 100)),
        "coords": m.assign_coords(lon=m.lon + 1.0),
        "chunks": m.chunk(lat=8),
        "time": m.assign_coords(time=m.time + np.timedelta64(1, "h")),
    }
    if isinstance(kw.get("mask"), str):
        kw = {"mask": masks[kw["mask"]]}
    with pytest.raises(err, match=match):
        xatmodist.inpaint(truth, **kw)


def test_nan_outside_mask_and_empty_field(truth):
    gappy, _ = _with_holes(truth, [(None, slice(0, 4), np.arange(4))])
    m = xr.zeros_like(truth.vo.isel(time=0), dtype=bool)
    with pytest.raises(xatmodist.InputError, match="outside the mask"):
        xatmodist.inpaint(gappy, mask=m)
    empty = truth.copy(deep=True)
    empty["vo"][0] = np.nan
    gappy_e = empty.where(~((empty.lat > 0) & (empty.lat < 20) & (empty.lon < 30)))
    with pytest.warns(UserWarning, match="1 field.*no observed values.*returned as NaN"):
        out = xatmodist.inpaint(gappy_e)
    assert out.vo[0].isnull().all() and out.d[0].isnull().all()
    assert out.vo[1:].notnull().all() and out.d.isel(time=slice(1, None)).notnull().all()


def test_hole_radius_analytic():
    m = np.zeros((3, 20, 20), dtype=bool)
    m[0, 5:10, 5:10] = True  # 5x5 interior hole: centre 3 cells from observed
    m[1, 0:4, 2:16] = True  # touches the top edge: mirrored to 8 rows -> 4 cells
    assert list(hole_radius(m)) == [3.0, 4.0, 0.0]
    w = np.zeros((1, 20, 20), dtype=bool)
    w[0, 8:12, np.r_[17:20, 0:3]] = True  # 6 columns across the seam
    assert hole_radius(w, wrap=True)[0] == hole_radius(np.roll(w, 5, axis=-1), wrap=True)[0]
    assert hole_radius(np.ones((1, 4, 4), bool))[0] == np.inf


@pytest.mark.parametrize("seed", range(5))
def test_random_masks_respect_the_size_limit(seed):
    rng = np.random.default_rng(seed)
    ms = random_masks(rng, 64, 64, (4, 24))
    assert ms.shape == (64, 1, 64, 64) and ms.dtype == bool
    assert ms.any(axis=(1, 2, 3)).all()
    r = hole_radius(ms[:, 0])
    assert r.min() >= 1 and np.median(r) < 12  # every size, mostly within the limit
    rect = random_masks(rng, 64, 64, (4, 24), kinds=("rect",))[:, 0]
    inner = ~(rect[:, [0, -1], :].any(axis=(1, 2)) | rect[:, :, [0, -1]].any(axis=(1, 2)))
    assert inner.sum() > 10 and (hole_radius(rect[inner]) <= 12.5).all()
    only_rect = random_masks(rng, 16, 64, (6, 6), kinds=("rect",))
    assert set(only_rect[:, 0].sum(axis=(1, 2))) <= {36, 30, 25, 24, 20, 18, 16, 15, 12, 9, 6, 4}


def test_fit_inpainter_resume_and_errors(truth, tmp_path):
    kw = dict(epochs=2, samples_per_epoch=16, batch_size=8, width=8, blocks=1, progress=False)
    full = fit_inpainter(truth, loss="atmodist", out=tmp_path / "a", **kw)
    assert full.card.task == "inpainter" and full.card.max_hole_radius == 16
    # the AtmoDist loss's encoder defaults to the library's default encoder
    assert full.card.training["encoder"] == xatmodist.zoo.DEFAULT_ENCODER
    fit_inpainter(truth, loss="atmodist", out=tmp_path / "b", stop_after=1, **kw)
    resumed = fit_inpainter(truth, loss="atmodist", out=tmp_path / "b", resume=True, **kw)
    for k, t in full.module.state_dict().items():
        assert np.array_equal(t.numpy(), resumed.module.state_dict()[k].numpy()), k
    hist = [{k: r[k] for k in ("epoch", "loss")} for r in resumed.card.training["history"]]
    assert hist == [{k: r[k] for k in ("epoch", "loss")} for r in full.card.training["history"]]
    loaded = xatmodist.load_model(tmp_path / "a" / "model")
    gappy, _ = _with_holes(truth, [(None, slice(10, 20), np.arange(10, 20))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
        assert xatmodist.inpaint(gappy, model=loaded).vo.notnull().all()
    for bad, match in [
        ({"loss": "gan"}, "loss must be one of"),
        ({"hole": (10, 4)}, "1 <= min <= max"),
        ({"hole_kinds": ("star",)}, "hole_kinds"),
        ({"patch_size": 60}, "multiple of 8"),
        ({"patch_size": 128}, "exceeds the 64 x 128 grid"),
        ({"loss": "l2", "balance_variables": True}, r"balance_variables=True .* loss='l2'"),
    ]:
        error = xatmodist.ModelError if "fine-tuning needs" in match else xatmodist.InputError
        with pytest.raises(error, match=match):
            fit_inpainter(truth, **{**kw, **bad})


def test_fit_inpainter_balanced_variables(truth, tiny_model):
    kw = dict(epochs=1, samples_per_epoch=16, batch_size=8, width=8, blocks=1, progress=False)
    kw.update(encoder=tiny_model, patch_size=32, hole=(4, 12))
    bal = fit_inpainter(truth, balance_variables=True, **kw)
    w = bal.card.training["variable_weights"]
    assert set(w) == {"vo", "d"} and np.mean([1 / x for x in w.values()]) == pytest.approx(1.0)
    plain = fit_inpainter(truth, **kw)
    assert plain.card.training["variable_weights"] is None
    a, b = (m.module.state_dict()["tail.weight"].numpy() for m in (bal, plain))
    assert not np.allclose(a, b)


def test_fit_inpainter_extra_encoder_and_init(truth, tiny_model, tmp_path):
    import torch

    from xatmodist.testing import tiny_encoder

    d_enc = tiny_encoder(tmp_path / "d", variables=["d"], name="tiny-d-encoder", seed=3)
    kw = dict(epochs=1, samples_per_epoch=16, batch_size=8, width=8, blocks=1, progress=False)
    kw.update(encoder=tiny_model, patch_size=32, hole=(4, 12))
    plain = fit_inpainter(truth, out=tmp_path / "plain", **kw)
    extra = fit_inpainter(truth, extra_encoders=[d_enc], **kw)
    (rec,) = extra.card.training["extra_encoders"]
    assert rec["name"] == "tiny-d-encoder" and rec["variables"] == ["d"]
    assert plain.card.training["extra_encoders"] == [] and plain.card.training["init"] is None
    vo_only = fit_inpainter(truth, variable_weights={"vo": 1.0, "d": 0.0}, **kw)
    assert vo_only.card.training["variable_weights"] == {"vo": 1.0, "d": 0.0}
    a, b = (m.module.state_dict()["tail.weight"] for m in (plain, extra))
    assert not torch.equal(a, b)
    # init: start from plain's weights (one more epoch differs from a fresh start)
    start = xatmodist.load_model(tmp_path / "plain" / "model")
    tuned = fit_inpainter(truth, init=start, **kw)
    assert tuned.card.training["init"] == {"name": start.name, "sha256": start.sha256}
    assert torch.equal(tuned.module.std, start.module.std)
    assert not torch.equal(tuned.module.state_dict()["tail.weight"], a)
    for bad, match in [
        ({"loss": "l2", "extra_encoders": [d_enc]}, r"extra_encoders add .* loss='l2'"),
        ({"variable_weights": {"vo": 0.0, "d": 0.0}}, "are all zero"),
        ({"init": tiny_model}, "is an encoder, but fine-tuning needs an inpainter"),
        ({"init": start, "width": 16}, r"does not fit these arguments: \{'width'"),
    ]:
        error = xatmodist.ModelError if "fine-tuning needs" in match else xatmodist.InputError
        with pytest.raises(error, match=match):
            fit_inpainter(truth, **{**kw, **bad})
