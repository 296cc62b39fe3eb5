"""Faults in long jobs: atomic checkpoints, killed workers, resumable zarr output, determinism.

The companion page is ``docs/reliability.md``.  Everything here uses real
components: real ``torch.save`` files, a real ``dask.distributed`` LocalCluster
whose worker process is SIGKILLed, a real zarr store on disk.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import xatmodist
from xatmodist.testing import TINY_ENCODER_TRAINING, raise_if_dask_computes, synthetic_fields
from xatmodist.train import fit_encoder

distributed = pytest.importorskip("distributed")

SMALL = TINY_ENCODER_TRAINING

#: Determinism tolerance (see test_same_numbers_numpy_dask_chunkings_and_cluster and
#: docs/reliability.md): results agree to rtol=RTOL, atol=ATOL * (typical magnitude).
RTOL = 1e-5
ATOL = 1e-6


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_same_weights(a, b) -> None:
    sa, sb = a.module.state_dict(), b.module.state_dict()
    assert sa.keys() == sb.keys()
    for k, v in sb.items():
        np.testing.assert_allclose(sa[k].numpy(), v.numpy(), err_msg=k)


# --------------------------------------------------------------------------------------
# 1. Atomic checkpoints
# --------------------------------------------------------------------------------------


class _SimulatedKill(Exception):
    """Stands in for the process dying in the middle of ``torch.save``."""


@pytest.fixture(scope="module")
def train_data():
    return synthetic_fields(n_time=40, nlat=32, nlon=64, seed=8)


@pytest.fixture(scope="module")
def uninterrupted(train_data):
    """The reference: the 2-epoch run of these tests, never interrupted."""
    return fit_encoder(train_data, epochs=2, seed=6, **SMALL)


def test_failure_during_checkpoint_save_keeps_previous_checkpoint(
    tmp_path, monkeypatch, train_data, uninterrupted
):
    """``torch.save`` dies half-way through writing epoch 2's checkpoint: the exception
    propagates, ``checkpoint.pt`` still holds epoch 1 intact, the garbage is only in
    ``checkpoint.tmp``, and resuming (with that stray file present) finishes the run to the
    same weights as an uninterrupted run."""
    ds = train_data
    out = tmp_path / "run"
    ckpt, tmp = out / "checkpoint.pt", out / "checkpoint.tmp"
    # first job: the first epoch of a 2-epoch schedule, then stopped
    fit_encoder(ds, epochs=2, seed=6, out=out, **SMALL, stop_after=1)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 0
    before = _sha(ckpt)

    saves = []

    def dying_save(obj, f, *args, **kwargs):
        saves.append(Path(f))
        Path(f).write_bytes(b"\x80\x02PK\x03\x04 half a zip file")  # partial write
        raise _SimulatedKill("killed while writing the checkpoint")

    with monkeypatch.context() as m:
        m.setattr(torch, "save", dying_save)
        with pytest.raises(_SimulatedKill):
            fit_encoder(ds, epochs=2, seed=6, out=out, resume=True, **SMALL)
    # the save went to the temporary file, never to the checkpoint itself
    assert saves == [tmp]
    assert tmp.read_bytes().startswith(b"\x80\x02PK")
    assert _sha(ckpt) == before
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["epoch"] == 0
    assert [r["epoch"] for r in json.loads(state["history"])] == [1]
    with pytest.raises(Exception):  # noqa: B017  the stray file really is garbage
        torch.load(tmp, weights_only=True)

    # resuming with other schedule settings is refused before anything is written
    with pytest.raises(xatmodist.InputError, match="epochs=3"):
        fit_encoder(ds, epochs=3, seed=6, out=out, resume=True, **SMALL)
    assert _sha(ckpt) == before

    # resuming with the stray checkpoint.tmp in place completes the run
    resumed = fit_encoder(ds, epochs=2, seed=6, out=out, resume=True, **SMALL)
    assert not tmp.exists()  # the last successful save renamed its temporary file
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1
    # metrics.jsonl follows the checkpoint: the epoch that was lost is not listed twice
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    _assert_same_weights(resumed, uninterrupted)


_DIE_IN_SAVE = """
import io, os, signal, sys
import torch
from xatmodist.testing import synthetic_fields
from xatmodist.train import fit_encoder

real_save, calls = torch.save, []

