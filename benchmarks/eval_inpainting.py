"""Held-out evaluation of the inpainters against interpolation baselines.

Run from the repo root (after an encoder recipe, e.g. ``xatmodist train --recipe
recipes/atmodist-swe-vd.toml``, simulated its held-out runs into
``data/swe_100000_16.zarr``)::

    python -m benchmarks.eval_inpainting [--update-cards] [--figure docs/images/inpainting.png]
    python -m benchmarks.eval_inpainting --ensembles [--update-cards]
    python -m benchmarks.eval_inpainting --ensembles --ensemble-models atmodist-ens=DIR l2-ens=DIR

The second form scores the sampling inpainters (CRPS, spread-skill, ranks,
members' spectra); the third a trial's models in their folders.

Fields: vorticity and divergence of the 16 held-out simulator runs (seeds
100000..100015, never used in training), every 8th time step (160 fields).
Each field gets one square hole of 16x16 and, separately, of 32x32 grid cells
at a random position (the same for every method; rows anywhere, columns inside
1..nlon-1 so that the baselines need no wrap).  Methods:

- ``linear``: ``xarray.DataArray.interpolate_na`` along longitude and along
  latitude (linear between the hole's edges), averaged;
- ``laplace``: the harmonic fill (Laplace's equation in the hole with the
  observed values as boundary condition, scipy sparse solve) -- the smoothest
  fill that matches the edges;
- ``l2`` / ``atmodist``: ``xatmodist.inpaint`` with ``inpaint-swe-vd-l2`` /
  ``inpaint-swe-vd`` (plus any ``--extra`` models).

Metrics per hole size, method and variable:

- ``rmse``: RMSE over the hole points divided by the truth's standard deviation;
- ``hf_spectral_error``: mean |ln(P_pred / P_truth)| of the power spectra of
  the hole's rows and columns (Hann window, averaged over rows, columns and
  fields) over the highest octave in which the truth has power: hole
  wavenumbers size/8..size/4, i.e. global wavenumbers 16..32 (the simulator
  is truncated at 32; above it the truth's power is ~1e-6 of the band's, and
  ratios there would only measure numerical noise);
- ``atmodist_distance`` (per method): mean learned distance
  (``atmodist-swe-vd``) between the filled and the true 32x32 window centred
  on the hole.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import sparse
from scipy.sparse.linalg import spsolve

import xatmodist

from ._cli import add_ensemble_models, apply_ensemble_models, label_models

MODELS = {"l2": "inpaint-swe-vd-l2", "atmodist": "inpaint-swe-vd"}
#: the encoder of the atmodist_distance column (the one the AtmoDist inpainter was trained with)
DISTANCE_MODEL = "atmodist-swe-vd"
SIZES = (16, 32)
WINDOW = 32


def holes(n: int, nlat: int, nlon: int, size: int, seed: int) -> np.ndarray:
    """Top-left (row, col) of one ``size`` square hole per field."""
    rng = np.random.default_rng([seed, size])
    return np.stack([rng.integers(0, nlat - size + 1, n), rng.integers(1, nlon - size, n)], axis=1)


def mask_of(corners: np.ndarray, size: int, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (n, nlat, nlon) masks of the holes."""
    m = np.zeros((len(corners),) + shape, dtype=bool)
    for i, (r, c) in enumerate(corners):
        m[i, r : r + size, c : c + size] = True
    return m


def linear_fill(gappy: xr.DataArray) -> xr.DataArray:
    """Mean of linear interpolation along longitude and along latitude.

    Where a hole touches the pole rows only the longitude interpolation exists.
    """
    a = gappy.interpolate_na("lon", method="linear")
    b = gappy.interpolate_na("lat", method="linear", use_coordinate=False)
    return (a + b.fillna(a)) / 2


