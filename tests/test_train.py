"""Training the encoder: index maths, a few real steps, resume, real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import xatmodist
from xatmodist.testing import TINY_ENCODER_TRAINING, synthetic_fields
from xatmodist.train import evaluate_encoder, fit_encoder
from xatmodist.train._pairs import make_blocks, patch_index, sample_pairs, take_patches

SMALL = TINY_ENCODER_TRAINING


def test_blocks_never_mix_train_and_validation():
    train, val = make_blocks(n_series=3, n_time=50, block_length=10, max_lag=4, val_every=4)
    assert len(train) + len(val) == 15 and len(val) == 3
    spans = {(b.series, t) for b in train for t in range(b.start, b.stop)}
    assert not spans & {(b.series, t) for b in val for t in range(b.start, b.stop)}
    # blocks too short for the largest lag are dropped
    train, val = make_blocks(n_series=1, n_time=12, block_length=10, max_lag=4, val_every=0)
    assert [(b.start, b.stop) for b in train] == [(0, 10)] and not val


def test_pairs_stay_in_block_and_classes_uniform():
    rng = np.random.default_rng(0)
    train, _ = make_blocks(n_series=1, n_time=40, block_length=40, max_lag=12, val_every=0)
    t0, cls = sample_pairs(rng, train[0], 20000, 4, 3)
    assert (t0 >= 0).all() and (t0 + (cls + 1) * 3 < 40).all()
    counts = np.bincount(cls, minlength=4) / len(cls)
    np.testing.assert_allclose(counts, 0.25, atol=0.02)


def test_patches_wrap_in_longitude_only():
    rng = np.random.default_rng(1)
    rows, cols = patch_index(rng, 5000, nlat=20, nlon=30, patch=8, lat_rows=(2, 15))
    assert rows.min() >= 2 and rows.max() + 8 <= 15 and cols.max() > 30 - 8
    rows, cols = patch_index(rng, 5000, nlat=20, nlon=30, patch=8, wrap=False)
    assert cols.max() + 8 <= 30
    f = np.arange(2 * 1 * 4 * 6, dtype=float).reshape(2, 1, 4, 6)
    p = take_patches(f, np.array([1]), np.array([1]), np.array([4]), 3)
    np.testing.assert_array_equal(p[0, 0], f[1, 0][1:4][:, [4, 5, 0]])


def test_fit_encoder_runs_and_saves(tmp_path):
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)
    m = fit_encoder(ds, epochs=2, seed=0, out=tmp_path, name="t", **SMALL)
    card = m.card
    assert card.lag_classes == [10800.0, 21600.0, 32400.0]
    assert card.variables[0].standard_name == "atmosphere_relative_vorticity"
    assert card.normalisation["log_variables"] == ["vo", "d"]
    assert card.distance["alpha"] > 0
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    loaded = xatmodist.load_model(tmp_path / "model")
    # statistics travel inside the weights
    np.testing.assert_allclose(
        loaded.module.normaliser.std_in.numpy(), m.module.normaliser.std_in.numpy()
    )
    d = xatmodist.distance(ds.isel(time=0), ds.isel(time=3), model=loaded)
    assert float(d) > 0
    metrics = evaluate_encoder(loaded, ds, n_pairs=64)
    assert 0 <= metrics["top1"] <= 1 and len(metrics["confusion"]) == 3
    lo, hi = metrics["spearman_learned_ci95"]
    assert lo <= metrics["spearman_learned"] <= hi
    share = metrics["variable_share"]
    assert set(share) == {"vo", "d"} and sum(share.values()) == pytest.approx(1.0)
    assert all(v > 0 for v in share.values())


def test_resume_continues_to_the_same_result(tmp_path):
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=4)
    full = fit_encoder(ds, epochs=3, seed=1, out=tmp_path / "full", **SMALL)
    fit_encoder(ds, epochs=3, seed=1, out=tmp_path / "part", **SMALL, stop_after=1)
    resumed = fit_encoder(ds, epochs=3, seed=1, out=tmp_path / "part", resume=True, **SMALL)
    for k, v in full.module.state_dict().items():
        np.testing.assert_allclose(resumed.module.state_dict()[k].numpy(), v.numpy(), err_msg=k)


def test_lazy_zarr_training(tmp_path):
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=5)
    ds.chunk({"time": 8}).to_zarr(tmp_path / "d.zarr")
    lazy = xr.open_zarr(tmp_path / "d.zarr")
    a = fit_encoder(lazy, epochs=1, seed=2, **SMALL)
    b = fit_encoder(ds, epochs=1, seed=2, **SMALL)
    for k, v in a.module.state_dict().items():
        np.testing.assert_allclose(b.module.state_dict()[k].numpy(), v.numpy(), err_msg=k)


def test_trains_on_real_erainterim_daily(shared_data):
    ds = xr.open_dataset(shared_data / "erainterim_daily" / "synoptreg_z500_ei.nc")
    name = next(n for n, v in ds.data_vars.items() if v.ndim == 3)
    ds = ds[[name]].isel(time=slice(0, 400))
    m = fit_encoder(
        ds,
        max_lag="4D",
        lag_step="1D",
        patch_size=8,
        widths=(8, 16),
        epochs=1,
        pairs_per_epoch=128,
        batch_size=32,
        val_pairs=64,
        progress=False,
    )
    assert m.card.lag_step_seconds == 86400.0 and len(m.card.lag_classes) == 4
    assert m.card.normalisation["log_variables"] == []
    assert m.card.grid.dlat == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"max_lag": "10h", "lag_step": "3h"}, "whole multiple"),
        ({"max_lag": "9h", "lag_step": "2h"}, "multiple of the data's time step"),
        ({"max_lag": "nonsense"}, "duration"),
        ({"max_lag": "9h", "patch_size": 64}, "does not fit"),
        ({"max_lag": "9h", "lat_band": (95, 99)}, "selects no latitude"),
    ],
)
def test_fit_encoder_errors(kw, match):
    ds = synthetic_fields(n_time=30, nlat=32, nlon=64)
    args = {**SMALL, "epochs": 1, **kw}
    with pytest.raises(xatmodist.InputError, match=match):
        fit_encoder(ds, **args)


def test_fit_encoder_needs_enough_time():
    ds = synthetic_fields(n_time=6, nlat=32, nlon=64)
    with pytest.raises(xatmodist.InputError, match="Not enough time steps"):
        fit_encoder(ds, **{**SMALL, "epochs": 1})


_KILL_SCRIPT = """
import sys
from xatmodist.testing import synthetic_fields
from xatmodist.train import fit_encoder
ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=6)
fit_encoder(ds, epochs=40, seed=3, out=sys.argv[1], max_lag="9h", patch_size=16,
            widths=(8, 16), pairs_per_epoch=128, batch_size=32, val_pairs=64,
            block_length=8, val_every=3, progress=False, threads=1)
