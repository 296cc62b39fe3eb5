"""The loop shared by the field-to-field trainers (downscaler, inpainter).

Both draw random high-resolution patches of the training fields each epoch,
optimise a loss of (patch batch, per-epoch random generator) with Adam and a
cosine schedule, checkpoint after every epoch and resume exactly.  The frozen
AtmoDist encoder's feature distance, the content loss of both, is here too.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..zoo import Model, load_model, require_task
from . import _checkpoint as checkpoint
from ._checkpoint import CHECKPOINT
from ._pairs import make_blocks, patch_index, take_patches
from ._source import FieldSource

__all__ = [
    "init_zscore",
    "fit_patches",
    "fit_field_model",
    "load_encoder",
    "load_extra_encoders",
    "start_model",
    "extra_encoders_card",
    "grid_card",
    "freeze",
    "swap_variable",
    "measured_weights",
    "require_atmodist",
    "balanced_distance",
    "fixed_weights",
    "weights_card",
    "model_id",
]


def init_zscore(net, src: FieldSource, seed: int) -> None:
    """Set the ``mean``/``std`` buffers of ``net`` from 64 random training fields."""
    import torch

    rng0 = np.random.default_rng([seed, 1])
    sample = torch.from_numpy(src.sample_fields(64, rng0)).double()
    net.mean.copy_(sample.mean(dim=(0, 2, 3)).float())
    net.std.copy_(sample.std(dim=(0, 2, 3)).float().clamp(min=1e-30))


def _an_encoder(encoder: str | Model, role: str) -> Model:
    enc = load_model(encoder)
    require_task(enc, "encoder", role=role, purpose="the AtmoDist loss")
    return enc


def load_encoder(encoder: str | Model, src: FieldSource) -> Model:
    """The frozen encoder of the AtmoDist loss, checked against the training variables."""
    enc = _an_encoder(encoder, "encoder")
    want = [w["name"] for w in enc.card["variables"]]
    have = [s["name"] for s in src.specs]
    fits = len(want) == len(have) and all(
        _match_variable(w, src.specs) == i for i, w in enumerate(enc.card["variables"])
    )
    if not fits:
        listed = lambda specs: [(v["name"], v.get("standard_name")) for v in specs]  # noqa: E731
        raise InputError(
            f"The encoder {enc.name!r} of the AtmoDist loss takes {listed(enc.card['variables'])} "
            f"(name, standard_name); the training data gives {listed(src.specs)}. If these are "
            "the same quantities, pass variables= in the encoder's order (and set their "
            "standard_name attributes). Otherwise this encoder cannot judge them: train with "
            "the l2 loss (fit_downscaler(content_loss='l2'), fit_inpainter(loss='l2')), or "
            "first train an encoder on your variables (xatmodist.train.fit_encoder(ds, "
            "variables=[...])) and pass it as encoder=."
        )
    return enc


def _match_variable(var: dict, specs: list[dict]) -> int | None:
    """Index of the training variable ``var`` (a card entry) is: same standard_name, else name."""
    std = var.get("standard_name")
    if std:
        hits = [i for i, s in enumerate(specs) if s.get("standard_name") == std]
        if len(hits) == 1:
            return hits[0]
    hits = [i for i, s in enumerate(specs) if s["name"] == var["name"]]
    return hits[0] if len(hits) == 1 else None


def load_extra_encoders(
    encoders: Sequence[str | Model], src: FieldSource, loss: tuple[str, str]
) -> list[tuple[Model, list[int]]]:
    """Each of ``encoders`` with the indices of the training variables it takes.

    A variable is found by its standard_name, else by its name.  ``loss`` is
    (argument name, value) of the trainer's loss: extra encoders need the
    AtmoDist loss.
    """
    if isinstance(encoders, (str, Model)):
        encoders = [encoders]
    encoders = list(encoders)
    if encoders:
        require_atmodist("extra_encoders", loss)
    have = [f"{s['name']} ({s.get('standard_name') or 'no standard_name'})" for s in src.specs]
    out = []
    for e in encoders:
        enc = _an_encoder(e, "extra_encoders")
        idx = []
        for var in enc.card["variables"]:
            k = _match_variable(var, src.specs)
            if k is None:
                raise InputError(
                    f"The extra encoder {enc.name!r} takes {var['name']!r} (standard_name "
                    f"{var.get('standard_name')!r}); the training data has {have}, none of them "
                    "matching. Give the variable that standard_name or name."
                )
            idx.append(k)
        out.append((enc, idx))
    return out


def extra_encoders_card(extra: list[tuple[Model, list[int]]], src: FieldSource) -> list[dict]:
    """The card's ``training.extra_encoders``."""
    return [
        {
            "name": enc.name,
            "sha256": enc.sha256,
            "variables": [src.specs[k]["name"] for k in idx],
            "alpha": float(enc.module.alpha),
        }
        for enc, idx in extra
    ]


