"""Analogue forecasts: learned distance vs Euclidean analogues, persistence, climatology.

Run from the repo root (the SLP part needs ``../shared/data``)::

    python -m benchmarks.eval_analogs [--which slp,swe] [--k 10] [--json out.json] [--fit]

For every target state, the ``k`` nearest archive states are searched with
:func:`xatmodist.analogs`; the forecast at a lead is the mean of their
successors at that lead (:func:`xatmodist.analog_forecast`, equal weights, as
in the issue's pre-filing measurement).  Scores over the targets, at each
lead:

- ``rmse``: root mean square error over all grid points and targets divided
  by the standard deviation of the verifying fields;
- ``acc``: anomaly correlation (``xskillscore.pearson_r`` over the grid of the
  forecast and verifying anomalies from the archive's day-of-year climatology;
  for the simulator, from the archive mean), averaged over targets.

Data:

- **slp**: NCEP daily sea-level pressure, 17 x 33 over the North Atlantic;
  archive 2001-2008, targets 2009-2010 (those with a verifying day 5 days
  later); leads 1-5 days; encoder ``atmodist-ncep-slp`` (trained on
  2001-2007).
- **swe**: shallow-water runs: archive ``--swe-runs`` (32) runs of seeds 0, 1, ...
  (the default encoder's training seeds), targets 2 held-out runs (seeds 100000, 100001),
  every 3rd output step of each; leads 6-48 h; the default encoder.  The
  runs are simulated (``xatmodist.datasets.shallow_water``) into
  ``data/analogs_*.zarr`` once.

Metrics compared: the three of :func:`xatmodist.analogs` with an encoder,
``learned`` (the encoder's own distance), ``l2`` (mean squared difference of
the normalised fields) and ``hybrid`` (their sum); ``successor``, an analogue
metric (:func:`xatmodist.train.fit_analog_metric`: analogues among predicted
successors; for sea-level pressure the shipped ``analog-ncep-slp``, fitted by
``--fit``; for the simulator one fitted on the archive runs); and
experimental variants on the
encoder's feature grid computed here from :func:`xatmodist.archive_features`
(``learned-z``: features standardised per element over the archive, then
squared differences; ``tile-z``: the same on features averaged over 4 x 4
cells of the feature grid).  ``oracle (first lead)`` picks the archive
states whose successors at the first lead are nearest to the verifying
fields: no forecast can know them; the row bounds what a better search could
gain.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import xatmodist

SLP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ncep_slp_daily_2001-2010"


def _scores(fc: xr.DataArray, truth: xr.DataArray, clim: xr.DataArray, space) -> dict:
    import xskillscore as xs

    err = float(np.sqrt(((fc - truth) ** 2).mean())) / float(truth.std())
    acc = float(xs.pearson_r(fc - clim, truth - clim, dim=list(space)).mean())
    return {"rmse": err, "acc": acc}


def _variant_features(tf: np.ndarray, af: np.ndarray, grid: tuple[int, int, int], how: str):
    """Target and archive vectors of an experimental metric (squared differences)."""
    mu, sd = af.mean(0), af.std(0) + 1e-6
    zt, za = (tf - mu) / sd, (af - mu) / sd
    if how == "learned-z":
        return zt, za
    if how == "tile-z":
        h, w, c = grid  # the feature grid; average over 4 x 4 cells

        def pool(x):
            x = x.reshape(len(x), h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))
            return x.reshape(len(x), -1)

        pt, pa = pool(zt), pool(za)
        m2, s2 = pa.mean(0), pa.std(0) + 1e-6
        return (pt - m2) / s2, (pa - m2) / s2
    raise ValueError(how)


def _sq_dist(t: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Mean squared difference of every row of t to every row of a (float64, via matmul)."""
    t, a = t.astype(np.float64), a.astype(np.float64)
    d = (t**2).sum(1)[:, None] + (a**2).sum(1)[None, :] - 2 * t @ a.T
    return np.maximum(d, 0) / t.shape[1]


