"""Recipes: one TOML file per shipped model, run by ``xatmodist train --recipe FILE``.

A recipe names the model and its task, says where the training data come from
(``[data]``: files and a time range, or shallow-water runs simulated once and
cached as zarr in the work folder), the held-out data its card's numbers are
measured on (``[heldout]``, encoders), and the trainer's settings
(``[settings]``: the keyword arguments of :func:`xatmodist.train.fit_encoder`,
:func:`~xatmodist.train.fit_downscaler` or :func:`~xatmodist.train.fit_inpainter`,
flat or grouped as a card's ``training.config``).  A model's card names its
recipe (``training.recipe``); a card, or a model folder, is itself a recipe
of settings to train again on data you give.

Runs are resumable: the checkpoint lives in ``<workdir>/train_<name>``, and
running the same command again continues it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import InputError
from .zoo import CARD_FILE, Model

__all__ = ["fit", "load_recipe", "open_source", "run_recipe", "TRAINERS"]

log = logging.getLogger(__name__)


def _trainers():
    from .train import fit_downscaler, fit_encoder, fit_inpainter

    return {"encoder": fit_encoder, "downscaler": fit_downscaler, "inpainter": fit_inpainter}


#: the trainer of each task, by name (for messages)
TRAINERS = {"encoder": "fit_encoder", "downscaler": "fit_downscaler", "inpainter": "fit_inpainter"}


def load_recipe(path: str | Path) -> dict:
    """A recipe from a TOML file, a ``card.json`` or a model folder.

    A card gives ``name``, ``task`` and ``settings`` (its ``training.config``);
    its data are not known, so it is trained on data passed to :func:`run_recipe`.
    """
    p = Path(path)
    if p.is_dir() or p.name == CARD_FILE:
        from .zoo import load_model

        card = load_model(p).card
        config = card.training.get("config")
        if not isinstance(config, dict):
            raise InputError(
                f"The card of {card.name!r} records no training settings (training.config): it "
                "was trained before cards recorded them. Use its recipe file (recipes/) instead."
            )
        return {"name": card.name, "task": card.task, "settings": dict(config)}
    if not p.is_file():
        raise InputError(f"Recipe {str(p)!r} does not exist; pass a .toml file or a model folder.")
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        recipe = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{p}: not valid TOML ({err}).") from err
    for key in ("name", "task", "settings"):
        if key not in recipe:
            raise InputError(f"{p}: a recipe needs {key!r} (see recipes/*.toml).")
    if recipe["task"] not in TRAINERS:
        raise InputError(f"{p}: task must be one of {list(TRAINERS)}; got {recipe['task']!r}.")
    return recipe


def settings_of(recipe: Mapping) -> dict:
    """The trainer's keyword arguments: ``[settings]`` with its groups flattened."""
    flat = {}
    for k, v in recipe["settings"].items():
        if k == "task":
            continue
        if isinstance(v, dict) and k not in ("variable_weights",):
            flat.update(v)
        else:
            flat[k] = v
    return flat


def fit(recipe: str | Path | Mapping, data, **run) -> Model:
    """Train the recipe's model on ``data``; ``run`` holds run options (``out``, ...)."""
    from .train.config import TRAINERS as SETTINGS

    recipe = recipe if isinstance(recipe, Mapping) else load_recipe(recipe)
    settings = settings_of(recipe)
    known = {f.name for _, f, _, _ in SETTINGS[recipe["task"]].fields()}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise InputError(
            f"The recipe of {recipe['name']!r} has settings {TRAINERS[recipe['task']]} does not "
            f"take: {unknown}. Its settings are {sorted(known)}."
        )
    fit_task = _trainers()[recipe["task"]]
    return fit_task(data, **{**settings, "name": recipe["name"], **run})


def open_source(spec: Mapping, workdir: Path, which: str = "data") -> xr.Dataset:
    """The data a recipe's ``[data]`` or ``[heldout]`` section describes.

    ``paths`` (netCDF/zarr/GRIB, opened lazily; ``time = [first, last]``
    selects a range), or ``simulate``: a list of shallow-water sets
    (``{n_runs, seed}``, the simulator defaults otherwise, ``n_steps``) each
    simulated once into ``<workdir>/swe_<seed>_<n_runs>.zarr``; the sets are
    joined along ``run`` and ``runs`` keeps the first so many.
    """
    if "paths" in spec:
        from .cli import open_data

        ds = open_data([str(p) for p in spec["paths"]])
        if "time" in spec:
            ds = ds.sel(time=slice(*spec["time"]))
        return ds
    if "simulate" not in spec:
        raise InputError(f"The recipe's [{which}] needs paths = [...] or simulate = [...].")
    from . import datasets

    sets = []
    for kw in spec["simulate"]:
        kw = {**{k: v for k, v in spec.items() if k in ("n_steps", "step")}, **kw}
        suffix = "" if kw.get("step", "3h") == "3h" else f"_{kw['step']}"
        path = workdir / f"swe_{kw['seed']}_{kw['n_runs']}{suffix}.zarr"
        if not (path / "zarr.json").exists() and not (path / ".zmetadata").exists():
            datasets.shallow_water(**kw, path=path)
        sets.append(xr.open_zarr(path))
    ds = sets[0] if len(sets) == 1 else xr.concat(sets, dim="run", data_vars="all", join="exact")
    return ds.isel(run=slice(0, spec["runs"])) if "runs" in spec else ds


