"""The public functions: shapes, coords, laziness, chunk invariance, accessor == function."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xatmodist
from xatmodist.testing import raise_if_dask_computes

CHUNKINGS = [{"time": 1}, {"time": 3}, {"time": -1}]


def _later(ds, k):
    first = ds.isel(time=slice(None, -k))
    return first, ds.isel(time=slice(k, None)).assign_coords(time=first.time)


def _ops(model):
    """Each public op as a function of one Dataset."""
    return {
        "distance": lambda ds: xatmodist.distance(*_later(ds, 2), model=model),
        "distance_spatial": lambda ds: xatmodist.distance(
            *_later(ds, 2), model=model, spatial=True
        ),
        "distance_l2": lambda ds: xatmodist.distance(*_later(ds, 2), model=model, metric="l2"),
        "embed_mean": lambda ds: xatmodist.embed(ds, model=model),
        "embed_tile": lambda ds: xatmodist.embed(ds, model=model, pool="tile"),
        "embed_none": lambda ds: xatmodist.embed(ds, model=model, pool="none"),
        "predict_lag": lambda ds: xatmodist.predict_lag(ds, lag="3h", model=model),
        "predict_lag_expected": lambda ds: xatmodist.predict_lag(
            ds, lag="6h", model=model, output="expected"
        ),
        "lag_curve": lambda ds: xatmodist.lag_curve(ds, model=model, max_lag="9h"),
    }


OPS = list(_ops(None))


@pytest.mark.parametrize("op", OPS)
def test_lazy_and_chunk_invariant(op, tiny_model, fields):
    fn = _ops(tiny_model)[op]
    eager = fn(fields)
    assert not _is_lazy(eager)
    for chunks in CHUNKINGS:
        with raise_if_dask_computes():
            lazy = fn(fields.chunk(chunks))
        assert _is_lazy(lazy), f"{op} computed eagerly for chunks {chunks}"
        got = lazy.compute()
        xr.testing.assert_allclose(got, eager, rtol=1e-6, atol=1e-6)


def _is_lazy(obj):
    if isinstance(obj, xr.Dataset):
        return any(v.chunks is not None for v in obj.data_vars.values())
    return obj.chunks is not None


def test_one_task_per_chunk(tiny_model, fields):
    d = xatmodist.embed(fields.chunk({"time": 2}), model=tiny_model)
    assert d.data.numblocks == (4, 1)


@pytest.mark.parametrize("method", ["distance", "predict_lag", "embed", "lag_curve"])
@pytest.mark.parametrize("kind", ["Dataset", "DataArray"])
def test_accessor_equals_function(method, kind, tiny_model, fields):
    obj = fields if kind == "Dataset" else fields.to_dataarray("variable")
    first, later = _later(obj, 1)
    args = {
        "distance": ((first, later), {}),
        "predict_lag": ((obj,), {"lag": "3h"}),
        "embed": ((obj,), {}),
        "lag_curve": ((obj,), {"max_lag": "6h"}),
    }[method]
    pos, kw = args
    expected = getattr(xatmodist, method)(*pos, model=tiny_model, **kw)
    got = getattr(pos[0].atmodist, method)(*pos[1:], model=tiny_model, **kw)
    xr.testing.assert_identical(got, expected)


def test_distance_properties(tiny_model, fields):
    d0 = xatmodist.distance(fields, fields, model=tiny_model)
    np.testing.assert_array_equal(d0.values, 0)
    d = xatmodist.distance(fields, fields.isel(time=0), model=tiny_model)
    assert d.dims == ("time",) and d.values[0] == 0 and (d.values[1:] > 0).all()
    # symmetric
    a, b = _later(fields, 2)
    xr.testing.assert_allclose(
        xatmodist.distance(a, b, model=tiny_model), xatmodist.distance(b, a, model=tiny_model)
    )
    assert d.attrs["xatmodist_model"] == "tiny-test-encoder"
    assert d.attrs["xatmodist_model_sha256"] == tiny_model.sha256


def test_spatial_distance_coords_and_mean(tiny_model, fields):
    a, b = _later(fields, 2)
    m = xatmodist.distance(a, b, model=tiny_model, spatial=True)
    assert m.dims == ("time", "patch_lat", "patch_lon")
    assert m.sizes["patch_lat"] == 4 and m.sizes["patch_lon"] == 8
    # patch centres: first patch covers rows 0..15
    np.testing.assert_allclose(m.patch_lat[0], fields.lat[:16].mean(), atol=1e-9)
    np.testing.assert_allclose(m.patch_lon[0], fields.lon[:16].mean(), atol=1e-9)
    xr.testing.assert_allclose(
        m.mean(["patch_lat", "patch_lon"]),
        xatmodist.distance(a, b, model=tiny_model),
        rtol=1e-5,
    )


def test_longitude_wraps_on_global_grid(tiny_model, fields):
    """Tiles wrap around the seam: a field that does not divide into patches still works,
    and rolling by a patch width permutes the patch map."""
    sub = fields.isel(lon=slice(0, 120)).assign_coords(lon=np.arange(120) * 3.0)
    a, b = _later(sub, 1)
    m = xatmodist.distance(a, b, model=tiny_model, spatial=True)
    assert m.sizes["patch_lon"] == 8 and np.isfinite(m).all()
    a, b = _later(fields, 1)
    m1 = xatmodist.distance(a, b, model=tiny_model, spatial=True)
    rolled = [x.roll(lon=-16, roll_coords=False) for x in (a, b)]
    m2 = xatmodist.distance(*rolled, model=tiny_model, spatial=True)
    np.testing.assert_allclose(m2.values, np.roll(m1.values, -1, axis=-1), rtol=1e-5)


def test_regional_grid_tiles_without_wrap(tiny_model, fields):
    reg = fields.isel(lat=slice(10, 40), lon=slice(5, 45))
    m = xatmodist.distance(*_later(reg, 1), model=tiny_model, spatial=True)
    assert m.sizes["patch_lat"] == 2 and m.sizes["patch_lon"] == 3
    assert (m.patch_lon >= reg.lon.min()).all() and (m.patch_lon <= reg.lon.max()).all()


def test_predict_lag_outputs(tiny_model, fields):
    p = xatmodist.predict_lag(fields, lag="6h", model=tiny_model)
    assert p.dims == ("time", "lag") and p.sizes["time"] == 6
    assert p.lag.dtype.kind == "m"
    np.testing.assert_allclose(p.sum("lag"), 1, rtol=1e-5)
    np.testing.assert_array_equal(p.time.values, fields.time.values[:6])
    e = xatmodist.predict_lag(fields, lag="6h", model=tiny_model, output="expected")
    assert e.dtype.kind == "m"
    secs = p.lag.values / np.timedelta64(1, "s")
    np.testing.assert_allclose(
        e.values / np.timedelta64(1, "s"), (p * secs).sum("lag").values, rtol=1e-5
    )
    am = xatmodist.predict_lag(fields, lag="6h", model=tiny_model, output="argmax")
    np.testing.assert_array_equal(am.values, p.lag.values[p.argmax("lag").values])
    # explicit b
    p2 = xatmodist.predict_lag(*_later(fields, 2), model=tiny_model)
    xr.testing.assert_allclose(p, p2)


def test_embed_shapes(tiny_model, fields):
    e = xatmodist.embed(fields, model=tiny_model)
    assert e.dims == ("time", "feature") and e.sizes["feature"] == 16
    t = xatmodist.embed(fields, model=tiny_model, pool="tile")
    assert t.dims == ("time", "patch_lat", "patch_lon", "feature")
    g = xatmodist.embed(fields, model=tiny_model, pool="none")
    assert g.dims == ("time", "feature_lat", "feature_lon", "feature")
    xr.testing.assert_allclose(t.mean(["patch_lat", "patch_lon"]), e, rtol=1e-5)


def test_lag_curve_rises(tiny_model, fields):
    c = xatmodist.lag_curve(fields, model=tiny_model, max_lag="12h")
    assert c.lag.values[0] == pd.Timedelta("3h").to_timedelta64()
    assert set(c.data_vars) == {"learned", "l2", "learned_relative", "l2_relative"}
    assert np.all(np.diff(c.l2.values) > 0)  # the synthetic fields drift steadily
    np.testing.assert_allclose(c.learned_relative[-1], 1)


def test_extra_dims_broadcast(tiny_model, fields):
    ens = xr.concat([fields, fields * 1.1], dim="member")
    d = xatmodist.distance(ens, fields.isel(time=0), model=tiny_model)
    assert set(d.dims) == {"member", "time"}
    np.testing.assert_allclose(
        d.sel(member=0).values, xatmodist.distance(fields, fields.isel(time=0), model=tiny_model)
    )


def test_options_batch_size_does_not_change_results(tiny_model, fields):
    a, b = _later(fields, 1)
    ref = xatmodist.distance(a, b, model=tiny_model, spatial=True)
    with xatmodist.set_options(batch_size=3, torch_threads=1):
        got = xatmodist.distance(a, b, model=tiny_model, spatial=True)
    xr.testing.assert_allclose(ref, got, rtol=1e-5)


@pytest.mark.parametrize("name", ["atmodist-swe-vd-v6", "atmodist-swe-vd"])
def test_jit_trunk_equals_the_eager_network(name):
    """set_options(jit=False) runs the eager network: same numbers up to float rounding."""
    import torch

    from xatmodist._kernels import inference_encoder
    from xatmodist.nn.encoder import FrozenTrunk

    ds = xatmodist.datasets.sample().isel(run=0, time=slice(0, 6))
    a, b = ds.isel(time=slice(0, 3)), ds.isel(time=slice(3, 6)).assign_coords(time=ds.time[:3])
    jit = xatmodist.distance(a, b, model=name, spatial=True)
    p_jit = xatmodist.predict_lag(a, b, model=name)
    e_jit = xatmodist.embed(a, model=name, pool="none")
    with xatmodist.set_options(jit=False):
        eager = xatmodist.distance(a, b, model=name, spatial=True)
        p_eager = xatmodist.predict_lag(a, b, model=name)
        e_eager = xatmodist.embed(a, model=name, pool="none")
    xr.testing.assert_allclose(jit, eager, rtol=1e-4)
    xr.testing.assert_allclose(p_jit, p_eager, rtol=1e-4, atol=1e-6)
    xr.testing.assert_allclose(e_jit, e_eager, rtol=1e-4, atol=1e-5)
    path = str(xatmodist.load_model(name).path)
    assert isinstance(inference_encoder(path, jit=True).encoder, FrozenTrunk)
    assert not isinstance(inference_encoder(path, jit=False).encoder, FrozenTrunk)
    with pytest.raises(ValueError, match="last stage only"):
        inference_encoder(path, jit=True).encoder(torch.zeros(1, 2, 32, 32), layers=[0])


@pytest.mark.parametrize("log", [(True, True), (False, False), (True, False)])
@pytest.mark.parametrize("stem_stride", [1, 2])
def test_inference_copy_folds_the_normaliser_into_a_patchify_stem(log, stem_stride):
    """The second z-score moves into a padding-free stem; features and logits unchanged."""
    import torch

    from xatmodist.nn.encoder import AtmoDistNet, LogInput, Normaliser, fused_for_inference

    torch.manual_seed(0)
    net = AtmoDistNet(2, 5, widths=[8, 16], stem_stride=stem_stride).eval()
    scale = torch.tensor([3e-5, 2.0])
    raw = torch.randn(16, 2, 16, 16) * scale.view(1, -1, 1, 1) + torch.tensor([0.0, 5.0]).view(
        1, -1, 1, 1
    )
    net.normaliser.fit(raw.mean(dim=(0, 2, 3)), raw.std(dim=(0, 2, 3)), raw, log)
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    fused = fused_for_inference(net)
    expected = LogInput if stem_stride > 1 else Normaliser
    assert type(fused.normaliser) is expected
    x, y = raw[:8], raw[8:]
    with torch.inference_mode():
        torch.testing.assert_close(fused.features(x), net.features(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(fused(x, y), net(x, y), rtol=1e-4, atol=1e-4)
    # the l2 metric normalises with the trained network's normaliser, not the folded one
    assert type(net.normaliser) is Normaliser


def test_without_torchscript_the_eager_encoder_runs(monkeypatch, caplog):
    from xatmodist.nn import encoder as enc

    def broken(*args, **kwargs):
        raise AttributeError("module 'torch.jit' has no attribute 'freeze'")

    monkeypatch.setattr(enc, "FrozenTrunk", broken)
    net = xatmodist.load_model().module
    with caplog.at_level("INFO", logger="xatmodist.nn.encoder"):
        out = enc.frozen_for_inference(net, 32)
    assert isinstance(out.encoder, enc.Encoder)
    assert "TorchScript unavailable" in caplog.text and "freeze" in caplog.text


def test_grid_conventions_give_the_same_answer(tiny_model, fields):
    """Ascending latitude and -180..180 longitude are the same fields: same numbers."""
    a, b = _later(fields, 2)
    ref = xatmodist.distance(a, b, model=tiny_model, spatial=True)
    flip = [x.isel(lat=slice(None, None, -1)) for x in (a, b)]
    xr.testing.assert_allclose(xatmodist.distance(*flip, model=tiny_model, spatial=True), ref)

    def to_pm180(x):
        x = x.assign_coords(lon=((x.lon + 180) % 360) - 180)
        return x.sortby("lon")

    pm = [to_pm180(x) for x in (a, b)]
    got = xatmodist.distance(*pm, model=tiny_model, spatial=True)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-5)
    np.testing.assert_allclose(got.patch_lon.values, ref.patch_lon.values)
