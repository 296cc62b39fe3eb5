"""Scale benchmarks: memory, dask.distributed, encoder efficiency, LPIPS.

Run from the repo root (each also runs as part of ``python -m benchmarks``)::

    python -m benchmarks.bench_scale [--which memory,distributed,flops,lpips] [--json out.json]

Every figure is a ratio against a baseline measured in the same run:

- ``memory``: peak RSS of ``distance(...).compute()`` over a dask-backed zarr store
  of ``10 n`` fields vs ``n`` fields, each in a fresh subprocess (synchronous
  scheduler; the distance array itself is computed, nothing reduced).
- ``distributed``: the same lazy distance job on a ``LocalCluster`` of 2 vs 1
  worker processes (1 thread each, ``torch_threads=1``).
- ``flops``: the encoder's achieved GFLOP/s (FLOPs counted from its Conv2d/Linear
  layers) vs ``torch.matmul`` of large float32 matrices, same thread count.
- ``lpips``: learned distance (through the accessor) vs LPIPS (AlexNet, random
  weights, nothing downloaded) on the same fields; skipped if ``lpips`` is missing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ._timing import best as _best
from ._timing import interleaved, paired_ratio

ROOT = Path(__file__).resolve().parents[1]


def write_store(path: str | os.PathLike, n_time: int, chunk: int, nlat=64, nlon=128) -> str:
    """Synthetic vo/d fields written to a zarr store chunked along time."""
    from xatmodist.testing import synthetic_fields

    ds = synthetic_fields(n_time=n_time, nlat=nlat, nlon=nlon, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr v3: consolidated metadata
        ds.chunk({"time": chunk}).to_zarr(str(path), mode="w")
    return str(path)


# --------------------------------------------------------------------------- memory


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB.

    Linux: ``VmHWM`` from /proc/self/status, the high-water mark of this process's
    own address space.  ``getrusage(RUSAGE_SELF).ru_maxrss`` is the fallback; on
    Linux it is not used first because it survives ``exec`` and so starts from the
    parent's RSS at the time of the fork.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def _rss_child(store: str, n: int, chunk: int) -> None:
    """In a fresh process: distance of the first ``n`` fields to field 0; print peak RSS."""
    import xarray as xr

    import xatmodist

    warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
    ds = xr.open_zarr(store, chunks={"time": chunk}).isel(time=slice(0, n))
    ref = ds.isel(time=0).compute()
    xatmodist.load_model()  # count the model in the baseline of both runs
    before = _peak_rss_mb()
    t0 = time.perf_counter()
    d = ds.atmodist.distance(ref).compute(scheduler="synchronous")
    dt = time.perf_counter() - t0
    assert d.shape == (n,) and np.isfinite(d.values).all()
    peak = _peak_rss_mb()
    print(
        json.dumps(
            {"n": n, "peak_rss_mb": peak, "peak_rss_before_compute_mb": before, "seconds": dt}
        )
    )


def _rss_run(store: str, n: int, chunk: int) -> dict:
    code = f"from benchmarks.bench_scale import _rss_child; _rss_child({store!r}, {n}, {chunk})"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_memory(n: int = 100, factor: int = 10, chunk: int = 20) -> dict:
    """Peak RSS for ``factor * n`` vs ``n`` fields (fresh subprocess each)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = write_store(f"{tmp}/fields.zarr", factor * n, chunk)
        small = _rss_run(store, n, chunk)
        large = _rss_run(store, factor * n, chunk)
    return {
        "n_small": n,
        "n_large": factor * n,
        "chunk": chunk,
        "grid": [64, 128],
        "scheduler": "synchronous",
        "small": small,
        "large": large,
        "ratio": large["peak_rss_mb"] / small["peak_rss_mb"],
    }


# --------------------------------------------------------------------- distributed


def _worker_threads():
    import torch

    return torch.get_num_threads()


def _worker_load(model_path):
    import xatmodist

    xatmodist.load_model(model_path)
    return True


def _time_cluster(store: str, n_workers: int, chunk: int, repeat: int) -> dict:
    import xarray as xr
    from dask.distributed import Client, LocalCluster

    import xatmodist

    path = str(xatmodist.load_model().path)
    with (
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
        xatmodist.set_options(torch_threads=1),
    ):
        client.wait_for_workers(n_workers)
        client.run(_worker_load, path)  # model load is not part of the job
        ds = xr.open_zarr(store, chunks={"time": chunk})
        ref = ds.isel(time=0).compute()

        def job():
            return ds.atmodist.distance(ref).compute()

        d = job()  # warm-up (imports, first forward pass)
        t = _best(job, repeat)
        threads = sorted(set(client.run(_worker_threads).values()))
    return {
        "seconds": t,
        "distances": int(ds.sizes["time"]),
        "worker_torch_threads": threads,
        "result": d.values,
    }


