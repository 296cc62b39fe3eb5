"""Generators that sample (issue 24): noise paths, ensemble training, members= in the API.

Tiny sampling models are trained here on synthetic fields (seconds); what is
tested is the machinery: members differ, seeds reproduce, the noise follows the
field and not the chunking, observed values survive every member, bad input is
refused.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import xatmodist
from xatmodist.nn import Downscaler, Inpainter
from xatmodist.testing import raise_if_dask_computes, synthetic_fields
from xatmodist.train import fit_downscaler, fit_inpainter

FIELD = {"epochs": 1, "samples_per_epoch": 32, "batch_size": 8, "patch_size": 32}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Paths of a deterministic tiny downscaler, its sampling fine-tune and a sampling inpainter."""
    d = tmp_path_factory.mktemp("ens")
    ds = synthetic_fields(n_time=24, nlat=32, nlon=64, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = fit_downscaler(ds, content_loss="l2", width=8, blocks=1, seed=0, **FIELD)
        det.save(d / "det")
        ens = fit_downscaler(
            ds, content_loss="l2", width=8, blocks=1, noise=2, init=d / "det", seed=1, **FIELD
        )
        ens.save(d / "ens")
        inp = fit_inpainter(
            ds, loss="l2", width=8, levels=2, blocks=1, noise=2, hole=(4, 8), seed=0, **FIELD
        )
        inp.save(d / "inp")
    return {"det": d / "det", "ens": d / "ens", "inp": d / "inp", "data": ds}


def test_noise_paths_start_at_zero_so_a_deterministic_init_loads_unchanged():
    """A deterministic downscaler/inpainter's weights in a sampling one give the same output
    for any noise until the noise paths are trained."""
    torch.manual_seed(0)
    x = torch.randn(2, 2, 8, 16)
    for det, ens, args in (
        (Downscaler(2, 4, 8, 1), Downscaler(2, 4, 8, 1, noise=3), (x,)),
        (Inpainter(2, 8, 2, 1), Inpainter(2, 8, 2, 1, noise=3), (x, (x > 1).float()[:, :1])),
    ):
        for p in det.tail.parameters():
            torch.nn.init.normal_(p)
        missing = ens.load_state_dict(det.state_dict(), strict=False).missing_keys
        assert missing and all(k.startswith("noise_in.") for k in missing)
        shape = ens.noise_shape(2, *x.shape[2:])
        with torch.no_grad():
            torch.testing.assert_close(ens(*args, torch.randn(shape)), det(*args))
            for conv in ens.noise_in:
                torch.nn.init.normal_(conv.weight)
            assert not torch.allclose(ens(*args, torch.randn(shape)), det(*args))
        with pytest.raises(ValueError, match="noise must have shape"):
            ens(*args, torch.randn(1, 3, 4, 4))


def test_fair_crps_of_a_perfect_and_a_collapsed_ensemble():
    """The ensemble term is the fair CRPS: about 0 for members drawn from the truth's own
    distribution, the MAE for members that all equal the mean."""
    from types import SimpleNamespace

    from xatmodist.train._fields import FieldTask

    task = SimpleNamespace(
        std=torch.ones(1, 1, 1, 1), s=SimpleNamespace(ensemble=SimpleNamespace(crps_weight=1.0))
    )
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(64, 1, 8, 8, generator=g)
    members = torch.randn(8, 64, 1, 8, 8, generator=g)  # same distribution as the truth
    fair = FieldTask.ensemble_loss(task, members, truth)
    collapsed = FieldTask.ensemble_loss(task, torch.zeros(8, 64, 1, 8, 8), truth)
    # E|X - y| - E|X - X'|/2 for X, y ~ N(0, 1): 2/sqrt(pi) - 1/sqrt(pi) = 0.564; collapsed:
    # E|y| = 0.798
    assert float(fair) == pytest.approx(1 / np.sqrt(np.pi), abs=0.03)
    assert float(collapsed) == pytest.approx(np.sqrt(2 / np.pi), abs=0.03)


def test_spectral_term_is_the_band_log_power_ratio():
    """``spectral_mismatch``: 0 for the truth, ln 4 for twice the truth, only the band counts
    (a change below the coarse Nyquist costs nothing), samples may outnumber the truths."""
    from xatmodist.train.downscaler import spectral_mismatch, zonal_power

    g = torch.Generator().manual_seed(0)
    truth = torch.randn(4, 2, 8, 64, generator=g)
    assert float(spectral_mismatch(truth, truth, 4)) == 0.0
    assert float(spectral_mismatch(2 * truth, truth, 4)) == pytest.approx(np.log(4), rel=1e-5)
    assert float(spectral_mismatch(torch.cat([truth, truth]), truth, 4)) == pytest.approx(
        0, abs=1e-6
    )
    # the same windowed power from numpy, and a mismatch that lives only below the band
    w = np.hanning(64)
    ref = (np.abs(np.fft.rfft(truth.numpy() * w, axis=-1)) ** 2).mean(axis=(0, 2))
    np.testing.assert_allclose(zonal_power(truth).numpy(), ref, rtol=1e-4)
    spec = torch.fft.rfft(truth, dim=-1)
    spec[..., :7] *= 3.0  # power x 9 below the band 9..15 of x4 (k <= 6)
    spec[..., 18:] *= 3.0  # and above it (k >= 18), two bins clear of its edges
    out = torch.fft.irfft(spec, n=64, dim=-1)
    # only the window's leakage (its side lobes) reaches the band: a few % of ln 9
    assert float(spectral_mismatch(out, truth, 4)) < 0.05 * np.log(9)
    assert float(spectral_mismatch(out, truth, 2)) > 0.5 * np.log(9)  # x2: band 17..31
    x = truth.clone().requires_grad_(True)
    spectral_mismatch(0.5 * x, truth, 4).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_spread_term_compares_the_spread_spectrum_with_the_error_spectrum():
    """``spread_mismatch``: about 0 for members exchangeable with the truth; ln of the ratio for
    a narrow ensemble; bounded for members that agree; only the spread gets a gradient."""
    from xatmodist.train.downscaler import spread_mismatch

    g = torch.Generator().manual_seed(0)
    truth = torch.randn(64, 2, 8, 64, generator=g)
    members = torch.randn(3, 64, 2, 8, 64, generator=g)  # the truth's own distribution
    assert float(spread_mismatch(members, truth, 4)) < 0.05
    # spread power 2 * 0.09 against error power 0.09 + 1: ln(1.09 / 0.18)
    narrow = 0.3 * members
    assert float(spread_mismatch(narrow, truth, 4)) == pytest.approx(np.log(1.09 / 0.18), abs=0.05)
    assert float(spread_mismatch(torch.zeros_like(members), truth, 4)) == pytest.approx(
        np.log(1e3), rel=1e-4
    )
    # noise at the grid scale only (above the band): no spread in the band, as collapsed
    high = torch.fft.rfft(members, dim=-1)
    high[..., :17] = 0
    grid = torch.fft.irfft(high, n=64, dim=-1)
    assert float(spread_mismatch(grid, truth, 4)) > 0.5 * np.log(1e3)
    assert float(spread_mismatch(truth.expand(3, *truth.shape), truth, 4)) == pytest.approx(
        np.log(1e3), rel=1e-4
    )  # samples that are the truth: no spread, and no error to divide by (finite)
    x = narrow.clone().requires_grad_(True)
    y = truth.clone().requires_grad_(True)
    spread_mismatch(x, y, 4).backward()
    assert float(x.grad.abs().sum()) > 0 and y.grad is None


def test_spread_spectral_weight_is_recorded_and_needs_a_sampling_model(models):
    ds = models["data"]
    kw = dict(content_loss="l2", width=8, blocks=1, seed=1, **FIELD)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = fit_downscaler(ds, init=models["det"], noise=2, spread_spectral_weight=1.0, **kw)
    entry = m.card.training["spread_spectral"]
    assert entry["weight"] == 1.0 and "ln P(x_i - x_j)" in entry["term"]
    assert "spread_spectral" not in xatmodist.load_model(models["ens"]).card.training
    with pytest.raises(xatmodist.InputError, match="deterministic"):
        fit_downscaler(ds, spread_spectral_weight=1.0, **kw)


def test_downscaler_spectral_weight_trains_and_is_recorded(models):
    ds = models["data"]
    kw = dict(content_loss="l2", width=8, blocks=1, seed=0, **FIELD)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = fit_downscaler(ds, spectral_weight=2.0, **kw)
    entry = spec.card.training["spectral"]
    assert entry["weight"] == 2.0 and "W / 8 < k < W / 4" in entry["term"]
    assert spec.card.training["config"]["loss"]["spectral_weight"] == 2.0
    plain = xatmodist.load_model(models["det"])  # the same settings without the term
    assert "spectral" not in plain.card.training
    a, b = spec.module.state_dict(), plain.module.state_dict()
    assert not torch.equal(a["tail.weight"], b["tail.weight"])
    with pytest.raises(xatmodist.InputError, match="spectral_weight must be a finite number"):
        fit_downscaler(ds, spectral_weight=-1.0, **kw)


def _content_task(k: int, mode: str, power: float = 1.0):
    """What FieldTask.content_loss reads: a nonlinear symmetric content loss D and its MSE."""
    from types import SimpleNamespace

    def dims(per_input):
        return (1, 2, 3) if per_input else None

    return SimpleNamespace(
        content=lambda p, t, mse, per_input=False: mse + (p - t).abs().mean(dim=dims(per_input)),
        mse=lambda p, t, per_input=False: (p - t).pow(2).mean(dim=dims(per_input)),
        samples_per_input=k,
        s=SimpleNamespace(ensemble=SimpleNamespace(ensemble_content=mode, energy_power=power)),
    )


@pytest.mark.parametrize("k", [2, 3])
def test_energy_content_has_the_value_and_gradient_of_the_energy_score(k):
    """``ensemble_content="energy"``: mean_i D(x_i, y) - mean_{i != j} D(x_i, x_j) / 2, the
    gradient flowing through both samples of every pair; ``"each"``: mean_i D(x_i, y)."""
    from xatmodist.train._fields import FieldTask

    g = torch.Generator().manual_seed(k)
    b = 4
    truth = torch.randn(b, 2, 6, 6, generator=g)
    x = torch.randn(k * b, 2, 6, 6, generator=g, requires_grad=True)
    got = FieldTask.content_loss(_content_task(k, "energy"), x, truth.repeat(k, 1, 1, 1))
    (grad,) = torch.autograd.grad(got, x)

    def d(p, t):
        return (p - t).pow(2).mean() + (p - t).abs().mean()

    xs = x.view(k, b, 2, 6, 6)
    skill = sum(d(xs[i], truth) for i in range(k)) / k
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    spread = sum(d(xs[i], xs[j]) for i, j in pairs) / len(pairs)
    want = skill - 0.5 * spread
    (want_grad,) = torch.autograd.grad(want, x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(grad, want_grad)
    each = FieldTask.content_loss(_content_task(k, "each"), x, truth.repeat(k, 1, 1, 1))
    torch.testing.assert_close(each, skill)
    # the l2 share alone: the squared error of the ensemble mean (the spread costs nothing),
    # up to the fair estimate's finite-ensemble term
    l2 = _content_task(k, "energy")
    l2.content = lambda p, t, mse: mse
    var = xs.var(dim=0, unbiased=True).mean()
    mean_err = (xs.mean(0) - truth).pow(2).mean()
    torch.testing.assert_close(
        FieldTask.content_loss(l2, x, truth.repeat(k, 1, 1, 1)), mean_err - var / k
    )


@pytest.mark.parametrize("k", [2, 3])
def test_energy_power_scores_each_input_with_the_root_of_its_loss(k):
    """``energy_power=p``: mean over inputs of mean_i D_i(x_i, y)**p - mean_{i != j}
    D(x_i, x_j)**p / 2, with D of each input on its own; value and gradient."""
    from xatmodist.train._fields import FieldTask

    g = torch.Generator().manual_seed(k)
    b = 4
    truth = torch.randn(b, 2, 6, 6, generator=g)
    x = torch.randn(k * b, 2, 6, 6, generator=g, requires_grad=True)
    got = FieldTask.content_loss(_content_task(k, "energy", 0.5), x, truth.repeat(k, 1, 1, 1))
    (grad,) = torch.autograd.grad(got, x)

    def d(p, t):  # one value per input
        dim = (1, 2, 3)
        return ((p - t).pow(2).mean(dim=dim) + (p - t).abs().mean(dim=dim) + 1e-12).sqrt()

    xs = x.view(k, b, 2, 6, 6)
    skill = sum(d(xs[i], truth) for i in range(k)) / k
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    spread = sum(d(xs[i], xs[j]) for i, j in pairs) / len(pairs)
    want = (skill - 0.5 * spread).mean()
    (want_grad,) = torch.autograd.grad(want, x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(grad, want_grad)
    # two equal samples (noise paths at zero, as a fine-tune starts): a finite gradient
    same = truth.repeat(k, 1, 1, 1).add(0.1).requires_grad_(True)
    task = _content_task(k, "energy", 0.5)
    (g0,) = torch.autograd.grad(FieldTask.content_loss(task, same, truth.repeat(k, 1, 1, 1)), same)
    assert torch.isfinite(g0).all()


def test_energy_power_one_half_prefers_the_right_spread_and_one_does_not():
    """Why ``energy_power=0.5``: with the squared distance as D, the score of power 1 cannot
    tell an ensemble of the truth's own spread from one collapsed onto its mean (both ~1 here);
    the square root (the energy score of beta = 1) scores the right spread lower
    (sqrt(2) - sqrt(2)/2 = 0.71 against 1)."""
    from xatmodist.train._fields import FieldTask

    g = torch.Generator().manual_seed(0)
    b, k = 512, 2
    truth = torch.randn(b, 2, 16, 16, generator=g).repeat(k, 1, 1, 1)
    spread = torch.randn(k * b, 2, 16, 16, generator=g)  # the truth's distribution
    collapsed = torch.zeros(k * b, 2, 16, 16)  # its mean
    scores = {}
    for p in (1.0, 0.5):
        task = _content_task(k, "energy", p)
        task.content = lambda a, t, mse, per_input=False: mse
        scores[p] = [float(FieldTask.content_loss(task, x, truth)) for x in (spread, collapsed)]
    assert scores[1.0][0] == pytest.approx(scores[1.0][1], abs=0.02)
    assert scores[0.5][0] == pytest.approx(np.sqrt(0.5), abs=0.02)
    assert scores[0.5][1] == pytest.approx(1.0, abs=0.02)


def test_per_input_losses_average_to_the_batch_loss(tmp_path):
    """The trainers' distances and MSEs per input: their mean is the batch value (equal-sized
    holes for the inpainter), for the encoder's feature distance too; unequal holes weigh the
    inputs alike, where the batch value weighs them by their size."""
    from types import SimpleNamespace

    from xatmodist.testing import tiny_encoder
    from xatmodist.train.downscaler import DownscalerTask, _feature_distance
    from xatmodist.train.inpainter import InpainterTask, _near_hole_distance

    tiny_encoder(tmp_path / "enc")
    enc = xatmodist.load_model(tmp_path / "enc")
    g = torch.Generator().manual_seed(0)
    c = len(enc.card.variables)
    x, y = torch.randn(2, 4, c, 32, 32, generator=g)
    mask = torch.zeros(4, 1, 32, 32)
    mask[..., 8:16, 8:16] = 1  # the same number of feature cells see each input's hole
    task = SimpleNamespace(std=torch.full((1, c, 1, 1), 2.0))
    for batch, each in (
        (_feature_distance(enc)(x, y), _feature_distance(enc)(x, y, per_input=True)),
        (
            _near_hole_distance(enc)(x, y, mask),
            _near_hole_distance(enc)(x, y, mask, per_input=True),
        ),
        (DownscalerTask.mse(task, x, y), DownscalerTask.mse(task, x, y, per_input=True)),
        (InpainterTask.mse(task, x, y, mask), InpainterTask.mse(task, x, y, mask, per_input=True)),
    ):
        assert each.shape == (4,)
        torch.testing.assert_close(each.mean(), batch)
    mask[0, ..., :4, :4] = 1  # a larger first hole
    each = InpainterTask.mse(task, x, y, mask, per_input=True)
    second = ((x[1] - y[1]) / 2)[..., 8:16, 8:16].pow(2).mean()
    assert float(each[1]) == pytest.approx(float(second))


def test_energy_power_is_recorded_and_checked(models):
    ds = models["data"]
    kw = dict(content_loss="l2", width=8, blocks=1, noise=2, seed=1, **FIELD)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = fit_downscaler(ds, init=models["det"], energy_power=0.5, **kw)
    ens = m.card.training["ensemble"]
    assert "D**0.5(x_i, y)" in ens["content"] and "per input" in ens["content"]
    assert m.card.training["config"]["ensemble"]["energy_power"] == 0.5
    plain = xatmodist.load_model(models["ens"]).card.training["ensemble"]["content"]
    assert "**" not in plain and "per input" not in plain
    for bad in (1.5, 0.0):
        with pytest.raises(xatmodist.InputError, match="energy_power"):
            fit_downscaler(ds, init=models["det"], energy_power=bad, **kw)


def test_noise_paths_learn_at_their_own_rate():
    from types import SimpleNamespace

    from xatmodist.train._fields import FieldTask

    s = SimpleNamespace(
        schedule=SimpleNamespace(lr=1e-3), ensemble=SimpleNamespace(noise_lr_scale=10.0)
    )
    for net in (Downscaler(2, 4, 8, 1, noise=2), Inpainter(2, 8, 2, 1, noise=2)):
        opt, _ = FieldTask.optimizer(SimpleNamespace(net=net, s=s), 10)
        main, noise = opt.param_groups
        assert main["lr"] == pytest.approx(1e-3) and noise["lr"] == pytest.approx(1e-2)
        assert {id(p) for p in noise["params"]} == {id(p) for p in net.noise_in.parameters()}
        assert len(main["params"]) + len(noise["params"]) == len(list(net.parameters()))
    (only,) = FieldTask.optimizer(SimpleNamespace(net=Downscaler(2, 4, 8, 1), s=s), 10)[
        0
    ].param_groups
    assert only["lr"] == pytest.approx(1e-3)


def test_a_sampling_inpainter_trains_with_a_gan_term_and_resumes_exactly(models, tmp_path):
    """The inpainter has the downscaler's optional discriminator: recorded on the card, in
    the epoch records, restored on resume."""
    kw = {**FIELD, "epochs": 2, "loss": "l2", "width": 8, "levels": 2, "blocks": 1}
    kw.update(noise=2, hole=(4, 8), seed=0, adversarial=True, adversarial_weight=0.5)
    ds = models["data"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = fit_inpainter(ds, out=tmp_path / "a", **kw)
        adv = full.card.training["adversarial"]
        assert adv["weight"] == 0.5 and adv["discriminator"]["architecture"] == "PatchDiscriminator"
        assert all(0 < h["disc_fake"] < 1 for h in full.card.training["history"])
        assert not any("disc" in k for k in full.module.state_dict())
        plain = fit_inpainter(ds, **{**kw, "adversarial": False})
        assert plain.card.training["adversarial"] is None
        got = full.module.state_dict()
        assert not torch.equal(plain.module.state_dict()["head.weight"], got["head.weight"])
        fit_inpainter(ds, out=tmp_path / "b", stop_after=1, **kw)
        resumed = fit_inpainter(ds, out=tmp_path / "b", resume=True, **kw)
    for k, t in got.items():
        assert torch.equal(t, resumed.module.state_dict()[k]), k


def test_ensemble_training_records_its_settings(models):
    card = xatmodist.load_model(models["ens"]).card
    assert card.args["noise"] == 2
    ens = card.training["ensemble"]
    assert ens["noise_maps"] == 2 and ens["samples_per_input"] == 2
    assert ens["content"].startswith("energy score") and ens["noise_lr"] == pytest.approx(
        card.training["config"]["schedule"]["lr"] * 10
    )
    assert xatmodist.load_model(models["det"]).card.training["ensemble"] is None
    assert "samples (2 noise maps + CRPS)" in card.summary
    assert "samples" not in xatmodist.load_model(models["det"]).card.summary
    card = copy.deepcopy(card)  # load_model caches: leave the loaded card alone
    card.metrics["heldout"] = {"members": 8, "this_model": {"vo": {"crps": 0.1234}}}
    assert card.headline == "held-out vo CRPS 0.123 (8 members)"


def test_downscale_members_are_lazy_seeded_and_chunk_invariant(models):
    ds = models["data"].isel(time=slice(0, 6)).coarsen(lat=4, lon=4).mean()
    kw = {"model": models["ens"], "members": 3, "seed": 5}
    eager = ds.atmodist.downscale(**kw)
    assert eager.vo.dims == ("member", "time", "lat", "lon") and eager.sizes["member"] == 3
    assert list(eager.member.values) == [0, 1, 2]
    assert eager.attrs["members"] == "3" and eager.attrs["seed"] == "5"
    with raise_if_dask_computes():
        lazy = ds.chunk(time=1).atmodist.downscale(**kw)
        lazy4 = ds.chunk(time=4).atmodist.downscale(**kw)
    for other in (lazy, lazy4):
        np.testing.assert_array_equal(other.vo.values, eager.vo.values)
        np.testing.assert_array_equal(other.d.values, eager.d.values)
    # members differ; the same seed repeats; another seed does not; member m is the same
    # whatever the ensemble size
    assert float(eager.vo.std("member").mean()) > 0
    np.testing.assert_array_equal(ds.atmodist.downscale(**kw).vo.values, eager.vo.values)
    assert not np.array_equal(ds.atmodist.downscale(**{**kw, "seed": 6}).vo.values, eager.vo.values)
    two = ds.atmodist.downscale(**{**kw, "members": 2})
    np.testing.assert_array_equal(two.vo.values, eager.vo.values[:2])
    # a field's noise follows the field: the fields 2..5 alone get other samples than in place
    part = ds.isel(time=slice(2, 6)).atmodist.downscale(**kw)
    assert not np.array_equal(part.vo.values, eager.vo.values[:, 2:])
    # members=None: one zero-noise output, no member dim
    assert "member" not in ds.atmodist.downscale(model=models["ens"]).dims


def test_downscaler_members_share_the_trunk_and_equal_their_own_passes(models):
    """``Downscaler.sample`` runs the noise-free trunk once; every sample is bitwise its own
    ``forward`` pass, and the accessor's members are those passes (the kernel refines all
    members of a field together)."""
    from xatmodist._kernels import FIELDS_PER_PASS, Noise, downscale_kernel
    from xatmodist.zoo import load_model

    net = load_model(models["ens"]).module
    g = torch.Generator().manual_seed(0)
    x = torch.randn(FIELDS_PER_PASS, 2, 12, 20, generator=g)
    noises = [torch.randn(net.noise_shape(len(x), 12, 20), generator=g) for _ in range(3)]
    with torch.inference_mode():
        together = net.sample(x, noises)
        for m, n in enumerate(noises):
            assert torch.equal(together[:, m], net(x, n))
    ds = models["data"].isel(time=slice(0, 3)).coarsen(lat=4, lon=4).mean()
    a = np.stack([ds.vo.values, ds.d.values], axis=1)
    kw = {"model": str(models["ens"]), "tiling": None, "wrap": True}
    idx = np.arange(3) + 7
    both = downscale_kernel(a, noise=[Noise(4, m, idx) for m in range(2)], **kw)
    assert both.shape == (3, 2, 2, 32, 64)
    for m in range(2):
        np.testing.assert_array_equal(both[:, m], downscale_kernel(a, noise=Noise(4, m, idx), **kw))


def test_inpaint_members_keep_observed_values_bit_for_bit(models):
    ds = models["data"].isel(time=slice(0, 4)).copy(deep=True)
    hole = (slice(10, 16), slice(20, 27))
    for name in ("vo", "d"):
        ds[name][dict(time=slice(None), lat=hole[0], lon=hole[1])] = np.nan
    kw = {"model": models["inp"], "members": 3, "seed": 0}
    out = ds.atmodist.inpaint(**kw)
    assert out.vo.dims == ("member", "time", "lat", "lon")
    observed = np.isfinite(ds.vo.values)
    for m in range(3):
        np.testing.assert_array_equal(out.vo.values[m][observed], ds.vo.values[observed])
    assert np.isfinite(out.vo.values).all()
    assert float(out.vo.std("member").values[:, hole[0], hole[1]].mean()) > 0
    with raise_if_dask_computes():
        lazy = ds.chunk(time=1).atmodist.inpaint(**kw)
    np.testing.assert_array_equal(lazy.vo.values, out.vo.values)


@pytest.mark.parametrize("members", [0, -2, 1.5, True, "3"])
def test_members_must_be_a_positive_int(models, members):
    ds = models["data"].isel(time=slice(0, 2)).coarsen(lat=4, lon=4).mean()
    with pytest.raises(xatmodist.InputError, match="members must be a positive integer"):
        ds.atmodist.downscale(model=models["ens"], members=members)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_seed_must_be_a_non_negative_int(models, seed):
    ds = models["data"].isel(time=slice(0, 2))
    with pytest.raises(xatmodist.InputError, match="seed must be an integer >= 0"):
        ds.atmodist.inpaint(model=models["inp"], members=2, seed=seed)


def test_a_deterministic_model_refuses_members(models):
    ds = models["data"].isel(time=slice(0, 2)).coarsen(lat=4, lon=4).mean()
    with pytest.raises(xatmodist.ModelError, match=r"is deterministic.*that sample are \["):
        ds.atmodist.downscale(model=models["det"], members=2)
    with pytest.raises(xatmodist.ModelError, match="'inpaint-swe-vd' is deterministic"):
        models["data"].isel(time=slice(0, 1)).atmodist.inpaint(members=2)


def test_large_ensemble_chunks_warn(models):
    ds = models["data"].isel(time=slice(0, 2)).coarsen(lat=4, lon=4).mean().chunk(time=2)
    with pytest.warns(UserWarning, match="x 100000 members"):
        ds.atmodist.downscale(model=models["ens"], members=100_000)  # lazy: nothing runs


def test_sampling_init_must_match_noise(models):
    ds = models["data"]
    with pytest.raises(xatmodist.InputError, match="samples with noise=2 maps .*give noise=3"):
        fit_downscaler(
            ds, content_loss="l2", width=8, blocks=1, noise=3, init=models["ens"], **FIELD
        )
    with pytest.raises(xatmodist.InputError, match=r"\(noise_steps=None\); .* \(noise_steps=1\)"):
        fit_downscaler(
            ds,
            content_loss="l2",
            width=8,
            blocks=1,
            noise=2,
            noise_steps=1,
            init=models["ens"],
            **FIELD,
        )


@pytest.mark.parametrize(
    ("noise", "steps", "match"),
    [
        (0, 1, "noise_steps=1 needs a sampling model"),
        (2, 3, "a value from 1 to 2"),
        (2, 0, "noise_steps must be a positive integer; got 0"),
    ],
)
def test_noise_steps_needs_noise_and_a_step_of_the_factor(models, noise, steps, match):
    with pytest.raises(xatmodist.InputError, match=match):
        fit_downscaler(
            models["data"],
            content_loss="l2",
            width=8,
            blocks=1,
            noise=noise,
            noise_steps=steps,
            **FIELD,
        )


def test_noise_steps_draws_noise_on_the_last_noised_grid():
    """noise_steps=1 of a x4 model: noise on the 2x grid, one path; the output still
    depends on it, and it loads and runs through the accessor's kernel like any model."""
    net = Downscaler(2, 4, 8, 1, noise=3, noise_steps=1)
    assert net.noise_shape(2, 8, 16) == (2, 3, 16, 32) and len(net.noise_in) == 1
    for conv in net.noise_in:
        torch.nn.init.normal_(conv.weight)
    for p in net.tail.parameters():
        torch.nn.init.normal_(p)
    x = torch.randn(2, 2, 8, 16)
    with torch.no_grad():
        a, b = net(x, torch.randn(2, 3, 16, 32)), net(x, torch.randn(2, 3, 16, 32))
    assert a.shape == (2, 2, 32, 64) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="noise_steps must be None or 1..2"):
        Downscaler(2, 4, 8, 1, noise=3, noise_steps=3)
