"""Held-out evaluation of the x4 downscalers against bicubic interpolation.

Run from the repo root (after an encoder recipe, e.g. ``xatmodist train --recipe
recipes/atmodist-swe-vd.toml``, simulated its held-out runs into
``data/swe_100000_16.zarr``)::

    python -m benchmarks.eval_downscaling [--update-cards] [--figure docs/images/downscaling.png]
    python -m benchmarks.eval_downscaling --spectra
    python -m benchmarks.eval_downscaling --ensembles [--update-cards] [--spectra]
    python -m benchmarks.eval_downscaling --ensembles --ensemble-models atmodist-ens=DIR l2-ens=DIR

The second form adds each model's power over the truth's per zonal wavenumber
(:func:`power_ratio`); the third scores the sampling downscalers (CRPS,
spread-skill, ranks, members' spectra; ``--spectra`` adds the per-wavenumber
ratios of :func:`spectral_calibration`); the fourth a trial's models in their
folders.  ``--band K_MIN K_MAX`` scores the band spectral error on other zonal
wavenumbers than :data:`BAND` (not with ``--update-cards``).

Fields: vorticity and divergence of the 16 held-out simulator runs (seeds
100000..100015, never used in training), every 8th time step, block-mean
coarsened 4x (64x128 -> 16x32).  For each method and variable:

- ``rmse``: latitude-weighted RMSE divided by the truth's standard deviation;
- ``band_spectral_error``: mean |ln(P_pred / P_truth)| of the latitude-averaged
  zonal power spectra (|lat| < 70) over the super-resolved band, zonal
  wavenumbers 17..31 (above the coarse grid's Nyquist 16, below the
  simulator's truncation at 32);
- ``semivariogram_error``: mean |ln(gamma_pred / gamma_truth)| over distance bins
  up to 3000 km (the scales the coarse grid cannot resolve);
- ``atmodist_distance``: mean learned distance to the truth (``atmodist-swe-vd``).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

import xatmodist
from xatmodist import metrics

from ._cli import add_ensemble_models, apply_ensemble_models, label_models

MODELS = {
    "l2": "downscale-swe-vd-x4-l2",
    "atmodist": "downscale-swe-vd-x4",
    # the adversarial twins: each fine-tuned from the model above with the GAN term
    "l2-gan": "downscale-swe-vd-x4-l2-gan",
    # the encoder judges vorticity alone; the divergence encoder atmodist-swe-d divergence
    "atmodist-vo-d-gan": "downscale-swe-vd-x4-vo-d-gan",
}
# The superseded downscale-swe-vd-x4-gan and -vo-d (pretrained/superseded/superseded.json)
# are no longer kept; retrain one from its recipe and add it with --extra LABEL=FOLDER.
#: generators that sample (issue 24): evaluated as ensembles of ``MEMBERS`` members
ENSEMBLES = {
    "atmodist-ens": "downscale-swe-vd-x4-ens",
    "l2-ens": "downscale-swe-vd-x4-l2-ens",
}
MEMBERS = 8
BAND = (17, 31)
#: the encoder of the atmodist_distance column (the one the AtmoDist downscaler was trained with)
DISTANCE_MODEL = "atmodist-swe-vd"


def bicubic(coarse: xr.Dataset, like: xr.Dataset, factor: int = 4, halo: int = 4) -> xr.Dataset:
    """Bicubic interpolation with longitude wrap (the same halo as the models)."""
    out = like.copy()
    for n in coarse.data_vars:
        x = coarse[n].values.astype(np.float32)
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(halo, halo), (0, 0)], mode="reflect")
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, 0), (halo, halo)], mode="wrap")
        t = torch.from_numpy(x.reshape(-1, 1, *x.shape[-2:]))
        y = F.interpolate(t, scale_factor=factor, mode="bicubic", align_corners=False).numpy()
        y = y[..., halo * factor : -halo * factor, halo * factor : -halo * factor]
        out[n] = (like[n].dims, y.reshape(like[n].shape))
    return out


def evaluate(
    path: str, stride: int = 8, extra: dict | None = None, k_band: tuple[int, int] = BAND
) -> tuple[dict, dict]:
    """Metrics per method and variable, and the predictions (``extra``: more models).

    ``k_band``: the zonal wavenumbers of the band spectral error.
    """
    truth = xr.open_zarr(path)[["vo", "d"]].isel(time=slice(0, None, stride)).load()
    coarse = truth.coarsen(lat=4, lon=4).mean()
    preds = {"bicubic": bicubic(coarse, truth)}
    for key, name in {**MODELS, **(extra or {})}.items():
        preds[key] = xatmodist.downscale(coarse, model=name).transpose(*truth.vo.dims)
        preds[key] = preds[key].assign_coords(lat=truth.lat, lon=truth.lon)
    band = truth.sel(lat=slice(70, -70))
    edges = np.linspace(0, 3.0e6, 11)
    res: dict = {}
    for method, p in preds.items():
        res[method] = {}
        pb = p.sel(lat=slice(70, -70))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
            dist = xatmodist.distance(p, truth, model=DISTANCE_MODEL)
        res[method]["atmodist_distance"] = float(dist.mean())
        for n in ("vo", "d"):
            g_p = metrics.semivariogram(p[n], bins=edges, seed=0)
            g_t = metrics.semivariogram(truth[n], bins=edges, seed=0)
            res[method][n] = {
                "rmse": float(metrics.rmse(p[n], truth[n])) / float(truth[n].std()),
                "band_spectral_error": float(
                    metrics.spectral_error(pb[n], band[n], k_min=k_band[0], k_max=k_band[1])
                ),
                "semivariogram_error": float(np.nanmean(np.abs(np.log(g_p / g_t)))),
            }
    return res, {"truth": truth, **preds}


def _weights(truth: xr.DataArray) -> xr.DataArray:
    """cos(latitude) broadcast to ``truth`` (the area weights of every score here)."""
    return np.cos(np.deg2rad(truth.lat)).broadcast_like(truth)


def mae(pred: xr.DataArray, truth: xr.DataArray) -> float:
    """Latitude-weighted mean absolute error."""
    w = _weights(truth)
    return float((abs(pred - truth) * w).sum() / w.sum())


def ensemble_scores(
    members: xr.Dataset, truth: xr.Dataset, edges, band, k_band: tuple[int, int] = BAND
) -> dict:
    """Probabilistic scores of ``members`` (a ``member`` dim) against ``truth``, per variable.

    ``crps``: :func:`xskillscore.crps_ensemble` (latitude-weighted mean);
    ``spread_skill``: sqrt((M + 1) / M) x the root of the mean ensemble variance
    over the ensemble mean's RMSE (1 for a calibrated ensemble of M members,
    Fortin et al. 2014); ``rank_histogram``: the truth's rank among the members,
    relative frequencies of the M + 1 ranks; ``mean_rmse``: the ensemble mean's RMSE;
    ``member_*``: the deterministic scores of each member, averaged over
    members.  Errors are divided by the truth's standard deviation, as ``rmse``.
    """
    import xskillscore as xs

    m = members.sizes["member"]
    dims = [d for d in truth.vo.dims]
    out = {}
    for n in ("vo", "d"):
        t, e = truth[n], members[n].transpose("member", *dims)
        sd = float(t.std())
        w = _weights(t)
        crps = float(xs.crps_ensemble(t, e, member_dim="member", dim=dims, weights=w)) / sd
        mean = e.mean("member")
        var = float((e.var("member", ddof=1) * w).sum() / w.sum())
        rmse_mean = float(metrics.rmse(mean, t))
        np.random.seed(0)  # xskillscore breaks ties between equal values at random
        ranks = xs.rank_histogram(t, e, dim=dims, member_dim="member")
        g_t = metrics.semivariogram(t, bins=edges, seed=0)
        spec, vario = [], []
        for k in range(m):
            ek = e.isel(member=k)
            spec.append(
                float(
                    metrics.spectral_error(
                        ek.sel(lat=slice(70, -70)), band[n], k_min=k_band[0], k_max=k_band[1]
                    )
                )
            )
            g_p = metrics.semivariogram(ek, bins=edges, seed=0)
            vario.append(float(np.nanmean(np.abs(np.log(g_p / g_t)))))
        out[n] = {
            "crps": crps,
            "spread_skill": float(np.sqrt((m + 1) / m) * np.sqrt(var) / rmse_mean),
            "rank_histogram": [float(x) for x in (ranks / ranks.sum()).values],
            "mean_rmse": rmse_mean / sd,
            "member_band_spectral_error": float(np.mean(spec)),
            "member_semivariogram_error": float(np.mean(vario)),
            "member_rmse": float(metrics.rmse(e, t)) / sd,
        }
    return out


#: zonal wavenumbers of the per-wavenumber table (``--spectra``)
SPECTRA_K = (4, 8, 12, 16, 20, 24, 28, 31)


def _zonal_power(x: xr.DataArray) -> np.ndarray:
    """Zonal power spectrum of ``x``'s rows 70S..70N, averaged over every other dim."""
    s = metrics.zonal_power_spectrum(x.sel(lat=slice(70, -70)))
    return s.mean([d for d in s.dims if d != "zonal_wavenumber"]).values


