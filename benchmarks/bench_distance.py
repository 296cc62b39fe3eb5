"""Throughput of ``distance`` through the accessor vs a bare batched torch loop.

Run from the repo root::

    python -m benchmarks.bench_distance [--n 1000] [--nlat 128] [--nlon 256] [--json out.json]

All variants run in the same process on the same fields (random smooth fields
of the requested size, float32), with the same torch thread setting; the
figures are fields per second and the ratio to the bare loop, which tiles the
fields exactly as the library does and calls ``distance`` of the same network
the library runs (batch norms folded and the trunk frozen by TorchScript,
:func:`xatmodist.nn.encoder.frozen_for_inference`, as the kernels' cache holds it)
in batches, after tiling all fields at once (the simplest fast loop).
Each variant runs once per round for ``--repeat`` rounds; the ratio is the median
over rounds of the two timings taken back to back (this machine's speed drifts
by 20% and more between seconds).
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import torch

import xatmodist
from xatmodist._kernels import inference_encoder, make_tiling, tiles
from xatmodist.testing import synthetic_fields

from ._timing import rates_against


def run(n: int = 1000, nlat: int = 128, nlon: int = 256, chunk: int = 100, repeat: int = 2) -> dict:
    """Measure the bare loop and the accessor (numpy, dask); return the results dict.

    ``res[variant] = {"fields_per_s": ..., "ratio_to_bare": ...}`` for the variants
    ``"bare torch loop"``, ``"accessor, numpy"`` and ``"accessor, dask"``.
    """
    warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
    model = xatmodist.load_model()
    net = inference_encoder(str(model.path), jit=xatmodist.get_options()["jit"])
    batch = xatmodist.get_options()["batch_size"]
    base = synthetic_fields(n_time=n // 2 + 1, nlat=nlat, nlon=nlon, seed=0)
    a = base.isel(time=slice(0, n // 2))
    b = base.isel(time=slice(1, n // 2 + 1)).assign_coords(time=a.time)
    n_fields = 2 * a.sizes["time"]  # each distance encodes two fields

    tiling = make_tiling(nlat, nlon, model.card.patch_size, wrap=True)
    xa = np.stack([a.vo.values, a.d.values], axis=1)
    xb = np.stack([b.vo.values, b.d.values], axis=1)

    def bare():
        ta, tb = torch.from_numpy(tiles(xa, tiling)), torch.from_numpy(tiles(xb, tiling))
        with torch.inference_mode():
            out = [
                net.distance(ta[i : i + batch], tb[i : i + batch]) for i in range(0, len(ta), batch)
            ]
        return torch.cat(out).reshape(len(xa), -1).mean(1)

    def eager():
        return a.atmodist.distance(b).values

    def eager_cpu():
        with xatmodist.set_options(device="cpu"):  # named explicitly (issue 22)
            return a.atmodist.distance(b).values

    ac, bc = a.chunk({"time": chunk}), b.chunk({"time": chunk})

    def lazy():
        return ac.atmodist.distance(bc).compute(scheduler="synchronous").values

    ref = bare().numpy()
    np.testing.assert_allclose(eager(), ref, rtol=1e-4)
    np.testing.assert_allclose(lazy(), ref, rtol=1e-4)
    res = {
        "n_fields": n_fields,
        "grid": [nlat, nlon],
        "batch_size": batch,
        "torch_threads": torch.get_num_threads(),
        "dask_chunk": chunk,
    }
    fns = {"bare torch loop": bare, "accessor, numpy": eager, "accessor, dask": lazy}
    if "device" in xatmodist.get_options():  # absent before issue 22 (an A/B worktree)
        fns["accessor, numpy, device='cpu'"] = eager_cpu
    res.update(rates_against(fns, "bare torch loop", n_fields, repeat))
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--nlat", type=int, default=128)
    p.add_argument("--nlon", type=int, default=256)
    p.add_argument("--chunk", type=int, default=100)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    res = run(args.n, args.nlat, args.nlon, args.chunk, args.repeat)
    print(
        f"distance on {res['n_fields']} fields of {args.nlat}x{args.nlon} "
        f"({res['torch_threads']} torch threads, batch {res['batch_size']}):"
    )
    for name in [k for k in res if isinstance(res[k], dict)]:
        r = res[name]
        print(f"  {name:<30} {r['fields_per_s']:8.1f} fields/s   {r['ratio_to_bare']:.2f}x bare")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
