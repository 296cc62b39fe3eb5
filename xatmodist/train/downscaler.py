"""Training of downscalers with an l2 or AtmoDist content loss."""

from __future__ import annotations

from ..errors import InputError
from ..zoo import Model
from ._common import document, train
from ._fields import FieldTask

__all__ = ["fit_downscaler", "coarsen", "spectral_mismatch", "spread_mismatch", "zonal_power"]


def coarsen(x, factor: int):
    """Conservative coarsening: block means over ``factor x factor`` cells (torch)."""
    import torch.nn.functional as F

    return F.avg_pool2d(x, factor)


def fit_downscaler(hr, **settings) -> Model:
    """Train a residual CNN to refine block-averaged fields by ``factor``.

    Low-resolution inputs are made by block-averaging random high-resolution
    patches (conservative coarsening).  ``content_loss="l2"`` minimises the MSE
    of the z-scored fields; ``"atmodist"`` minimises the frozen encoder's
    feature distance (``alpha * mean((f(pred) - f(truth))**2)``, the encoder in
    eval mode) plus ``l2_weight`` times the MSE, as in the paper.  With
    ``balance_variables`` the weights are the inverse of each variable's
    distance for bicubic upsampling of 32 coarsened training fields.  The
    settings (:data:`xatmodist.train.config.TRAINERS` ``["downscaler"]``) are
    recorded in the card; checkpoints, resume and ``out`` work as in
    :func:`xatmodist.train.fit_encoder`.

    Parameters
    ----------
    hr : Dataset or DataArray
        High-resolution training fields (any CF dataset, lazy or in memory).
    {settings}

    Returns
    -------
    Model
        The downscaler with its card (``task="downscaler"``; ``grid`` is the
        output grid); saved to ``out/model`` if ``out`` is given.
    """
    return train(hr, "downscaler", settings, DownscalerTask, "fit_downscaler")


document(fit_downscaler, "downscaler")


class DownscalerTask(FieldTask):
    """Refine coarsened patches; the content loss (+ a GAN term) against the truth."""

    task, kind_arg = "downscaler", "content_loss"

    def __init__(self, s, src) -> None:
        import numpy as np
        import torch
        import torch.nn.functional as F

        from ..nn import Downscaler

        a, p = s.architecture, s.data.patch_size
        f = a.factor
        if isinstance(f, bool) or not isinstance(f, int) or f < 2 or f & (f - 1):
            raise InputError(f"factor must be a power of 2 (2, 4, 8, ...); got {f!r}.")
        if not isinstance(p, int) or p % f or p // f < 4:
            raise InputError(
                f"patch_size={p!r} must be a multiple of factor={f} and give at least 4 coarse "
                f"cells; e.g. patch_size={16 * f}."
            )
        ns, steps = a.noise_steps, f.bit_length() - 1
        if ns is not None and (not a.noise or not 1 <= ns <= steps):
            raise InputError(
                f"noise_steps={ns!r} needs a sampling model (noise > 0; got noise={a.noise}) "
                f"and a value from 1 to {steps} (the 2x steps of factor={f}); or leave it None."
            )
        if s.loss.spread_spectral_weight and not a.noise:
            raise InputError(
                f"spread_spectral_weight={s.loss.spread_spectral_weight!r} calibrates the spread "
                "of a sampling model's samples; this one is deterministic (noise=0). Pass "
                "noise > 0 (e.g. noise=4), or leave spread_spectral_weight at 0."
            )
        if p > src.nlat:
            raise InputError(f"patch_size={p} exceeds the {src.nlat} latitudes of the grid.")
        self.network = Downscaler
        args = {"in_channels": src.n_channels, "factor": f, "width": a.width}
        super().__init__(
            s, src, {**args, "blocks": a.blocks, "upsample": a.upsample, **noise_args(a)}
        )
        if s.loss.balance_variables:
            truth = torch.from_numpy(
                src.sample_fields(32, np.random.default_rng([s.schedule.seed, 3]))
            )
            base = F.interpolate(coarsen(truth, f), scale_factor=f, mode="bicubic")
            self.content.balance(truth, base)

    def mse(self, pred, truth, per_input: bool = False):
        """Mean squared z-scored error (of each input: ``per_input``)."""
        return ((pred - truth) / self.std).pow(2).mean(dim=(1, 2, 3) if per_input else None)

    def distance(self, enc):
        """The encoder's feature distance of two patches."""
        return _feature_distance(enc)

    def batch_loss(self, truth, rng):
        """Content loss of the refined coarsened batch (+ the generator's GAN loss).

        A sampling model refines every input ``ensemble_samples`` times with fresh
        noise; the content loss judges them as an ensemble (``ensemble_content``), the GAN
        loss sees every sample, the CRPS term compares them.
        """
        one, coarse, noise = truth, coarsen(truth, self.args["factor"]), None
        k = self.samples_per_input
        if k > 1:
            coarse, truth, noise = self.sampled(rng, coarse, truth)
        pred = self.net(coarse, noise)
        loss = self.content_loss(pred, truth)
        if k > 1:
            loss = loss + self.ensemble_loss(pred.view(k, *one.shape), one)
        if self.s.loss.spectral_weight:
            loss = loss + self.s.loss.spectral_weight * self.spectral_loss(pred, one)
        if self.s.loss.spread_spectral_weight:
            z = (pred / self.std).view(k, *one.shape)
            term = spread_mismatch(z, one / self.std, self.args["factor"])
            loss = loss + self.s.loss.spread_spectral_weight * term
        return loss + self.gan_loss(truth, pred)

    def spectral_loss(self, pred, truth):
        """``mean |ln P_pred - ln P_truth|`` over variables and the super-resolved band.

        ``P``: the zonal power spectrum of z-scored fields (Hann window along the
        patch's rows), averaged over the batch and the rows; the band: the octave
        above the coarse patch's Nyquist, ``W / (2 factor) < k < W / factor``.
        """
        return spectral_mismatch(pred / self.std, truth / self.std, self.args["factor"])

    def card_entries(self) -> dict:
        """The factor and the training record's downscaler entries."""
        f = self.args["factor"]
        training = {"coarsening": f"block mean over {f}x{f} cells"}
        if self.s.loss.spectral_weight:
            training["spectral"] = {
                "weight": float(self.s.loss.spectral_weight),
                "term": "mean |ln P_out - ln P_truth| of the batch-mean, Hann-windowed zonal "
                f"power spectra of z-scored fields, wavenumbers W / {2 * f} < k < W / {f} of "
                "the patch (the octave above the coarse grid's Nyquist)",
            }
        if self.s.loss.spread_spectral_weight:
            training["spread_spectral"] = {
                "weight": float(self.s.loss.spread_spectral_weight),
                "term": "mean |ln P(x_i - x_j) - ln P(x_i - y)| over pairs of samples and "
                "their errors (held fixed), P and the band as the spectral term's",
            }
        return {"factor": f, "training": training}