def run_recipe(
    path: str | Path,
    *,
    data=None,
    workdir: str | Path = "data",
    dest: str | Path | None = None,
    evaluate_only: bool = False,
    **run,
) -> Model:
    """Train (resumable), evaluate and save the model of the recipe at ``path``.

    ``data``: the training data (default: the recipe's ``[data]``); ``dest``:
    where the model is written (default: the recipe's ``dest``, else
    ``pretrained/<name>``; paths are relative to the working directory, the
    repository's root for the shipped recipes);
    ``evaluate_only``: re-measure the model at ``dest`` on the held-out data
    and rewrite its card's metrics alone (the weights are written back
    unchanged).  ``run``: run options of the trainer (``threads``,
    ``stop_after``, ...).
    """
    recipe, workdir = load_recipe(path), Path(workdir)
    name = recipe["name"]
    dest = Path(dest or recipe.get("dest") or Path("pretrained") / name)
    if evaluate_only:
        from .zoo import load_model

        model = load_model(dest)
    else:
        source = recipe.get("data", {})
        ds = data if data is not None else open_source(source, workdir)
        run = {"out": workdir / f"train_{name}", "resume": True, **run}
        model = fit(recipe, ds, data_description=source.get("description"), **run)
        if int(os.environ.get("RANK", "0")) != 0:
            return model  # under torchrun only rank 0 evaluates and writes the model
        if len(model.card.training["history"]) < settings_of(recipe).get("epochs", 0):
            return model  # a time-limited part of the run: run the command again to continue
        if Path(path).suffix == ".toml":
            model.card.training["recipe"] = f"recipes/{Path(path).name}"
            model.card.training["command"] = f"xatmodist train --recipe recipes/{Path(path).name}"
        if "kind" in source:
            model.card.training["data_kind"] = source["kind"]
    if "heldout" in recipe and model.card.task == "encoder":
        model.card.metrics["heldout"] = evaluate_heldout(model, recipe, workdir)
    model.save(dest)
    return model


def evaluate_heldout(model: Model, recipe: Mapping, workdir: Path) -> dict:
    """An encoder's held-out metrics and lag curve on the recipe's ``[heldout]`` data."""
    import xatmodist

    from .evaluate import evaluate_encoder

    spec = recipe["heldout"]
    test = open_source(spec, workdir, "heldout").load()
    metrics = evaluate_encoder(
        model, test, n_pairs=spec.get("n_pairs", 8192), seed=spec.get("seed", 1)
    )
    held = {"data": spec.get("description", "held-out data"), **metrics}
    held["command"] = f"xatmodist train --recipe recipes/{recipe['name']}.toml --evaluate-only"
    if spec.get("lag_curve", False):
        curve = xatmodist.lag_curve(test, model=model)
        held["lag_curve"] = {
            "lag_hours": [float(h) for h in curve.lag.values / np.timedelta64(1, "h")],
            "learned": [float(x) for x in curve.learned.values],
            "l2": [float(x) for x in curve.l2.values],
            "learned_monotonic": bool((np.diff(curve.learned.values) > 0).all()),
            "l2_monotonic": bool((np.diff(curve.l2.values) > 0).all()),
        }
    if model.card.lag_step_seconds < 86400 and spec.get("diurnal", False):
        held["diurnal"] = diurnal(metrics["confusion"], np.asarray(model.card.lag_classes) / 3600)
    return held


def diurnal(confusion, classes_h: np.ndarray) -> dict:
    """How much of the lag skill is the time of day (lags in hours, sub-daily data)."""
    conf = np.asarray(confusion, dtype=float)
    phase = (classes_h[:, None] - classes_h[None, :]) % 24 == 0
    n = conf.sum()
    same_phase = conf[phase].sum() / n
    top1 = np.trace(conf) / n
    return {
        "same_time_of_day": float(same_phase),
        "top1_given_time_of_day": float(top1 / same_phase) if same_phase else 0.0,
        "chance_same_time_of_day": float(phase.mean()),
        "note": "share of pairs whose predicted lag has the true lag's time of day; top-1 "
        "among those (the skill beyond the diurnal phase)",
    }
