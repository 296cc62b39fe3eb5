"""Training of downscalers with an l2 or AtmoDist content loss."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..zoo import Model, load_model
from . import _checkpoint as checkpoint
from ._checkpoint import CHECKPOINT
from ._pairs import make_blocks, patch_index, take_patches
from ._source import FieldSource

__all__ = ["fit_downscaler", "coarsen"]

LOSSES = ("atmodist", "l2")


def coarsen(x, factor: int):
    """Conservative coarsening: block means over ``factor x factor`` cells (torch)."""
    import torch.nn.functional as F

    return F.avg_pool2d(x, factor)


def fit_downscaler(
    hr,
    *,
    factor: int = 4,
    content_loss: str = "atmodist",
    encoder: str | Model = "atmodist-swe-vd",
    l2_weight: float = 0.1,
    variables: Sequence[Hashable] | None = None,
    dim: Hashable | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    patch_size: int = 64,
    epochs: int = 5,
    samples_per_epoch: int = 4096,
    batch_size: int = 16,
    lr: float = 1e-3,
    width: int = 48,
    blocks: int = 6,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    name: str = "downscaler-custom",
    threads: int | None = None,
    progress: bool = True,
    data_description: str | None = None,
) -> Model:
    """Train a residual CNN to refine block-averaged fields by ``factor``.

    Low-resolution inputs are made by block-averaging random high-resolution
    patches (conservative coarsening).  ``content_loss="l2"`` minimises the MSE
    of the z-scored fields; ``"atmodist"`` minimises the frozen encoder's
    feature distance (``alpha * mean((f(pred) - f(truth))**2)``, the encoder in
    eval mode) plus ``l2_weight`` times the MSE, as in the paper.

    Parameters
    ----------
    hr : Dataset or DataArray
        High-resolution training fields (any CF dataset, lazy or in memory).
    factor : int
        Refinement factor (a power of 2); ``patch_size`` must be a multiple.
    content_loss : {"atmodist", "l2"}
        The loss (see above).
    encoder : str or Model
        Encoder defining the AtmoDist loss; its variables must be the
        downscaler's.
    l2_weight : float
        Share of the MSE in the AtmoDist loss.
    variables, dim, spatial_dims
        As in :func:`xatmodist.train.fit_encoder`.
    patch_size : int
        High-resolution patch side.
    epochs, samples_per_epoch, batch_size, lr
        Optimisation (Adam, cosine decay).
    width, blocks : int
        Architecture (see :class:`xatmodist.nn.Downscaler`).
    seed, out, resume, name, threads, progress, data_description
        As in :func:`xatmodist.train.fit_encoder` (checkpoints each epoch,
        exact resume).

    Returns
    -------
    Model
        The downscaler with its card (``task="downscaler"``; ``grid`` is the
        output grid); saved to ``out/model`` if ``out`` is given.
    """
    import torch
    from tqdm.auto import tqdm

    from ..nn import Downscaler

    if content_loss not in LOSSES:
        raise InputError(f"content_loss must be one of {LOSSES}; got {content_loss!r}.")
    if factor < 2 or factor & (factor - 1):
        raise InputError(f"factor must be a power of 2 (2, 4, 8, ...); got {factor}.")
    if patch_size % factor or patch_size // factor < 4:
        raise InputError(
            f"patch_size={patch_size} must be a multiple of factor={factor} and give at "
            f"least 4 coarse cells; e.g. patch_size={16 * factor}."
        )
    if threads is not None:
        torch.set_num_threads(int(threads))
    src = FieldSource(hr, variables, dim, spatial_dims)
    if patch_size > src.nlat:
        raise InputError(f"patch_size={patch_size} exceeds the {src.nlat} latitudes of the grid.")
    enc = None
    if content_loss == "atmodist":
        enc = load_model(encoder)
        want = [w["name"] for w in enc.card["variables"]]
        have = [s["name"] for s in src.specs]
        if len(want) != len(have):
            raise InputError(
                f"The encoder {enc.name!r} takes {want}; the training data gives {have}. "
                "Pass variables= in the encoder's order."
            )
    blocks_, _ = make_blocks(
        n_series=src.n_series,
        n_time=src.n_time,
        block_length=min(src.n_time, 32),
        max_lag=0,
        val_every=0,
    )
    torch.manual_seed(seed)
    net = Downscaler(src.n_channels, factor=factor, width=width, blocks=blocks)
    rng0 = np.random.default_rng([seed, 1])
    sample = torch.from_numpy(src.sample_fields(64, rng0)).double()
    net.mean.copy_(sample.mean(dim=(0, 2, 3)).float())
    net.std.copy_(sample.std(dim=(0, 2, 3)).float().clamp(min=1e-30))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = max(1, samples_per_epoch // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    out = Path(out) if out is not None else None
    ckpt = out / CHECKPOINT if out is not None else None
    start, history, seconds = 0, [], 0.0
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if resume and ckpt is not None and ckpt.is_file():
        start, history, seconds = checkpoint.restore(checkpoint.load(ckpt), net, opt, sched)
    if out is not None:
        checkpoint.reset_log(out, history)
    std = net.std.view(1, -1, 1, 1)

    def loss_fn(pred, truth):
        mse = ((pred - truth) / std).pow(2).mean()
        if enc is None:
            return mse
        fp = enc.module.features(pred)
        with torch.no_grad():
            ft = enc.module.features(truth)
        return float(enc.module.alpha) * (fp - ft).pow(2).mean() + l2_weight * mse

    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        rng = np.random.default_rng([seed, 2, epoch])
        torch.manual_seed(seed * 100_003 + epoch)
        order = rng.permutation(len(blocks_))
        per = max(1, math.ceil(samples_per_epoch / len(blocks_)))
        xs = []
        for _, fields in src.iter_blocks([blocks_[i] for i in order]):
            t = rng.integers(0, fields.shape[0], size=per)
            r, c = patch_index(
                rng, per, nlat=src.nlat, nlon=src.nlon, patch=patch_size, wrap=src.wrap
            )
            xs.append(take_patches(fields, t, r, c, patch_size))
            if sum(len(x) for x in xs) >= samples_per_epoch:
                break
        data = torch.from_numpy(np.concatenate(xs)[rng.permutation(sum(len(x) for x in xs))])
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
            pred = net(coarsen(truth, factor))
            loss = loss_fn(pred, truth)
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
        history.append(rec)
        if out is not None:
            checkpoint.save(
                out, epoch=epoch, net=net, opt=opt, sched=sched, history=history, seconds=seconds
            )
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    card = {
        "name": name,
        "version": 1,
        "task": "downscaler",
        "architecture": "Downscaler",
        "args": {"in_channels": src.n_channels, "factor": factor, "width": width, "blocks": blocks},
        "factor": factor,
        "variables": [{k: s[k] for k in ("name", "standard_name", "units")} for s in src.specs],
        "grid": {
            "nlat": src.nlat,
            "nlon": src.nlon,
            "dlat": src.dlat,
            "dlon": src.dlon,
            "global": bool(src.wrap),
            "lat_descending": src.lat_descending,
        },
        "patch_size": patch_size,
        "normalisation": {
            "method": "per-variable z-score (buffers mean/std in the weights)",
            "mean": net.mean.tolist(),
            "std": net.std.tolist(),
        },
        "training": {
            "data": data_description or "user data",
            "content_loss": content_loss,
            "encoder": enc.name if enc is not None else None,
            "encoder_sha256": enc.sha256 if enc is not None else None,
            "l2_weight": l2_weight if enc is not None else 1.0,
            "coarsening": f"block mean over {factor}x{factor} cells",
            "epochs": epochs,
            "samples_per_epoch": samples_per_epoch,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "train_seconds": round(seconds, 1),
            "history": history,
        },
        "metrics": {},
    }
    model = Model(card=card, module=net)
    if out is not None:
        model.save(out / "model")
    return model
