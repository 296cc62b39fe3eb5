"""The ``device`` and ``precision`` options (issue 22): checked, resolved, carried, streamed.

Everything here runs on the CPU; the tests that need a CUDA GPU are skipped
with the reason when torch sees none (``python -m benchmarks.gpu`` is the
check to run on a GPU machine).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import xatmodist
from xatmodist import InputError, _kernels
from xatmodist.testing import synthetic_fields

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="torch sees no CUDA GPU on this machine")
no_cuda = pytest.mark.skipif(CUDA, reason="this machine has a CUDA GPU")


@pytest.fixture(scope="module")
def pair(fields):
    a = fields.isel(time=slice(0, 4))
    b = fields.isel(time=slice(1, 5)).assign_coords(time=a.time)
    return a, b


def _all_five(a, b):
    """distance, embed, predict_lag, downscale and inpaint of the default models."""
    gappy = a.where(~((a.lat > 10) & (a.lat < 40) & (a.lon < 40)))
    return {
        "distance": a.atmodist.distance(b, spatial=True),
        "embed": a.atmodist.embed(),
        "predict_lag": a.atmodist.predict_lag(b),
        "downscale": a.coarsen(lat=4, lon=4).mean().atmodist.downscale().vo,
        "inpaint": gappy.atmodist.inpaint().vo,
    }


# --------------------------------------------------------------------------- bad options


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"device": "gpu"}, r"must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got 'gpu'"),
        ({"device": 0}, r"must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got 0"),
        ({"device": "cuda:x"}, r"got 'cuda:x'"),
        ({"precision": "fp8"}, r"one of \['float32', 'bfloat16', 'float16'\]; got 'fp8'"),
        ({"precision": "float16", "device": "cpu"}, r"float16' needs a GPU.*'bfloat16' on a CPU"),
    ],
)
def test_bad_device_options_are_refused_and_change_nothing(options, match):
    before = xatmodist.get_options()
    with pytest.raises(InputError, match=match):
        xatmodist.set_options(**options)
    assert xatmodist.get_options() == before


@no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_refused(device):
    with pytest.raises(InputError, match=r"needs a CUDA GPU.*torch sees none.*'auto'"):
        xatmodist.set_options(device=device)


@pytest.mark.skipif(
    getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    reason="this machine has Apple's MPS",
)
def test_mps_off_macos_is_refused():
    with pytest.raises(InputError, match=r"Apple's Metal GPU backend.*not available"):
        xatmodist.set_options(device="mps")


@no_cuda
def test_float16_where_auto_means_the_cpu_is_refused():
    with pytest.raises(InputError, match=r"device='auto' runs on the CPU here"):
        xatmodist.set_options(precision="float16")


@no_cuda
def test_float16_training_on_the_cpu_is_refused(fields):
    from xatmodist.train import fit_encoder

    with pytest.raises(InputError, match=r"float16' needs a GPU"):
        fit_encoder(fields, max_lag="6h", precision="float16", epochs=1)
    with pytest.raises(InputError, match=r"needs a CUDA GPU"):
        fit_encoder(fields, max_lag="6h", device="cuda", epochs=1)


# --------------------------------------------------------------------------- on the CPU


@no_cuda
def test_device_cpu_set_explicitly_gives_the_same_bits(pair):
    """'auto' is the CPU here, and naming it changes nothing: same kernels, same bits."""
    ref = _all_five(*pair)
    with xatmodist.set_options(device="cpu"):
        got = _all_five(*pair)
    for k in ref:
        xr.testing.assert_identical(got[k], ref[k])


def test_bfloat16_on_the_cpu_is_close_to_float32_and_chunk_invariant(pair):
    a, b = pair
    with xatmodist.set_options(device="cpu"):
        ref = _all_five(a, b)
        with xatmodist.set_options(precision="bfloat16"):
            low = _all_five(a, b)
            lazy = _all_five(a.chunk({"time": 3}), b.chunk({"time": 3}))
    for k in ref:
        xr.testing.assert_identical(lazy[k].compute(), low[k])  # one pass size: same bits
        assert not np.array_equal(low[k].values, ref[k].values), k  # autocast did run
    d, d0 = (
        low["distance"].mean(("patch_lat", "patch_lon")),
        ref["distance"].mean(("patch_lat", "patch_lon")),
    )
    assert float(abs(d / d0 - 1).max()) < 0.01  # the bound for distances
    np.testing.assert_allclose(low["predict_lag"], ref["predict_lag"], atol=0.02)
    for k in ("downscale", "inpaint"):
        scale = float(abs(ref[k]).max())
        assert float(abs(low[k] - ref[k]).max()) < 0.05 * scale, k


def test_the_model_cache_is_keyed_by_device_and_kind():
    from xatmodist.nn.encoder import FrozenTrunk

    path = str(xatmodist.load_model().path)
    fp32 = _kernels.inference_encoder(path, True, "cpu", "float32")
    bf16 = _kernels.inference_encoder(path, True, "cpu", "bfloat16")
    assert isinstance(fp32.encoder, FrozenTrunk)  # TorchScript where it helps: CPU, float32
    assert not isinstance(bf16.encoder, FrozenTrunk)  # a frozen graph does not take autocast
    assert _kernels.inference_encoder(path, True, "cpu", "float32") is fp32
    assert _kernels.inference_encoder(path, True, "auto", "bfloat16") is (
        bf16 if not CUDA else _kernels.inference_encoder(path, True, "cuda", "bfloat16")
    )


# --------------------------------------------------------------------------- big fields


def test_a_large_field_streams_its_patches_in_bounded_runs(monkeypatch):
    """A field with more patches than TILE_BATCHES * batch_size is cut a run at a time,
    and gives the bits of tiling it whole."""
    ds = synthetic_fields(n_time=2, nlat=96, nlon=192, seed=4)
    a, b = ds.isel(time=[0]), ds.isel(time=[1]).assign_coords(time=ds.time[:1])
    runs = []
    real = _kernels._patch_run
    monkeypatch.setattr(
        _kernels, "_patch_run", lambda *args: runs.append(len(out := real(*args))) or out
    )
    batch = 2  # 18 patches of 32 x 32 per field, runs of 16
    with xatmodist.set_options(batch_size=batch):
        d = a.atmodist.distance(b, spatial=True)
        e = a.atmodist.embed(pool="tile")
    assert runs and max(runs) <= _kernels.TILE_BATCHES * batch  # bounded by the batch size
    # the same patches tiled whole and run in passes of the same size
    m = xatmodist.load_model()
    net = _kernels.inference_encoder(str(m.path))
    t = _kernels.make_tiling(96, 192, m.card.patch_size, wrap=True)
    xa = np.stack([a.vo.values, a.d.values], axis=1).astype(np.float32)
    xb = np.stack([b.vo.values, b.d.values], axis=1).astype(np.float32)
    whole = _kernels._run(net.distance, [_kernels.tiles(xa, t), _kernels.tiles(xb, t)], batch, None)
    np.testing.assert_array_equal(d.values.reshape(-1), whole)
    assert e.sizes["patch_lat"] * e.sizes["patch_lon"] > _kernels.TILE_BATCHES * batch


def test_patch_runs_are_the_tiles():
    x = np.random.default_rng(0).normal(size=(1, 2, 40, 72)).astype(np.float32)
    for wrap in (True, False):
        t = _kernels.make_tiling(40, 72, 16, wrap=wrap, lon_offset=5 if wrap else 0)
        whole = _kernels.tiles(x, t)
        parts = [_kernels._patch_run(x[0], t, slice(k, k + 7)) for k in range(0, len(whole), 7)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)


# --------------------------------------------------------------------------- training


def test_training_records_device_and_precision_and_runs_in_bfloat16(tmp_path):
    from xatmodist.train import fit_encoder

    ds = synthetic_fields(n_time=48, nlat=32, nlon=64, seed=3)
    kw = dict(
        max_lag="9h", patch_size=16, widths=[8, 16], pairs_per_epoch=64, batch_size=32,
        val_pairs=64, block_length=8, val_every=3, epochs=1, progress=False,
    )  # fmt: skip
    m32 = fit_encoder(ds, device="cpu", **kw)
    m16 = fit_encoder(ds, device="cpu", precision="bfloat16", out=str(tmp_path / "b"), **kw)
    assert (m32.card.training["device"], m32.card.training["precision"]) == ("cpu", "float32")
    assert m16.card.training["precision"] == "bfloat16"
    assert xatmodist.load_model(tmp_path / "b" / "model").card.training["device"] == "cpu"
    w32, w16 = m32.module.state_dict(), m16.module.state_dict()
    assert all(w16[k].dtype == w32[k].dtype for k in w32)  # weights stay float32
    assert any(not torch.equal(w16[k], w32[k]) for k in w32)  # autocast changed the steps


# --------------------------------------------------------------------------- a CUDA GPU


@needs_cuda
def test_cuda_agrees_with_the_cpu(pair):
    a, b = pair
    with xatmodist.set_options(device="cpu"):
        ref = _all_five(a, b)
    with xatmodist.set_options(device="cuda"):
        got = _all_five(a, b)
    for k in ref:
        scale = float(abs(ref[k]).max())
        assert float(abs(got[k] - ref[k]).max()) <= 1e-3 * scale, k


@needs_cuda
def test_training_on_cuda_writes_a_cpu_model(tmp_path):
    from xatmodist.train import fit_downscaler

    ds = synthetic_fields(n_time=16, nlat=32, nlon=64, seed=3)
    m = fit_downscaler(
        ds, device="cuda", precision="float16", content_loss="atmodist", patch_size=16,
        width=8, blocks=1, samples_per_epoch=32, batch_size=8, epochs=1, progress=False,
    )  # fmt: skip
    assert m.card.training["device"].startswith("cuda")
    assert all(p.device.type == "cpu" for p in m.module.parameters())
