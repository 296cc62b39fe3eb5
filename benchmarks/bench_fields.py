"""Field-to-field models through the accessor vs bare batched loops; downscale memory.

Run from the repo root::

    python -m benchmarks.bench_fields [--n 1000] [--chunk 50] [--json out.json]

- ``downscale``: ``coarse.atmodist.downscale()`` of ``n`` coarse fields (16 x 32,
  the pretrained x4 model) on numpy input and on dask input (chunks of
  ``chunk`` along time, synchronous scheduler), against a bare loop that pads
  the same fields as the library (halo: latitude mirrored, longitude wrapped)
  and calls the network in the same batches;
- ``inpaint``: ``gappy.atmodist.inpaint()`` of ``n`` 64 x 128 fields with one
  16 x 16 hole each, against a bare loop that zeroes the holes, pads and calls
  the network in the same batches;
- ``downscale memory``: peak RSS of writing ``downscale`` of 10 N fields of a
  zarr store to another zarr store (dask, chunks of 20) against N fields, each
  in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

import xatmodist
from xatmodist._kernels import pad_fields
from xatmodist.testing import synthetic_fields

from ._timing import rates_against
from .bench_scale import ROOT, _peak_rss_mb, write_store

HALO = 8  # downscale_kernel's default


def _coarse(n: int):
    fields = synthetic_fields(n_time=n, nlat=64, nlon=128, seed=0)
    return fields.coarsen(lat=4, lon=4).mean().astype("float32")


#: fields per pass of the bare loops: 16, as the library ran before it went to one
#: field per pass (a fixed pass size; xatmodist._kernels.FIELDS_PER_PASS)
BARE_FIELDS_PER_PASS = 16


def bench_downscale(n: int = 1000, chunk: int = 50, repeat: int = 2) -> dict:
    """Fields/s of the accessor (numpy, dask) and of the bare batched model."""
    warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
    m = xatmodist.load_model("downscale-swe-vd-x4")
    net, f = m.module, m.card.factor
    batch = BARE_FIELDS_PER_PASS
    coarse = _coarse(n)
    x = np.stack([coarse.vo.values, coarse.d.values], axis=1)
    h, w = x.shape[-2:]

    def bare():
        p = torch.from_numpy(pad_fields(x, HALO, HALO, 1, True, mirror="reflect"))
        with torch.inference_mode():
            out = [net(p[i : i + batch]) for i in range(0, len(p), batch)]
        return torch.cat(out)[..., HALO * f : (HALO + h) * f, HALO * f : (HALO + w) * f]

    def eager():
        return coarse.atmodist.downscale()

    cc = coarse.chunk({"time": chunk})

    def lazy():
        return cc.atmodist.downscale().compute(scheduler="synchronous")

    ref = bare().numpy()
    np.testing.assert_allclose(eager().vo.values, ref[:, 0], rtol=1e-4, atol=1e-9)
    return _timed(n, chunk, repeat, bare, eager, lazy)


def bench_inpaint(n: int = 1000, chunk: int = 50, repeat: int = 2, size: int = 16) -> dict:
    """Fields/s of the accessor (numpy, dask) and of the bare batched model."""
    m = xatmodist.load_model("inpaint-swe-vd")
    net = m.module
    batch = BARE_FIELDS_PER_PASS
    truth = synthetic_fields(n_time=n, nlat=64, nlon=128, seed=0).astype("float32")
    rng = np.random.default_rng(0)
    mask = np.zeros((n, 64, 128), dtype=bool)
    rows, cols = rng.integers(0, 64 - size, n), rng.integers(0, 128, n)
    for i in range(n):
        mask[i, rows[i] : rows[i] + size, (cols[i] + np.arange(size)) % 128] = True
    gappy = truth.where(~truth.vo.copy(data=mask))
    x = np.stack([gappy.vo.values, gappy.d.values], axis=1)
    halo = 16
    hx = max(halo, int(np.ceil(2 * m.card.max_hole_radius)))

    def bare():
        z = np.where(mask[:, None], 0.0, x).astype(np.float32)
        xp = torch.from_numpy(np.ascontiguousarray(pad_fields(z, halo, hx, net.multiple, True)))
        mp = pad_fields(mask[:, None], halo, hx, net.multiple, True)
        mp = torch.from_numpy(np.ascontiguousarray(mp, dtype=np.float32))
        with torch.inference_mode():
            out = [net(xp[i : i + batch], mp[i : i + batch]) for i in range(0, len(xp), batch)]
        y = torch.cat(out)[..., halo : halo + 64, hx : hx + 128].numpy()
        return np.where(mask[:, None], y, x)

    def eager():
        return gappy.atmodist.inpaint()

    gc = gappy.chunk({"time": chunk})

    def lazy():
        return gc.atmodist.inpaint().compute(scheduler="synchronous")

    np.testing.assert_allclose(eager().vo.values, bare()[:, 0], rtol=1e-4, atol=1e-9)
    return _timed(n, chunk, repeat, bare, eager, lazy)


def _timed(n, chunk, repeat, bare, eager, lazy) -> dict:
    res = {
        "n_fields": n,
        "dask_chunk": chunk,
        "torch_threads": torch.get_num_threads(),
    }
    fns = {"bare batched model": bare, "accessor, numpy": eager, "accessor, dask": lazy}
    res.update(rates_against(fns, "bare batched model", n, repeat))
    return res


def _rss_child(store: str, out: str, n: int, chunk: int) -> None:
    """In a fresh process: downscale the first ``n`` coarse fields into a zarr store."""
    import xarray as xr

    warnings.simplefilter("ignore")
    ds = xr.open_zarr(store, chunks={"time": chunk}).isel(time=slice(0, n))
    xatmodist.load_model("downscale-swe-vd-x4")
    before = _peak_rss_mb()
    t0 = time.perf_counter()
    ds.atmodist.downscale().to_zarr(out, mode="w", compute=True)
    dt = time.perf_counter() - t0
    peak = _peak_rss_mb()
    print(json.dumps({"n": n, "peak_rss_mb": peak, "before_mb": before, "seconds": dt}))


def bench_downscale_memory(n: int = 100, factor: int = 10, chunk: int = 20) -> dict:
    """Peak RSS of downscaling ``factor * n`` vs ``n`` fields to zarr (fresh processes)."""
    import dask

    with tempfile.TemporaryDirectory() as tmp:
        src = write_store(f"{tmp}/hr.zarr", factor * n, chunk)
        import xarray as xr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with dask.config.set(scheduler="synchronous"):
                xr.open_zarr(src).coarsen(lat=4, lon=4).mean().to_zarr(f"{tmp}/lr.zarr", mode="w")
        runs = {}
        for label, k in (("small", n), ("large", factor * n)):
            code = (
                "import dask; dask.config.set(scheduler='synchronous'); "
                "from benchmarks.bench_fields import _rss_child; "
                f"_rss_child({tmp + '/lr.zarr'!r}, {tmp + '/out.zarr'!r}, {k}, {chunk})"
            )
            out = subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
            )
            runs[label] = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "n_small": n,
        "n_large": factor * n,
        "chunk": chunk,
        **runs,
        "ratio": runs["large"]["peak_rss_mb"] / runs["small"]["peak_rss_mb"],
    }


def main() -> None:
    """Print the three benchmarks."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=50)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--mem-n", type=int, default=100)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    res = {
        "downscale": bench_downscale(args.n, args.chunk, args.repeat),
        "inpaint": bench_inpaint(args.n, args.chunk, args.repeat),
        "downscale memory": bench_downscale_memory(args.mem_n),
    }
    for key in ("downscale", "inpaint"):
        r = res[key]
        print(f"{key} on {r['n_fields']} fields ({r['torch_threads']} torch threads):")
        for name in ("bare batched model", "accessor, numpy", "accessor, dask"):
            v = r[name]
            print(
                f"  {name:<20} {v['fields_per_s']:8.1f} fields/s   {v['ratio_to_bare']:.2f}x bare"
            )
    r = res["downscale memory"]
    print(
        f"downscale to zarr, peak RSS {r['n_large']} vs {r['n_small']} fields: "
        f"{r['large']['peak_rss_mb']:.0f} / {r['small']['peak_rss_mb']:.0f} MB = {r['ratio']:.2f}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