def power_ratio(pred: xr.DataArray, truth: xr.DataArray) -> list[float]:
    """Per zonal wavenumber (0..nlon/2), ``pred``'s power over ``truth``'s (rows 70S..70N).

    The spectra of :func:`spectral_calibration`; a deterministic model's
    counterpart of its ``member`` row.
    """
    return (_zonal_power(pred) / _zonal_power(truth)).tolist()


def spectral_calibration(members: xr.DataArray, truth: xr.DataArray) -> dict:
    """Per zonal wavenumber, ratios that locate an ensemble's errors (rows 70S..70N).

    ``members`` (a ``member`` dim) and ``truth`` of one variable; spectra from
    :func:`xatmodist.metrics.zonal_power_spectrum`, as the band spectral error's,
    averaged over every other dim.  ``member``: the members' power / the truth's;
    ``mean``: the ensemble mean's / the truth's; ``error``: the power of the mean's
    error / the truth's; ``spread_error``: the spread's power (members minus their
    mean, x (M + 1) / (M - 1): the unbiased variance and the finite ensemble's
    factor of ``spread_skill``) / the mean's error's, 1 at every wavenumber for a
    calibrated ensemble.  Lists over wavenumbers 0..nlon/2.
    """

    m, mean = members.sizes["member"], members.mean("member")
    pt, pe = _zonal_power(truth), _zonal_power(mean - truth)
    return {
        "member": (_zonal_power(members) / pt).tolist(),
        "mean": (_zonal_power(mean) / pt).tolist(),
        "error": (pe / pt).tolist(),
        "spread_error": (_zonal_power(members - mean) * (m + 1) / (m - 1) / pe).tolist(),
    }