def start_model(init, task: str, cls, args: dict, src: FieldSource) -> Model:
    """The trained ``task`` model ``init`` names, checked to fit ``args`` and the variables.

    ``cls`` is the network class: arguments an older card lacks had its
    signature's default then.
    """
    start = load_model(init)
    require_task(start, task, role="init", purpose="fine-tuning")
    defaults = {k: q.default for k, q in inspect.signature(cls).parameters.items()}
    have = {k: start.card["args"].get(k, defaults.get(k)) for k in args}
    if have != args:
        diff = {k: (have[k], args[k]) for k in args if have[k] != args[k]}
        raise InputError(
            f"init={start.name!r} does not fit these arguments: {diff} (init's value, "
            "requested). Pass the architecture the init model was trained with."
        )
    want = [v["name"] for v in start.card["variables"]]
    names = [s["name"] for s in src.specs]
    if want != names:
        raise InputError(
            f"init={start.name!r} was trained on {want}; the training data gives {names}. "
            "Pass variables= in the init model's order."
        )
    return start


def swap_variable(truth, pred, k: int):
    """``truth`` with variable ``k`` replaced by ``pred``'s (gradients flow through it)."""
    import torch

    return torch.cat([truth[:, :k], pred[:, k : k + 1], truth[:, k + 1 :]], dim=1)


def measured_weights(enc: Model, truth, baseline, distance: Callable) -> list[float]:
    """Weights that make every variable count alike in a per-variable AtmoDist loss.

    ``w_k = mean_j(D_j) / D_k`` with ``D_k = distance(truth with variable k from
    baseline, truth)``: the loss's own distance for a simple method's error
    (bicubic upsampling, a flat fill) in that variable alone.  The mean of
    ``1 / w_k`` is 1, so the weighted sum keeps the size of the plain loss.
    """
    import torch

    with torch.no_grad():
        d = [
            float(distance(swap_variable(truth, baseline, k), truth)) for k in range(truth.shape[1])
        ]
    if not all(math.isfinite(x) and x > 0 for x in d):
        raise InputError(
            f"The encoder {enc.name!r} does not respond to every variable (feature distances "
            f"{d} for a baseline's error in each variable alone), so balance_variables cannot "
            "weight them; train without balance_variables."
        )
    mean = sum(d) / len(d)
    return [mean / x for x in d]


#: what each option of the AtmoDist loss does, for the error when another loss is chosen
_ATMODIST_ONLY = {
    "balance_variables": (
        "balance_variables=True weights the AtmoDist feature distance per variable"
    ),
    "variable_weights": "variable_weights weight the AtmoDist feature distance per variable",
    "extra_encoders": "extra_encoders add feature distances to the AtmoDist loss",
}


def require_atmodist(option: str, loss: tuple[str, str]) -> None:
    """Refuse ``option`` (of ``_ATMODIST_ONLY``) unless ``loss``, (argument, value), is AtmoDist."""
    arg, value = loss
    if value != "atmodist":
        raise InputError(
            f"{_ATMODIST_ONLY[option]}; {arg}={value!r} has none. "
            f"Use {arg}='atmodist' or drop {option}."
        )


