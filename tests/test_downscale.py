"""downscale() and fit_downscaler with small models trained here; the pretrained ones at the end."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xatmodist
from xatmodist.downscale import refine_coord
from xatmodist.testing import raise_if_dask_computes, synthetic_fields
from xatmodist.train import fit_downscaler

SMALL = {
    "patch_size": 16,
    "epochs": 1,
    "samples_per_epoch": 32,
    "batch_size": 8,
    "width": 8,
    "blocks": 1,
    "progress": False,
}


@pytest.fixture(scope="module")
def hr():
    return synthetic_fields(n_time=12, nlat=64, nlon=128, seed=21)


@pytest.fixture(scope="module")
def l2_model(hr, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds")
    fit_downscaler(hr, content_loss="l2", out=out, name="tiny-ds", **SMALL)
    return xatmodist.load_model(out / "model")


def _coarse(hr, f=4):
    return hr.coarsen(lat=f, lon=f).mean()


def test_fit_downscaler_both_losses(hr, tiny_model, tmp_path):
    m = fit_downscaler(
        hr, content_loss="atmodist", encoder=tiny_model, l2_weight=0.1, out=tmp_path, **SMALL
    )
    assert m.card.task == "downscaler" and m.card.factor == 4
    assert m.card.training["encoder"] == "tiny-test-encoder"
    assert (tmp_path / "checkpoint.pt").is_file()
    assert xatmodist.load_model(tmp_path / "model").card.grid.nlat == 64


def test_downscale_grid_type_and_attrs(hr, l2_model):
    coarse = _coarse(hr)
    out = xatmodist.downscale(coarse, model=l2_model)
    assert isinstance(out, xr.Dataset) and set(out.data_vars) == {"vo", "d"}
    assert out.sizes == {"time": 12, "lat": 64, "lon": 128}
    np.testing.assert_allclose(out.lat.values, hr.lat.values, atol=1e-9)
    np.testing.assert_allclose(out.lon.values, hr.lon.values, atol=1e-9)
    assert out.vo.attrs["units"] == "s-1" and out.vo.attrs["xatmodist_model"] == "tiny-ds"
    # block means of the output stay close to the input (the network starts at bicubic)
    back = out.coarsen(lat=4, lon=4).mean()
    assert float(np.abs(back.vo - coarse.vo).max()) < 0.5 * float(np.abs(coarse.vo).max())
    da = xatmodist.downscale(coarse.to_dataarray("variable"), model=l2_model)
    assert isinstance(da, xr.DataArray) and da.dims == ("variable", "time", "lat", "lon")
    xr.testing.assert_allclose(da.sel(variable="vo", drop=True), out.vo, check_dim_order=False)


def test_downscale_lazy_and_chunk_invariant(hr, l2_model):
    coarse = _coarse(hr)
    eager = xatmodist.downscale(coarse, model=l2_model)
    for chunks in ({"time": 1}, {"time": 5}):
        with raise_if_dask_computes():
            lazy = coarse.chunk(chunks).atmodist.downscale(model=l2_model)
        assert lazy.vo.chunks is not None
        xr.testing.assert_allclose(lazy.compute(), eager, rtol=1e-6, atol=1e-12)


def test_downscale_wraps_longitude(hr, l2_model):
    """Rolling a global field by whole coarse cells rolls the output the same way."""
    coarse = _coarse(hr).isel(time=slice(0, 2))
    a = xatmodist.downscale(coarse, model=l2_model)
    rolled = coarse.roll(lon=5, roll_coords=False)
    b = xatmodist.downscale(rolled, model=l2_model)
    np.testing.assert_allclose(b.vo.values, np.roll(a.vo.values, 20, axis=-1), rtol=1e-4, atol=1e-9)


def test_refine_coord_is_cell_centred():
    np.testing.assert_allclose(refine_coord(np.array([10.0, 8.0]), 2), [10.5, 9.5, 8.5, 7.5])


def test_downscale_errors(hr, l2_model, tiny_model):
    coarse = _coarse(hr)
    with pytest.raises(xatmodist.InputError, match="factor=2"):
        xatmodist.downscale(coarse, factor=2, model=l2_model)
    with pytest.raises(xatmodist.ModelError, match="is an encoder, but this needs a downscaler"):
        xatmodist.downscale(coarse, model=tiny_model)
    with pytest.raises(xatmodist.ModelNotFoundError, match="no-such-downscaler"):
        xatmodist.downscale(coarse, model="no-such-downscaler")
    with pytest.raises(xatmodist.ChunkError):
        xatmodist.downscale(coarse.chunk({"lon": 8}), model=l2_model)
    with pytest.warns(xatmodist.OutOfDistributionWarning):
        xatmodist.downscale(hr.isel(time=0), model=l2_model)
    with pytest.raises(xatmodist.InputError, match="content_loss"):
        fit_downscaler(hr, content_loss="gan", **SMALL)
    with pytest.raises(xatmodist.InputError, match="multiple of factor"):
        fit_downscaler(hr, content_loss="l2", **{**SMALL, "patch_size": 18})
    with pytest.raises(xatmodist.InputError, match="upsample must be"):
        fit_downscaler(hr, content_loss="l2", upsample="bilinear", **SMALL)
    with pytest.raises(xatmodist.InputError, match="balance_variables=True .* content_loss='l2'"):
        fit_downscaler(hr, content_loss="l2", balance_variables=True, **SMALL)


def test_balanced_per_variable_atmodist_loss(hr, tiny_model, tmp_path):
    import torch
    import torch.nn.functional as F

    from xatmodist.train._content import measured_weights, swap_variable
    from xatmodist.train._source import FieldSource
    from xatmodist.train.downscaler import _feature_distance, coarsen

    truth, pred = torch.zeros(2, 2, 4, 4), torch.ones(2, 2, 4, 4)
    mixed = swap_variable(truth, pred, 1)
    assert float(mixed[:, 0].abs().sum()) == 0 and bool((mixed[:, 1] == 1).all())
    kw = {**SMALL, "seed": 5}
    m = fit_downscaler(hr, encoder=tiny_model, balance_variables=True, out=tmp_path, **kw)
    w = m.card.training["variable_weights"]
    assert set(w) == {"vo", "d"} and all(x > 0 for x in w.values())
    # w_k = mean(D) / D_k for the bicubic distances D_k: reproducible, and 1/w averages to 1
    src = FieldSource(hr, None, None, None)
    t = torch.from_numpy(src.sample_fields(32, np.random.default_rng([5, 3])))
    base = F.interpolate(coarsen(t, 4), scale_factor=4, mode="bicubic")
    again = measured_weights(tiny_model, t, base, _feature_distance(tiny_model))
    np.testing.assert_allclose(again, [w["vo"], w["d"]], rtol=1e-6)
    assert np.mean([1 / x for x in again]) == pytest.approx(1.0)
    plain = fit_downscaler(hr, encoder=tiny_model, **kw)
    assert plain.card.training["variable_weights"] is None
    assert not np.allclose(
        plain.module.state_dict()["head.weight"].numpy(),
        m.module.state_dict()["head.weight"].numpy(),
    )


def test_resize_convolution_upsampling_trains_and_resumes(hr, tmp_path):
    kw = {**SMALL, "epochs": 2, "upsample": "resize"}
    full = fit_downscaler(hr, content_loss="l2", out=tmp_path / "a", **kw)
    assert full.card.args["upsample"] == "resize"
    fit_downscaler(hr, content_loss="l2", out=tmp_path / "b", stop_after=1, **kw)
    resumed = fit_downscaler(hr, content_loss="l2", out=tmp_path / "b", resume=True, **kw)
    for k, t in full.module.state_dict().items():
        assert np.array_equal(t.numpy(), resumed.module.state_dict()[k].numpy()), k
    out = xatmodist.downscale(_coarse(hr).isel(time=slice(0, 2)), model=tmp_path / "a" / "model")
    assert out.sizes["lat"] == 64 and out.vo.notnull().all()


def test_nan_field_gives_nan(hr, l2_model):
    coarse = _coarse(hr).isel(time=slice(0, 3)).copy(deep=True)
    coarse["vo"][1, 2, 2] = np.nan
    out = xatmodist.downscale(coarse, model=l2_model)
    assert out.vo.isel(time=1).isnull().all() and out.vo.isel(time=[0, 2]).notnull().all()


def test_pretrained_default_on_sample_and_real_era5(shared_data):
    """The default pretrained downscaler refines the sample; on real ERA5 (0.25 deg) it
    runs and warns that the grid is far from its training grid."""
    sample = xatmodist.datasets.sample().isel(run=0, time=slice(0, 2))[["vo", "d"]]
    coarse = sample.coarsen(lat=4, lon=4).mean()
    out = coarse.atmodist.downscale()
    assert out.vo.shape == (2, 64, 128) and np.isfinite(out.vo).all()
    assert out.vo.attrs["xatmodist_model"] == "downscale-swe-vd-x4"
    d = shared_data / "era5_pl_2020-01-01"
    u = xr.open_dataset(d / "u.nc").u.sel(level=850)
    v = xr.open_dataset(d / "v.nc").v.sel(level=850)
    vd = xatmodist.vorticity_divergence(u, v).isel(time=slice(0, 2))
    with pytest.warns(xatmodist.OutOfDistributionWarning, match="trained on"):
        hi = xatmodist.downscale(vd)
    assert hi.vo.shape == (2, 164, 164) and np.isfinite(hi.vo).all()


def test_adversarial_fine_tuning_from_init_resumes_exactly(hr, l2_model, tmp_path):
    """PhIRE's recipe: start from a trained downscaler, add the GAN term; exact resume."""
    kw = {**SMALL, "epochs": 2, "content_loss": "l2", "adversarial": True, "init": l2_model}
    kw["adversarial_weight"] = 0.5  # large, so one epoch visibly moves the weights
    full = fit_downscaler(hr, out=tmp_path / "a", **kw)
    adv = full.card.training["adversarial"]
    assert adv["weight"] == 0.5 and adv["discriminator"]["architecture"] == "PatchDiscriminator"
    assert full.card.training["init"] == {"name": l2_model.name, "sha256": l2_model.sha256}
    hist = full.card.training["history"]
    assert len(hist) == 2 and all(0 < h["disc_real"] < 1 and 0 < h["disc_fake"] < 1 for h in hist)
    # the discriminator is not part of the saved downscaler
    assert not any("disc" in k for k in full.module.state_dict())
    # it starts from the init model's weights and statistics, and moves away from them
    start = l2_model.module.state_dict()
    got = full.module.state_dict()
    assert np.array_equal(got["std"].numpy(), start["std"].numpy())
    assert not np.allclose(got["head.weight"].numpy(), start["head.weight"].numpy())
    # the same run without the GAN term ends elsewhere
    plain = fit_downscaler(hr, **{**kw, "adversarial": False})
    assert plain.card.training["adversarial"] is None
    assert not np.allclose(plain.module.state_dict()["head.weight"].numpy(), got["head.weight"])
    # stop after one epoch, resume: bitwise the uninterrupted run (discriminator restored)
    fit_downscaler(hr, out=tmp_path / "b", stop_after=1, **kw)
    resumed = fit_downscaler(hr, out=tmp_path / "b", resume=True, **kw)
    for k, t in got.items():
        assert np.array_equal(t.numpy(), resumed.module.state_dict()[k].numpy()), k