"""


def test_sigkill_mid_training_then_resume_matches_uninterrupted(tmp_path):
    """A real subprocess is SIGKILLed after its second checkpoint; resuming finishes the
    run to the same weights as an uninterrupted run with the same seed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(out)])
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
            break
        if proc.poll() is not None:
            pytest.fail("training subprocess ended before it could be killed")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # the latest checkpoint is complete (atomic write) and loads
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    done = int(state["epoch"]) + 1
    assert 2 <= done < 40
    # the same torch thread count everywhere: (channels-last) convolution gradients
    # are reduced in a thread-count dependent order
    args = {**SMALL, "block_length": 8, "val_every": 3, "threads": 1}
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=6)
    # resume for one more epoch; the reference runs the same 40-epoch schedule
    # uninterrupted and stops after the same number of epochs
    stop = done + 1
    threads = torch.get_num_threads()
    try:
        resumed = fit_encoder(ds, epochs=40, seed=3, out=out, resume=True, **args, stop_after=stop)
        ref = fit_encoder(ds, epochs=40, seed=3, out=tmp_path / "ref", **args, stop_after=stop)
    finally:
        torch.set_num_threads(threads)
    for k, v in ref.module.state_dict().items():
        if k == "alpha":
            continue
        np.testing.assert_allclose(resumed.module.state_dict()[k].numpy(), v.numpy(), err_msg=k)


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 20, 21])
def test_short_schedules_train(steps):
    """Any number of optimisation steps works (OneCycle needs >= 1 step per phase)."""
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=8)
    args = {**SMALL, "pairs_per_epoch": 32 * steps, "val_pairs": 32}
    m = fit_encoder(ds, epochs=1, seed=0, **args)
    assert m.card.training["history"][0]["epoch"] == 1


