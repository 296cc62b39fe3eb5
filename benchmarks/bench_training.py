"""Training throughput: fit_encoder's data pipeline vs a bare loop on in-memory tensors.

Run from the repo root::

    python -m benchmarks.bench_training [--steps 60] [--zarr]

Both variants train the same architecture (the pretrained encoder's: widths
32/64/128, 12 classes, 32x32 patches, batch 64) for the same number of steps in
the same process.  The bare loop draws batches from tensors already in memory;
``fit_encoder`` reads blocks from the dataset (a zarr store on disk with
``--zarr``), samples pairs and patches, and trains.  Reported: pairs per second
of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
import torch.nn.functional as F
import xarray as xr

from xatmodist.nn import AtmoDistNet
from xatmodist.testing import synthetic_fields
from xatmodist.train import fit_encoder


def run(steps: int = 60, batch: int = 64, zarr: bool = False) -> dict:
    """Train the bare loop and ``fit_encoder`` for ``steps`` steps; return the results dict."""
    ds = synthetic_fields(n_time=96, nlat=64, nlon=128, seed=0)
    ds = xr.concat([ds] * 4, dim="run")
    tmp = tempfile.TemporaryDirectory()
    if zarr:
        ds.chunk({"run": 1, "time": 48}).to_zarr(f"{tmp.name}/d.zarr")
        ds = xr.open_zarr(f"{tmp.name}/d.zarr")

    torch.manual_seed(0)
    net = AtmoDistNet(2, 12)
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    xa = torch.randn(batch * 8, 2, 32, 32)
    xb = torch.randn(batch * 8, 2, 32, 32)
    y = torch.randint(0, 12, (batch * 8,))
    net.train()
    t0 = None
    for s in range(steps + 5):
        if s == 5:
            t0 = time.perf_counter()
        i = (s % 8) * batch
        loss = F.cross_entropy(net(xa[i : i + batch], xb[i : i + batch]), y[i : i + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    bare = steps * batch / (time.perf_counter() - t0)

    model = fit_encoder(
        ds,
        max_lag="36h",
        lag_step="3h",
        patch_size=32,
        epochs=1,
        pairs_per_epoch=steps * batch,
        batch_size=batch,
        val_pairs=64,
        val_every=4,
        progress=False,
    )
    pipeline = model.card.training["history"][0]["pairs_per_second"]
    tmp.cleanup()
    return {
        "bare_pairs_per_s": bare,
        "fit_encoder_pairs_per_s": pipeline,
        "ratio": pipeline / bare,
        "zarr": zarr,
        "steps": steps,
        "batch": batch,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--zarr", action="store_true", help="train from a zarr store on disk")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    res = run(args.steps, args.batch, args.zarr)
    bare, pipeline = res["bare_pairs_per_s"], res["fit_encoder_pairs_per_s"]
    print(f"bare loop on in-memory tensors: {bare:7.1f} pairs/s")
    print(
        f"fit_encoder ({'zarr' if args.zarr else 'numpy'} data):   {pipeline:7.1f} pairs/s "
        f"= {pipeline / bare:.2f}x bare"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