def test_adversarial_and_init_errors(hr, l2_model, tiny_model):
    with pytest.raises(xatmodist.InputError, match="adversarial must be True or False; got 'yes'"):
        fit_downscaler(hr, content_loss="l2", adversarial="yes", **SMALL)
    for bad in (0, -1e-3, float("nan"), "big"):
        with pytest.raises(xatmodist.InputError, match="adversarial_weight must be a finite"):
            fit_downscaler(hr, content_loss="l2", adversarial=True, adversarial_weight=bad, **SMALL)
    with pytest.raises(xatmodist.ModelError, match="is an encoder, but fine-tuning needs a down"):
        fit_downscaler(hr, content_loss="l2", init=tiny_model, **SMALL)
    with pytest.raises(xatmodist.InputError, match=r"does not fit these arguments: \{'width'"):
        fit_downscaler(hr, content_loss="l2", init=l2_model, **{**SMALL, "width": 16})
    with pytest.raises(xatmodist.InputError, match=r"was trained on \['vo', 'd'\]"):
        fit_downscaler(hr, content_loss="l2", init=l2_model, variables=["d", "vo"], **SMALL)
    with pytest.raises(xatmodist.ModelNotFoundError):
        fit_downscaler(hr, content_loss="l2", init="no-such-downscaler", **SMALL)