def save_then_die(obj, f, *args, **kwargs):
    calls.append(f)
    if len(calls) < 2:
        return real_save(obj, f, *args, **kwargs)
    buf = io.BytesIO()
    real_save(obj, buf)
    data = buf.getvalue()
    with open(f, "wb") as fh:           # half of the second checkpoint reaches the disk...
        fh.write(data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)  # ...and the process is killed mid-save

torch.save = save_then_die
ds = synthetic_fields(n_time=40, nlat=32, nlon=64, seed=8)
fit_encoder(ds, epochs=2, seed=6, out=sys.argv[1], max_lag="9h", patch_size=16,
            widths=(8, 16), pairs_per_epoch=128, batch_size=32, val_pairs=64,
            block_length=8, val_every=3, progress=False, threads=int(sys.argv[2]))
"""


def test_sigkill_during_checkpoint_save_subprocess(tmp_path, train_data, uninterrupted):
    """A real process SIGKILLed while half of its second checkpoint is on disk leaves the
    first checkpoint complete; resuming reaches the uninterrupted result."""
    out = tmp_path / "killed"
    proc = subprocess.run(
        # the parent's thread count: oneDNN's kernels split work by it, and a LocalCluster
        # earlier in the session sets OMP_NUM_THREADS=1 for every later subprocess
        [sys.executable, "-c", _DIE_IN_SAVE, str(out), str(torch.get_num_threads())],
        timeout=180,
        capture_output=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 0
    half = (out / "checkpoint.tmp").read_bytes()
    assert 0 < len(half) < (out / "checkpoint.pt").stat().st_size
    with pytest.raises(Exception):  # noqa: B017  truncated zip archive
        torch.load(io.BytesIO(half), weights_only=True)
    resumed = fit_encoder(train_data, epochs=2, seed=6, out=out, resume=True, **SMALL)
    _assert_same_weights(resumed, uninterrupted)


# --------------------------------------------------------------------------------------
# 2./4. dask.distributed: a killed worker, and the same numbers everywhere
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    """A real LocalCluster: 2 worker processes with 1 thread each, restarted by nannies.

    Not set as the default scheduler, so other tests in the session are unaffected."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        c.wait_for_workers(2, timeout=120)
        yield c


def _worker_pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def test_killed_worker_does_not_change_the_result(client, tiny_model, tmp_path):
    """SIGKILL one worker process in the middle of ``distance(...).compute()``.

    To make "in the middle" certain rather than a matter of timing, every chunk task
    passes a file gate: once ``N_FIRST`` chunks are finished, later ones wait until the
    test opens the gate.  The test kills the worker holding the most finished chunks
    (their results are lost with it), waits for its nanny to start a new process,
    then opens the gate.  The scheduler recomputes the lost chunks and the result
    equals the local numpy computation.
    """
    N_FIRST = 8
    data = synthetic_fields(n_time=48, seed=11)
    b = data.isel(time=0)
    expected = xatmodist.distance(data, b, model=tiny_model)
    times = data.time.values
    marks = tmp_path / "marks"
    marks.mkdir()
    gate = tmp_path / "gate-open"

    def hold(block):  # runs on the workers, before the encoder
        if len(block.time) and len(list(marks.glob("done-*"))) >= N_FIRST:
            i = int(np.searchsorted(times, block.time.values[0]))
            (marks / f"wait-{os.getpid()}-{i}").touch()
            deadline = time.monotonic() + 150
            while not gate.exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("the test never opened the gate")
                time.sleep(0.02)
        return block

    def done(block):  # runs on the workers, after the encoder
        if block.sizes["time"]:
            i = int(np.searchsorted(times, block.time.values[0]))
            (marks / f"done-{os.getpid()}-{i}").touch()
        return block

    a = data.chunk({"time": 2})  # 24 chunks
    a = a.map_blocks(hold, template=a)
    lazy = xatmodist.distance(a, b, model=tiny_model)
    lazy = lazy.map_blocks(done, template=lazy)

    pids = _worker_pids(client)
    assert len(pids) == 2
    future = client.compute(lazy)

    def finished_by():
        out: dict[int, list[int]] = {}
        for p in marks.glob("done-*"):
            _, pid, i = p.name.split("-")
            out.setdefault(int(pid), []).append(int(i))
        return out

    deadline = time.monotonic() + 120
    while True:
        by = finished_by()
        waiting = list(marks.glob("wait-*"))
        if sum(map(len, by.values())) >= N_FIRST and waiting:
            break
        if future.done():
            future.result()  # raises if it failed
            pytest.fail("the computation finished although the gate was closed")
        if time.monotonic() > deadline:
            pytest.fail(f"no progress before the kill: finished {by}, waiting {waiting}")
        time.sleep(0.05)
    assert not future.done()
    victim = max(by, key=lambda pid: len(by[pid]))
    lost = set(by[victim])
    assert victim in pids.values() and lost
    os.kill(victim, signal.SIGKILL)

    # the nanny restarts the worker: a new process (new pid, new address) joins
    deadline = time.monotonic() + 120
    while True:
        now = {}
        if len(client.scheduler_info()["workers"]) == 2:
            now = client.run(os.getpid, on_error="ignore")
        if len(now) == 2 and victim not in now.values():
            break
        if time.monotonic() > deadline:
            pytest.fail(f"the killed worker was not replaced: {now}")
        time.sleep(0.2)
    assert set(now) != set(pids)
    assert not future.done()

    gate.touch()
    got = future.result(timeout=150)
    xr.testing.assert_allclose(got, expected, rtol=1e-6)
    # the chunks finished by the killed worker were lost with it and computed again
    redone = {i for pid, idx in finished_by().items() if pid != victim for i in idx}
    assert lost <= redone, (lost, redone)