def _search_matrix(d: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def _usable(archive: xr.Dataset, leads) -> xr.Dataset:
    """The archive states with a successor at the longest lead."""
    return archive.sel(time=(archive.time + np.timedelta64(max(leads))).isin(archive.time))


def forecast_rmse(
    targets, archive, lead, *, model, k: int, var: str, verify, metric: str = "learned"
) -> float:
    """RMSE / std of the analogue forecast at ``lead`` (the selection of the ridge penalty)."""
    lab = xatmodist.analogs(targets, archive, k=k, model=model, metric=metric)
    lab = lab.time_analog.values
    succ = verify[var].sel(time=(lab + np.timedelta64(lead)).reshape(-1))
    fc = succ.values.reshape(lab.shape + succ.shape[1:]).mean(axis=1)
    truth = verify[var].sel(time=targets.time + lead).values
    return float(np.sqrt(((fc - truth) ** 2).mean()) / truth.std())


def evaluate(
    targets: xr.Dataset, archive: xr.Dataset, truth_at, leads, *, model: str, k: int, clim_of,
    space, var: str, truth_dataset, successor=None,
) -> dict:  # fmt: skip
    """Scores of every method at every lead (see the module docstring)."""
    usable = _usable(archive, leads)
    results: dict = {}
    picks: dict = {}
    t0 = time.perf_counter()
    for metric in ("learned", "l2", "hybrid"):
        best = xatmodist.analogs(targets, usable, k=k, metric=metric, model=model)
        picks[metric] = best.time_analog.values
    results["search_seconds"] = time.perf_counter() - t0
    if successor is not None:  # an analogue metric (task "analog")
        picks["successor"] = xatmodist.analogs(targets, usable, k=k, model=successor)[
            "time_analog"
        ].values
    tf = xatmodist.archive_features(targets, model=model).values
    af = xatmodist.archive_features(usable, model=model).values
    m = xatmodist.load_model(model)
    p = m.card.patch_size // m.module.encoder.reduction
    ny, nx = _tiles(targets, m)
    grid = (ny * p, nx * p, m.module.encoder.out_channels)
    for how in ("learned-z", "tile-z"):
        vt, va = _variant_features(tf, af, grid, how)
        picks[how] = usable.time.values[_search_matrix(_sq_dist(vt, va), k)]
    # the oracle: the k archive states whose successor at the first lead is nearest (l2)
    # to the verifying field; no forecast can know it, it bounds what a search can gain
    zs = xatmodist.archive_features(
        archive.sel(time=usable.time + np.timedelta64(leads[0])), model=model, metric="l2"
    ).values
    zv = xatmodist.archive_features(truth_dataset(leads[0]), model=model, metric="l2").values
    picks["oracle (first lead)"] = usable.time.values[_search_matrix(_sq_dist(zv, zs), k)]
    for name, lab in picks.items():
        rows = {}
        for lead in leads:
            succ = archive[var].sel(time=(lab + np.timedelta64(lead)).reshape(-1))
            fc = succ.values.reshape(lab.shape + succ.shape[1:]).mean(axis=1)
            fc = xr.DataArray(fc, dims=("target", *space))
            truth = truth_at(lead)
            rows[_lead_text(lead)] = _scores(fc, truth, clim_of(lead), space)
        results[name] = rows
    for name, fcf in (
        ("persistence", lambda lead: _as_target(targets[var], space)),
        ("climatology", lambda lead: clim_of(lead)),
    ):
        results[name] = {
            _lead_text(lead): _scores(fcf(lead), truth_at(lead), clim_of(lead), space)
            for lead in leads
        }
    return results


def _tiles(ds, m) -> tuple[int, int]:
    from xatmodist._apply import prepare

    return prepare(ds, m).tiling.shape


def _as_target(da: xr.DataArray, space) -> xr.DataArray:
    return xr.DataArray(da.values, dims=("target", *space))


def _lead_text(lead) -> str:
    return xatmodist._validate.duration_text(pd.Timedelta(lead))


#: ridge penalties tried for the sea-level-pressure analogue metric (chosen on 2008)
RIDGES = (0.01, 0.1, 1.0)
SLP_METRIC = Path(__file__).resolve().parents[1] / "pretrained" / "analog-ncep-slp"


def _slp_data():
    ds = xr.open_dataset(SLP / "slp.nc").load()
    return ds, [np.timedelta64(d, "D") for d in range(1, 6)]


def _targets(ds, first: str, last: str, leads):
    tt = ds.time.sel(time=slice(first, last))
    return ds.sel(time=tt[(tt + leads[-1]).isin(ds.time)])


def fit_slp_metric(k: int) -> dict:
    """Choose the ridge penalty on 2008, fit on 2001-2007, write ``pretrained/analog-ncep-slp``.

    Selection: metrics fitted on 2001-2006 search an archive of 2001-2007 for
    the 2008 targets; the penalty with the lowest 1-day RMSE is refitted on
    2001-2007 (the encoder's training years).  The held-out scores are added
    to the card by :func:`slp`.
    """
    from xatmodist.train import fit_analog_metric

    ds, leads = _slp_data()
    val_archive = _usable(ds.sel(time=slice("2001-01-01", "2007-12-31")), leads)
    val_targets = _targets(ds, "2008-01-01", "2008-12-31", leads)
    table = {}
    for ridge in RIDGES:
        m = fit_analog_metric(
            ds.sel(time=slice("2001-01-01", "2006-12-31")), encoder="atmodist-ncep-slp",
            lead="1D", ridge=ridge, name="validation",
        )  # fmt: skip
        table[str(ridge)] = forecast_rmse(
            val_targets, val_archive, leads[0], model=m, k=k, var="slp", verify=ds
        )
    best = float(min(table, key=table.get))
    m = fit_analog_metric(
        ds.sel(time=slice("2001-01-01", "2007-12-31")), encoder="atmodist-ncep-slp", lead="1D",
        ridge=best, name="analog-ncep-slp",
        data_description="NCEP/NCAR Reanalysis 1 daily sea-level pressure, 17 x 33 over the "
        "North Atlantic and Europe, 2001-2007 (the encoder's training years); the ridge "
        "penalty chosen on 2008",
    )  # fmt: skip
    l2 = forecast_rmse(
        val_targets, val_archive, leads[0], model="atmodist-ncep-slp", k=k, var="slp",
        verify=ds, metric="l2",
    )  # fmt: skip
    m.card.training.update(
        command="python -m benchmarks.eval_analogs --which slp --fit",
        selection={
            "what": "1-day analogue-forecast RMSE / std, k=10, metric fitted on 2001-2006, "
            "archive 2001-2007, targets 2008",
            "rmse_by_ridge": table,
            "chosen": best,
            "euclidean_rmse": l2,
        },
    )
    m.save(SLP_METRIC)
    return m.card.training["selection"]


def slp(k: int) -> dict:
    """The NCEP sea-level pressure evaluation (held-out scores go on the metric's card)."""
    ds, leads = _slp_data()
    var = "slp"
    space = [d for d in ds[var].dims if d != "time"]
    archive = ds.sel(time=slice("2001-01-01", "2008-12-31"))
    targets = _targets(ds, "2009-01-01", "2010-12-31", leads)
    doy = archive[var].groupby("time.dayofyear").mean()
    doy = doy.pad(dayofyear=15, mode="wrap").rolling(dayofyear=31, center=True).mean()
    doy = doy.isel(dayofyear=slice(15, -15))

    def clim_of(lead):
        days = (targets.time + lead).dt.dayofyear.values
        return xr.DataArray(doy.sel(dayofyear=days).values, dims=("target", *space))

    def truth_at(lead):
        return _as_target(ds[var].sel(time=targets.time + lead), space)

    res = evaluate(
        targets, archive, truth_at, leads, model="atmodist-ncep-slp", k=k, clim_of=clim_of,
        space=space, var=var, truth_dataset=lambda lead: ds.sel(time=targets.time + lead),
        successor=SLP_METRIC if SLP_METRIC.is_dir() else None,
    )  # fmt: skip
    res["data"] = {
        "archive": "2001-2008",
        "targets": "2009-2010",
        "n_targets": targets.sizes["time"],
    }
    return res


def card_metrics(res: dict, k: int) -> dict:
    """The analogue metric card's ``metrics.heldout`` from :func:`slp`'s results."""
    leads = list(res["l2"])
    pick = {"this_model": "successor", "l2": "l2", "learned": "learned", "hybrid": "hybrid"}
    return {
        "what": f"analogue forecasts (mean of the k={k} analogues' successors) of NCEP daily "
        "sea-level pressure: archive 2001-2008, targets 2009-2010; RMSE / std of the verifying "
        "fields and anomaly correlation (day-of-year climatology of the archive)",
        "command": "python -m benchmarks.eval_analogs --which slp",
        "n_targets": res["data"]["n_targets"],
        "leads": leads,
        "rmse": {n: [res[m][ld]["rmse"] for ld in leads] for n, m in pick.items()},
        "acc": {n: [res[m][ld]["acc"] for ld in leads] for n, m in pick.items()},
    }


def _swe(workdir: Path, seed: int, n_runs: int) -> xr.Dataset:
    path = workdir / f"analogs_{seed}_{n_runs}.zarr"
    if not path.exists():
        xatmodist.datasets.shallow_water(n_runs=n_runs, n_steps=80, seed=seed, path=path)
    ds = xr.open_zarr(path).load()
    # one time axis: run r's times shifted by r * 1000 days, so labels are unique and a
    # state's successor is in its own run
    parts = [
        ds.isel(run=r, drop=True).assign_coords(time=ds.time + np.timedelta64(1000 * r, "D"))
        for r in range(ds.sizes["run"])
    ]
    return xr.concat(parts, dim="time")


#: the encoder of the shallow-water evaluation (the default when the numbers in
#: docs/tutorials/analogs.md were measured; named so that they stay reproducible)
SWE_ENCODER = "atmodist-swe-vd-v6"


def swe(k: int, workdir: Path, runs: int = 8) -> dict:
    """The shallow-water evaluation (archive: ``runs`` runs of the training seeds)."""
    archive = _swe(workdir, 0, runs)
    held = _swe(workdir, 100000, 2)
    leads = [np.timedelta64(h, "h") for h in (6, 12, 24, 48)]
    tt = held.time[::3]
    tt = tt[(tt + leads[-1]).isin(held.time)]
    targets = held.sel(time=tt)
    space = ["lat", "lon"]
    clim = archive.vo.mean("time")

    def clim_of(lead):
        return xr.DataArray(
            np.broadcast_to(clim.values, (tt.size, *clim.shape)), dims=("target", *space)
        )

    def truth_at(lead):
        return _as_target(held.vo.sel(time=targets.time + lead), space)

    from xatmodist.train import fit_analog_metric

    # fitted on the archive runs themselves, with the penalty chosen for sea-level pressure
    # (no separate validation runs here)
    metric = fit_analog_metric(archive, encoder=SWE_ENCODER, lead="6h", ridge=0.1, name="swe-6h")
    res = evaluate(
        targets, archive, truth_at, leads, model=SWE_ENCODER, k=k,
        clim_of=clim_of, space=space, var="vo",
        truth_dataset=lambda lead: held.sel(time=targets.time + lead), successor=metric,
    )  # fmt: skip
    res["data"] = {
        "archive": f"seeds 0-{runs - 1} ({archive.sizes['time']} states)",
        "targets": "seeds 100000-100001",
        "n_targets": tt.size,
    }
    return res


def _table(name: str, res: dict) -> str:
    methods = [m for m in res if isinstance(res[m], dict) and m != "data"]
    leads = list(res[methods[0]])
    head = f"{name}: RMSE / std (ACC)\n" + "| method | " + " | ".join(leads) + " |\n"
    head += "|---" * (len(leads) + 1) + "|\n"
    for m in methods:
        cells = [f"{res[m][ld]['rmse']:.3f} ({res[m][ld]['acc']:.3f})" for ld in leads]
        head += f"| {m} | " + " | ".join(cells) + " |\n"
    return head


def main() -> None:
    """Print the tables and optionally save the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--which", default="slp,swe")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--workdir", default="data")
    p.add_argument("--swe-runs", type=int, default=32, help="simulator runs in the archive")
    p.add_argument("--json", default=None)
    p.add_argument(
        "--fit", action="store_true",
        help="slp: choose the ridge penalty on 2008, fit pretrained/analog-ncep-slp on "
        "2001-2007 and write its held-out scores to its card",
    )  # fmt: skip
    args = p.parse_args()
    warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
    xatmodist.set_options(progress=False)
    out = {}
    for which in args.which.split(","):
        if which == "slp" and args.fit:
            out["selection"] = fit_slp_metric(args.k)
            print("ridge selection (1-day RMSE on 2008):", out["selection"])  # noqa: T201
        res = slp(args.k) if which == "slp" else swe(args.k, Path(args.workdir), args.swe_runs)
        out[which] = res
        print(_table(which, res))  # noqa: T201
        if which == "slp" and args.fit:
            m = xatmodist.load_model(SLP_METRIC)
            m.card.metrics = {"heldout": card_metrics(res, args.k)}
            m.save(SLP_METRIC)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