@pytest.fixture(scope="module")
def d_encoder(tmp_path_factory):
    """A random single-variable (divergence) encoder, as atmodist-swe-d."""
    from xatmodist.testing import tiny_encoder

    path = tmp_path_factory.mktemp("tiny-d") / "tiny-d"
    return tiny_encoder(path, variables=["d"], name="tiny-d-encoder", seed=3)


def test_extra_encoder_adds_its_distance_on_its_own_variables(hr, tiny_model, d_encoder, tmp_path):
    import torch

    from xatmodist.train._content import load_extra_encoders
    from xatmodist.train._source import FieldSource

    kw = {**SMALL, "seed": 2}
    # the data's divergence is found by standard_name under another name
    renamed = hr.rename({"d": "div"})
    m = fit_downscaler(renamed, encoder=tiny_model, extra_encoders=[d_encoder], out=tmp_path, **kw)
    (rec,) = m.card.training["extra_encoders"]
    assert rec["name"] == "tiny-d-encoder" and rec["variables"] == ["div"]
    assert rec["sha256"] == d_encoder.sha256 and rec["alpha"] == float(d_encoder.module.alpha)
    plain = fit_downscaler(renamed, encoder=tiny_model, **kw)
    assert plain.card.training["extra_encoders"] == []
    assert not torch.equal(
        plain.module.state_dict()["head.weight"], m.module.state_dict()["head.weight"]
    )
    # the term sees the extra encoder's variable only: channel 1 of (vo, div)
    ((enc, idx),) = load_extra_encoders(
        [d_encoder],
        FieldSource(renamed, None, None, None),
        ("content_loss", "atmodist"),
    )
    assert enc is d_encoder and idx == [1]