def test_rank_loss_orders_distances_by_lag():
    import torch

    from xatmodist.train import rank_loss

    lag = torch.tensor([0, 1, 2, 3])
    ordered = torch.tensor([1e-3, 1e-2, 1e-1, 1.0])
    # log gaps of ln(10) between neighbours: softplus(-k ln 10) averaged over the 6 pairs
    expected = np.mean([np.log1p(10.0**-k) for k in (1, 1, 1, 2, 2, 3)])
    assert float(rank_loss(ordered, lag)) == pytest.approx(expected, rel=1e-5)
    # reversed order costs more than ln 2 (the loss of equal distances) per pair
    assert float(rank_loss(ordered.flip(0), lag)) > np.log(2) > float(rank_loss(ordered, lag))
    assert float(rank_loss(torch.ones(4), lag)) == pytest.approx(np.log(2))
    # pairs of equal lag do not count; a batch of one lag gives 0 and a zero gradient
    same = torch.tensor([0.5, 2.0], requires_grad=True)
    loss = rank_loss(same, torch.tensor([1, 1]))
    loss.backward()
    assert (
        float(loss.detach()) == 0.0
        and same.grad is not None
        and float(same.grad.abs().sum()) == 0.0
    )
    # the gradient pushes the shorter lag's distance down and the longer one's up
    d = torch.tensor([1.0, 1.0], requires_grad=True)
    rank_loss(d, torch.tensor([0, 2])).backward()
    assert d.grad[0] > 0 > d.grad[1]


def test_rank_weight_and_patchify_stem_train(tmp_path):
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)
    m = fit_encoder(ds, epochs=1, seed=0, stem_stride=2, rank_weight=1.0, **SMALL)
    assert m.card.args["stem_stride"] == 2 and m.card.training["rank_weight"] == 1.0
    assert m.card.feature_reduction == 4 and "RankNet" in m.card.training["loss"]
    assert -1 <= m.card.metrics["validation"]["val_spearman_distance"] <= 1
    m.save(tmp_path / "m")
    loaded = xatmodist.load_model(tmp_path / "m")
    assert loaded.module.encoder.reduction == 4
    e = xatmodist.embed(ds.isel(time=[0, 1]), model=loaded, pool="none")
    assert e.sizes["feature_lat"] == 32 // 4 and e.sizes["feature_lon"] == 64 // 4
    # the same seed without the ranking term trains a different network
    plain = fit_encoder(ds, epochs=1, seed=0, stem_stride=2, **SMALL)
    assert plain.card.training["rank_weight"] == 0.0
    assert not np.allclose(
        plain.module.state_dict()["encoder.stem.0.weight"].numpy(),
        m.module.state_dict()["encoder.stem.0.weight"].numpy(),
    )


def test_projection_head_defines_the_distance(tmp_path):
    """projection=True: the lag head reads the trunk, the distance the projected features."""
    import torch

    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)
    m = fit_encoder(ds, epochs=1, seed=0, rank_weight=1.0, projection=True, **SMALL)
    assert m.card.args["projection"] is True
    assert "projection" in m.card.distance["definition"]
    net = m.module.eval()
    x = torch.from_numpy(np.stack([ds.vo.values[:4, :16, :16], ds.d.values[:4, :16, :16]], 1))
    y = torch.from_numpy(np.stack([ds.vo.values[4:8, :16, :16], ds.d.values[4:8, :16, :16]], 1))
    with torch.inference_mode():
        trunk, feats = net.trunk(x), net.features(x)
        assert feats.shape == trunk.shape and not torch.allclose(feats, trunk)
        expected = net.alpha * (net.features(x) - net.features(y)).pow(2).mean(dim=(1, 2, 3))
        np.testing.assert_allclose(net.distance(x, y), expected, rtol=1e-6)
        raw = net.logits_and_distance(x, y)[1]
        np.testing.assert_allclose(net.alpha * raw, expected, rtol=1e-5)
    # the projection travels with the weights: a saved and reloaded model gives the same
    m.save(tmp_path / "m")
    loaded = xatmodist.load_model(tmp_path / "m").module
    with torch.inference_mode():
        np.testing.assert_allclose(loaded.distance(x, y), net.distance(x, y), rtol=1e-6)
    # a plain model has no projection parameters; its features are the trunk's
    plain = fit_encoder(ds, epochs=1, seed=0, rank_weight=1.0, **SMALL)
    assert "projection" not in plain.card.args
    assert not any(k.startswith("projection.") for k in plain.module.state_dict())
    with torch.inference_mode():
        pn = plain.module.eval()
        assert torch.equal(pn.features(x), pn.trunk(x))