def fixed_weights(
    variable_weights, src: FieldSource, balance_variables: bool, loss: tuple[str, str]
) -> list[float] | None:
    """``variable_weights`` (name -> weight) checked and ordered as the training variables."""
    if variable_weights is None:
        return None
    names = [s["name"] for s in src.specs]
    require_atmodist("variable_weights", loss)
    if balance_variables:
        raise InputError(
            "Pass either balance_variables=True (weights measured before training) or "
            "variable_weights (weights given), not both."
        )
    if not hasattr(variable_weights, "keys") or sorted(map(str, variable_weights)) != sorted(
        map(str, names)
    ):
        raise InputError(
            f"variable_weights must map every training variable {names} to a weight, "
            f"e.g. {dict.fromkeys(names, 1.0)}; got {variable_weights!r}."
        )
    w = []
    for n in names:
        x = variable_weights[n]
        ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0
        if not ok:
            raise InputError(f"variable_weights[{n!r}] must be a finite number >= 0; got {x!r}.")
        w.append(float(x))
    if not any(w):
        raise InputError(
            f"variable_weights are all zero ({variable_weights!r}): the encoder would judge "
            "nothing. Give at least one variable a positive weight, or use content_loss='l2'."
        )
    return w


def balanced_distance(enc: Model, distance: Callable, pred, truth, weights, *extra):
    """``distance(pred, truth, *extra)``, or its weighted per-variable sum if ``weights``.

    Per variable ``k``: ``distance`` of the truth with variable ``k`` from
    ``pred`` (the truth's features computed once and passed as ``ft=``);
    variables of weight 0 cost nothing.
    """
    import torch

    if weights is None:
        return distance(pred, truth, *extra)
    with torch.no_grad():
        ft = enc.module.features(truth)
    return sum(
        w * distance(swap_variable(truth, pred, k), truth, *extra, ft=ft)
        for k, w in enumerate(weights)
        if w
    )


def model_id(model: Model | None) -> dict | None:
    """``{"name", "sha256"}`` of a model the training depends on (None stays None)."""
    if model is None:
        return None
    return {"name": model.name, "sha256": model.sha256}


def weights_card(src: FieldSource, weights: list[float] | None) -> dict | None:
    """The card's ``training.variable_weights``: per variable name, or None."""
    if weights is None:
        return None
    return {s["name"]: w for s, w in zip(src.specs, weights, strict=True)}


def grid_card(src: FieldSource) -> dict:
    """The ``grid`` entry of a card for models trained on ``src``."""
    return {
        "nlat": src.nlat,
        "nlon": src.nlon,
        "dlat": src.dlat,
        "dlon": src.dlon,
        "global": bool(src.wrap),
        "lat_descending": src.lat_descending,
    }