def test_extra_encoder_errors(hr, tiny_model, d_encoder, l2_model, tmp_path):
    from xatmodist.testing import tiny_encoder

    vo_encoder = tiny_encoder(tmp_path / "vo", variables=["vo"], name="tiny-vo-encoder")
    with pytest.raises(xatmodist.InputError, match="extra_encoders add .* content_loss='l2'"):
        fit_downscaler(hr, content_loss="l2", extra_encoders=[d_encoder], **SMALL)
    with pytest.raises(xatmodist.ModelError, match="extra_encoders='tiny-ds' is a downscaler"):
        fit_downscaler(hr, encoder=tiny_model, extra_encoders=[l2_model], **SMALL)
    with pytest.raises(xatmodist.ModelError, match="encoder='tiny-ds' is a downscaler, but the"):
        fit_downscaler(hr, encoder=l2_model, **SMALL)
    with pytest.raises(xatmodist.InputError, match=r"takes 'd' .*none of them matching"):
        fit_downscaler(hr[["vo"]], encoder=vo_encoder, extra_encoders=[d_encoder], **SMALL)


def test_given_variable_weights(hr, tiny_model, tmp_path):
    import torch

    from xatmodist.train._content import balanced_distance
    from xatmodist.train.downscaler import _feature_distance

    kw = {**SMALL, "seed": 4}
    m = fit_downscaler(hr, encoder=tiny_model, variable_weights={"d": 0.0, "vo": 1.0}, **kw)
    assert m.card.training["variable_weights"] == {"vo": 1.0, "d": 0.0}
    plain = fit_downscaler(hr, encoder=tiny_model, **kw)
    assert not torch.equal(
        m.module.state_dict()["head.weight"], plain.module.state_dict()["head.weight"]
    )
    # weight 0: the prediction of that variable does not enter the encoder's term
    truth = torch.randn(2, 2, 16, 16) * torch.tensor([2e-5, 5e-6]).view(1, 2, 1, 1)
    pred = truth.clone()
    pred[:, 1] += 1e-5
    dist = _feature_distance(tiny_model)
    assert float(balanced_distance(tiny_model, dist, pred, truth, [1.0, 0.0])) == 0.0
    assert float(balanced_distance(tiny_model, dist, pred, truth, [0.0, 1.0])) > 0.0


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"variable_weights": {"vo": 1.0}}, r"must map every training variable \['vo', 'd'\]"),
        ({"variable_weights": [1.0, 0.0]}, "must map every training variable"),
        (
            {"variable_weights": {"vo": -1.0, "d": 1.0}},
            r"variable_weights\['vo'\] must be a finite",
        ),
        ({"variable_weights": {"vo": float("nan"), "d": 1.0}}, "must be a finite number >= 0"),
        ({"variable_weights": {"vo": 0, "d": 0.0}}, "are all zero"),
        (
            {"variable_weights": {"vo": 1, "d": 1}, "balance_variables": True},
            "either balance_variables=True .* or variable_weights",
        ),
        (
            {"variable_weights": {"vo": 1, "d": 1}, "content_loss": "l2"},
            r"variable_weights weight .* content_loss='l2'",
        ),
    ],
)
def test_variable_weights_errors(hr, tiny_model, kw, match):
    with pytest.raises(xatmodist.InputError, match=match):
        fit_downscaler(hr, encoder=tiny_model, **{**SMALL, **kw})