def evaluate_ensembles(
    path: str,
    stride: int = 8,
    members: int = MEMBERS,
    seed: int = 0,
    k_band: tuple[int, int] = BAND,
):
    """:func:`ensemble_scores` of each of ``ENSEMBLES`` beside the deterministic models' MAE.

    The same held-out fields as :func:`evaluate`; ``members`` samples per field
    (``downscale(members=..., seed=...)``).  Returns (scores, member predictions).
    """
    truth = xr.open_zarr(path)[["vo", "d"]].isel(time=slice(0, None, stride)).load()
    coarse = truth.coarsen(lat=4, lon=4).mean()
    band = truth.sel(lat=slice(70, -70))
    edges = np.linspace(0, 3.0e6, 11)
    res: dict = {"members": members, "seed": seed, "deterministic_mae": {}}
    dets = {"bicubic": bicubic(coarse, truth)}
    for key in ("l2", "atmodist", "l2-gan"):
        dets[key] = xatmodist.downscale(coarse, model=MODELS[key]).transpose(*truth.vo.dims)
        dets[key] = dets[key].assign_coords(lat=truth.lat, lon=truth.lon)
    for key, p in dets.items():
        res["deterministic_mae"][key] = {
            n: mae(p[n], truth[n]) / float(truth[n].std()) for n in ("vo", "d")
        }
    preds = {}
    for key, name in ENSEMBLES.items():
        e = xatmodist.downscale(coarse, model=name, members=members, seed=seed)
        e = e.transpose("member", *truth.vo.dims).assign_coords(lat=truth.lat, lon=truth.lon)
        preds[key] = e
        res[key] = ensemble_scores(e, truth, edges, band, k_band)
    return res, {"truth": truth, **dets, **preds}


