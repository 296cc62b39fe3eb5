"""What every trainer shares: the keyword-argument front end, start models, the card frame."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

import numpy as np

from .. import _device, options
from .._threads import torch_threads
from ..errors import InputError
from ..zoo import Model, load_model, require_task
from . import _checkpoint as checkpoint
from . import _parallel as par
from ._loop import run_task
from ._source import FieldSource
from .config import TRAINERS, Settings

__all__ = [
    "card_frame",
    "document",
    "freeze",
    "init_zscore",
    "model_id",
    "resolved_config",
    "start_model",
    "train",
]


def train(data, task: str, kwargs: Mapping, build: Callable, caller: str) -> Model:
    """Run a trainer: settings from ``kwargs``, the task ``build(settings, src)``, the loop.

    ``build`` returns a :class:`~xatmodist.train._loop.Task` with a
    ``finish(history, seconds, first_epoch) -> Model`` method.  The model is
    saved to ``out/model`` when ``out`` is given.
    """
    import torch

    s = TRAINERS[task].settings(kwargs, caller)
    run = s.run
    out = checkpoint.check_out(run.out, resume=run.resume, overwrite=run.overwrite)
    opts = options.get_options()
    progress = opts["progress"] if run.progress is None else run.progress
    device, precision = _device_of(run, opts)
    with torch_threads(run.threads):
        src = FieldSource(data, s.data.variables, s.data.dim, s.data.spatial_dims)
        t = build(s, src)
        history, seconds, first = run_task(t, run, out, progress, device, precision)
        t.to(torch.device("cpu"))  # the model is written and returned on the CPU
        model = t.finish(history, seconds, first)
        model.card.training.update(device=str(device), precision=precision)
    if out is not None and par.world()[0] == 0:  # under torchrun, rank 0 writes
        model.save(out / checkpoint.MODEL)
    return model


def _device_of(run, opts: dict):
    """The torch device and precision of a run: its own settings, else the options."""
    import os

    device = opts["device"] if run.device is None else run.device
    precision = opts["precision"] if run.precision is None else run.precision
    _device.check_precision(precision, device)  # the device is checked by resolving it
    return _device.training_device(device, int(os.environ.get("LOCAL_RANK", "0"))), precision


def document(fn: Callable, task: str) -> Callable:
    """Give a trainer its signature and ``Parameters`` section from its settings."""
    trainer = TRAINERS[task]
    fn.__signature__ = trainer.signature("ds")
    fn.__doc__ = inspect.cleandoc(fn.__doc__).replace("{settings}", trainer.parameters_doc())
    return fn


def resolved_config(s: Settings, src: FieldSource, **resolved) -> dict:
    """The settings a resumed run must repeat: as given, with ``resolved`` values instead.

    The variables and dims as found in the data are always among them; the
    others (e.g. lags as durations, models by name and sha256) come from the
    task.
    """
    groups = [g for g in s.config().values() if isinstance(g, dict)]
    flat = {k: v for g in groups for k, v in g.items() if k not in ("dim", "spatial_dims")}
    return {
        **flat,
        "variables": [x["name"] for x in src.specs],
        "dims": [str(src.time), str(src.lat), str(src.lon)],
        **resolved,
    }


def init_zscore(net, src: FieldSource, seed: int) -> None:
    """Set the ``mean``/``std`` buffers of ``net`` from 64 random training fields."""
    import torch

    rng0 = np.random.default_rng([seed, 1])
    sample = torch.from_numpy(src.sample_fields(64, rng0)).double()
    net.mean.copy_(sample.mean(dim=(0, 2, 3)).float())
    net.std.copy_(sample.std(dim=(0, 2, 3)).float().clamp(min=1e-30))


def start_model(init, task: str, cls, args: dict, src: FieldSource) -> Model | None:
    """The trained ``task`` model ``init`` names (None: none), checked against ``args``.

    ``cls`` is the network class: arguments an older card lacks had its
    signature's default then.
    """
    if init is None:
        return None
    start = load_model(init)
    require_task(start, task, role="init", purpose="fine-tuning")
    defaults = {k: q.default for k, q in inspect.signature(cls).parameters.items()}
    have = {k: start.card.args.get(k, defaults.get(k)) for k in args}
    if have != args:
        diff = {k: (have[k], args[k]) for k in args if have[k] != args[k]}
        raise InputError(
            f"init={start.name!r} does not fit these arguments: {diff} (init's value, "
            "requested). Pass the architecture the init model was trained with."
        )
    want = [v.name for v in start.card.variables]
    names = [s["name"] for s in src.specs]
    if want != names:
        raise InputError(
            f"init={start.name!r} was trained on {want}; the training data gives {names}. "
            "Pass variables= in the init model's order."
        )
    return start


def model_id(model: Model | None) -> dict | None:
    """``{"name", "sha256"}`` of a model the training depends on (None stays None)."""
    if model is None:
        return None
    return {"name": model.name, "sha256": model.sha256}


def freeze(net) -> None:
    """Eval mode, no gradients."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)


def card_frame(s: Settings, src: FieldSource, **entries) -> dict:
    """A card's common entries around the task's own ``entries``.

    ``entries`` holds ``architecture``, ``args``, the task's keys (e.g.
    ``factor``), ``normalisation`` and ``training`` (the task's record, to
    which the data, schedule and settings are added).
    """
    training = entries.pop("training")
    sch = s.schedule
    return {
        "name": s.run.name or s.trainer.default_name,
        "version": 1,
        "task": s.trainer.task,
        "architecture": entries.pop("architecture"),
        "args": entries.pop("args"),
        "variables": [{k: x[k] for k in ("name", "standard_name", "units")} for x in src.specs],
        "grid": {
            "nlat": src.nlat,
            "nlon": src.nlon,
            "dlat": src.dlat,
            "dlon": src.dlon,
            "global": bool(src.wrap),
            "lat_descending": src.lat_descending,
        },
        **entries,
        "training": {
            "data": s.run.data_description or "user data",
            **training,
            **{k: getattr(sch, k) for k in ("epochs", "batch_size", "lr", "seed")},
            "torch_threads": _threads(),
            "world_size": par.world()[1],
            "config": s.config(),
        },
        "metrics": {},
    }


def _threads() -> int:
    import torch

    return torch.get_num_threads()