def test_l1_distance_is_the_models_distance_and_training_ranks_the_squared(tmp_path):
    """distance="l1": the model's distance, its validation rho and alpha use the mean
    absolute feature difference; the ranking term still ranks the squared one, so the
    same seed trains the same weights as distance="squared"."""
    import torch

    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)
    kw = {**SMALL, "epochs": 2, "seed": 0, "rank_weight": 1.0}
    sq = fit_encoder(ds, **kw)
    l1 = fit_encoder(ds, distance="l1", **kw)
    assert "distance" not in sq.card.args and sq.card.distance["kind"] == "squared"
    assert l1.card.args["distance"] == "l1" and l1.card.distance["kind"] == "l1"
    assert "|f(a) - f(b)|" in l1.card.distance["definition"]
    for k, w in sq.module.state_dict().items():
        if k != "alpha":
            assert torch.equal(l1.module.state_dict()[k], w), k
    losses = [[h["train_loss"] for h in m.card.training["history"]] for m in (sq, l1)]
    assert losses[0] == losses[1]
    assert l1.card.distance["alpha"] != sq.card.distance["alpha"]
    x = torch.from_numpy(np.stack([ds.vo.values[:4, :16, :16], ds.d.values[:4, :16, :16]], 1))
    y = torch.from_numpy(np.stack([ds.vo.values[9:13, :16, :16], ds.d.values[9:13, :16, :16]], 1))
    net = l1.module.eval()
    with torch.inference_mode():
        fx, fy = net.features(x), net.features(y)
        np.testing.assert_allclose(
            net.distance(x, y), net.alpha * (fx - fy).abs().mean(dim=(1, 2, 3)), rtol=1e-6
        )
        # training's distance stays the squared one
        raw = net.logits_and_distance(x, y)[1]
        np.testing.assert_allclose(raw, (fx - fy).pow(2).mean(dim=(1, 2, 3)), rtol=1e-5)
    # the card's validation numbers are those of the saved model's distance
    held = evaluate_encoder(l1, ds, n_pairs=64, seed=0)
    assert (
        held["spearman_learned"] != evaluate_encoder(sq, ds, n_pairs=64, seed=0)["spearman_learned"]
    )
    # the kind travels with the card: reloaded, the same distance
    l1.save(tmp_path / "l1")
    loaded = xatmodist.load_model(tmp_path / "l1").module
    assert loaded.distance_kind == "l1"
    with torch.inference_mode():
        np.testing.assert_allclose(loaded.distance(x, y), net.distance(x, y), rtol=1e-6)


