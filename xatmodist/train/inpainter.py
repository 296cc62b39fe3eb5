"""Training of inpainters with an l2 or AtmoDist loss on random holes."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence

from .._threads import restores_torch_threads
from ..errors import InputError
from ..zoo import Model
from . import _checkpoint as checkpoint
from ._masks import KINDS, random_masks
from ._source import FieldSource
from ._supervised import (
    balanced_distance,
    extra_encoders_card,
    fit_field_model,
    fixed_weights,
    init_zscore,
    load_encoder,
    load_extra_encoders,
    measured_weights,
    model_id,
    require_atmodist,
    start_model,
    weights_card,
)

__all__ = ["fit_inpainter", "LOSSES"]

LOSSES = ("atmodist", "l2")


def _near_hole_distance(enc):
    """``dist(x, truth, mask[, f_truth])``: feature distance over the cells that see the hole."""
    import torch
    import torch.nn.functional as F

    net = enc.module

    def dist(x, truth, mask, ft=None):
        if ft is None:
            with torch.no_grad():
                ft = net.features(truth)
        fp = net.features(x)
        r = mask.shape[-1] // fp.shape[-1]
        # feature cells whose receptive field reaches into the hole
        w = F.max_pool2d(F.max_pool2d(mask, r), 3, stride=1, padding=1)
        d = net.feature_distance(fp, ft, dim=1, keepdim=True)
        return (d * w).sum() / w.sum().clamp(min=1.0)

    return dist


def _hole_loss(enc, l2_weight: float, std, weights=None, extra=()):
    """Loss on the hole: [alpha * feature distance near the hole] + l2_weight * MSE in it.

    With ``weights``, the feature distance is taken per variable (the fill of
    that variable beside the truth of the others) and weighted.  Each of
    ``extra`` (encoder, variable indices) adds its own near-hole distance.
    """
    dist = _near_hole_distance(enc) if enc is not None else None
    extra_terms = [(float(e.module.alpha), _near_hole_distance(e), idx) for e, idx in extra]

    def loss(filled, truth, mask):
        n_hole = mask.sum().clamp(min=1.0) * filled.shape[1]
        mse = (((filled - truth) / std).pow(2) * mask).sum() / n_hole
        if enc is None:
            return mse
        feat = balanced_distance(enc, dist, filled, truth, weights, mask)
        loss = float(enc.module.alpha) * feat + l2_weight * mse
        for alpha, d, idx in extra_terms:
            loss = loss + alpha * d(filled[:, idx], truth[:, idx], mask)
        return loss

    return loss


@restores_torch_threads
def fit_inpainter(
    ds,
    *,
    loss: str = "atmodist",
    encoder: str | Model = "atmodist-swe-vd",
    l2_weight: float = 0.5,
    balance_variables: bool = False,
    variable_weights: Mapping[Hashable, float] | None = None,
    extra_encoders: Sequence[str | Model] = (),
    init: str | os.PathLike | Model | None = None,
    hole: tuple[int, int] = (4, 32),
    hole_kinds: Sequence[str] = KINDS,
    variables: Sequence[Hashable] | None = None,
    dim: Hashable | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    patch_size: int = 64,
    epochs: int = 8,
    samples_per_epoch: int = 2500,
    batch_size: int = 16,
    lr: float = 1e-3,
    width: int = 24,
    levels: int = 3,
    blocks: int = 3,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    stop_after: int | None = None,
    name: str = "inpainter-custom",
    threads: int | None = None,
    progress: bool = True,
    data_description: str | None = None,
) -> Model:
    """Train a U-Net to fill holes in fields, with an l2 or AtmoDist loss on the hole.

    Each training patch gets one random hole (a rectangle or an irregular
    blob, sides/diameters uniform in ``hole``, possibly touching the patch
    edge); the network sees the patch with the hole zeroed plus the mask.
    ``loss="l2"`` minimises the MSE of the z-scored fields in the hole;
    ``"atmodist"`` minimises the frozen encoder's feature distance between
    the filled and the true patch over the feature cells that see the hole
    (``alpha * mean((f(filled) - f(truth))**2)``), plus ``l2_weight`` times
    that MSE, as the paper's mixed loss.

    Parameters
    ----------
    ds : Dataset or DataArray
        Complete training fields (any CF dataset, lazy or in memory).
    loss : {"atmodist", "l2"}
        The loss (see above).
    encoder : str or Model
        Encoder defining the AtmoDist loss; it takes the same variables.
    l2_weight : float
        Share of the MSE in the AtmoDist loss.
    balance_variables : bool
        AtmoDist loss only: one feature distance per variable (the fill of
        that variable beside the truth of the others), weighted so that all
        variables count alike, as in :func:`xatmodist.train.fit_downscaler`;
        the weights come from filling the holes of 32 training patches with
        each variable's patch mean.
    variable_weights : mapping of variable name to float, optional
        Given per-variable weights instead of measured ones, as in
        :func:`xatmodist.train.fit_downscaler`.  Not with ``balance_variables``.
    extra_encoders : sequence of str or Model
        AtmoDist loss only: more frozen encoders whose near-hole feature
        distances on the variables each one takes (found by standard_name,
        else name) are added to the loss, weighted by their alphas, as in
        :func:`xatmodist.train.fit_downscaler`.
    init : str, path or Model, optional
        A trained inpainter to start from (same variables and architecture);
        its z-score statistics are kept.
    hole : (int, int)
        Smallest and largest hole size in grid cells.  The model's card
        records ``max_hole_radius = hole[1] / 2``; :func:`xatmodist.inpaint`
        refuses holes reaching further from observed points.
    hole_kinds : sequence of {"rect", "blob"}
        Hole shapes to draw from.
    variables : sequence of str, optional
        Variables to use.  Default: vorticity and divergence, found by CF
        standard_name (``atmosphere_relative_vorticity``,
        ``divergence_of_wind``) if the dataset has both as fields, else every
        variable that has the time and both spatial dims (static 2-D fields
        and bounds are left out); the choice is logged at INFO level and
        recorded in the card.
    dim, spatial_dims : optional
        Time and (lat, lon) dims if cf-xarray cannot find them.
    patch_size : int
        Training patch side, a multiple of ``2**levels`` and at least twice
        ``hole[1]``.
    epochs, samples_per_epoch, batch_size, lr
        Optimisation (Adam, cosine decay).
    width, levels, blocks : int
        Architecture (see :class:`xatmodist.nn.Inpainter`).
    seed, out, resume, overwrite, stop_after, name, threads, progress, data_description
        As in :func:`xatmodist.train.fit_encoder`: checkpoints each epoch with
        the run's settings, exact resume (with the saved settings: every
        argument but ``out``, ``resume``, ``overwrite``, ``stop_after``,
        ``name``, ``threads``, ``progress`` and ``data_description``), and an
        ``out`` that holds an earlier run is refused unless ``resume`` or
        ``overwrite`` is given.

    Returns
    -------
    Model
        The inpainter with its card (``task="inpainter"``); saved to
        ``out/model`` if ``out`` is given.
    """
    import numpy as np
    import torch

    from ..nn import Inpainter

    out = checkpoint.check_out(out, resume=resume, overwrite=overwrite)
    if loss not in LOSSES:
        raise InputError(f"loss must be one of {LOSSES}; got {loss!r}.")
    kinds = tuple(hole_kinds)
    if not kinds or any(k not in KINDS for k in kinds):
        raise InputError(f"hole_kinds must be a non-empty subset of {KINDS}; got {kinds!r}.")
    lo, hi = (int(h) for h in hole)
    if not 1 <= lo <= hi:
        raise InputError(f"hole must be (min, max) sizes with 1 <= min <= max; got {hole!r}.")
    mult = 2**levels
    if patch_size % mult or patch_size < 2 * hi:
        raise InputError(
            f"patch_size={patch_size} must be a multiple of {mult} (2**levels) and at least "
            f"twice the largest hole ({hi}); e.g. patch_size={max(64, -(-2 * hi // mult) * mult)}."
        )
    src = FieldSource(ds, variables, dim, spatial_dims)
    if patch_size > src.nlat or (patch_size > src.nlon):
        raise InputError(
            f"patch_size={patch_size} exceeds the {src.nlat} x {src.nlon} grid; pass a smaller "
            "patch_size (and hole)."
        )
    if balance_variables:
        require_atmodist("balance_variables", ("loss", loss))
    enc = load_encoder(encoder, src) if loss == "atmodist" else None
    extra = load_extra_encoders(extra_encoders, src, ("loss", loss))
    args = {"in_channels": src.n_channels, "width": width, "levels": levels, "blocks": blocks}
    start = start_model(init, "inpainter", Inpainter, args, src) if init is not None else None
    torch.manual_seed(seed)
    net = Inpainter(**args)
    if start is None:
        init_zscore(net, src, seed)
    else:
        net.load_state_dict(start.module.state_dict())
    weights = fixed_weights(variable_weights, src, balance_variables, ("loss", loss))
    if balance_variables:
        rng0 = np.random.default_rng([seed, 3])
        truth = torch.from_numpy(src.sample_fields(32, rng0)[..., :patch_size, :patch_size])
        mask = torch.from_numpy(random_masks(rng0, len(truth), patch_size, (lo, hi), kinds))
        mask = mask.to(truth.dtype)
        flat = truth * (1 - mask) + mask * truth.mean(dim=(2, 3), keepdim=True)
        dist = _near_hole_distance(enc)
        weights = measured_weights(enc, truth, flat, lambda x, t: dist(x, t, mask))
    hole_loss = _hole_loss(enc, l2_weight, net.std.view(1, -1, 1, 1), weights, extra)

    def loss_fn(truth, rng):
        mask = torch.from_numpy(random_masks(rng, len(truth), patch_size, (lo, hi), kinds))
        mask = mask.to(truth.dtype)
        return hole_loss(net.fill(truth, mask), truth, mask)

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
        out=out,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        stop_after=stop_after,
        card={
            "name": name,
            "task": "inpainter",
            "architecture": "Inpainter",
            "args": args,
            "min_input_size": mult,
            "max_hole_radius": hi / 2,
        },
        training={
            "loss": loss,
            "holes": {"sizes": [lo, hi], "kinds": list(kinds), "per_patch": 1},
            "variable_weights": weights_card(src, weights),
            "extra_encoders": extra_encoders_card(extra, src),
            "init": {"name": start.name, "sha256": start.sha256} if start is not None else None,
        },
        enc=enc,
        l2_weight=l2_weight,
        data_description=data_description,
        config={
            "loss": loss,
            "encoder": model_id(enc),
            "l2_weight": l2_weight,
            "balance_variables": bool(balance_variables),
            "variable_weights": None if balance_variables else weights_card(src, weights),
            "extra_encoders": [model_id(e) for e, _ in extra],
            "init": model_id(start),
            "hole": [lo, hi],
            "hole_kinds": list(kinds),
            "width": width,
            "levels": levels,
            "blocks": blocks,
        },
    )
