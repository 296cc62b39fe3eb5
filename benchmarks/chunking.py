"""How far results depend on chunking, batch size and the CPU's instruction set.

Run from the repo root, once per instruction-set setting::

    python -m benchmarks.chunking --save /tmp/default.npz
    ONEDNN_MAX_CPU_ISA=AVX2 python -m benchmarks.chunking --save /tmp/avx2.npz \
        --compare /tmp/default.npz

For ``distance``, ``embed`` (tile features), ``predict_lag``, ``downscale`` and
``inpaint`` with the shipped default models on the embedded sample, each result
computed on numpy input is compared with the same call on dask input chunked
1, 3 and 7 fields along time (threaded scheduler), with one torch thread
instead of the machine's default and, for the encoder calls, with another
``batch_size``.  The figure is the largest absolute difference
divided by the largest absolute value of the numpy result (0 = bitwise equal).
``--compare`` adds the difference to the numpy results of another run (e.g.
the same calls under another ``ONEDNN_MAX_CPU_ISA``).
"""

from __future__ import annotations

import argparse
import json
import os
import warnings

import numpy as np

import xatmodist


def _calls(ds):
    first = ds.isel(time=slice(0, -4))
    later = ds.isel(time=slice(4, None)).assign_coords(time=first.time)
    coarse = ds.coarsen(lat=4, lon=4).mean(keep_attrs=True)
    for v in ("vo", "d"):
        coarse[v].attrs = ds[v].attrs
    gappy = ds.where((ds.lat < 40) | (ds.lat > 60) | (ds.lon < 100) | (ds.lon > 140))
    return {
        "distance": (lambda a, b: xatmodist.distance(a, b), first, later, True),
        "embed (tile)": (lambda a, b: xatmodist.embed(a, pool="tile"), first, None, True),
        "predict_lag": (lambda a, b: xatmodist.predict_lag(a, b), first, later, True),
        "downscale": (lambda a, b: xatmodist.downscale(a), coarse, None, False),
        "inpaint": (lambda a, b: xatmodist.inpaint(a), gappy, None, False),
    }


def _values(x) -> np.ndarray:
    return np.asarray((x.to_array() if hasattr(x, "to_array") else x).values, dtype=np.float64)


def _rel(x: np.ndarray, ref: np.ndarray) -> float:
    return float(np.nanmax(np.abs(x - ref)) / np.nanmax(np.abs(ref)))


def run(n_time: int = 20) -> tuple[dict, dict]:
    """{call: {variant: relative difference}} and {call: numpy result}."""
    warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
    ds = xatmodist.datasets.sample().isel(run=0, time=slice(0, n_time))
    out, refs = {}, {}
    for name, (call, a, b, encoder) in _calls(ds).items():
        ref = _values(call(a, b))
        refs[name] = ref
        row = {}
        for chunk in (1, 3, 7):
            lazy = call(a.chunk(time=chunk), None if b is None else b.chunk(time=chunk))
            row[f"chunks of {chunk}"] = _rel(_values(lazy.compute()), ref)
        with xatmodist.set_options(torch_threads=1):
            row["1 torch thread"] = _rel(_values(call(a, b)), ref)
        if encoder:
            for batch in (7, 256):
                with xatmodist.set_options(batch_size=batch):
                    row[f"batch_size {batch}"] = _rel(_values(call(a, b)), ref)
        out[name] = row
    return out, refs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-time", type=int, default=20)
    p.add_argument("--save", help="write the numpy results to this .npz")
    p.add_argument("--compare", help="a .npz of another run to compare the numpy results with")
    p.add_argument("--json", help="write the table as JSON")
    args = p.parse_args()
    res, refs = run(args.n_time)
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "default")
    if args.save:
        np.savez(args.save, **refs)
    if args.compare:
        other = np.load(args.compare)
        for name, ref in refs.items():
            res[name][f"vs {os.path.basename(args.compare)}"] = _rel(ref, other[name])
    print(f"largest difference / largest value (ONEDNN_MAX_CPU_ISA={isa}; 0 = bitwise equal)")
    for name, row in res.items():
        cells = "  ".join(f"{k}: {v:.2g}" for k, v in row.items())
        print(f"  {name:<14} {cells}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"isa": isa, "results": res}, f, indent=2)


if __name__ == "__main__":
    main()
