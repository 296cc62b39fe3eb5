"""Decorrelation of vorticity with lag: simulator vs real 500 hPa vorticity.

Run from the repo root::

    python -m benchmarks.lag_correlation [--heldout data/swe_heldout.zarr]

For each lag, the mean over fields of the pattern (anomaly) correlation
between relative vorticity at t and t + lag.  Simulator: the embedded sample
(or the held-out runs), |lat| < 70.  Real: the January 1996 storm (NCL sample
data, 500 hPa, 6-hourly; vorticity derived from u, v with
``xatmodist.derive``), NaN points excluded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr

import xatmodist

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pattern_corr(x: np.ndarray, k: int) -> float:
    """Mean anomaly correlation between x[t] and x[t + k]; x is (series, time, points)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _corr(x[:, :-k], x[:, k:])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    a = np.where(ok, a, 0.0)
    b = np.where(ok, b, 0.0)
    n = ok.sum(-1)
    a = np.where(ok, a - a.sum(-1, keepdims=True) / n[..., None], 0)
    b = np.where(ok, b - b.sum(-1, keepdims=True) / n[..., None], 0)
    r = (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    return float(np.nanmean(r))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--heldout", default=None, help="zarr of held-out simulator runs")
    args = p.parse_args()
    sim = xr.open_zarr(args.heldout) if args.heldout else xatmodist.datasets.sample()
    sim = sim.vo.where(abs(sim.lat) < 70, drop=True)
    xs = sim.values.reshape(sim.sizes["run"], sim.sizes["time"], -1).astype(np.float64)
    rows = {h: [pattern_corr(xs, h // 3)] for h in (3, 6, 12, 24, 36)}
    storm = SHARED / "ncl_storm_1996"
    if storm.is_dir():
        u = xr.open_dataset(storm / "U500storm.cdf", decode_times=False)["u"]
        v = xr.open_dataset(storm / "V500storm.cdf", decode_times=False)["v"]
        vo = xatmodist.vorticity_divergence(u, v, lat="lat", lon="lon").vo
        xr_ = vo.values.reshape(1, vo.shape[0], -1).astype(np.float64)
        for h in rows:
            rows[h].append(pattern_corr(xr_, h // 6) if h % 6 == 0 else float("nan"))
    print("lag   simulator   real 500 hPa (1996 storm)")
    for h, vals in rows.items():
        real = f"{vals[1]:.2f}" if len(vals) > 1 and np.isfinite(vals[1]) else "  - "
        print(f"{h:3d} h    {vals[0]:.2f}        {real}")


if __name__ == "__main__":
    main()