def _all_outputs(ds, b, model):
    return {
        "distance": xatmodist.distance(ds, b, model=model),
        "distance_map": xatmodist.distance(ds, b, model=model, spatial=True),
        "embed": xatmodist.embed(ds, model=model),
        "embed_tiles": xatmodist.embed(ds, model=model, pool="tile"),
        "lag_probability": xatmodist.predict_lag(ds, lag="6h", model=model),
    }


def _assert_close(got: xr.DataArray, ref: xr.DataArray, what: str) -> None:
    assert got.dims == ref.dims, what
    xr.testing.assert_identical(got.coords.to_dataset(), ref.coords.to_dataset())
    scale = float(np.abs(ref).max())
    np.testing.assert_allclose(got.values, ref.values, rtol=RTOL, atol=ATOL * scale, err_msg=what)


@pytest.mark.parametrize("which", ["tiny", "atmodist-swe-vd"])
def test_same_numbers_numpy_dask_chunkings_and_cluster(client, tiny_model, fields, which):
    """Same input and model -> the same numbers for numpy, three dask chunkings, batch
    sizes 1 and 7 (default 256), and a distributed LocalCluster.

    Tolerance: ``rtol=1e-5`` plus ``atol=1e-6 * max|reference|`` (the absolute part
    covers embedding features that are near zero).  Measured on CPU (torch 2.14.1,
    float32) with the tiny and the pretrained encoder: chunkings (1, 3, 5 fields, all)
    and the LocalCluster give bitwise-equal results, and so do ``distance`` and
    ``distance(spatial=True)`` for every batch size.  Only a different ``batch_size``
    changes ``embed`` and ``predict_lag`` in the last bits: max |difference| 1.6e-7 x
    max|reference|, max relative difference 3.7e-6 (a tile feature close to zero).
    Patches go through the network in batches of ``batch_size``; float32 kernels may
    sum in another order for another batch size.
    """
    if which == "tiny":
        model = tiny_model
    elif which in xatmodist.model_names():
        model = xatmodist.load_model(which)
    else:
        pytest.skip(f"{which} is not in pretrained/")
    data = fields  # 8 fields
    b = data.isel(time=0)
    ref = {k: v.compute() for k, v in _all_outputs(data, b, model).items()}
    runs = {}
    for chunks in ({"time": 1}, {"time": 3}, {"time": -1}):
        runs[f"dask {chunks}"] = _all_outputs(data.chunk(chunks), b, model)
    for bs in (1, 7):
        with xatmodist.set_options(batch_size=bs):  # read when the graph is built
            runs[f"batch_size={bs}"] = _all_outputs(data.chunk({"time": 4}), b, model)
    for name, outs in runs.items():
        for k, lazy in outs.items():
            _assert_close(lazy.compute(scheduler="threads"), ref[k], f"{name}: {k}")
    client.wait_for_workers(2, timeout=120)
    dist = _all_outputs(data.chunk({"time": 3}), b, model)
    got = dict(zip(dist, client.compute(list(dist.values()), sync=True), strict=True))
    for k in ref:
        _assert_close(got[k], ref[k], f"distributed: {k}")


