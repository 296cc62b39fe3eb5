"""The ``xatmodist`` command line: parsing only; each subcommand calls one function."""

from __future__ import annotations

import argparse
import json
import logging
import os
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


#: argparse types of the settings' annotations (anything else is text)
_TYPES = {"int": int, "float": float, "list[int]": int, "list[float]": float}
#: conversions of parsed values named by a setting's ``cli["type"]``
_CONVERT = {"weights": parse_weights, "reflection": lambda names: names or True}


def add_settings(p: argparse.ArgumentParser, trainer) -> None:
    """One option per setting of ``trainer`` (:mod:`xatmodist.train.config`).

    Help, type and choices come from the setting; an option not given is not
    passed, so the library's default applies (the help shows it).
    """
    defaults = trainer.defaults()
    for section, f, doc, hints in trainer.fields():
        cli = dict(hints)
        flags = cli.pop("flags", ["--" + f.name.replace("_", "-")])
        doc = " ".join(doc.split())
        first = doc.split(". ")[0].rstrip(".")
        shown = f"default: {defaults[f.name]}" if f.name in defaults else "required"
        kw = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{first} [{section}; {shown}]"}
        kind = str(f.type).split(" | ")[0]
        if kind == "bool" and "nargs" not in cli:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            convert = cli.pop("type", None)
            kw["type"] = convert if callable(convert) else _TYPES.get(kind, str)
        p.add_argument(*flags, **kw, **cli)


def settings_from(args: argparse.Namespace, trainer) -> dict:
    """The settings given on the command line, converted (see :func:`add_settings`)."""
    out = {}
    for _, f, _, hints in trainer.fields():
        if f.name in vars(args):
            convert = hints.get("type")
            value = getattr(args, f.name)
            out[f.name] = _CONVERT[convert](value) if isinstance(convert, str) else value
    return out


def _train(args) -> int:
    from .errors import InputError
    from .recipes import fit, run_recipe

    if args.recipe is not None:
        run = {
            k: getattr(args, k)
            for k in ("threads", "stop_after", "device", "precision", "progress")
            if getattr(args, k) is not None
        }
        model = run_recipe(
            args.recipe,
            data=open_data(args.data) if args.data else None,
            workdir=args.workdir,
            dest=args.dest,
            evaluate_only=args.evaluate_only,
            **run,
        )
        if os.environ.get("RANK", "0") == "0":  # under torchrun rank 0 writes the model
            print(f"saved {model.name} to {args.dest or Path('pretrained') / model.name}")
        return 0
    if args.what is None:
        raise InputError(
            "xatmodist train needs a task and data (xatmodist train encoder DATA... --max-lag "
            "36h --out runs/mine) or a recipe (xatmodist train --recipe recipes/NAME.toml)."
        )
    from .train.config import TRAINERS

    settings = settings_from(args, TRAINERS[args.what])
    settings.setdefault("data_description", " ".join(args.data))
    model = fit({"name": None, "task": args.what, "settings": {}}, open_data(args.data), **settings)
    out = settings.get("out")
    print(f"saved {model.name} to {Path(out) / 'model'}" if out else f"trained {model.name}")
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
    from .zoo import format_models

    print(format_models())
    return 0


def _train_parser(sub) -> None:
    """``xatmodist train``: by recipe, or ``train TASK DATA... --setting ...``."""
    from .train.config import TRAINERS

    t = sub.add_parser(
        "train",
        help="train a model (by task, or by --recipe)",
        description="Train a model: xatmodist train TASK DATA... [--settings], or "
        "xatmodist train --recipe recipes/NAME.toml (a model folder or card.json is a recipe "
        "of settings; pass --data for it).",
    )
    t.add_argument("--recipe", default=None, help="a recipe .toml, model folder or card.json")
    t.add_argument("--data", nargs="+", default=None, help="training data of --recipe")
    t.add_argument("--workdir", default="data", help="--recipe: data cache and checkpoints")
    t.add_argument("--dest", default=None, help="--recipe: model folder (pretrained/NAME)")
    t.add_argument("--evaluate-only", action="store_true", help="--recipe: re-measure the model")
    t.add_argument("--threads", type=int, default=None, help="--recipe: torch threads")
    t.add_argument("--stop-after", type=int, default=None, help="--recipe: epochs in this call")
    t.add_argument("--device", default=None, help="--recipe: auto, cpu, cuda, cuda:N or mps")
    t.add_argument(
        "--precision", default=None, choices=["float32", "bfloat16", "float16"],
        help="--recipe: autocast type of the forward passes",
    )  # fmt: skip
    t.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="--recipe: progress bars (default: on a terminal)",
    )  # fmt: skip
    t.set_defaults(func=_train, what=None)
    tsub = t.add_subparsers(dest="what")
    helps = {
        "encoder": "the AtmoDist lag pretext task (xatmodist.train.fit_encoder)",
        "downscaler": "a downscaler (xatmodist.train.fit_downscaler)",
        "inpainter": "an inpainter (xatmodist.train.fit_inpainter)",
    }
    for task, trainer in TRAINERS.items():
        tp = tsub.add_parser(task, help=helps[task], description=helps[task])
        tp.add_argument("data", nargs="+", help="netCDF/zarr/GRIB path(s) or glob")
        add_settings(tp, trainer)
        tp.set_defaults(func=_train, recipe=None)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xatmodist`` command."""
    p = argparse.ArgumentParser(
        prog="xatmodist",
        description="Learned distances for atmospheric fields: the demo, the shallow-water "
        "simulator, training (by task or by recipe), evaluation and the model zoo.",
        epilog="xatmodist COMMAND --help describes each command.",
    )
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

    _train_parser(sub)
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