def ensemble_figure(preds: dict, path: Path, k_band: tuple[int, int] = BAND) -> None:
    """Members beside the truth (vorticity and divergence); spectra of members vs truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ens = [k for k in ENSEMBLES if k in preds]
    fig, axes = plt.subplots(2 * len(ens), 5, figsize=(17, 3.0 * 2 * len(ens)))
    box = {"lat": slice(60, -60), "lon": slice(0, 120)}
    lim = {"vo": 5e-5, "d": 1.5e-5}
    for j, key in enumerate(ens):
        for i, n in enumerate(("vo", "d")):
            row = axes[2 * j + i]
            panels = [("truth", preds["truth"][n])] + [
                (f"{key} member {m}", preds[key][n].isel(member=m)) for m in range(3)
            ]
            for a, (title, da) in zip(row[:4], panels, strict=True):
                da.isel(run=0, time=0).sel(**box).plot(
                    ax=a, cmap="RdBu_r", vmin=-lim[n], vmax=lim[n], add_colorbar=False
                )
                a.set_title(f"{title} ({n})", fontsize=9)
                a.set(xlabel="", ylabel="")
            ax = row[4]
            for k in ("truth", "l2", "atmodist", key):
                da = preds[k][n].sel(lat=slice(70, -70))
                s = metrics.zonal_power_spectrum(da).mean(
                    [d for d in da.dims if d not in ("lat", "lon")]
                )
                ax.loglog(
                    s.zonal_wavenumber[1:], s[1:], label=k + (" (members)" if k == key else "")
                )
            ax.axvspan(*k_band, color="0.9")
            ax.set_title(f"{n} spectra", fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure(preds: dict, path: Path, k_band: tuple[int, int] = BAND) -> None:
    """Spectra overlay and sample fields side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 6.5))
    ax = fig.add_subplot(2, 5, (1, 6))
    for key, ds in preds.items():
        s = metrics.zonal_power_spectrum(ds.vo.sel(lat=slice(70, -70))).mean(
            [d for d in ds.vo.dims if d not in ("lat", "lon")]
        )
        ax.loglog(s.zonal_wavenumber[1:], s[1:], label=key, lw=2 if key == "truth" else 1.2)
    ax.axvspan(*k_band, color="0.9")
    ax.set(xlabel="zonal wavenumber", ylabel="power (s-2)", title="vorticity spectra")
    ax.legend()
    for i, (key, ds) in enumerate(preds.items()):
        a = fig.add_subplot(2, 5, 2 + i + (i // 4))
        ds.vo.isel(run=0, time=0).sel(lat=slice(70, -70), lon=slice(0, 180)).plot(
            ax=a, cmap="RdBu_r", vmin=-5e-5, vmax=5e-5, add_colorbar=False
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
    p.add_argument(
        "--spectra",
        action="store_true",
        help="per zonal wavenumber, each model's power over the truth's (--ensembles: the "
        "members', the mean's, the error's and spread/error)",
    )
    p.add_argument(
        "--band",
        nargs=2,
        type=int,
        default=None,
        metavar=("K_MIN", "K_MAX"),
        help=f"the band spectral error's zonal wavenumbers (default {BAND[0]} {BAND[1]})",
    )
    args = p.parse_args()
    apply_ensemble_models(p, args, ENSEMBLES)
    if args.band is not None:
        if args.update_cards or not 0 < args.band[0] <= args.band[1]:
            p.error(f"--band takes 0 < K_MIN <= K_MAX, without --update-cards; got {args.band}")
    args.band = tuple(args.band or BAND)
    if args.ensembles:
        ensembles_main(args)
        return
    extra = label_models(p, "--extra", args.extra)
    res, preds = evaluate(args.data, extra=extra, k_band=args.band)
    print(f"band spectral error over zonal wavenumbers {args.band[0]}..{args.band[1]}")
    print(f"{'method':<17} {'var':<4} {'rmse/std':>9} {'band spec err':>14} {'variogram err':>14}")
    for method, r in res.items():
        for n in ("vo", "d"):
            m = r[n]
            print(
                f"{method:<17} {n:<4} {m['rmse']:9.3f} {m['band_spectral_error']:14.3f} "
                f"{m['semivariogram_error']:14.3f}"
            )
        print(f"{method:<17} AtmoDist distance to truth {r['atmodist_distance']:.4f}")
    if args.spectra:
        print(f"power / truth's per zonal wavenumber (70S..70N): {_k_header()}")
        for method, r in res.items():
            for n in ("vo", "d"):
                x = r[n]["power_ratio"] = power_ratio(preds[method][n], preds["truth"][n])
                print(f"{method + ' ' + n:<34} " + " ".join(f"{x[k]:6.2f}" for k in SPECTRA_K))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    if args.figure:
        figure(preds, Path(args.figure), args.band)
    if args.update_cards:
        for key, name in MODELS.items():
            m = xatmodist.load_model(name)
            m.card.metrics["heldout"] = {
                "data": "16 held-out shallow_water runs (seeds 100000..100015), every 8th "
                "step, 4x block-mean coarsened",
                "command": "python -m benchmarks.eval_downscaling --update-cards",
                "band": list(args.band),
                "this_model": res[key],
                "bicubic": res["bicubic"],
            }
            m.save(m.path)


def _k_header() -> str:
    return " ".join(f"{k:6d}" for k in SPECTRA_K)


def ensembles_main(args) -> None:
    """``--ensembles``: print the probabilistic table; figure, JSON and cards on request."""
    res, preds = evaluate_ensembles(args.data, members=args.members, k_band=args.band)
    det = res["deterministic_mae"]
    print(
        f"{args.members} members; band {args.band[0]}..{args.band[1]}; errors / truth std; "
        "deterministic MAE: "
        + ", ".join(f"{k} vo {v['vo']:.3f} d {v['d']:.3f}" for k, v in det.items())
    )
    head = [
        "crps",
        "spread_skill",
        "mean_rmse",
        "member_rmse",
        "member_band_spectral_error",
        "member_semivariogram_error",
    ]
    print(f"{'ensemble':<14} {'var':<4} " + " ".join(f"{h[:14]:>14}" for h in head))
    for key in ENSEMBLES:
        for n in ("vo", "d"):
            r = res[key][n]
            print(f"{key:<14} {n:<4} " + " ".join(f"{r[h]:14.3f}" for h in head))
            print(
                f"{'':<14} {n:<4} rank histogram "
                + " ".join(f"{x:.3f}" for x in r["rank_histogram"])
            )
    if args.spectra:
        print(f"per zonal wavenumber (70S..70N): {_k_header()}")
        for key in ENSEMBLES:
            for n in ("vo", "d"):
                r = res[key][n]["spectra"] = spectral_calibration(preds[key][n], preds["truth"][n])
                for row, x in r.items():
                    label = f"{key} {n} {row}"
                    print(f"{label:<34} " + " ".join(f"{x[k]:6.2f}" for k in SPECTRA_K))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    if args.figure:
        ensemble_figure(preds, Path(args.figure), args.band)
    if args.update_cards:
        for key, name in ENSEMBLES.items():
            m = xatmodist.load_model(name)
            m.card.metrics["heldout"] = {
                "data": "16 held-out shallow_water runs (seeds 100000..100015), every 8th "
                "step, 4x block-mean coarsened",
                "command": "python -m benchmarks.eval_downscaling --ensembles --update-cards",
                "band": list(args.band),
                "members": res["members"],
                "seed": res["seed"],
                "this_model": res[key],
                "deterministic_mae": det,
            }
            m.save(m.path)


if __name__ == "__main__":
    main()