def bench_distributed(n: int = 200, chunk: int = 20, repeat: int = 2) -> dict:
    """Speed-up of 2 vs 1 worker processes (1 thread each) on the same job.

    The job: distance of each of ``n`` fields in a zarr store (chunked along time)
    to field 0, computed on the cluster; timed after a warm-up run.
    """
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        store = write_store(f"{tmp}/fields.zarr", n, chunk)
        one = _time_cluster(store, 1, chunk, repeat)
        two = _time_cluster(store, 2, chunk, repeat)
    np.testing.assert_allclose(one.pop("result"), two.pop("result"), rtol=1e-4)
    return {
        "n_fields": n,
        "chunk": chunk,
        "grid": [64, 128],
        "1_worker": one,
        "2_workers": two,
        "distances_per_s_1w": n / one["seconds"],
        "distances_per_s_2w": n / two["seconds"],
        "speedup": one["seconds"] / two["seconds"],
    }


# --------------------------------------------------------------------------- flops


def encoder_flops(module, patch: int, channels: int) -> int:
    """FLOPs (2 per multiply-add) of the Conv2d/Linear layers of ``module.features``
    for one ``channels x patch x patch`` input, counted from the layers' output shapes."""
    import torch
    from torch import nn

    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        else:
            k = m.in_features
        total += 2 * out.numel() * k

    hs = [
        m.register_forward_hook(hook)
        for m in module.encoder.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.inference_mode():
            module.features(torch.zeros(1, channels, patch, patch))
    finally:
        for h in hs:
            h.remove()
    return total


def bench_flops(batch: int = 1024, matmul_n: int = 2048, repeat: int = 3) -> dict:
    """Encoder GFLOP/s on a large batch vs the machine's float32 matmul GFLOP/s.

    The encoder as the inference kernels run it: batch norms folded into the
    convolutions, channels-last, the trunk a frozen TorchScript graph
    (``set_options(jit=True)``, the default).  FLOPs are counted on the eager
    network (forward hooks do not see inside the graph).
    """
    import torch

    import xatmodist
    from xatmodist._kernels import inference_encoder
    from xatmodist.nn.encoder import fused_for_inference

    model = xatmodist.load_model()
    net = inference_encoder(str(model.path), jit=xatmodist.get_options()["jit"])
    norm = model.module.normaliser  # the inference copy's may be folded into its stem
    patch, channels = model.card.patch_size, norm.mean_in.numel()
    flops = encoder_flops(fused_for_inference(model.module), patch, channels)
    x = torch.randn(batch, channels, patch, patch) * norm.std_in.view(1, -1, 1, 1)
    a, b = torch.randn(matmul_n, matmul_n), torch.randn(matmul_n, matmul_n)
    with torch.inference_mode():
        net.features(x)  # warm-up at the timed shapes
        torch.matmul(a, b)
        t = interleaved(
            {"encoder": lambda: net.features(x), "matmul": lambda: torch.matmul(a, b)}, repeat + 2
        )
    t_enc, t_mm = min(t["encoder"]), min(t["matmul"])
    enc_to_mm = paired_ratio(t, "matmul", "encoder")  # (t_mm / t_enc) per round
    enc = flops * batch / t_enc / 1e9
    mm = 2 * matmul_n**3 / t_mm / 1e9
    return {
        "flops_per_patch": flops,
        "patch": patch,
        "batch": batch,
        "matmul_n": matmul_n,
        "torch_threads": torch.get_num_threads(),
        "encoder_gflops": enc,
        "matmul_gflops": mm,
        # per-round ratio of the two rates (median over rounds), as the other rows
        "fraction": flops * batch / (2 * matmul_n**3) * enc_to_mm,
    }


# --------------------------------------------------------------------------- lpips


def encoder_quality(name: str) -> dict:
    """An encoder's MFLOP per patch (counted) and its card's held-out rho, top-1, within one.

    FLOPs: ``torch.utils.flop_counter`` over ``features`` of one patch of the
    eager network with folded batch norms, as the kernels run it; the lag head
    is not counted (the distance does not use it).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import xatmodist
    from xatmodist.nn.encoder import fused_for_inference

    m = xatmodist.load_model(name)
    net = fused_for_inference(m.module)
    x = torch.zeros(1, len(m.variables), m.card.patch_size, m.card.patch_size)
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        net.features(x)
    held = m.card.heldout
    return {
        "mflop_per_patch": fc.get_total_flops() / 1e6,
        "heldout_rho": held.get("spearman_learned"),
        "heldout_rho_ci95": held.get("spearman_learned_ci95"),
        "heldout_top1": held.get("top1"),
        "heldout_within1": held.get("within1"),
        "heldout_data": held.get("data"),
    }


def bench_lpips(n: int = 100, repeat: int = 2, models=None) -> dict:
    """Fields/s of the learned distance (accessor, numpy) vs LPIPS on the same fields.

    Every encoder in ``models`` (default: the zoo's encoders of the simulator's
    variables; the real-data ones read other fields) is timed
    against the same LPIPS baseline; the default encoder's figures are also the
    top-level ``learned_fields_per_s`` and ``ratio``.  Returns
    ``{"skipped": reason}`` if lpips cannot be imported or built offline.
    """
    try:
        import lpips
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # random AlexNet and linear layers: nothing is downloaded
            net = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False).eval()
    except Exception as err:  # noqa: BLE001  (missing package, torchvision, a download)
        return {"skipped": f"{type(err).__name__}: {err}".splitlines()[0][:120]}

    import xatmodist
    from xatmodist.testing import synthetic_fields

    warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
    base = synthetic_fields(n_time=n + 1, nlat=64, nlon=128, seed=0)
    a = base.isel(time=slice(0, n))
    b = base.isel(time=slice(1, n + 1)).assign_coords(time=a.time)
    n_fields = 2 * n

    def to3(ds):
        x = np.stack([ds.vo.values / ds.vo.values.std(), ds.d.values / ds.d.values.std()], 1)
        x = np.clip(x / 3.0, -1.0, 1.0)
        pad = np.zeros_like(x[:, :1])  # LPIPS wants RGB: vo, d, 0
        return torch.from_numpy(np.concatenate([x, pad], 1).astype(np.float32))

    batch = 32  # LPIPS fields per pass: 256 patches / 8 tiles, the library's old batch_size

    def run_lpips():
        xa, xb = to3(a), to3(b)  # input conversion counted, as the accessor's is
        with torch.inference_mode():
            return torch.cat(
                [net(xa[i : i + batch], xb[i : i + batch]).flatten() for i in range(0, n, batch)]
            )

    # the encoders of the simulator's variables (the real-data ones read other fields)
    models = list(
        models
        or [
            name
            for name in xatmodist.model_names(task="encoder")
            if set(xatmodist.load_model(name).card.variable_names) <= set(base.data_vars)
        ]
    )
    default = xatmodist.zoo.DEFAULT_ENCODER

    def run_learned(name):
        return a.atmodist.distance(b, model=name).values

    run_lpips()
    for name in models:
        run_learned(name)  # load and warm up
    fns = {"lpips": run_lpips, **{name: (lambda name=name: run_learned(name)) for name in models}}
    t = interleaved(fns, repeat)
    t_lp = min(t["lpips"])
    per_model = {
        name: {
            "learned_fields_per_s": n_fields / min(t[name]),
            "ratio": paired_ratio(t, "lpips", name),
            **encoder_quality(name),
        }
        for name in models
    }
    top = per_model.get(default) or next(iter(per_model.values()))
    return {
        "n_fields": n_fields,
        "grid": [64, 128],
        "torch_threads": torch.get_num_threads(),
        "lpips": {
            "net": "alex",
            "weights": "random",
            "version": importlib.metadata.version("lpips"),
            "batch": batch,
        },
        "lpips_fields_per_s": n_fields / t_lp,
        "default_model": default,
        **top,
        "models": per_model,
    }


BENCHES = {
    "memory": bench_memory,
    "distributed": bench_distributed,
    "flops": bench_flops,
    "lpips": bench_lpips,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--which", default=",".join(BENCHES))
    p.add_argument("--json", default=None)
    args = p.parse_args()
    res = {}
    for name in args.which.split(","):
        t0 = time.perf_counter()
        res[name] = BENCHES[name]()
        print(f"{name} ({time.perf_counter() - t0:.0f} s): {json.dumps(res[name], default=str)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)


if __name__ == "__main__":
    main()