# --------------------------------------------------------------------------------------
# 3. Resumable to_zarr, region by region
# --------------------------------------------------------------------------------------


class _Interrupted(Exception):
    """Stands in for the job being killed while computing a block."""


def _write_missing(result: xr.Dataset, store: Path, log: Path, block: int) -> list[slice]:
    """The pattern of docs/reliability.md: create the store once, write each time block
    into its region and record it in a progress log only after the write returned;
    skip logged blocks."""
    if not log.exists():  # first run: metadata and in-memory coordinates only
        result.to_zarr(store, mode="w", compute=False, consolidated=False)
        log.touch()
    done = set(log.read_text().split())
    n = result.sizes["time"]
    static = [k for k, v in result.variables.items() if "time" not in v.dims]
    written = []
    for start in range(0, n, block):
        sl = slice(start, min(start + block, n))
        tag = f"{sl.start}:{sl.stop}"
        if tag in done:
            continue
        result.isel(time=sl).drop_vars(static).to_zarr(
            store, region={"time": sl}, consolidated=False
        )
        with open(log, "a") as f:
            f.write(tag + "\n")
            f.flush()
            os.fsync(f.fileno())
        written.append(sl)
    return written


def test_interrupted_to_zarr_resumes_without_recomputing(tmp_path, tiny_model, monkeypatch):
    """A run writing ``distance`` region by region dies in block 3 of 6; the resumed run
    computes only the 3 missing blocks (counted in the encoder kernel and in dask
    computes) and the store equals a one-shot computation."""
    block, n_time = 4, 24
    data = synthetic_fields(n_time=n_time, seed=13)
    b = data.isel(time=0)
    expected = xatmodist.distance(data, b, model=tiny_model, spatial=True)

    # count the fields the encoder sees (the kernel is captured when the graph is built)
    mod = importlib.import_module("xatmodist.distance")
    real_kernel = mod.distance_kernel
    seen: list[int] = []
    fail_at = {"fields": None}

    def counting_kernel(a, b, **kwargs):
        n = int(np.prod(np.broadcast_shapes(a.shape, b.shape)[:-3]))
        if fail_at["fields"] is not None and sum(seen) + n > fail_at["fields"]:
            raise _Interrupted("job killed")
        seen.append(n)
        return real_kernel(a, b, **kwargs)

    monkeypatch.setattr(mod, "distance_kernel", counting_kernel)
    result = xatmodist.distance(
        data.chunk({"time": block}), b, model=tiny_model, spatial=True
    ).to_dataset()
    store, log = tmp_path / "distance.zarr", tmp_path / "distance.done"

    fail_at["fields"] = 3 * block  # the job dies in the 4th block
    with raise_if_dask_computes(max_computes=4), pytest.raises(_Interrupted):
        _write_missing(result, store, log, block)  # creating the store computes nothing
    assert log.read_text().split() == ["0:4", "4:8", "8:12"]
    partial = xr.open_zarr(store, consolidated=False).distance.load()
    assert np.isfinite(partial.isel(time=slice(0, 12))).all()
    assert np.isnan(partial.isel(time=slice(12, None))).all()  # unwritten: fill value

    # resume: only the three missing blocks are computed, one dask compute each
    seen.clear()
    fail_at["fields"] = None
    with raise_if_dask_computes(max_computes=3) as sched:
        written = _write_missing(result, store, log, block)
    assert [(s.start, s.stop) for s in written] == [(12, 16), (16, 20), (20, 24)]
    assert sched.total_computes == 3
    assert sum(seen) == 3 * block
    # nothing left to do on a second resume
    seen.clear()
    with raise_if_dask_computes(0):
        assert _write_missing(result, store, log, block) == []
    assert not seen

    final = xr.open_zarr(store, consolidated=False).distance.load()
    xr.testing.assert_allclose(final, expected, rtol=1e-6)
    assert final.attrs["xatmodist_model_sha256"] == tiny_model.sha256
    # the same store written in one go
    one_shot = tmp_path / "one_shot.zarr"
    result.to_zarr(one_shot, mode="w", consolidated=False)
    xr.testing.assert_identical(final, xr.open_zarr(one_shot, consolidated=False).distance.load())