def test_losses_and_lag_curve_use_the_encoders_distance(tmp_path):
    """The downscaler's and inpainter's feature losses and lag_curve take the l1
    encoder's distance as its card says."""
    import torch

    from xatmodist.train.downscaler import _feature_distance
    from xatmodist.train.inpainter import _near_hole_distance

    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)
    enc = fit_encoder(ds, distance="l1", **{**SMALL, "epochs": 1, "seed": 0})
    net = enc.module.eval()
    x = torch.from_numpy(np.stack([ds.vo.values[:2, :16, :16], ds.d.values[:2, :16, :16]], 1))
    y = torch.from_numpy(np.stack([ds.vo.values[5:7, :16, :16], ds.d.values[5:7, :16, :16]], 1))
    with torch.no_grad():
        diff = net.features(x) - net.features(y)
        np.testing.assert_allclose(_feature_distance(enc)(x, y), diff.abs().mean(), rtol=1e-6)
        whole = torch.ones(2, 1, 16, 16)  # a hole over the whole patch: every cell sees it
        np.testing.assert_allclose(
            _near_hole_distance(enc)(x, y, whole), diff.abs().mean(), rtol=1e-6
        )
    enc.save(tmp_path / "l1")
    curve = xatmodist.lag_curve(ds, model=tmp_path / "l1", max_lag="6h").compute()
    f = xatmodist.embed(ds, model=tmp_path / "l1", pool="none").values
    expected = float(net.alpha) * np.abs(f[1:] - f[:-1]).mean()
    np.testing.assert_allclose(curve.learned.isel(lag=0), expected, rtol=1e-5)


def test_a_card_with_an_unknown_distance_fails_to_load(tmp_path):
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)
    fit_encoder(ds, epochs=1, seed=0, **SMALL).save(tmp_path / "m")
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    card["args"]["distance"] = "cosine"
    (tmp_path / "m" / "card.json").write_text(json.dumps(card))
    with pytest.raises(xatmodist.ModelError, match=r"distance must be one of .*'cosine'"):
        xatmodist.load_model(tmp_path / "m")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"distance": "cosine"}, r"distance must be one of \['squared', 'l1'\].*got 'cosine'"),
        ({"distance": None}, r"distance must be one of .*got None"),
        ({"rank_weight": -1.0}, "rank_weight must be a finite number >= 0"),
        ({"rank_weight": float("nan")}, "rank_weight must be a finite number >= 0"),
        ({"rank_weight": "high"}, r"rank_weight must be .* got .high."),
        ({"stem_stride": 0}, "stem_stride must be a positive integer"),
        ({"stem_stride": 1.5}, "stem_stride must be a positive integer"),
        ({"stem_stride": 3}, r"not a multiple of the encoder's reduction 6.*multiple of 6"),
        ({"projection": True}, r"projection=True needs rank_weight > 0.*rank_weight=2.0"),
        ({"projection": "yes", "rank_weight": 1.0}, "projection must be True or False; got 'yes'"),
    ],
)
def test_fit_encoder_architecture_errors(kw, match):
    ds = synthetic_fields(n_time=30, nlat=32, nlon=64)
    with pytest.raises(xatmodist.InputError, match=match):
        fit_encoder(ds, **{**SMALL, "epochs": 1, **kw})


def test_reflection_mirrors_pairs_and_negates_odd_variables():
    """lat_reflection: a mirrored pair is rows reversed, the odd variables negated, both
    fields alike; the other pairs are untouched."""
    from xatmodist.train._pairs import make_blocks
    from xatmodist.train._source import FieldSource
    from xatmodist.train.encoder import PairStream

    ds = synthetic_fields(n_time=20, nlat=32, nlon=64, seed=5)
    src = FieldSource(ds, ["vo", "d"])
    stream = PairStream(src, 3, 1, 16, None)
    (blk,), _ = make_blocks(n_series=1, n_time=20, block_length=20, max_lag=3, val_every=0)
    fields = next(src.iter_blocks([blk]))[1]
    plain = stream.draw(np.random.default_rng(0), blk, fields, 400)
    mirrored = stream.draw(np.random.default_rng(0), blk, fields, 400, [-1.0, 1.0])
    np.testing.assert_array_equal(plain[2], mirrored[2])
    same = (plain[0] == mirrored[0]).all(axis=(1, 2, 3))
    assert 0.35 < same.mean() < 0.65  # about half the pairs are mirrored
    for x, y in zip(plain[:2], mirrored[:2], strict=True):
        np.testing.assert_array_equal(y[same], x[same])
        np.testing.assert_array_equal(y[~same, 0], -x[~same, 0, ::-1])  # vo: odd
        np.testing.assert_array_equal(y[~same, 1], x[~same, 1, ::-1])  # d: even


