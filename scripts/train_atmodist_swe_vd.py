"""Reproduce pretrained/atmodist-swe-vd: simulate, train, evaluate, write the card.

Run from the repo root (takes about an hour on 2 CPU cores)::

    python scripts/train_atmodist_swe_vd.py [--workdir data] [--epochs 14]

Steps: (1) 96 training runs (seeds 0..95) and 16 held-out runs (seeds
100000..100015) of 80 three-hourly fields each from
``xatmodist.datasets.shallow_water`` at its defaults, written to zarr;
(2) ``xatmodist.train.fit_encoder`` on vorticity + divergence (resumable:
rerun the same command after an interruption); (3) the held-out evaluation
(``xatmodist.train.evaluate_encoder``) goes into the card, and the model is
written to ``pretrained/atmodist-swe-vd``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import xarray as xr

import xatmodist.datasets as datasets
from xatmodist.train import evaluate_encoder, fit_encoder
from xatmodist.zoo import load_model

TRAIN = {"n_runs": 96, "n_steps": 80, "seed": 0}
HELDOUT = {"n_runs": 16, "n_steps": 80, "seed": 100_000}


def main() -> None:
    """Simulate, train, evaluate and save the model."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", default="data")
    p.add_argument("--epochs", type=int, default=14)
    p.add_argument("--pairs-per-epoch", type=int, default=32768)
    p.add_argument("--dest", default="pretrained/atmodist-swe-vd")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    work = Path(args.workdir)
    paths = {}
    for key, kw in (("train", TRAIN), ("heldout", HELDOUT)):
        path = work / f"swe_{key}.zarr"
        if not (path / "zarr.json").exists() and not (path / ".zmetadata").exists():
            datasets.shallow_water(**kw, path=path)
        paths[key] = path
    train = xr.open_zarr(paths["train"])
    model = fit_encoder(
        train,
        variables=["vo", "d"],
        max_lag="36h",
        lag_step="3h",
        patch_size=32,
        epochs=args.epochs,
        pairs_per_epoch=args.pairs_per_epoch,
        batch_size=64,
        lr=2e-3,
        seed=0,
        out=work / "train_atmodist_swe_vd",
        resume=True,
        name="atmodist-swe-vd",
        data_description=(
            "xatmodist.datasets.shallow_water defaults (64x128 equiangular, 3-hourly, "
            f"5-day spin-up discarded): {TRAIN['n_runs']} runs x {TRAIN['n_steps']} steps, "
            f"seeds {TRAIN['seed']}..{TRAIN['seed'] + TRAIN['n_runs'] - 1}"
        ),
    )
    heldout = xr.open_zarr(paths["heldout"])
    model.card["training"]["command"] = "python scripts/train_atmodist_swe_vd.py"
    model.card["training"]["simulator"] = datasets.SIMULATOR_DEFAULTS
    model.save(args.dest)
    metrics = evaluate_encoder(load_model(args.dest), heldout, n_pairs=4096, seed=1)
    model.card["metrics"]["heldout"] = {
        "data": f"shallow_water seeds {HELDOUT['seed']}..{HELDOUT['seed'] + HELDOUT['n_runs'] - 1}"
        f" ({HELDOUT['n_runs']} runs x {HELDOUT['n_steps']} steps), never used in training",
        "command": "xatmodist evaluate encoder atmodist-swe-vd data/swe_heldout.zarr",
        **metrics,
    }
    model.save(args.dest)
    print(json.dumps({k: v for k, v in metrics.items() if k != "confusion"}, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