def freeze(net) -> None:
    """Eval mode, no gradients."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)


def fit_patches(
    net,
    src: FieldSource,
    loss_fn: Callable,
    *,
    patch_size: int,
    epochs: int,
    samples_per_epoch: int,
    batch_size: int,
    lr: float,
    seed: int,
    out: Path | None,
    resume: bool,
    progress: bool,
    stop_after: int | None = None,
    extra_state: dict | None = None,
    epoch_stats: Callable[[], dict] | None = None,
    overwrite: bool = False,
    config: dict | None = None,
) -> tuple[list[dict], float]:
    """Train ``net`` on random patches; return (history, training seconds).

    ``loss_fn(truth, rng)`` gets a batch of patches (B, C, P, P) and a numpy
    generator seeded by (seed, epoch), so a resumed run draws what an
    uninterrupted one would.  ``stop_after`` ends the run after that many
    epochs of the schedule (for time-limited jobs; continue with ``resume``).
    ``extra_state``: objects the loss updates itself (an adversarial
    discriminator and its optimizer), checkpointed and restored with the rest.
    ``epoch_stats()``: more entries for each epoch's history record (called
    once at the end of the epoch).  ``out`` is a Path already checked by the
    trainer with :func:`~xatmodist.train._checkpoint.check_out` (an earlier run
    there is continued with ``resume`` or removed first with ``overwrite``).  ``config``: the run's
    settings (JSON-able), saved in the checkpoint; resuming with others is
    refused (:func:`~xatmodist.train._checkpoint.check_config`).
    """
    import torch
    from tqdm.auto import tqdm

    blocks, _ = make_blocks(
        n_series=src.n_series,
        n_time=src.n_time,
        block_length=min(src.n_time, 32),
        max_lag=0,
        val_every=0,
    )
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr)
    steps_per_epoch = max(1, samples_per_epoch // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    ckpt = out / CHECKPOINT if out is not None else None
    start, history, seconds = 0, [], 0.0
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if resume and ckpt is not None and ckpt.is_file():
        state = checkpoint.load(ckpt)
        if config is not None:
            checkpoint.check_config(state, config, ckpt)
        start, history, seconds = checkpoint.restore(state, net, opt, sched, extra_state)
    if out is not None:
        if overwrite:
            checkpoint.clear(out)
        checkpoint.reset_log(out, history)
    end = epochs if stop_after is None else min(epochs, int(stop_after))
    for epoch in range(start, end):
        t0 = time.perf_counter()
        rng = np.random.default_rng([seed, 2, epoch])
        torch.manual_seed(seed * 100_003 + epoch)
        order = rng.permutation(len(blocks))
        per = max(1, math.ceil(samples_per_epoch / len(blocks)))
        xs = []
        for _, fields in src.iter_blocks([blocks[i] for i in order]):
            t = rng.integers(0, fields.shape[0], size=per)
            r, c = patch_index(
                rng, per, nlat=src.nlat, nlon=src.nlon, patch=patch_size, wrap=src.wrap
            )
            xs.append(take_patches(fields, t, r, c, patch_size))
            if sum(len(x) for x in xs) >= samples_per_epoch:
                break
        data = torch.from_numpy(np.concatenate(xs)[rng.permutation(sum(len(x) for x in xs))])
        step_rng = np.random.default_rng([seed, 3, epoch])
        net.train()
        total, seen = 0.0, 0
        bar = tqdm(
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not progress,
            leave=False,
        )
        for s in range(steps_per_epoch):
            truth = data[(s * batch_size) % len(data) :][:batch_size]
            loss = loss_fn(truth, step_rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(truth)
            seen += len(truth)
            bar.update(1)
        bar.close()
        el = time.perf_counter() - t0
        seconds += el
        rec = {"epoch": epoch + 1, "loss": total / max(seen, 1), "samples_per_second": seen / el}
        if epoch_stats is not None:
            rec.update(epoch_stats())
        history.append(rec)
        if out is not None:
            checkpoint.save(
                out,
                epoch=epoch,
                net=net,
                opt=opt,
                sched=sched,
                history=history,
                seconds=seconds,
                extra=extra_state,
                config=config,
            )
    freeze(net)
    return history, seconds


def fit_field_model(
    net,
    src: FieldSource,
    loss_fn: Callable,
    *,
    schedule: dict,
    out: Path | None,
    resume: bool,
    progress: bool,
    stop_after: int | None,
    card: dict,
    training: dict,
    enc: Model | None,
    l2_weight: float,
    data_description: str | None,
    extra_state: dict | None = None,
    epoch_stats: Callable[[], dict] | None = None,
    overwrite: bool = False,
    config: dict | None = None,
) -> Model:
    """Train with :func:`fit_patches`, then complete ``card`` and save to ``out/model``.

    ``schedule`` holds patch_size, epochs, samples_per_epoch, batch_size, lr
    and seed; ``card`` the task-specific entries (name, task, architecture,
    args, ...); ``training`` the task-specific training record; ``config`` the
    task-specific settings a resumed run must repeat (the schedule and the
    training variables are added here).
    """
    config = {
        "variables": [s["name"] for s in src.specs],
        "dims": [str(src.time), str(src.lat), str(src.lon)],
        **schedule,
        **(config or {}),
    }
    history, seconds = fit_patches(
        net,
        src,
        loss_fn,
        out=out,
        resume=resume,
        overwrite=overwrite,
        config=config,
        progress=progress,
        stop_after=stop_after,
        extra_state=extra_state,
        epoch_stats=epoch_stats,
        **schedule,
    )
    card = {
        "version": 1,
        **card,
        "variables": [{k: s[k] for k in ("name", "standard_name", "units")} for s in src.specs],
        "grid": grid_card(src),
        "patch_size": schedule["patch_size"],
        "normalisation": {
            "method": "per-variable z-score (buffers mean/std in the weights)",
            "mean": net.mean.tolist(),
            "std": net.std.tolist(),
        },
        "training": {
            "data": data_description or "user data",
            **training,
            "encoder": enc.name if enc is not None else None,
            "encoder_sha256": enc.sha256 if enc is not None else None,
            "l2_weight": l2_weight if enc is not None else 1.0,
            **{k: schedule[k] for k in ("epochs", "samples_per_epoch", "batch_size", "lr", "seed")},
            "train_seconds": round(seconds, 1),
            "history": history,
        },
        "metrics": {},
    }
    model = Model(card=card, module=net)
    if out is not None:
        model.save(out / "model")
    return model