def test_reflection_signs_from_cf_names_or_a_list():
    from xatmodist.train._source import reflection_signs, variable_specs

    ds = synthetic_fields(n_time=4, nlat=16, nlon=32)
    specs = variable_specs(ds, ["vo", "d"])
    assert reflection_signs(specs, True) == [-1.0, 1.0]
    assert reflection_signs(specs, ["d"]) == [1.0, -1.0]
    assert reflection_signs(specs, []) == [1.0, 1.0]
    del ds["d"].attrs["standard_name"]
    with pytest.raises(xatmodist.InputError, match=r"\['d'\] have no standard_name.*\['vo'\]"):
        reflection_signs(variable_specs(ds, ["vo", "d"]), True)
    with pytest.raises(xatmodist.InputError, match=r"names \['z'\], which are not among"):
        reflection_signs(specs, ["z"])
    with pytest.raises(xatmodist.InputError, match="must be False, True or a list"):
        reflection_signs(specs, "vo")


def test_fine_tuning_from_an_encoder_with_reflection(tmp_path):
    """init= starts from the given weights and statistics; the card records init and
    the reflection."""
    import torch

    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)
    first = fit_encoder(ds, epochs=1, seed=0, **SMALL)
    first.save(tmp_path / "first")
    other = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=4) * 3.0
    for name in ("vo", "d"):
        other[name].attrs = ds[name].attrs
    tuned = fit_encoder(
        other, epochs=1, seed=1, init=tmp_path / "first", lat_reflection=True, lr=1e-12, **SMALL
    )
    # a vanishing learning rate keeps the init weights; the statistics are init's
    for k, w in first.module.state_dict().items():
        if k.startswith("normaliser."):
            assert torch.equal(tuned.module.state_dict()[k], w), k
    w0 = first.module.state_dict()["encoder.stem.0.weight"]
    np.testing.assert_allclose(tuned.module.state_dict()["encoder.stem.0.weight"], w0, atol=1e-6)
    tr = tuned.card.training
    assert tr["init"] == {"name": first.name, "sha256": first.sha256}
    assert tr["lat_reflection"] == {"sign_changing": ["vo"]}
    assert fit_encoder(ds, epochs=1, seed=0, **SMALL).card.training["init"] is None


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"widths": (8, 32)}, r"does not fit these arguments: \{'widths'"),
        ({"max_lag": "18h", "lag_step": "6h"}, r"lags in steps of 10800.0 s.*lag_step \(3h\)"),
        ({"variables": ["d", "vo"]}, r"was trained on \['vo', 'd'\]"),
        ({"init": "downscale-swe-vd-x4"}, "is a downscaler, but fine-tuning needs an encoder"),
    ],
)
def test_fine_tuning_errors(tmp_path, kw, match):
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)
    fit_encoder(ds, epochs=1, seed=0, **SMALL).save(tmp_path / "first")
    error = xatmodist.ModelError if "init" in kw else xatmodist.InputError
    kw = {**SMALL, "epochs": 1, "init": tmp_path / "first", **kw}
    with pytest.raises(error, match=match):
        fit_encoder(ds, **kw)


def test_bootstrap_interval_of_spearman():
    from scipy.stats import spearmanr

    from xatmodist.evaluate import _bootstrap_ci

    rng = np.random.default_rng(0)
    x = np.arange(500.0)
    assert _bootstrap_ci(x, x**3, seed=1) == pytest.approx([1.0, 1.0])  # monotone: always 1
    y = x + rng.normal(0, 150.0, x.size)
    lo, hi = _bootstrap_ci(x, y, seed=1)
    rho = spearmanr(x, y).statistic
    assert lo < rho < hi and hi - lo < 0.1
    # the interval narrows as 1/sqrt(n)
    xs = np.arange(8000.0)
    lo4, hi4 = _bootstrap_ci(xs, xs + rng.normal(0, 2400.0, xs.size), seed=1)
    assert 0.15 < (hi4 - lo4) / (hi - lo) < 0.4
    lo, hi = _bootstrap_ci(x, rng.normal(size=x.size), seed=1)
    assert lo < 0 < hi


