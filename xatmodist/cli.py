"""The ``xatmodist`` command line: parsing only; each subcommand calls one function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

__all__ = ["main", "open_data"]


def open_data(paths: list[str], chunks: dict | None = None):
    """Open netCDF, zarr or GRIB (cfgrib) lazily; several files are combined by coords."""
    import xarray as xr

    from .errors import InputError

    chunks = {} if chunks is None else chunks
    if not paths:
        raise InputError("No data path given.")
    for p in paths:
        if "*" not in p and not Path(p).exists():
            raise InputError(f"Data path {p!r} does not exist.")
    if len(paths) == 1 and "*" not in paths[0]:
        p = Path(paths[0])
        if p.is_dir() or p.suffix == ".zarr":
            return xr.open_zarr(p)
        if p.suffix in (".grib", ".grb", ".grib2", ".grb2"):
            return xr.open_dataset(p, engine="cfgrib", chunks=chunks)
        return xr.open_dataset(p, chunks=chunks)
    return xr.open_mfdataset(paths, combine="by_coords", chunks=chunks)


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(out=Path(args.out), model=args.model)
    return 0


def _simulate(args) -> int:
    from .datasets import shallow_water

    ds = shallow_water(
        n_runs=args.n_runs,
        n_steps=args.n_steps,
        seed=args.seed,
        nlat=args.nlat,
        step=args.step,
        spinup=args.spinup,
        amplitude=args.amplitude,
        path=args.out if str(args.out).endswith(".zarr") else None,
    )
    if not str(args.out).endswith(".zarr"):
        ds.to_netcdf(args.out)
    print(f"wrote {args.out}: {dict(ds.sizes)}")
    return 0


_OVERWRITE_HELP = "start afresh in an --out that holds an earlier run (its files are replaced)"


def _lag(text: str) -> int | str:
    """A lag argument: digits are a number of time steps, anything else a duration."""
    return int(text) if text.strip().isdigit() else text


def _train_encoder(args) -> int:
    from .train import fit_encoder

    ds = open_data(args.data)
    model = fit_encoder(
        ds,
        variables=args.variables,
        max_lag=args.max_lag,
        lag_step=args.lag_step,
        patch_size=args.patch_size,
        epochs=args.epochs,
        pairs_per_epoch=args.pairs_per_epoch,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        out=args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        name=args.name,
        threads=args.threads,
        lat_band=tuple(args.lat_band) if args.lat_band else None,
        val_every=args.val_every,
        block_length=args.block_length,
        stop_after=args.stop_after,
        data_description=" ".join(args.data),
        widths=tuple(args.widths),
        stem_stride=args.stem_stride,
        rank_weight=args.rank_weight,
        projection=args.projection,
        distance=args.distance,
        lat_reflection=(False if args.lat_reflection is None else (args.lat_reflection or True)),
        init=args.init,
    )
    print(f"saved {model.name} to {Path(args.out) / 'model'}")
    return 0


def add_loss_arguments(p: argparse.ArgumentParser) -> None:
    """``--variable-weights`` and ``--extra-encoder`` of the field-model trainers."""
    p.add_argument(
        "--variable-weights",
        nargs="+",
        default=None,
        metavar="NAME=W",
        help="given weights of the per-variable AtmoDist distances, e.g. vo=1 d=0",
    )
    p.add_argument(
        "--extra-encoder",
        action="append",
        default=[],
        metavar="NAME",
        help="another encoder whose distance (on its own variables) joins the loss; repeatable",
    )


def parse_weights(pairs: list[str] | None) -> dict[str, float] | None:
    """``["vo=1", "d=0"]`` -> ``{"vo": 1.0, "d": 0.0}``."""
    from .errors import InputError

    if pairs is None:
        return None
    out = {}
    for p in pairs:
        name, sep, w = p.partition("=")
        try:
            out[name] = float(w)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise InputError(
                f"--variable-weights takes NAME=WEIGHT pairs, e.g. vo=1 d=0; got {p!r}."
            )
    return out


def _train_field_model(args) -> int:
    from . import train

    ds = open_data(args.data)
    common = {
        "variables": args.variables,
        "encoder": args.encoder,
        "extra_encoders": args.extra_encoder,
        "variable_weights": parse_weights(args.variable_weights),
        "init": args.init,
        "l2_weight": args.l2_weight,
        "patch_size": args.patch_size,
        "epochs": args.epochs,
        "samples_per_epoch": args.samples_per_epoch,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "out": args.out,
        "resume": args.resume,
        "overwrite": args.overwrite,
        "name": args.name,
        "threads": args.threads,
        "data_description": " ".join(args.data),
    }
    if args.what == "downscaler":
        model = train.fit_downscaler(
            ds,
            factor=args.factor,
            content_loss=args.loss,
            balance_variables=args.balance_variables,
            upsample=args.upsample,
            adversarial=args.adversarial,
            adversarial_weight=args.adversarial_weight,
            **common,
        )
    else:
        model = train.fit_inpainter(
            ds,
            loss=args.loss,
            hole=tuple(args.hole),
            balance_variables=args.balance_variables,
            **common,
        )
    print(f"saved {model.name} to {Path(args.out) / 'model'}")
    return 0


def _evaluate_encoder(args) -> int:
    from .train import evaluate_encoder

    ds = open_data(args.data)
    metrics = evaluate_encoder(args.model, ds, n_pairs=args.n_pairs, seed=args.seed)
    if args.json:
        print(json.dumps(metrics, indent=1))
    else:
        nc = metrics["l2_nearest_centroid"]
        rows = [
            ("pairs", metrics["n_pairs"]),
            ("top-1 accuracy", f"{metrics['top1']:.3f} (chance {metrics['chance_top1']:.3f})"),
            ("within +-1 class", f"{metrics['within1']:.3f}"),
            ("l2 nearest-centroid top-1 / +-1", f"{nc['top1']:.3f} / {nc['within1']:.3f}"),
            ("Spearman rho learned distance", f"{metrics['spearman_learned']:.3f}"),
            (
                "  95% bootstrap interval",
                "{:.3f} .. {:.3f}".format(*metrics["spearman_learned_ci95"]),
            ),
            ("Spearman rho l2 distance", f"{metrics['spearman_l2']:.3f}"),
        ]
        for k, v in rows:
            print(f"{k:<34} {v}")
    return 0


def _models(args) -> int:
    from .zoo import list_models, load_model

    for name in list_models():
        card = load_model(name).card
        print(f"{name:<28} {card['task']:<11} {[v['name'] for v in card['variables']]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xatmodist`` command."""
    p = argparse.ArgumentParser(prog="xatmodist", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="distances, lag curve and lag prediction on the sample")
    d.add_argument("--out", default="demo-output", help="folder for the figure")
    d.add_argument("--model", default=None, help="encoder name or folder")
    d.set_defaults(func=_demo)

    s = sub.add_parser("simulate", help="shallow-water runs to netCDF or zarr")
    s.add_argument("--n-runs", type=int, required=True)
    s.add_argument("--n-steps", type=int, required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--nlat", type=int, default=None)
    s.add_argument("--step", default=None, help="output interval, e.g. 3h")
    s.add_argument("--spinup", default=None, help="discarded spin-up, e.g. 5D")
    s.add_argument("--amplitude", type=float, default=None)
    s.add_argument("--out", required=True, help="*.zarr (written incrementally) or *.nc")
    s.set_defaults(func=_simulate)

    t = sub.add_parser("train", help="train a model")
    tsub = t.add_subparsers(dest="what", required=True)
    te = tsub.add_parser("encoder", help="the AtmoDist lag pretext task")
    te.add_argument("data", nargs="+", help="netCDF/zarr/GRIB path(s) or glob")
    te.add_argument(
        "--max-lag",
        required=True,
        type=_lag,
        help="largest lag: a duration (36h) or a number of the data's time steps (12)",
    )
    te.add_argument(
        "--lag-step",
        default=None,
        type=_lag,
        help="class width: a duration or a number of time steps (default: the data's step)",
    )
    te.add_argument(
        "--patch-size",
        type=int,
        default=None,
        help="patch side in grid points (default: 32, or the largest that fits the grid)",
    )
    te.add_argument("--variables", nargs="+", default=None)
    te.add_argument("--epochs", type=int, default=10)
    te.add_argument("--pairs-per-epoch", type=int, default=32768)
    te.add_argument("--batch-size", type=int, default=64)
    te.add_argument("--lr", type=float, default=1e-3)
    te.add_argument("--seed", type=int, default=0)
    te.add_argument("--threads", type=int, default=None)
    te.add_argument("--lat-band", type=float, nargs=2, default=None)
    te.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128], help="stage widths")
    te.add_argument("--stem-stride", type=int, default=1, help="patchify stem stride (1: 3x3)")
    te.add_argument(
        "--rank-weight", type=float, default=0.0, help="weight of the distance ranking term"
    )
    te.add_argument(
        "--projection",
        action="store_true",
        help="take the distance on a learned 1x1 projection (needs --rank-weight > 0)",
    )
    te.add_argument(
        "--distance",
        choices=["squared", "l1"],
        default="squared",
        help="the model's distance: mean squared or mean absolute feature difference",
    )
    te.add_argument(
        "--lat-reflection",
        nargs="*",
        default=None,
        metavar="VAR",
        help="augment with north-south mirror images; the variables that change sign "
        "(default: found by CF standard_name)",
    )
    te.add_argument("--init", default=None, help="encoder to fine-tune (name/path)")
    te.add_argument("--val-every", type=int, default=10, help="every n-th time block validates")
    te.add_argument("--block-length", type=int, default=None, help="time steps per block")
    te.add_argument("--name", default="atmodist-custom")
    te.add_argument("--out", required=True, help="folder for checkpoints and the model")
    te.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    te.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)
    te.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop after this many epochs of the schedule (time-limited jobs; then --resume)",
    )
    te.set_defaults(func=_train_encoder)

    for what, hlp in (
        ("downscaler", "super-resolution from block-averaged fields"),
        ("inpainter", "filling random holes"),
    ):
        tf = tsub.add_parser(what, help=hlp)
        tf.add_argument("data", nargs="+", help="netCDF/zarr/GRIB path(s) or glob")
        tf.add_argument("--loss", choices=["atmodist", "l2"], default="atmodist")
        tf.add_argument("--encoder", default="atmodist-swe-vd", help="encoder of the loss")
        add_loss_arguments(tf)
        tf.add_argument("--init", default=None, help=f"{what} to start from (name/path)")
        tf.add_argument("--l2-weight", type=float, default=0.1 if what == "downscaler" else 0.5)
        tf.add_argument("--variables", nargs="+", default=None)
        tf.add_argument("--patch-size", type=int, default=64)
        tf.add_argument("--epochs", type=int, default=5 if what == "downscaler" else 8)
        tf.add_argument("--samples-per-epoch", type=int, default=4096)
        tf.add_argument("--batch-size", type=int, default=16)
        tf.add_argument("--lr", type=float, default=1e-3)
        tf.add_argument("--seed", type=int, default=0)
        tf.add_argument("--threads", type=int, default=None)
        tf.add_argument("--name", default=f"{what}-custom")
        tf.add_argument("--out", required=True, help="folder for checkpoints and the model")
        tf.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
        tf.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)
        tf.add_argument(
            "--balance-variables",
            action="store_true",
            help="one AtmoDist distance per variable, weighted so all count alike",
        )
        if what == "downscaler":
            tf.add_argument("--factor", type=int, default=4)
            tf.add_argument("--upsample", choices=["shuffle", "resize"], default="shuffle")
            tf.add_argument("--adversarial", action="store_true", help="add the GAN term (PhIRE)")
            tf.add_argument("--adversarial-weight", type=float, default=1e-3)
        else:
            tf.add_argument("--hole", type=int, nargs=2, default=[4, 32], help="min max size")
        tf.set_defaults(func=_train_field_model)

    e = sub.add_parser("evaluate", help="held-out metrics of a model")
    esub = e.add_subparsers(dest="what", required=True)
    ee = esub.add_parser("encoder", help="lag accuracy and distance-lag correlation")
    ee.add_argument("model", help="encoder name or folder")
    ee.add_argument("data", nargs="+", help="held-out data path(s)")
    ee.add_argument("--n-pairs", type=int, default=4096)
    ee.add_argument("--seed", type=int, default=1)
    ee.add_argument("--json", action="store_true")
    ee.set_defaults(func=_evaluate_encoder)

    m = sub.add_parser("models", help="list the model zoo")
    m.set_defaults(func=_models)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xatmodist`` command."""
    from .errors import XatmodistError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.func(args)
    except XatmodistError as err:
        print(f"xatmodist: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
