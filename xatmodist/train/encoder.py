"""Self-supervised training of the AtmoDist encoder (the lag pretext task)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import _validate as v
from ..errors import InputError
from ..nn.encoder import DISTANCES, feature_difference
from ..zoo import Model
from ._common import card_frame, document, model_id, resolved_config, start_model, train
from ._loop import Task
from ._pairs import Block, make_blocks, patch_index, sample_pairs, take_patches
from ._source import FieldSource, reflection_signs

__all__ = [
    "fit_encoder",
    "calibrate_alpha",
    "fit_distance_weights",
    "distillation_loss",
    "lag_setup",
    "rank_loss",
    "PairStream",
]

log = logging.getLogger(__name__)


def _lag_seconds(x, name: str, step_seconds: float) -> float:
    """A lag in seconds (:func:`xatmodist._validate.lag_duration`'s rule)."""
    return v.lag_duration(x, pd.Timedelta(seconds=step_seconds), name).total_seconds()


#: the default patch side where the grid allows it (the shipped simulator encoders')
DEFAULT_PATCH = 32


def default_patch_size(nlat: int, nlon: int, wrap: bool, reduction: int) -> int:
    """``DEFAULT_PATCH``, or the largest multiple of ``reduction`` that fits the grid.

    Examples
    --------
    >>> default_patch_size(64, 128, True, 4), default_patch_size(25, 53, False, 4)
    (32, 24)
    """
    side = min(DEFAULT_PATCH, nlat, DEFAULT_PATCH if wrap else nlon)
    side -= side % reduction
    if side < reduction:
        raise InputError(
            f"The {nlat} x {nlon} grid is smaller than one feature cell of this encoder "
            f"({reduction} x {reduction} points); use a larger domain or fewer stages (widths)."
        )
    return side


def lag_setup(step_seconds: float | None, max_lag, lag_step=None) -> tuple[float, int, int]:
    """The lag classes of :func:`fit_encoder` from the user's ``max_lag`` and ``lag_step``.

    Parameters
    ----------
    step_seconds : float or None
        The data's time step in seconds (None: no usable time coordinate).
    max_lag, lag_step : int, str, Timedelta or numpy timedelta64
        Largest lag and class width (``lag_step=None``: the data's time step).
        An integer (Python or numpy, not bool) is that many time steps of the
        data, as ``ds.shift(time=3)`` counts (``max_lag=12`` on hourly data is
        12 h); anything else is a duration (``"6h"``, ``pd.Timedelta``,
        ``np.timedelta64``).  Floats, bools, integers < 1 and strings without
        a unit are refused.

    Returns
    -------
    tuple of (float, int, int)
        The class width in seconds, the number of classes (``max_lag /
        lag_step``, at least 2) and the class width in data steps.

    Raises
    ------
    InputError
        Without a time step; for a lag that is neither an integer nor a
        duration; if ``lag_step`` is not a whole multiple of the time step or
        ``max_lag`` not one (>= 2) of ``lag_step``.
    """
    if step_seconds is None:
        raise InputError(
            "The time coordinate is missing or has fewer than 2 values; a datetime time "
            "coordinate is needed to turn lags into steps."
        )
    step = v.duration_text(step_seconds)
    lag_s = step_seconds if lag_step is None else _lag_seconds(lag_step, "lag_step", step_seconds)
    max_s = _lag_seconds(max_lag, "max_lag", step_seconds)
    stride = lag_s / step_seconds
    if stride < 1 or abs(stride - round(stride)) > 1e-6:
        raise InputError(
            f"lag_step={lag_step!r} ({v.duration_text(lag_s)}) must be a whole multiple of the "
            f"data's time step ({step}); pass e.g. lag_step={step!r} or an integer number "
            "of steps."
        )
    n = max_s / lag_s
    if n < 2 or abs(n - round(n)) > 1e-6:
        raise InputError(
            f"max_lag={max_lag!r} ({v.duration_text(max_s)}) must be a whole multiple (>= 2) of "
            f"lag_step ({v.duration_text(lag_s)}), giving the lag classes lag_step, "
            f"2*lag_step, ..., max_lag; pass e.g. max_lag={v.duration_text(4 * lag_s)!r}."
        )
    return lag_s, int(round(n)), int(round(stride))


class PairStream:
    """Draw pair batches (xa, xb, class) from blocks of a FieldSource."""

    def __init__(self, src: FieldSource, n_classes: int, stride: int, patch: int, lat_rows):
        self.src, self.n_classes, self.stride, self.patch = src, n_classes, stride, patch
        self.lat_rows = lat_rows

    def draw(self, rng, block: Block, fields: np.ndarray, n: int, signs=None):
        """``n`` pairs of ``block``, optionally mirrored north-south.

        With ``signs`` (+-1 per channel), each pair is mirrored with probability 1/2:
        a mirrored pair has its rows reversed and its sign-changing channels negated.
        """
        t0, cls = sample_pairs(rng, block, n, self.n_classes, self.stride)
        rows, cols = patch_index(
            rng,
            n,
            nlat=self.src.nlat,
            nlon=self.src.nlon,
            patch=self.patch,
            lat_rows=self.lat_rows,
            wrap=self.src.wrap,
        )
        xa = take_patches(fields, t0, rows, cols, self.patch)
        xb = take_patches(fields, t0 + (cls + 1) * self.stride, rows, cols, self.patch)
        if signs is not None:
            m = rng.random(n) < 0.5
            s = np.asarray(signs, dtype=xa.dtype).reshape(1, -1, 1, 1)
            xa[m] = xa[m, :, ::-1] * s
            xb[m] = xb[m, :, ::-1] * s
        return xa, xb, cls

    def fixed(self, blocks: Sequence[Block], n: int, seed: int):
        """A reproducible set of ``n`` pairs spread over ``blocks``."""
        rng = np.random.default_rng([seed, 7919])
        per = max(1, math.ceil(n / max(1, len(blocks))))
        out = [self.draw(rng, b, f, per) for b, f in self.src.iter_blocks(list(blocks))]
        xa, xb, c = (np.concatenate(z) for z in zip(*out, strict=True))
        return xa[:n], xb[:n], c[:n]


def _lat_rows(src: FieldSource, lat_band) -> tuple[int, int] | None:
    if lat_band is None:
        return None
    lo, hi = sorted(lat_band)
    lat = np.asarray(src.da[src.lat].values)
    rows = np.nonzero((lat >= lo) & (lat <= hi))[0]
    if rows.size < 1:
        raise InputError(f"lat_band={lat_band!r} selects no latitude of the grid.")
    return int(rows[0]), int(rows[-1]) + 1


def fit_encoder(ds, **settings) -> Model:
    """Train an AtmoDist encoder by predicting the time lag between two fields.

    Pairs are taken at the same location (random patch centres; longitude
    wraps on global grids), earlier field first, with lags drawn uniformly from
    the classes ``lag_step, 2 * lag_step, ..., max_lag``.  Each series (run,
    member, level, ...) is cut into contiguous time blocks; every
    ``val_every``-th block is held out for validation and no pair straddles
    two blocks.  Normalisation statistics are estimated from a sample of
    training fields and stored in the weights (vorticity and divergence get
    ``z-score -> sign(z) * log1p(0.2 * |z|) -> z-score``).  The loss is the
    cross-entropy of the lag head, plus ``rank_weight`` times a ranking term
    on the feature distance.  Training is checkpointed after every epoch in
    ``out`` with the run's settings; ``resume=True`` continues exactly, with
    the same settings (``distance`` may change once the run is finished,
    which re-scores and re-calibrates the network).  The settings groups are
    :data:`xatmodist.train.config.TRAINERS` ``["encoder"]``; the card records
    them (``training.config``).

    Parameters
    ----------
    ds : Dataset or DataArray
        Training data with a regular time axis (numpy, dask, zarr, netCDF, ...).
    {settings}

    Returns
    -------
    Model
        The trained encoder with a complete card (saved to ``out/model`` if
        ``out`` is given).
    """
    return train(ds, "encoder", settings, EncoderTask, "fit_encoder")


document(fit_encoder, "encoder")


def _check_architecture(a, rank_weight: float, patch_size, src: FieldSource) -> int:
    """The patch size (default or given), checked with the architecture ``a``."""
    st = a.stem_stride
    reduction = int(st) * 2 ** (len(a.widths) - 1)
    if patch_size is None:
        patch_size = default_patch_size(src.nlat, src.nlon, src.wrap, reduction)
    if patch_size > src.nlat or (patch_size > src.nlon and not src.wrap):
        raise InputError(
            f"patch_size={patch_size} does not fit the {src.nlat} x {src.nlon} grid; "
            "choose a smaller patch."
        )
    if patch_size % reduction:
        raise InputError(
            f"patch_size={patch_size} is not a multiple of the encoder's reduction {reduction} "
            f"(stem_stride={st} x 2**{len(a.widths) - 1} for {len(a.widths)} stages), so "
            "its feature grid would not tile the patch. Choose a patch_size that is a multiple "
            f"of {reduction}, or a smaller stem_stride."
        )
    if a.projection and rank_weight == 0:
        raise InputError(
            "projection=True needs rank_weight > 0: the ranking term is the only loss that "
            "trains the projection (the lag head reads the trunk). Pass e.g. rank_weight=2.0, "
            "or projection=False."
        )
    return patch_size


def _time_blocks(s, src: FieldSource, max_steps: int):
    """(block length, training blocks, validation blocks) of the schedule ``s``."""
    length = min(s.block_length or max(4 * max_steps, 16), src.n_time)
    train_blocks, val_blocks = make_blocks(
        n_series=src.n_series,
        n_time=src.n_time,
        block_length=length,
        max_lag=max_steps,
        val_every=s.val_every,
    )
    if not train_blocks or not val_blocks:
        raise InputError(
            f"Not enough time steps: {src.n_series} series x {src.n_time} steps in blocks of "
            f"{length} give {len(train_blocks)} training and {len(val_blocks)} validation "
            f"blocks for lags up to {max_steps} steps. Use more data, a smaller max_lag or "
            "a smaller val_every."
        )
    return length, train_blocks, val_blocks


class EncoderTask(Task):
    """The lag pretext task: pairs of patches, their lag class, the Siamese network."""

    finished_only = ("distance", "distance_weights")

    def __init__(self, s, src: FieldSource) -> None:
        import torch

        from ..nn import AtmoDistNet

        self.s, self.src, a, sch = s, src, s.architecture, s.schedule
        self.signs = self.flipped = None
        if s.lag.lat_reflection is not False and s.lag.lat_reflection is not None:
            self.signs = reflection_signs(src.specs, s.lag.lat_reflection)
            self.flipped = [x["name"] for x, g in zip(src.specs, self.signs, strict=True) if g < 0]
        self.lag_s, self.n_classes, stride = lag_setup(
            src.step_seconds, s.lag.max_lag, s.lag.lag_step
        )
        self.rank_weight = float(s.lag.rank_weight)
        self.patch = _check_architecture(a, self.rank_weight, s.data.patch_size, src)
        self.block_length, self.train_blocks, val_blocks = _time_blocks(
            sch, src, self.n_classes * stride
        )
        self.n_val_blocks = len(val_blocks)
        lat_rows = _lat_rows(src, s.data.lat_band)
        self.stream = PairStream(src, self.n_classes, stride, self.patch, lat_rows)
        self.args = {
            "in_channels": src.n_channels,
            "n_classes": self.n_classes,
            "widths": list(a.widths),
            "blocks": a.blocks,
            "stem_stride": int(a.stem_stride),
        }
        self.start = start_model(
            sch.init, "encoder", AtmoDistNet, {**self.args, "projection": bool(a.projection)}, src
        )
        if self.start is not None and not math.isclose(
            self.start.card.lag_step_seconds, self.lag_s
        ):
            step = self.start.card.lag_step_seconds
            raise InputError(
                f"init={self.start.name!r} predicts lags in steps of {step} s; these arguments "
                f"give {self.lag_s} s. Pass the init model's lag_step ({step / 3600:g}h)."
            )
        self.teacher = _teacher(s.distillation, src, self.lag_s, self.n_classes)
        self.teacher_net = None  # the inference copy, built by to(device)
        torch.manual_seed(sch.seed)
        self.net = AtmoDistNet(
            src.n_channels,
            self.n_classes,
            widths=tuple(a.widths),
            blocks=a.blocks,
            stem_stride=a.stem_stride,
            projection=bool(a.projection),
            distance=a.distance,
        )
        if self.start is not None:
            self.net.load_state_dict(self.start.module.state_dict())
        self.epochs, self.seed, self.batch_size = sch.epochs, sch.seed, sch.batch_size
        self.steps_per_epoch = max(1, sch.pairs_per_epoch // sch.batch_size)
        self.config = resolved_config(
            s,
            src,
            max_lag=v.duration_text(self.n_classes * self.lag_s),
            lag_step=v.duration_text(self.lag_s),
            patch_size=self.patch,
            rank_weight=self.rank_weight,
            block_length=self.block_length,
            lat_reflection=self.flipped,
            init=model_id(self.start),
            teacher=model_id(self.teacher),
        )
        va = self.stream.fixed(val_blocks, sch.val_pairs, sch.seed)
        self.val = tuple(torch.from_numpy(x) for x in va)

    def optimizer(self, total_steps: int):
        """AdamW; a one-cycle schedule (5% warm-up), or a constant rate for < 4 steps."""
        import torch

        sch = self.s.schedule
        opt = torch.optim.AdamW(self.net.parameters(), lr=sch.lr, weight_decay=sch.weight_decay)
        if total_steps < 4:  # too short for a schedule: constant learning rate
            return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        # 5% warm-up, but at least one step in each of OneCycle's two phases
        pct = min(0.5, max(0.05, 2.0 / total_steps))
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=sch.lr, total_steps=total_steps, pct_start=pct
        )
        return opt, sched

    def prepare(self) -> None:
        """Normalisation statistics from 256 training fields (an init model brings its own)."""
        import torch

        if self.start is not None:
            return
        rng = np.random.default_rng([self.seed, 1])
        fields = torch.from_numpy(self.src.sample_fields(256, rng))
        flat = fields.transpose(0, 1).reshape(self.src.n_channels, -1).double()
        self.net.normaliser.fit(
            flat.mean(dim=1).float(),
            flat.std(dim=1).float(),
            fields,
            [x["log_transform"] for x in self.src.specs],
        )

    def batches(self, epoch: int, rng: np.random.Generator):
        """Pairs drawn block by block, shuffled ``mix_blocks`` blocks at a time."""
        import torch

        order = rng.permutation(len(self.train_blocks))
        blocks = [self.train_blocks[i] for i in order]
        per_block = max(1, math.ceil(self.s.schedule.pairs_per_epoch / len(blocks)))
        buf, b = [], self.batch_size
        it = self.src.iter_blocks(blocks)
        try:
            for bi, (blk, fields) in enumerate(it):
                buf.append(self.stream.draw(rng, blk, fields, per_block, self.signs))
                if len(buf) < self.s.schedule.mix_blocks and bi + 1 < len(blocks):
                    continue
                xa, xb, cls = (np.concatenate(z) for z in zip(*buf, strict=True))
                buf = []
                perm = rng.permutation(len(cls))
                for i in range(0, len(perm) - b + 1, b):
                    idx = perm[i : i + b]
                    yield tuple(torch.from_numpy(x[idx]) for x in (xa, xb, cls))
        finally:
            it.close()

    def to(self, device) -> None:
        """Move the network (and the teacher's inference copy) to ``device``.

        The validation pairs move batch by batch.  On the CPU the teacher is
        its frozen TorchScript graph, elsewhere its batch-norm-folded network
        (as the distance kernels run it).
        """
        import torch

        from ..nn.encoder import frozen_for_inference, fused_for_inference

        self.net.to(device)
        if self.teacher is not None:
            cpu = torch.device(device).type == "cpu"
            t = self.teacher.module
            self.teacher_net = (
                frozen_for_inference(t, self.patch) if cpu else fused_for_inference(t).to(device)
            )

    def loss(self, batch):
        """Cross-entropy of the lag head (+ the ranking term, + the distillation terms)."""
        import torch
        import torch.nn.functional as F

        a, b, y = batch
        logits, diff = self.net.logits_and_difference(a, b)
        loss = F.cross_entropy(logits, y)
        if self.rank_weight > 0:
            loss = loss + self.rank_weight * rank_loss(
                feature_difference(diff, "squared").mean(dim=(1, 2, 3)), y
            )
        if self.teacher_net is not None:
            t = self.teacher_net
            with torch.no_grad():
                t_logits, t_diff = t.logits_and_difference(a, b)
                t_dist = feature_difference(t_diff.float(), t.distance_kind).mean(dim=(1, 2, 3))
            dist = feature_difference(diff, self.net.distance_kind).mean(dim=(1, 2, 3))
            d = self.s.distillation
            loss = loss + distillation_loss(
                logits,
                dist,
                t_logits.float(),
                t_dist,
                d.temperature,
                d.distil_logits,
                d.distil_distance,
            )
        return loss, len(y), {"ok": int((logits.argmax(1) == y).sum())}

    def record(self, epoch, sums, seen, seconds, lr) -> dict:
        """Training loss and top-1, validation scores, speed."""
        val = _score(self.net, *self.val)
        return {
            "epoch": epoch + 1,
            "train_loss": sums["loss"] / max(seen, 1),
            "train_top1": sums.get("ok", 0) / max(seen, 1),
            **{f"val_{k}": x for k, x in val.items()},
            "pairs_per_second": seen / seconds,
            "seconds": seconds,
            "lr": lr,
        }

    def progress_line(self, rec: dict) -> str:
        """One line per epoch."""
        return (
            f"epoch {rec['epoch']}/{self.epochs} loss {rec['train_loss']:.3f} "
            f"top1 {rec['train_top1']:.3f} val_top1 {rec['val_top1']:.3f} "
            f"val_within1 {rec['val_within1']:.3f} val_rho {rec['val_spearman_distance']:.3f} "
            f"{rec['pairs_per_second']:.0f} pairs/s"
        )

    def finish(self, history: list, seconds: float, first: int) -> Model:
        """Calibrate alpha and write the card."""
        net = self.net
        # a run resumed after its last epoch (e.g. with another distance) has no fresh
        # validation of the returned network: score it again
        rescored = (
            {f"val_{k}": x for k, x in _score(net, *self.val).items()}
            if history and len(history) == first
            else {}
        )
        weights = None
        if self.s.architecture.distance_weights:
            # the returned network's validation so far: the last epoch's, or its rescoring
            before = (
                {**history[-1], **rescored}["val_spearman_distance"]
                if history
                else _score(net, *self.val)["spearman_distance"]
            )
            weights = self._fit_distance_weights(net)
            rescored = {f"val_{k}": x for k, x in _score(net, *self.val).items()}
            after = rescored["val_spearman_distance"]
            weights.update(val_spearman_before=before, val_spearman_after=after)
            log.info("distance weights: validation rho %.4f -> %.4f", before, after)
        net.eval()
        alpha = calibrate_alpha(net, *self.val, self.n_classes)
        net.alpha.fill_(alpha)
        card = card_frame(
            self.s,
            self.src,
            architecture="AtmoDistNet",
            args=self._card_args(),
            patch_size=int(self.patch),
            feature_reduction=net.encoder.reduction,
            lag_step_seconds=self.lag_s,
            lag_classes=[(k + 1) * self.lag_s for k in range(self.n_classes)],
            normalisation=self._normalisation(),
            distance={**self._distance(alpha), **({"channel_weights": weights} if weights else {})},
            training=self._training(history, seconds),
        )
        card["metrics"] = {"validation": {**history[-1], **rescored} if history else {}}
        return Model(card=card, module=net)

    def _fit_distance_weights(self, net) -> dict:
        """Fit and fold the per-channel distance weights; their card entry.

        The validation rho before and after is added by :meth:`finish`, which scores it.
        """
        from ..nn.encoder import scale_features

        n = self.s.schedule.pairs_per_epoch
        net.eval()
        # the pairs of one epoch from the training blocks, drawn a few thousand at a time
        per = [min(4096, n - k) for k in range(0, n, 4096)]
        draws = (
            self.stream.fixed(self.train_blocks, m, self.seed + 1 + k) for k, m in enumerate(per)
        )
        w = fit_distance_weights(net, draws, seed=self.seed)
        # the features carry the weight in the distance's kind: w|d| = |w d|, w d**2 = (w**0.5 d)**2
        scale_features(net, w if net.distance_kind == "l1" else w.sqrt())
        return {
            "fit": f"one weight per feature channel, RankNet on the log distance of {n} training "
            "pairs with the trunk frozen (fit_distance_weights), folded into the network "
            "(xatmodist.nn.encoder.scale_features)",
            "pairs": n,
            "min": float(w.min()),
            "max": float(w.max()),
        }

    def _card_args(self) -> dict:
        a = self.s.architecture
        return {
            **self.args,
            "log_scale": self.net.normaliser.log_scale,
            **({"projection": True} if a.projection else {}),
            **({"distance": a.distance} if a.distance != DISTANCES[0] else {}),
        }

    def _normalisation(self) -> dict:
        n = self.net.normaliser
        return {
            "method": "per-variable z-score; for log variables then sign(z)*log1p(s*|z|) "
            "and a second z-score (Hoffmann & Lessig 2023); statistics are buffers in the weights",
            "log_scale": n.log_scale,
            "log_variables": [x["name"] for x in self.src.specs if x["log_transform"]],
            "mean": n.mean_in.tolist(),
            "std": n.std_in.tolist(),
        }

    def _distance(self, alpha: float) -> dict:
        a = self.s.architecture
        return {
            "kind": a.distance,
            "definition": "alpha * mean over features and grid of "
            + ("|f(a) - f(b)|" if a.distance == "l1" else "(f(a) - f(b))**2")
            + ", f = encoder output (last stage"
            + (", through the learned 1x1 projection)" if a.projection else ")"),
            "alpha": alpha,
            "alpha_fit": "mean MSE of normalised fields / mean feature distance over validation "
            "pairs in the largest third of the lag classes",
        }

    def _training(self, history: list, seconds: float) -> dict:
        s, src, w = self.s, self.src, self.rank_weight
        return {
            "series": src.n_series,
            "time_steps": src.n_time,
            "block_length": self.block_length,
            "train_blocks": len(self.train_blocks),
            "val_blocks": self.n_val_blocks,
            "pairs_per_epoch": s.schedule.pairs_per_epoch,
            "weight_decay": s.schedule.weight_decay,
            "loss": "cross-entropy"
            + (f" + {w:g} x RankNet on log feature distance" if w else "")
            + (self._distillation_text() if self.teacher is not None else ""),
            "rank_weight": w,
            "lat_band": list(s.data.lat_band) if s.data.lat_band else None,
            "lat_reflection": None if self.flipped is None else {"sign_changing": self.flipped},
            "init": model_id(self.start),
            "teacher": model_id(self.teacher),
            "train_seconds": round(seconds, 1),
            "history": history,
        }

    def _distillation_text(self) -> str:
        d = self.s.distillation
        return (
            f" + distillation from {self.teacher.name}: {d.distil_logits:g} x T^2 KL of the lag "
            f"probabilities (T = {d.temperature:g}) + {d.distil_distance:g} x MSE of the "
            "batch-standardised log feature distances"
        )


def _teacher(d, src: FieldSource, lag_s: float, n_classes: int) -> Model | None:
    """The teacher of the distillation settings ``d``, checked against the student's data."""
    if d.teacher is None:
        return None
    from ..zoo import load_model, require_task

    teacher = load_model(d.teacher)
    require_task(teacher, "encoder", role="teacher", purpose="distillation")
    want = teacher.card.variable_names
    names = [x["name"] for x in src.specs]
    if want != names:
        raise InputError(
            f"teacher={teacher.name!r} reads {want}; the training data gives {names}. "
            "Pass variables= in the teacher's order."
        )
    classes = len(teacher.card.lag_classes)
    if not math.isclose(teacher.card.lag_step_seconds, lag_s) or classes != n_classes:
        step = teacher.card.lag_step_seconds
        raise InputError(
            f"teacher={teacher.name!r} predicts {classes} lag classes in steps of {step:g} s; "
            f"these arguments give {n_classes} in steps of {lag_s:g} s. Pass the teacher's "
            f"lag_step ({step / 3600:g}h) and max_lag ({classes * step / 3600:g}h)."
        )
    return teacher


def distillation_loss(
    logits, dist, t_logits, t_dist, temperature: float, w_logits: float, w_distance: float
):
    """The student's distance from its teacher on one batch of pairs.

    Parameters
    ----------
    logits, t_logits : Tensor
        (B, K) lag-class logits of the student and the teacher.
    dist, t_dist : Tensor
        (B,) positive feature distances of the student and the teacher (each
        its model's own kind; their units differ).
    temperature : float
        Softmax temperature ``T`` of the logit term.
    w_logits, w_distance : float
        Weights of the two terms.

    Returns
    -------
    Tensor
        ``w_logits * T**2 * KL(p_teacher || p_student)`` (batch mean, at
        temperature ``T``) ``+ w_distance * mean((z(log dist) - z(log t_dist))**2)``
        with ``z`` the standardisation over the batch; 0 when the student
        reproduces the teacher's probabilities and its distances up to a scale.
    """
    import torch
    import torch.nn.functional as F

    T = float(temperature)
    kl = F.kl_div(
        F.log_softmax(logits / T, dim=1),
        F.log_softmax(t_logits / T, dim=1),
        log_target=True,
        reduction="batchmean",
    )

    def z(d):
        s = torch.log(d + 1e-12)
        return (s - s.mean()) / (s.std() + 1e-6) if len(s) > 1 else s * 0.0

    return w_logits * T * T * kl + w_distance * (z(dist) - z(t_dist)).pow(2).mean()


def rank_loss(dist, lag):
    """RankNet loss ordering feature distances by lag, over all pairs of a batch.

    Parameters
    ----------
    dist : Tensor
        (B,) positive feature distances.
    lag : Tensor
        (B,) lag classes.

    Returns
    -------
    Tensor
        Mean of ``softplus(log d_i - log d_j)`` over the ``(i, j)`` with
        ``lag_i < lag_j`` (0 if the batch has a single lag).
    """
    import torch
    import torch.nn.functional as F

    s = torch.log(dist + 1e-12)
    longer = lag.view(1, -1) > lag.view(-1, 1)  # [i, j]: lag_j > lag_i
    if not bool(longer.any()):
        return s.sum() * 0.0
    diff = s.view(-1, 1) - s.view(1, -1)  # [i, j]: log d_i - log d_j, should be < 0
    return F.softplus(diff[longer]).mean()


def _score(net, a, b, c, batch: int = 512) -> dict:
    import torch
    from scipy.stats import spearmanr

    dev = next(net.parameters()).device  # the pairs stay on the CPU, a batch moves
    net.eval()
    with torch.inference_mode():
        out = [
            net.logits_and_distance(
                a[i : i + batch].to(dev), b[i : i + batch].to(dev), kind=net.distance_kind
            )
            for i in range(0, len(c), batch)
        ]
    net.train()
    pred = torch.cat([o[0].cpu() for o in out]).argmax(1)
    dist = torch.cat([o[1].cpu() for o in out]).numpy()
    err = (pred - c).abs()
    return {
        "top1": float((err == 0).float().mean()),
        "within1": float((err <= 1).float().mean()),
        "spearman_distance": float(spearmanr(dist, c.numpy()).statistic),
    }


def fit_distance_weights(
    net,
    pairs,
    *,
    seed: int = 0,
    steps: int = 500,
    batch: int = 1024,
    lr: float = 0.02,
    sharpness: float = 4.0,
    chunk: int = 256,
):
    """Per-channel weights ``w > 0`` (mean 1) of the feature distance that order pairs by lag.

    LPIPS's learned linear layer (Zhang et al. 2018) fitted to the lag task: the
    trunk stays frozen, each pair's per-channel distance ``D_c`` (mean over the
    grid of ``|f_a - f_b|``, or of ``(f_a - f_b)**2``: the network's kind) is
    computed once, and ``w = softplus(p) / ln 2`` (1 at ``p = 0``) minimises the
    RankNet loss ``softplus(-sharpness * (ln d_j - ln d_i))`` over the pairs
    ``(i, j)`` of a random batch with lag ``c_i < c_j``, ``d = mean_c w_c D_c``.
    The returned weights multiply the distance's channels; alpha is calibrated
    afterwards, so only their ratios matter.

    Parameters
    ----------
    net : AtmoDistNet
        The trained network (eval mode; not changed).
    pairs : iterable of (a, b, c)
        Earlier and later patches (N, C, P, P) and their lag classes (N,), numpy
        arrays or tensors, in as many parts as convenient (only the per-channel
        distances are kept).
    seed : int
        Seeds the batches.
    """
    import torch
    import torch.nn.functional as F

    parts, lags = [], []
    with torch.inference_mode():
        for a, b, c in pairs:
            a, b = torch.as_tensor(a), torch.as_tensor(b)
            for i in range(0, len(c), chunk):
                fa, fb = net.features(a[i : i + chunk]), net.features(b[i : i + chunk])
                parts.append(feature_difference(fa - fb, net.distance_kind).mean(dim=(2, 3)))
            lags.append(torch.as_tensor(c).float())
    d = torch.cat(parts).float().clone()  # (N, C), outside inference mode
    lags = torch.cat(lags).clone()
    g = torch.Generator().manual_seed(int(seed))
    p = torch.zeros(d.shape[1], requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            i = torch.randint(0, len(d), (min(batch, len(d)),), generator=g)
            w = F.softplus(p) / math.log(2.0)
            ld = torch.log((d[i] * w).mean(dim=1) + 1e-12)
            order = torch.sign(lags[i, None] - lags[None, i])
            keep = order != 0
            loss = F.softplus(-sharpness * order[keep] * (ld[:, None] - ld[None, :])[keep]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    w = (F.softplus(p) / math.log(2.0)).detach()
    return w / w.mean()


def calibrate_alpha(net, a, b, c, n_classes: int, batch: int = 512) -> float:
    """Scale so the mean feature distance equals the mean data MSE at large lags."""
    import torch

    sel = c >= n_classes - max(1, n_classes // 3)
    a, b = a[sel], b[sel]
    with torch.inference_mode():
        feat, mse = [], []
        for i in range(0, len(a), batch):
            xa, xb = a[i : i + batch], b[i : i + batch]
            fa, fb = net.features(xa), net.features(xb)
            feat.append(net.feature_distance(fa, fb))
            mse.append((net.normaliser(xa) - net.normaliser(xb)).pow(2).mean(dim=(1, 2, 3)))
    f = float(torch.cat(feat).mean())
    return float(torch.cat(mse).mean()) / f if f > 0 else 1.0