def test_distillation_loss_vanishes_on_the_teacher_and_ignores_distance_units():
    """0 for the teacher's own logits and its distances in other units; > 0 otherwise."""
    import torch

    from xatmodist.train.encoder import distillation_loss

    g = torch.Generator().manual_seed(0)
    logits, dist = torch.randn(32, 6, generator=g), torch.rand(32, generator=g) + 0.1
    same = distillation_loss(logits, 7.0 * dist, logits, dist, 2.0, 1.0, 4.0)
    assert float(same) == pytest.approx(0.0, abs=1e-6)
    other = distillation_loss(logits.flip(1), dist.flip(0), logits, dist, 2.0, 1.0, 0.0)
    assert float(other) > 0.1
    assert float(distillation_loss(logits, dist.flip(0), logits, dist, 2.0, 0.0, 1.0)) > 0.1


def test_distillation_pulls_a_cheaper_student_to_its_teacher(tmp_path):
    """A student of another architecture trained with teacher= matches the teacher's lag
    probabilities and distances far better than the same student trained without; the card
    names the teacher."""
    import torch

    from xatmodist.nn.encoder import feature_difference
    from xatmodist.train.encoder import distillation_loss

    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)
    teacher = fit_encoder(ds, epochs=3, seed=0, rank_weight=1.0, **SMALL)
    teacher.save(tmp_path / "teacher")
    kw = {**SMALL, "epochs": 8, "seed": 1, "stem_stride": 2, "lr": 1e-2}
    plain = fit_encoder(ds, **kw)
    student = fit_encoder(ds, teacher=tmp_path / "teacher", distil_distance=8.0, **kw)

    x = torch.from_numpy(np.stack([ds.vo.values, ds.d.values], 1).astype(np.float32))
    x = x[:, :, :16, :16]
    a = torch.cat([x[:-k] for k in (1, 2, 3)])
    b = torch.cat([x[k:] for k in (1, 2, 3)])

    def outputs(m):
        net = m.module.eval()
        with torch.no_grad():
            logits, diff = net.logits_and_difference(a, b)
        return logits, feature_difference(diff, net.distance_kind).mean(dim=(1, 2, 3))

    t = outputs(teacher)
    kl = {
        n: float(distillation_loss(*outputs(m), *t, 2.0, 1.0, 0.0))
        for n, m in [("plain", plain), ("student", student)]
    }
    dd = {
        n: float(distillation_loss(*outputs(m), *t, 2.0, 0.0, 1.0))
        for n, m in [("plain", plain), ("student", student)]
    }
    assert kl["student"] < 0.2 * kl["plain"], kl
    assert dd["student"] < dd["plain"], dd
    tr = student.card.training
    assert tr["teacher"] == {"name": teacher.name, "sha256": teacher.sha256}
    assert "distillation from" in tr["loss"] and plain.card.training["teacher"] is None
    assert student.card.training["config"]["distillation"]["teacher"] == str(tmp_path / "teacher")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"teacher": "downscale-swe-vd-x4"}, "teacher=.* is a downscaler, but distillation"),
        ({"variables": ["d", "vo"]}, r"teacher=.* reads \['vo', 'd'\]"),
        ({"max_lag": "12h"}, r"predicts 3 lag classes in steps of 10800 s; .* give 4"),
        ({"temperature": 0.0}, "temperature must be a finite number > 0"),
    ],
)
def test_distillation_errors(tmp_path, kw, match):
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)
    fit_encoder(ds, epochs=1, seed=0, **SMALL).save(tmp_path / "teacher")
    error = xatmodist.ModelError if "downscale" in str(kw) else xatmodist.InputError
    with pytest.raises(error, match=match):
        fit_encoder(ds, **{**SMALL, "epochs": 1, "teacher": tmp_path / "teacher", **kw})


