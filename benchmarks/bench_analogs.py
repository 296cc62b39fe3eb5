"""Analogue search with cached features: speed against a bare loop, memory against length.

Run from the repo root (needs ``../shared/data`` for the target fields)::

    python -m benchmarks.bench_analogs [--n 3000] [--repeat 3] [--json out.json]

Targets: 20 days of NCEP sea-level pressure (2009), encoder
``atmodist-ncep-slp`` (l1 feature distance, 12,288 features per field).

- **speed**: :func:`xatmodist.analogs` with ``features=`` an in-memory
  archive of ``--n`` feature vectors (random, float32, labelled daily) and
  ``k=10``, against a bare torch loop over the same target and archive
  features: ``torch.cdist(p=1)`` in float64 over archive blocks of 1000,
  ``alpha / n_features`` times, then ``torch.topk``.  Both include encoding
  the 20 targets; alternating rounds, median of the paired ratios.
- **memory**: peak resident memory (``VmHWM``) of the search on a zarr store
  of N and of 10 N archive feature vectors (chunks of 500, synchronous
  scheduler), each in a fresh process; the features of 10 N = 30,000 fields
  take 1.5 GB, more than the search may hold.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

import xatmodist

SLP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ncep_slp_daily_2001-2010"
MODEL = "atmodist-ncep-slp"


def _targets() -> xr.Dataset:
    ds = xr.open_dataset(SLP / "slp.nc")
    return ds.sel(time=slice("2009-01-01", "2009-01-20")).load()


def fake_features(n: int, seed: int = 0) -> xr.DataArray:
    """``n`` archive feature vectors shaped and labelled as archive_features gives them."""
    ref = xatmodist.archive_features(_targets().isel(time=[0]), model=MODEL)
    rng = np.random.default_rng(seed)
    scale = float(np.abs(ref.values).mean())
    data = (rng.standard_normal((n, ref.sizes["element"])) * scale).astype(np.float32)
    times = np.datetime64("1950-01-01") + np.arange(n).astype("timedelta64[D]")
    return xr.DataArray(data, dims=("time", "element"), coords={"time": times}, attrs=ref.attrs)


def speed(n: int, repeat: int) -> dict:
    """The speed row: analogs(features=...) vs the bare loop."""
    import torch

    targets = _targets()
    feats = fake_features(n)
    m = xatmodist.load_model(MODEL)
    alpha, k = float(m.module.alpha), 10

    def library():
        return xatmodist.analogs(targets, features=feats, k=k, model=MODEL)

    def bare():
        t = xatmodist.archive_features(targets, model=MODEL).values
        tt = torch.from_numpy(t.astype(np.float64))
        a = feats.values
        d = torch.cat(
            [
                torch.cdist(tt, torch.from_numpy(a[i : i + 1000].astype(np.float64)), p=1.0)
                for i in range(0, len(a), 1000)
            ],
            dim=1,
        )
        return torch.topk(alpha * d / t.shape[1], k, largest=False)

    lib, ref = library(), bare()
    np.testing.assert_allclose(lib.distance.values, ref.values.numpy(), rtol=1e-5)
    times = {"bare": [], "library": []}
    for _ in range(repeat):
        for name, fn in (("bare", bare), ("library", library)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    ratio = statistics.median(b / x for b, x in zip(times["bare"], times["library"], strict=True))
    return {"n_archive": n, "n_targets": targets.sizes["time"], "seconds": times, "ratio": ratio}


_CHILD = r"""
import json, sys, warnings
import xarray as xr, xatmodist
from benchmarks.bench_analogs import MODEL, _targets
warnings.simplefilter("ignore")
f = xr.open_zarr(sys.argv[1])["analog_features"]
best = xatmodist.analogs(_targets(), features=f, k=10, model=MODEL)
best.compute(scheduler="synchronous")
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"peak_mb": int(hwm.split()[1]) / 1024}))
"""


def memory(n: int) -> dict:
    """The memory row: peak RSS searching N vs 10 N cached features (fresh processes)."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (n, 10 * n):
            store = Path(tmp) / f"f{size}.zarr"
            fake_features(size).chunk({"time": 500}).to_dataset(name="analog_features").to_zarr(
                store
            )
            r = subprocess.run(
                [sys.executable, "-c", _CHILD, str(store)],
                check=True,
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parents[1],
            )
            out[str(size)] = json.loads(r.stdout.strip().splitlines()[-1])
    out["ratio"] = out[str(10 * n)]["peak_mb"] / out[str(n)]["peak_mb"]
    return out


def main() -> None:
    """Print and optionally save both rows."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    res = {"speed": speed(args.n, args.repeat), "memory": memory(args.n)}
    s, m = res["speed"], res["memory"]
    print(  # noqa: T201
        f"speed: analogs(features=) vs bare torch loop, {s['n_archive']} archive x "
        f"{s['n_targets']} targets: {s['ratio']:.2f}x (target >= 0.8)\n"
        f"memory: peak RSS {m[str(10 * args.n)]['peak_mb']:.0f} MB for {10 * args.n} vs "
        f"{m[str(args.n)]['peak_mb']:.0f} MB for {args.n} archive fields: {m['ratio']:.2f}x "
        "(target <= 1.2)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
