"""The GPU check: agreement with the CPU, inference and training speed on one GPU.

Run from the repo root on a GPU machine after ``make install``::

    python -m benchmarks.gpu [--json gpu.json] [--device cuda] [--quick]

It writes JSON (default ``gpu-check.json``) and prints a table; it takes a few
minutes on one GPU (well under 5 on an H100).  Without a GPU it says so and
exits with status 2; ``--device cpu --quick`` runs every step on the CPU in
seconds (the test suite does, so the script cannot rot unseen).

What it measures, all through the library's own entry points:

* **agreement**: ``distance``, ``predict_lag``, ``downscale`` and ``inpaint``
  of the default models on 16 sample fields (64 x 128), on the device in
  float32 and bfloat16 against the CPU in float32: the largest absolute
  difference divided by the largest CPU value; for bfloat16 also the largest
  relative difference of the field distances (target < 1%) and the change of
  the lag top-1 (target < 0.01);
* **inference**: distances per second (each encodes two fields) at 64 x 128
  (1024 fields) and 721 x 1440 (ERA5's 0.25 deg grid, 8 fields), float32 and
  bfloat16, and the peak GPU memory of one 721 x 1440 distance;
* **training**: ``fit_encoder`` pairs/s on the device (second epoch);
* **matmul fraction**: the encoder's forward FLOPs (counted by
  ``torch.utils.flop_counter``) times its patches/s, over the rate of a
  8192 x 8192 matrix product measured on the same device and precision.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def _device_or_exit(name: str):
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        print(  # noqa: T201
            "No GPU: torch sees no CUDA device on this machine "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}). "
            "Run this check on a GPU machine, or pass --device cpu to try the script."
        )
        sys.exit(2)
    return torch.device(name)


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _five(a, b):
    """The four checked outputs (float64 numpy) of the default models."""
    gappy = a.where(~((a.lat > 10) & (a.lat < 40) & (a.lon < 40)))
    return {
        "distance": a.atmodist.distance(b).values.astype(np.float64),
        "predict_lag": a.atmodist.predict_lag(b).values.astype(np.float64),
        "downscale": a.coarsen(lat=4, lon=4).mean().atmodist.downscale().to_array().values,
        "inpaint": gappy.atmodist.inpaint().to_array().values.astype(np.float64),
    }


def agreement(device: str, n: int) -> dict:
    """Max relative differences against the CPU in float32 (see the module docstring)."""
    import xatmodist

    ds = xatmodist.datasets.sample().isel(run=0, time=slice(0, n + 1))
    a = ds.isel(time=slice(0, n))
    b = ds.isel(time=slice(1, n + 1)).assign_coords(time=a.time)
    with xatmodist.set_options(device="cpu"):
        ref = _five(a, b)
    out = {}
    for precision in ("float32", "bfloat16"):
        with xatmodist.set_options(device=device, precision=precision):
            got = _five(a, b)
        row = {
            k: float(np.nanmax(np.abs(got[k] - ref[k])) / np.nanmax(np.abs(ref[k]))) for k in ref
        }
        row["distance_max_relative"] = float(np.max(np.abs(got["distance"] / ref["distance"] - 1)))
        top = ref["predict_lag"].argmax(-1)
        row["lag_top1_change"] = float(np.mean(got["predict_lag"].argmax(-1) != top))
        out[precision] = row
    return out


def inference(device: str, dev, quick: bool) -> dict:
    """Distances per second at 64 x 128 and 721 x 1440, and the peak memory of a large one."""
    import torch

    import xatmodist
    from xatmodist.testing import synthetic_fields

    sizes = [(64, 128, 64 if quick else 1024), (721, 1440, 1 if quick else 8)]
    out = {}
    for nlat, nlon, n in sizes:
        ds = synthetic_fields(n_time=n + 1, nlat=nlat, nlon=nlon, seed=0)
        a = ds.isel(time=slice(0, n))
        b = ds.isel(time=slice(1, n + 1)).assign_coords(time=a.time)
        for precision in ("float32", "bfloat16"):
            with xatmodist.set_options(device=device, precision=precision):
                a.isel(time=[0]).atmodist.distance(b.isel(time=[0])).compute()  # warm-up
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(dev)
                _sync(dev)
                t0 = time.perf_counter()
                a.atmodist.distance(b).compute()
                _sync(dev)
                secs = time.perf_counter() - t0
            key = f"{nlat}x{nlon} {precision}"
            out[key] = {"distances_per_s": n / secs, "fields": n}
            if dev.type == "cuda":
                out[key]["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def training(device: str, quick: bool) -> dict:
    """``fit_encoder`` pairs/s on the device in float32 and bfloat16 (the last epoch's)."""
    from xatmodist.testing import synthetic_fields
    from xatmodist.train import fit_encoder

    ds = synthetic_fields(n_time=192 if quick else 480, nlat=64, nlon=128, seed=1)
    out = {}
    for precision in ("float32", "bfloat16"):
        m = fit_encoder(
            ds, max_lag="36h", epochs=2, pairs_per_epoch=256 if quick else 8192,
            batch_size=64 if quick else 256, val_pairs=128, val_every=3, device=device,
            precision=precision, progress=False,
        )  # fmt: skip
        out[precision] = {"pairs_per_s": m.card.training["history"][-1]["pairs_per_second"]}
    return out


def matmul_fraction(device: str, dev, quick: bool) -> dict:
    """The encoder's achieved FLOP rate over the device's measured matmul rate."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import xatmodist
    from xatmodist import _device
    from xatmodist._kernels import inference_encoder

    m = xatmodist.load_model()
    batch = 64 if quick else 1024
    n = 1024 if quick else 8192
    out = {}
    for precision in ("float32", "bfloat16"):
        dtype = getattr(torch, precision)
        net = inference_encoder(str(m.path), True, device, precision)  # as the kernels run it
        x = torch.randn(batch, len(m.variables), m.card.patch_size, m.card.patch_size, device=dev)
        eager = inference_encoder(str(m.path), False, device, precision)  # FLOPs are counted
        with FlopCounterMode(display=False) as fc, torch.inference_mode():  # on eager ops
            eager.features(x[:1])
        flops = fc.get_total_flops()  # per patch
        with torch.inference_mode(), _device.autocast(dev, precision):
            net.features(x)
            _sync(dev)
            t0 = time.perf_counter()
            for _ in range(max(1, 4096 // batch)):
                net.features(x)
            _sync(dev)
            patches_per_s = max(1, 4096 // batch) * batch / (time.perf_counter() - t0)
        a = torch.randn(n, n, device=dev, dtype=dtype)
        (a @ a).sum().item()
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(3):
            c = a @ a
        _sync(dev)
        matmul = 3 * 2 * n**3 / (time.perf_counter() - t0)
        del c
        out[precision] = {
            "encoder_flops_per_patch": flops,
            "encoder_patches_per_s": patches_per_s,
            "encoder_tflops": flops * patches_per_s / 1e12,
            "matmul_tflops": matmul / 1e12,
            "fraction": flops * patches_per_s / matmul,
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run every step, print and write the JSON; return the results."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--json", default="gpu-check.json")
    p.add_argument("--quick", action="store_true", help="small sizes (seconds; for tests)")
    args = p.parse_args(argv)
    import torch

    import xatmodist

    dev = _device_or_exit(args.device)
    warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
    xatmodist.set_options(progress=False)
    t0 = time.perf_counter()
    res = {
        "device": str(dev),
        "name": (
            torch.cuda.get_device_name(dev)
            if dev.type == "cuda"
            else platform.processor() or platform.machine()
        ),
        "torch": torch.__version__,
        "agreement": agreement(args.device, 4 if args.quick else 16),
        "inference": inference(args.device, dev, args.quick),
        "training": training(args.device, args.quick),
        "matmul": matmul_fraction(args.device, dev, args.quick),
    }
    res["seconds"] = time.perf_counter() - t0
    bf = res["agreement"]["bfloat16"]
    res["targets"] = {
        "bfloat16 distances within 1% of float32": bf["distance_max_relative"] < 0.01,
        "bfloat16 lag top-1 within 0.01": bf["lag_top1_change"] <= 0.01,
    }
    Path(args.json).write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))  # noqa: T201
    return res


if __name__ == "__main__":
    main()