def zonal_power(x):
    """Zonal power spectrum (C, W // 2 + 1) of fields ``x`` (B, C, H, W).

    Hann-windowed ``|rfft|**2`` along W, averaged over the batch and the rows.
    """
    import torch

    w = torch.hann_window(x.shape[-1], periodic=False, dtype=x.dtype, device=x.device)
    f = torch.fft.rfft(x * w, dim=-1)
    return (f.real.square() + f.imag.square()).mean(dim=(0, 2))


def spectral_mismatch(pred, truth, factor: int, eps: float = 1e-12):
    """``mean |ln P_pred(c, k) - ln P_truth(c, k)|`` over ``W / (2 factor) < k < W / factor``.

    ``pred`` and ``truth``: (B, C, H, W) z-scored fields; ``truth`` may hold fewer
    rows along B than ``pred`` (a sampling model's samples).  The band is the
    octave above the coarse grid's Nyquist wavenumber, the training counterpart
    of the evaluation's band spectral error (``benchmarks/eval_downscaling.py``:
    17..31 of 128 for x4); further up, spectra of smooth fields fall by orders of
    magnitude and log ratios of vanishing power would dominate the term.
    """
    import torch

    band = _band(pred.shape[-1], factor)
    lp = torch.log(zonal_power(pred)[:, band] + eps)
    with torch.no_grad():
        lt = torch.log(zonal_power(truth)[:, band] + eps)
    return (lp - lt).abs().mean()


def spread_mismatch(samples, truth, factor: int, floor: float = 1e-3):
    """``mean |ln P(x_i - x_j) - ln P(x_i - y)|`` over the band of :func:`spectral_mismatch`.

    ``samples``: (K, B, C, H, W) z-scored samples of ``truth`` (B, C, H, W), K >= 2;
    ``P(x_i - x_j)``: the power of the differences of every pair of samples,
    ``P(x_i - y)``: of every sample's error, held fixed.  0 in expectation for an
    ensemble whose members are exchangeable with the truth.  ``floor`` x the
    error's power is added to the spread's, so that samples that (nearly) agree,
    as when a fine-tune starts, give a bounded value and slope.
    """
    import torch

    k, band = samples.shape[0], _band(samples.shape[-1], factor)
    diffs = torch.cat([samples[i] - samples[j] for i in range(k) for j in range(i + 1, k)])
    with torch.no_grad():  # (+ a tiny constant: samples that are the truth)
        pe = zonal_power((samples - truth).flatten(0, 1))[:, band] + 1e-12
    return (torch.log(zonal_power(diffs)[:, band] + floor * pe) - torch.log(pe)).abs().mean()


def _band(w: int, factor: int) -> slice:
    """Zonal wavenumbers ``W / (2 factor) < k < W / factor`` of an rfft of length ``w``."""
    return slice(w // (2 * factor) + 1, -(-w // factor))


def noise_args(a) -> dict:
    """The noise arguments of the architecture settings ``a`` (``noise_steps`` only if set)."""
    return {"noise": a.noise, **({"noise_steps": a.noise_steps} if a.noise_steps else {})}


def _feature_distance(enc: Model):
    """``dist(x, truth[, f_truth], per_input=False)``: the encoder's uncalibrated feature distance.

    The mean squared or absolute feature difference over the patch, as the
    encoder's card says (over the batch, or of each input: ``per_input``).
    """
    import torch

    def dist(x, truth, ft=None, per_input=False):
        if ft is None:
            with torch.no_grad():
                ft = enc.module.features(truth)
        dim = (1, 2, 3) if per_input else None
        return enc.module.feature_distance(enc.module.features(x), ft, dim=dim)

    return dist