@pytest.mark.parametrize("projection", [False, True])
def test_scale_features_scales_the_distance_features_and_keeps_the_logits(projection):
    import torch

    from xatmodist.nn import AtmoDistNet
    from xatmodist.nn.encoder import scale_features

    torch.manual_seed(0)
    net = AtmoDistNet(2, 4, widths=[8, 16], projection=projection).eval()
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
    x, y = torch.randn(3, 2, 16, 16), torch.randn(3, 2, 16, 16)
    s = torch.rand(16) + 0.1
    with torch.no_grad():
        fx, logits = net.features(x), net(x, y)
        scale_features(net, s)
        torch.testing.assert_close(net.features(x), fx * s.view(1, -1, 1, 1), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(net(x, y), logits, rtol=1e-4, atol=1e-5)
    for bad in (torch.zeros(16), -torch.ones(16), torch.ones(15), torch.full((16,), float("nan"))):
        with pytest.raises(ValueError, match="16 finite positive numbers"):
            scale_features(net, bad)
    same_width = AtmoDistNet(2, 4, widths=[8])  # one stage, no stride: an identity skip
    with pytest.raises(ValueError, match="identity skip"):
        scale_features(same_width, torch.ones(8))


def test_distance_weights_order_pairs_better_and_are_folded_into_the_network(tmp_path):
    """fit_encoder(distance_weights=True): weights fitted on training pairs, folded into the
    network (same state-dict keys), the card records them with the validation rho before
    and after; the logits stay those of the unweighted network; resuming a finished run may
    switch them on."""
    import torch

    ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=3)
    kw = {**SMALL, "epochs": 2, "seed": 0, "distance": "l1", "widths": [8, 16]}
    plain = fit_encoder(ds, out=tmp_path / "run", **kw)
    weighted = fit_encoder(ds, out=tmp_path / "run", resume=True, distance_weights=True, **kw)
    entry = weighted.card.distance["channel_weights"]
    assert entry["pairs"] == SMALL["pairs_per_epoch"] and 0 < entry["min"] <= 1 <= entry["max"]
    assert (
        entry["val_spearman_after"] == weighted.card.metrics["validation"]["val_spearman_distance"]
    )
    assert "channel_weights" not in plain.card.distance
    assert set(plain.module.state_dict()) == set(weighted.module.state_dict())
    x = torch.from_numpy(np.stack([ds.vo.values[:4, :16, :16], ds.d.values[:4, :16, :16]], 1))
    y = torch.from_numpy(np.stack([ds.vo.values[9:13, :16, :16], ds.d.values[9:13, :16, :16]], 1))
    with torch.inference_mode():
        a, b = plain.module.eval(), weighted.module.eval()
        torch.testing.assert_close(b(x, y), a(x, y), rtol=1e-4, atol=1e-5)
        ratio = b.features(x) / a.features(x).clamp(min=1e-6)
        assert not torch.allclose(ratio.amax(dim=(0, 2, 3)), torch.ones(16))


def test_fit_distance_weights_finds_the_channel_that_orders_lags():
    """Channel 0 grows with the lag, channel 1 is noise ten times larger: the unweighted
    distance barely orders the pairs, the weighted one does; the fit is deterministic and
    may see the pairs in parts."""
    from types import SimpleNamespace

    import torch
    from scipy.stats import spearmanr

    from xatmodist.train.encoder import fit_distance_weights

    g = torch.Generator().manual_seed(0)
    c = torch.arange(8).repeat(128)
    a = torch.randn(len(c), 2, 1, 1, generator=g)
    b = a.clone()
    b[:, 0] += (c + 1).float().view(-1, 1, 1) * 0.1
    b[:, 1] += 10 * torch.randn(len(c), 1, 1, generator=g)
    net = SimpleNamespace(features=lambda x: x, distance_kind="l1")
    d = (a - b).abs()[:, :, 0, 0]
    w = fit_distance_weights(net, [(a, b, c)], seed=3, steps=200)
    parts = [(a[:500], b[:500], c[:500]), (a[500:], b[500:], c[500:])]
    assert torch.equal(w, fit_distance_weights(net, parts, seed=3, steps=200))
    assert float(w.mean()) == pytest.approx(1.0) and (w > 0).all() and w[0] > 20 * w[1]
    before = spearmanr(d.mean(1).numpy(), c.numpy()).statistic
    after = spearmanr((d * w).mean(1).numpy(), c.numpy()).statistic
    assert before < 0.3 and after > 0.9