def laplace_fill(field: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Harmonic fill of the masked points of a 2-D field (5-point Laplacian, Dirichlet)."""
    out = field.astype(np.float64).copy()
    idx = -np.ones(field.shape, dtype=np.int64)
    pts = np.argwhere(mask)
    idx[mask] = np.arange(len(pts))
    rows, cols, vals = [], [], []
    rhs = np.zeros(len(pts))
    h, w = field.shape
    for k, (i, j) in enumerate(pts):
        nb = [(i + di, j + dj) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        nb = [(a, b) for a, b in nb if 0 <= a < h and 0 <= b < w]
        rows.append(k)
        cols.append(k)
        vals.append(float(len(nb)))
        for a, b in nb:
            if mask[a, b]:
                rows.append(k)
                cols.append(idx[a, b])
                vals.append(-1.0)
            else:
                rhs[k] += out[a, b]
    A = sparse.csr_matrix((vals, (rows, cols)), shape=(len(pts), len(pts)))
    out[mask] = spsolve(A, rhs)
    return out


def hf_power(windows: np.ndarray) -> np.ndarray:
    """Power spectra of rows and columns of (n, s, s) windows (Hann), averaged: (s//2+1,)."""
    s = windows.shape[-1]
    hann = np.hanning(s)
    x = windows - windows.mean(axis=(-1, -2), keepdims=True)
    p_rows = np.abs(np.fft.rfft(x * hann, axis=-1)) ** 2
    p_cols = np.abs(np.fft.rfft(x * hann[:, None], axis=-2)) ** 2
    return (p_rows.mean(axis=(0, 1)) + p_cols.mean(axis=(0, 2))) / 2


def hole_windows(a: np.ndarray, corners: np.ndarray, size: int) -> np.ndarray:
    """The (n, size, size) hole regions of (n, nlat, nlon) fields."""
    return np.stack([a[i, r : r + size, c : c + size] for i, (r, c) in enumerate(corners)])


def centred_windows(ds: xr.Dataset, corners: np.ndarray, size: int) -> xr.Dataset:
    """32x32 windows centred on each hole (clipped to the latitude range), stacked on field."""
    nlat, nlon = ds.sizes["lat"], ds.sizes["lon"]
    out = []
    for i, (r, c) in enumerate(corners):
        r0 = int(np.clip(r + size // 2 - WINDOW // 2, 0, nlat - WINDOW))
        cols = (c + size // 2 - WINDOW // 2 + np.arange(WINDOW)) % nlon
        w = ds.isel(field=i, lat=slice(r0, r0 + WINDOW), lon=cols)
        out.append(w.assign_coords(lat=np.arange(WINDOW) * -2.857, lon=np.arange(WINDOW) * 2.8125))
    return xr.concat(out, dim="field")


def evaluate(path: str, stride: int = 8, extra: dict | None = None) -> tuple[dict, dict]:
    """Metrics per hole size, method and variable; and the fills of the first fields."""
    models = {**MODELS, **(extra or {})}
    ds = xr.open_zarr(path)[["vo", "d"]].isel(time=slice(0, None, stride)).load()
    truth = ds.stack(field=("run", "time")).transpose("field", "lat", "lon")
    truth = truth.drop_vars(["field", "run", "time"]).assign_coords(
        field=np.arange(truth.sizes["field"])
    )
    n, nlat, nlon = truth.vo.shape
    std = {v: float(truth[v].std()) for v in ("vo", "d")}
    res: dict = {}
    samples: dict = {}
    for size in SIZES:
        corners = holes(n, nlat, nlon, size, seed=0)
        m = xr.DataArray(mask_of(corners, size, (nlat, nlon)), dims=("field", "lat", "lon"))
        gappy = truth.where(~m)
        fills = {
            "linear": gappy.map(linear_fill),
            "laplace": truth.copy(
                data={
                    v: np.stack(
                        [laplace_fill(gappy[v].values[i], m.values[i]) for i in range(n)]
                    ).astype(np.float32)
                    for v in ("vo", "d")
                }
            ),
        }
        for key, name in models.items():
            fills[key] = xatmodist.inpaint(gappy, model=name)
        res[f"{size}x{size}"] = r = {}
        truth_w = centred_windows(truth, corners, size)
        for method, f in fills.items():
            r[method] = {}
            for v in ("vo", "d"):
                diff = (f[v] - truth[v]).values[m.values]
                pw = hf_power(hole_windows(f[v].values, corners, size))
                pt = hf_power(hole_windows(truth[v].values, corners, size))
                k = np.arange(len(pt))
                band = (k >= size // 8) & (k <= size // 4)
                r[method][v] = {
                    "rmse": float(np.sqrt(np.mean(diff.astype(np.float64) ** 2)) / std[v]),
                    "hf_spectral_error": float(np.mean(np.abs(np.log(pw[band] / pt[band])))),
                }
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
                d = xatmodist.distance(
                    centred_windows(f, corners, size), truth_w, model=DISTANCE_MODEL
                )
            r[method]["atmodist_distance"] = float(d.mean())
        samples[size] = {"truth": truth, "gappy": gappy, **fills, "corners": corners}
    return res, samples


#: generators that sample (issue 24), evaluated as ensembles of ``MEMBERS`` members
ENSEMBLES = {"atmodist-ens": "inpaint-swe-vd-ens", "l2-ens": "inpaint-swe-vd-l2-ens"}
MEMBERS = 8


def hole_ensemble_scores(e: np.ndarray, t: np.ndarray, std: float) -> dict:
    """Probabilistic scores of members ``e`` (M, points) at the hole points ``t`` (points,).

    As :func:`benchmarks.eval_downscaling.ensemble_scores`, on the hole points
    (unweighted): ``crps`` (:func:`xskillscore.crps_ensemble`), ``spread_skill``
    (sqrt((M + 1) / M) x root mean ensemble variance / RMSE of the mean),
    ``rank_histogram`` (relative frequencies), ``mean_rmse``, ``member_rmse``;
    errors divided by the truth's standard deviation ``std``.
    """
    import xskillscore as xs

    m = e.shape[0]
    tt = xr.DataArray(t.astype(np.float64), dims="point")
    ee = xr.DataArray(e.T.astype(np.float64), dims=("point", "member"))
    mean = e.mean(axis=0)
    rmse_mean = float(np.sqrt(np.mean((mean - t) ** 2)))
    spread = float(np.sqrt(np.mean(e.var(axis=0, ddof=1))))
    np.random.seed(0)  # xskillscore breaks ties between equal values at random
    ranks = xs.rank_histogram(tt, ee, dim="point", member_dim="member")
    return {
        "crps": float(xs.crps_ensemble(tt, ee, member_dim="member", dim="point")) / std,
        "spread_skill": float(np.sqrt((m + 1) / m) * spread / rmse_mean),
        "rank_histogram": [float(x) for x in (ranks / ranks.sum()).values],
        "mean_rmse": rmse_mean / std,
        "member_rmse": float(np.sqrt(np.mean((e - t[None]) ** 2))) / std,
    }


def evaluate_ensembles(path: str, stride: int = 8, members: int = MEMBERS, seed: int = 0):
    """Ensemble scores of ``ENSEMBLES`` on :func:`evaluate`'s fields and holes.

    Beside them the hole MAE of the deterministic fills (linear, Laplace, l2,
    AtmoDist), for the CRPS target; per member the ``hf_spectral_error`` of
    :func:`evaluate`, averaged over members.
    """
    ds = xr.open_zarr(path)[["vo", "d"]].isel(time=slice(0, None, stride)).load()
    truth = ds.stack(field=("run", "time")).transpose("field", "lat", "lon")
    truth = truth.drop_vars(["field", "run", "time"]).assign_coords(
        field=np.arange(truth.sizes["field"])
    )
    n, nlat, nlon = truth.vo.shape
    std = {v: float(truth[v].std()) for v in ("vo", "d")}
    res: dict = {"members": members, "seed": seed}
    samples: dict = {}
    for size in SIZES:
        corners = holes(n, nlat, nlon, size, seed=0)
        mk = mask_of(corners, size, (nlat, nlon))
        m = xr.DataArray(mk, dims=("field", "lat", "lon"))
        gappy = truth.where(~m)
        r = res[f"{size}x{size}"] = {"deterministic_mae": {}}
        dets = {"linear": gappy.map(linear_fill)}
        for key, name in MODELS.items():
            dets[key] = xatmodist.inpaint(gappy, model=name)
        for key, f in dets.items():
            r["deterministic_mae"][key] = {
                v: float(np.mean(np.abs((f[v] - truth[v]).values[mk]))) / std[v]
                for v in ("vo", "d")
            }
        samples[size] = {"truth": truth, "corners": corners, **dets}
        for key, name in ENSEMBLES.items():
            e = xatmodist.inpaint(gappy, model=name, members=members, seed=seed)
            e = e.transpose("member", "field", "lat", "lon")
            samples[size][key] = e
            r[key] = {}
            for v in ("vo", "d"):
                vals = e[v].values
                sc = hole_ensemble_scores(vals[:, mk], truth[v].values[mk], std[v])
                pt = hf_power(hole_windows(truth[v].values, corners, size))
                k = np.arange(len(pt))
                band = (k >= size // 8) & (k <= size // 4)
                errs = [
                    float(np.mean(np.abs(np.log(
                        hf_power(hole_windows(vals[j], corners, size))[band] / pt[band]
                    ))))
                    for j in range(members)
                ]  # fmt: skip
                r[key][v] = {**sc, "member_hf_spectral_error": float(np.mean(errs))}
    return res, samples


def ensemble_figure(samples: dict, path: Path, field: int = 3) -> None:
    """Members of each ensemble beside the truth in a 32x32 hole; hole spectra of members."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = samples[32]
    r, c = s["corners"][field]
    lo, hi = max(c - 16, 0), min(c + 48, s["truth"].sizes["lon"])
    ens = [k for k in ENSEMBLES if k in s]
    fig, axes = plt.subplots(2 * len(ens), 5, figsize=(17, 2.8 * 2 * len(ens)))
    lim = {"vo": 5e-5, "d": 1.5e-5}
    for j, key in enumerate(ens):
        for i, v in enumerate(("vo", "d")):
            row = axes[2 * j + i]
            panels = [("truth", s["truth"][v])] + [
                (f"{key} member {m}", s[key][v].isel(member=m)) for m in range(3)
            ]
            for a, (title, da) in zip(row[:4], panels, strict=True):
                da.isel(field=field, lon=slice(lo, hi)).plot(
                    ax=a, cmap="RdBu_r", vmin=-lim[v], vmax=lim[v], add_colorbar=False
                )
                a.add_patch(
                    plt.Rectangle(
                        (float(s["truth"].lon[c]), float(s["truth"].lat[r])),
                        32 * 2.8125,
                        -32 * 2.857,
                        fill=False,
                        ec="k",
                        lw=0.8,
                    )
                )
                a.set_title(f"{title} ({v})", fontsize=9)
                a.set(xlabel="", ylabel="")
            ax = row[4]
            for k in ("truth", "l2", "atmodist", key):
                da = s[k][v]
                vals = da.values if "member" not in da.dims else da.isel(member=0).values
                p = hf_power(hole_windows(vals, s["corners"], 32))
                ax.semilogy(
                    np.arange(len(p))[1:], p[1:], label=k + (" (member 0)" if k == key else "")
                )
            ax.axvspan(4, 8, color="0.9")
            ax.set_title(f"{v} in the 32x32 holes", fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure(samples: dict, path: Path, field: int = 3) -> None:
    """Hole spectra per method and a sample 32x32-hole field side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = samples[32]
    corners = s["corners"]
    keys = [k for k in s if k not in ("corners",)]
    fig = plt.figure(figsize=(16, 6.5))
    ax = fig.add_subplot(2, 5, (1, 6))
    for key in keys:
        if key == "gappy":
            continue
        p = hf_power(hole_windows(s[key].vo.values, corners, 32))
        ax.semilogy(np.arange(len(p))[1:], p[1:], label=key, lw=2.5 if key == "truth" else 1.2)
    ax.axvspan(4, 8, color="0.9")
    ax.set(xlabel="wavenumber in the 32x32 hole", ylabel="power", title="vorticity in the holes")
    ax.legend()
    r, c = corners[field]
    lo, hi = max(c - 16, 0), min(c + 48, s["truth"].sizes["lon"])
    for i, key in enumerate(keys[:8]):
        a = fig.add_subplot(2, 5, 2 + i + (i // 4))
        s[key].vo.isel(field=field, lon=slice(lo, hi)).plot(
            ax=a, cmap="RdBu_r", vmin=-5e-5, vmax=5e-5, add_colorbar=False
        )
        a.add_patch(
            plt.Rectangle(
                (float(s["truth"].lon[c]), float(s["truth"].lat[r])),
                32 * 2.8125,
                -32 * 2.857,
                fill=False,
                ec="k",
                lw=0.8,
            )
        )
        a.set_title(key)
        a.set(xlabel="", ylabel="")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    """Print the table; optionally write the figure and the cards' metrics."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/swe_100000_16.zarr")
    p.add_argument("--figure", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--extra", nargs="*", default=[], help="more models as label=path")
    p.add_argument("--update-cards", action="store_true")
    p.add_argument(
        "--ensembles", action="store_true", help="evaluate the generators that sample instead"
    )
    p.add_argument("--members", type=int, default=MEMBERS)
    add_ensemble_models(p)
    args = p.parse_args()
    apply_ensemble_models(p, args, ENSEMBLES)
    if args.ensembles:
        ensembles_main(args)
        return
    extra = label_models(p, "--extra", args.extra)
    res, samples = evaluate(args.data, extra=extra)
    for hole, rows in res.items():
        print(f"\nhole {hole}")
        print(f"{'method':<12} {'var':<4} {'rmse/std':>9} {'hf spec err':>12} {'AtmoDist d':>11}")
        for method, r in rows.items():
            for v in ("vo", "d"):
                print(
                    f"{method:<12} {v:<4} {r[v]['rmse']:9.3f} {r[v]['hf_spectral_error']:12.3f} "
                    f"{r['atmodist_distance']:11.4f}"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    if args.figure:
        figure(samples, Path(args.figure))
    if args.update_cards:
        for key, name in MODELS.items():
            m = xatmodist.load_model(name)
            m.card.metrics["heldout"] = {
                "data": "16 held-out shallow_water runs (seeds 100000..100015), every 8th "
                "step; one square hole per field at a random position",
                "command": "python -m benchmarks.eval_inpainting --update-cards",
                "this_model": {h: rows[key] for h, rows in res.items()},
                "baselines": {
                    h: {b: rows[b] for b in ("linear", "laplace")} for h, rows in res.items()
                },
            }
            m.save(m.path)


def ensembles_main(args) -> None:
    """``--ensembles``: print the probabilistic table; figure, JSON and cards on request."""
    res, samples = evaluate_ensembles(args.data, members=args.members)
    head = ["crps", "spread_skill", "mean_rmse", "member_rmse", "member_hf_spectral_error"]
    for hole in (f"{s}x{s}" for s in SIZES):
        r = res[hole]
        print(
            f"\nhole {hole}, {args.members} members; errors / truth std; deterministic MAE: "
            + ", ".join(
                f"{k} vo {x['vo']:.3f} d {x['d']:.3f}" for k, x in r["deterministic_mae"].items()
            )
        )
        print(f"{'ensemble':<14} {'var':<4} " + " ".join(f"{h[:14]:>14}" for h in head))
        for key in ENSEMBLES:
            for v in ("vo", "d"):
                print(f"{key:<14} {v:<4} " + " ".join(f"{r[key][v][h]:14.3f}" for h in head))
                print(
                    f"{'':<14} {v:<4} rank histogram "
                    + " ".join(f"{x:.3f}" for x in r[key][v]["rank_histogram"])
                )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    if args.figure:
        ensemble_figure(samples, Path(args.figure))
    if args.update_cards:
        for key, name in ENSEMBLES.items():
            m = xatmodist.load_model(name)
            m.card.metrics["heldout"] = {
                "data": "16 held-out shallow_water runs (seeds 100000..100015), every 8th "
                "step; one square hole per field at a random position",
                "command": "python -m benchmarks.eval_inpainting --ensembles --update-cards",
                "members": res["members"],
                "seed": res["seed"],
                "this_model": {h: res[h][key] for h in (f"{s}x{s}" for s in SIZES)},
                "deterministic_mae": {
                    h: res[h]["deterministic_mae"] for h in (f"{s}x{s}" for s in SIZES)
                },
            }
            m.save(m.path)


if __name__ == "__main__":
    main()
