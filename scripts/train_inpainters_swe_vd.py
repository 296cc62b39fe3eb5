"""Reproduce pretrained/inpaint-swe-vd (AtmoDist loss) and inpaint-swe-vd-l2.

Run from the repo root after ``scripts/train_atmodist_swe_vd.py`` (which writes
the simulator data to ``data/``)::

    python scripts/train_inpainters_swe_vd.py --loss atmodist
    python scripts/train_inpainters_swe_vd.py --loss l2

Both train the same U-Net on the same 64x64 patches of the encoder's training
runs with the same random holes (rectangles and blobs of 4 to 32 cells), for
the same number of steps and seed; they differ only in the loss on the hole.
Resumable.  Evaluate with ``python -m benchmarks.eval_inpainting``.

``--init NAME --lr 1e-4 --epochs 6`` fine-tunes a trained inpainter;
``--extra-encoder atmodist-swe-d`` adds the divergence encoder's distance
to the AtmoDist loss (``fit_inpainter(extra_encoders=...)``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import xarray as xr

from xatmodist.cli import add_loss_arguments, parse_weights
from xatmodist.train import fit_inpainter

SETTINGS = {
    "hole": (4, 32),
    "patch_size": 64,
    "epochs": 24,
    "samples_per_epoch": 2500,
    "batch_size": 16,
    "lr": 1e-3,
    "width": 24,
    "levels": 3,
    "blocks": 3,
    "seed": 0,
}


def main() -> None:
    """Train one inpainter and save it to pretrained/."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loss", choices=["atmodist", "l2"], required=True)
    p.add_argument("--l2-weight", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    p.add_argument("--name", default=None, help="model name (default from the loss)")
    p.add_argument(
        "--encoder", default="atmodist-swe-vd", help="encoder of the AtmoDist loss (%(default)s)"
    )
    p.add_argument(
        "--balance-variables", action="store_true", help="per-variable AtmoDist loss, balanced"
    )
    add_loss_arguments(p)
    p.add_argument("--init", default=None, help="start from this inpainter (fine-tuning)")
    p.add_argument("--lr", type=float, default=SETTINGS["lr"])
    p.add_argument("--workdir", default="data")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--save-to", default="pretrained", help="model folder (default %(default)s)")
    args = p.parse_args()
    name = args.name or ("inpaint-swe-vd" if args.loss == "atmodist" else "inpaint-swe-vd-l2")
    ds = xr.open_zarr(Path(args.workdir) / "swe_train.zarr")
    model = fit_inpainter(
        ds,
        variables=["vo", "d"],
        loss=args.loss,
        encoder=args.encoder,
        l2_weight=args.l2_weight,
        balance_variables=args.balance_variables,
        extra_encoders=args.extra_encoder,
        variable_weights=parse_weights(args.variable_weights),
        init=args.init,
        out=Path(args.workdir) / f"train_{name}_e{args.epochs}",
        resume=True,
        name=name,
        threads=args.threads,
        data_description="shallow_water defaults, training runs seeds 0..95 (as the encoder)",
        **{**SETTINGS, "epochs": args.epochs, "lr": args.lr},
    )
    cmd = f"python scripts/train_inpainters_swe_vd.py --loss {args.loss}"
    if args.loss == "atmodist":
        cmd += f" --l2-weight {args.l2_weight}"
    if args.name:
        cmd += f" --name {args.name}"
    if args.loss == "atmodist" and args.encoder != "atmodist-swe-vd":
        cmd += f" --encoder {args.encoder}"
    if args.balance_variables:
        cmd += " --balance-variables"
    if args.variable_weights:
        cmd += " --variable-weights " + " ".join(args.variable_weights)
    cmd += "".join(f" --extra-encoder {e}" for e in args.extra_encoder)
    if args.init:
        cmd += f" --init {args.init}"
    if args.lr != SETTINGS["lr"]:
        cmd += f" --lr {args.lr:g}"
    if args.epochs != SETTINGS["epochs"]:
        cmd += f" --epochs {args.epochs}"
    model.card.training["command"] = cmd
    model.save(Path(args.save_to) / name)


if __name__ == "__main__":
    main()
