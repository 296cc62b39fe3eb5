"""Training of downscalers with an l2 or AtmoDist content loss."""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from pathlib import Path

from ..errors import InputError
from ..zoo import Model
from ._source import FieldSource
from ._supervised import (
    balanced_distance,
    check_balance,
    fit_field_model,
    init_zscore,
    load_encoder,
    variable_weights,
    weights_card,
)

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
    balance_variables: bool = False,
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
    upsample: str = "shuffle",
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    stop_after: int | None = None,
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
    balance_variables : bool
        AtmoDist loss only: one feature distance per variable -- the
        prediction of that variable beside the truth of the others, against
        the truth -- each weighted so that all variables count alike.  An
        encoder that mostly looks at one variable (vorticity) otherwise leaves
        the others to the l2 share alone.  The weights are the inverse of each
        variable's distance for bicubic upsampling of 32 coarsened training
        fields (scaled to keep the loss's size), measured once before training
        and recorded in the card.
    variables, dim, spatial_dims
        As in :func:`xatmodist.train.fit_encoder`.
    patch_size : int
        High-resolution patch side.
    epochs, samples_per_epoch, batch_size, lr
        Optimisation (Adam, cosine decay).
    width, blocks, upsample
        Architecture (see :class:`xatmodist.nn.Downscaler`).
    seed, out, resume, stop_after, name, threads, progress, data_description
        As in :func:`xatmodist.train.fit_encoder` (checkpoints each epoch,
        exact resume).

    Returns
    -------
    Model
        The downscaler with its card (``task="downscaler"``; ``grid`` is the
        output grid); saved to ``out/model`` if ``out`` is given.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ..nn import Downscaler

    if content_loss not in LOSSES:
        raise InputError(f"content_loss must be one of {LOSSES}; got {content_loss!r}.")
    if upsample not in ("shuffle", "resize"):
        raise InputError(f"upsample must be 'shuffle' or 'resize'; got {upsample!r}.")
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
    check_balance(balance_variables, "content_loss", content_loss)
    enc = load_encoder(encoder, src) if content_loss == "atmodist" else None
    torch.manual_seed(seed)
    net = Downscaler(src.n_channels, factor=factor, width=width, blocks=blocks, upsample=upsample)
    init_zscore(net, src, seed)
    std = net.std.view(1, -1, 1, 1)
    dist = _feature_distance(enc) if enc is not None else None
    weights = None
    if balance_variables:
        truth = torch.from_numpy(src.sample_fields(32, np.random.default_rng([seed, 3])))
        base = F.interpolate(coarsen(truth, factor), scale_factor=factor, mode="bicubic")
        weights = variable_weights(enc, truth, base, dist)

    def loss_fn(truth, rng):
        pred = net(coarsen(truth, factor))
        mse = ((pred - truth) / std).pow(2).mean()
        if enc is None:
            return mse
        feat = balanced_distance(enc, dist, pred, truth, weights)
        return float(enc.module.alpha) * feat + l2_weight * mse

    return fit_field_model(
        net,
        src,
        loss_fn,
        schedule={
            "patch_size": patch_size,
            "epochs": epochs,
            "samples_per_epoch": samples_per_epoch,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
        },
        out=Path(out) if out is not None else None,
        resume=resume,
        progress=progress,
        stop_after=stop_after,
        card={
            "name": name,
            "task": "downscaler",
            "architecture": "Downscaler",
            "args": {
                "in_channels": src.n_channels,
                "factor": factor,
                "width": width,
                "blocks": blocks,
                "upsample": upsample,
            },
            "factor": factor,
        },
        training={
            "content_loss": content_loss,
            "coarsening": f"block mean over {factor}x{factor} cells",
            "variable_weights": weights_card(src, weights),
        },
        enc=enc,
        l2_weight=l2_weight,
        data_description=data_description,
    )


def _feature_distance(enc: Model):
    """``dist(x, truth[, f_truth])``: mean squared feature difference over the patch."""
    import torch

    def dist(x, truth, ft=None):
        if ft is None:
            with torch.no_grad():
                ft = enc.module.features(truth)
        return (enc.module.features(x) - ft).pow(2).mean()

    return dist
