"""Training of inpainters with an l2 or AtmoDist loss on random holes."""

from __future__ import annotations

from ..errors import InputError
from ..zoo import Model
from ._common import document, train
from ._fields import FieldTask
from ._masks import KINDS, random_masks

__all__ = ["fit_inpainter"]


def _near_hole_distance(enc):
    """``dist(x, truth, mask[, f_truth], per_input=False)``: feature distance near the hole.

    The mean over the feature cells that see the hole, of the batch or of each
    input (``per_input``).
    """
    import torch
    import torch.nn.functional as F

    net = enc.module

    def dist(x, truth, mask, ft=None, per_input=False):
        if ft is None:
            with torch.no_grad():
                ft = net.features(truth)
        fp = net.features(x)
        r = mask.shape[-1] // fp.shape[-1]
        # feature cells whose receptive field reaches into the hole
        w = F.max_pool2d(F.max_pool2d(mask, r), 3, stride=1, padding=1)
        d = net.feature_distance(fp, ft, dim=1, keepdim=True)
        dim = (1, 2, 3) if per_input else None
        return (d * w).sum(dim=dim) / w.sum(dim=dim).clamp(min=1.0)

    return dist


def fit_inpainter(ds, **settings) -> Model:
    """Train a U-Net to fill holes in fields, with an l2 or AtmoDist loss on the hole.

    Each training patch gets one random hole (a rectangle or an irregular
    blob, sides/diameters uniform in ``hole``, possibly touching the patch
    edge); the network sees the patch with the hole zeroed plus the mask.
    ``loss="l2"`` minimises the MSE of the z-scored fields in the hole;
    ``"atmodist"`` minimises the frozen encoder's feature distance between
    the filled and the true patch over the feature cells that see the hole
    (``alpha * mean((f(filled) - f(truth))**2)``), plus ``l2_weight`` times
    that MSE, as the paper's mixed loss; ``adversarial=True`` adds a GAN term
    on the filled patches, as the downscaler's.  ``balance_variables`` measures its
    weights by filling the holes of 32 training patches with each variable's
    patch mean.  The model's card records ``max_hole_radius = hole[1] / 2``:
    :func:`xatmodist.inpaint` refuses holes reaching further from observed
    points.  Checkpoints, resume and ``out`` work as in
    :func:`xatmodist.train.fit_encoder`.

    Parameters
    ----------
    ds : Dataset or DataArray
        Complete training fields (any CF dataset, lazy or in memory).
    {settings}

    Returns
    -------
    Model
        The inpainter with its card (``task="inpainter"``); saved to
        ``out/model`` if ``out`` is given.
    """
    return train(ds, "inpainter", settings, InpainterTask, "fit_inpainter")


document(fit_inpainter, "inpainter")


class InpainterTask(FieldTask):
    """Fill one random hole per patch; the content loss on the hole."""

    task, kind_arg = "inpainter", "loss"

    def __init__(self, s, src) -> None:
        import numpy as np
        import torch

        from ..nn import Inpainter

        kinds = tuple(s.holes.hole_kinds)
        if not kinds or any(k not in KINDS for k in kinds):
            raise InputError(f"hole_kinds must be a non-empty subset of {KINDS}; got {kinds!r}.")
        lo, hi = (int(h) for h in s.holes.hole)
        if not 1 <= lo <= hi:
            raise InputError(
                f"hole must be (min, max) sizes with 1 <= min <= max; got {s.holes.hole!r}."
            )
        a, p = s.architecture, s.data.patch_size
        mult = 2**a.levels
        if p % mult or p < 2 * hi:
            raise InputError(
                f"patch_size={p} must be a multiple of {mult} (2**levels) and at least twice "
                f"the largest hole ({hi}); e.g. patch_size={max(64, -(-2 * hi // mult) * mult)}."
            )
        if p > src.nlat or p > src.nlon:
            raise InputError(
                f"patch_size={p} exceeds the {src.nlat} x {src.nlon} grid; pass a smaller "
                "patch_size (and hole)."
            )
        self.network, self.holes, self.kinds = Inpainter, (lo, hi), kinds
        args = {"in_channels": src.n_channels, "width": a.width, "levels": a.levels}
        super().__init__(s, src, {**args, "blocks": a.blocks, "noise": a.noise})
        if s.loss.balance_variables:
            rng0 = np.random.default_rng([s.schedule.seed, 3])
            truth = torch.from_numpy(src.sample_fields(32, rng0)[..., :p, :p])
            mask = torch.from_numpy(random_masks(rng0, len(truth), p, self.holes, kinds))
            mask = mask.to(truth.dtype)
            self.content.balance(
                truth, truth * (1 - mask) + mask * truth.mean(dim=(2, 3), keepdim=True), mask
            )

    def distance(self, enc):
        """The encoder's feature distance near the hole."""
        return _near_hole_distance(enc)

    def mse(self, pred, truth, mask, per_input: bool = False):
        """Mean squared z-scored error over the holes (of each input: ``per_input``)."""
        dim = (1, 2, 3) if per_input else None
        n_hole = mask.sum(dim=dim).clamp(min=1.0) * pred.shape[1]
        return (((pred - truth) / self.std).pow(2) * mask).sum(dim=dim) / n_hole

    def resolved(self) -> dict:
        """The hole sizes as integers."""
        return {"hole": list(self.holes), "hole_kinds": list(self.kinds)}

    def batch_loss(self, truth, rng):
        """Content loss of the filled batch on its holes (+ the generator's GAN loss)."""
        import torch

        mask = torch.from_numpy(random_masks(rng, len(truth), self.patch, self.holes, self.kinds))
        mask = mask.to(truth)  # its dtype and device
        one, noise = truth, None
        k = self.samples_per_input
        if k > 1:  # a sampling model fills every hole k times with fresh noise
            truth, mask, noise = self.sampled(rng, truth, mask)
        filled = self.net.fill(truth, mask, noise)
        loss = self.content_loss(filled, truth, mask)
        if k > 1:  # outside the holes every sample is the truth: CRPS 0 there
            frac = float(mask.numel()) / float(mask.sum().clamp(min=1.0))
            loss = loss + frac * self.ensemble_loss(filled.view(k, *one.shape), one)
        return loss + self.gan_loss(truth, filled)

    def card_entries(self) -> dict:
        """The input size, hole radius and the training record's holes."""
        lo, hi = self.holes
        return {
            "min_input_size": 2 ** self.args["levels"],
            "max_hole_radius": hi / 2,
            "training": {"holes": {"sizes": [lo, hi], "kinds": list(self.kinds), "per_patch": 1}},
        }
