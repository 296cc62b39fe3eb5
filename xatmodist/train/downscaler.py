"""Training of downscalers with an l2 or AtmoDist content loss."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence

from .._threads import restores_torch_threads
from .._validate import check_bool, positive_float
from ..errors import InputError
from ..zoo import Model
from . import _checkpoint as checkpoint
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

__all__ = ["fit_downscaler", "coarsen"]

LOSSES = ("atmodist", "l2")


def coarsen(x, factor: int):
    """Conservative coarsening: block means over ``factor x factor`` cells (torch)."""
    import torch.nn.functional as F

    return F.avg_pool2d(x, factor)


@restores_torch_threads
def fit_downscaler(
    hr,
    *,
    factor: int = 4,
    content_loss: str = "atmodist",
    encoder: str | Model = "atmodist-swe-vd",
    l2_weight: float = 0.1,
    balance_variables: bool = False,
    variable_weights: Mapping[Hashable, float] | None = None,
    extra_encoders: Sequence[str | Model] = (),
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
    adversarial: bool = False,
    adversarial_weight: float = 1e-3,
    init: str | os.PathLike | Model | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
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
    variable_weights : mapping of variable name to float, optional
        AtmoDist loss only: the per-variable distances of ``balance_variables``
        with weights given instead of measured, e.g. ``{"vo": 1.0, "d": 0.0}``
        lets the encoder judge vorticity alone and leaves divergence to the l2
        share and ``extra_encoders``.  Not with ``balance_variables``.
    extra_encoders : sequence of str or Model
        AtmoDist loss only: more frozen encoders whose calibrated feature
        distances (``alpha * mean((f(pred) - f(truth))**2)`` on the variables
        each one takes, found by standard_name, else name) are added to the
        loss, e.g. ``["atmodist-swe-d"]``, trained on divergence alone: the
        encoders of vorticity and divergence give divergence about 1% of their
        distance.  Recorded in the card.
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
        High-resolution patch side.
    epochs, samples_per_epoch, batch_size, lr
        Optimisation (Adam, cosine decay).
    width, blocks, upsample
        Architecture (see :class:`xatmodist.nn.Downscaler`).
    adversarial : bool
        Add a GAN term as in PhIRE (Stengel et al. 2020), the super-resolution
        GAN the AtmoDist paper trained: a :class:`xatmodist.nn.PatchDiscriminator`
        on z-scored fields is updated once per step (Adam, betas 0.5/0.999) and
        the downscaler's loss gains ``adversarial_weight`` times the
        non-saturating generator loss.  PhIRE pretrains without it and then
        fine-tunes with it: pass the pretrained model as ``init``.  The
        discriminator is checkpointed (exact resume) but not saved with the model.
    adversarial_weight : float
        Weight of the generator's adversarial loss (PhIRE: 1e-3).
    init : str, path or Model, optional
        A trained downscaler to start from (same variables and architecture);
        its z-score statistics are kept.
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
        The downscaler with its card (``task="downscaler"``; ``grid`` is the
        output grid); saved to ``out/model`` if ``out`` is given.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ..nn import Downscaler

    out = checkpoint.check_out(out, resume=resume, overwrite=overwrite)
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
    src = FieldSource(hr, variables, dim, spatial_dims)
    if patch_size > src.nlat:
        raise InputError(f"patch_size={patch_size} exceeds the {src.nlat} latitudes of the grid.")
    if balance_variables:
        require_atmodist("balance_variables", ("content_loss", content_loss))
    check_bool(adversarial, "adversarial")
    adversarial_weight = positive_float(
        adversarial_weight,
        "adversarial_weight must be a finite number > 0 (PhIRE: 1e-3); "
        f"got {adversarial_weight!r}.",
    )
    enc = load_encoder(encoder, src) if content_loss == "atmodist" else None
    extra = load_extra_encoders(extra_encoders, src, ("content_loss", content_loss))
    args = {
        "in_channels": src.n_channels,
        "factor": factor,
        "width": width,
        "blocks": blocks,
        "upsample": upsample,
    }
    start = start_model(init, "downscaler", Downscaler, args, src) if init is not None else None
    torch.manual_seed(seed)
    net = Downscaler(**args)
    if start is None:
        init_zscore(net, src, seed)
    else:
        net.load_state_dict(start.module.state_dict())
    mean, std = net.mean.view(1, -1, 1, 1), net.std.view(1, -1, 1, 1)
    dist = _feature_distance(enc) if enc is not None else None
    extra_terms = [(float(e.module.alpha), _feature_distance(e), idx) for e, idx in extra]
    weights = fixed_weights(
        variable_weights, src, balance_variables, ("content_loss", content_loss)
    )
    if balance_variables:
        truth = torch.from_numpy(src.sample_fields(32, np.random.default_rng([seed, 3])))
        base = F.interpolate(coarsen(truth, factor), scale_factor=factor, mode="bicubic")
        weights = measured_weights(enc, truth, base, dist)

    critic = _Critic(src.n_channels, lr) if adversarial else None

    def loss_fn(truth, rng):
        pred = net(coarsen(truth, factor))
        mse = ((pred - truth) / std).pow(2).mean()
        if enc is None:
            loss = mse
        else:
            feat = balanced_distance(enc, dist, pred, truth, weights)
            loss = float(enc.module.alpha) * feat + l2_weight * mse
            for alpha, d, idx in extra_terms:
                loss = loss + alpha * d(pred[:, idx], truth[:, idx])
        if critic is not None:
            loss = loss + adversarial_weight * critic.step(
                (truth - mean) / std, (pred - mean) / std
            )
        return loss

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
            "task": "downscaler",
            "architecture": "Downscaler",
            "args": args,
            "factor": factor,
        },
        training={
            "content_loss": content_loss,
            "coarsening": f"block mean over {factor}x{factor} cells",
            "variable_weights": weights_card(src, weights),
            "extra_encoders": extra_encoders_card(extra, src),
            "adversarial": critic.card(adversarial_weight) if critic is not None else None,
            "init": {"name": start.name, "sha256": start.sha256} if start is not None else None,
        },
        enc=enc,
        l2_weight=l2_weight,
        data_description=data_description,
        extra_state=critic.state() if critic is not None else None,
        epoch_stats=critic.epoch_stats if critic is not None else None,
        config={
            "factor": factor,
            "content_loss": content_loss,
            "encoder": model_id(enc),
            "l2_weight": l2_weight,
            "balance_variables": bool(balance_variables),
            "variable_weights": None if balance_variables else weights_card(src, weights),
            "extra_encoders": [model_id(e) for e, _ in extra],
            "width": width,
            "blocks": blocks,
            "upsample": upsample,
            "adversarial": bool(adversarial),
            "adversarial_weight": adversarial_weight,
            "init": model_id(start),
        },
    )


class _Critic:
    """The discriminator of ``adversarial=True``, its optimizer and running statistics."""

    WIDTH, DEPTH = 32, 3

    def __init__(self, channels: int, lr: float) -> None:
        import torch

        from ..nn import PatchDiscriminator

        self.net = PatchDiscriminator(channels, width=self.WIDTH, depth=self.DEPTH)
        self.lr = lr
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(0.5, 0.999))
        self._sums = [0.0, 0.0, 0.0, 0]

    def step(self, real, fake):
        """Update the discriminator on (real, fake.detach()); return the generator's loss."""
        import torch
        import torch.nn.functional as F

        bce = F.binary_cross_entropy_with_logits
        lr, lf = self.net(real), self.net(fake.detach())
        d_loss = bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))
        self.opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt.step()
        s = self._sums
        s[0] += float(d_loss.detach())
        s[1] += float(torch.sigmoid(lr.detach()).mean())
        s[2] += float(torch.sigmoid(lf.detach()).mean())
        s[3] += 1
        for p in self.net.parameters():
            p.requires_grad_(False)
        try:
            lg = self.net(fake)
            return bce(lg, torch.ones_like(lg))
        finally:
            for p in self.net.parameters():
                p.requires_grad_(True)

    def epoch_stats(self) -> dict:
        """Mean discriminator loss and D(real), D(fake) over the epoch; resets them."""
        d, r, f, n = self._sums
        self._sums = [0.0, 0.0, 0.0, 0]
        n = max(n, 1)
        return {"disc_loss": d / n, "disc_real": r / n, "disc_fake": f / n}

    def state(self) -> dict:
        """Objects to checkpoint."""
        return {"discriminator": self.net, "discriminator_optimizer": self.opt}

    def card(self, weight: float) -> dict:
        """The card's ``training.adversarial``."""
        return {
            "weight": weight,
            "discriminator": {
                "architecture": "PatchDiscriminator",
                "width": self.WIDTH,
                "depth": self.DEPTH,
            },
            "optimizer": f"Adam lr={self.lr:g}, betas=(0.5, 0.999)",
            "loss": "non-saturating GAN (binary cross-entropy on logits)",
        }


def _feature_distance(enc: Model):
    """``dist(x, truth[, f_truth])``: the encoder's uncalibrated feature distance.

    The mean squared or absolute feature difference over the patch, as the
    encoder's card says.
    """
    import torch

    def dist(x, truth, ft=None):
        if ft is None:
            with torch.no_grad():
                ft = enc.module.features(truth)
        return enc.module.feature_distance(enc.module.features(x), ft, dim=None)

    return dist
