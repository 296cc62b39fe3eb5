"""Self-supervised training of the AtmoDist encoder (the lag pretext task)."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from .. import _validate as v
from .._threads import restores_torch_threads
from .._validate import check_bool
from ..errors import InputError
from ..nn.encoder import DISTANCES
from ..zoo import Model
from . import _checkpoint as checkpoint
from ._checkpoint import CHECKPOINT
from ._pairs import Block, make_blocks, patch_index, sample_pairs, take_patches
from ._source import FieldSource, reflection_signs
from ._supervised import grid_card, model_id, start_model, swap_variable

__all__ = ["fit_encoder", "evaluate_encoder", "calibrate_alpha", "lag_setup", "rank_loss"]

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


class _PairStream:
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


@restores_torch_threads
def fit_encoder(
    ds,
    *,
    max_lag,
    patch_size: int | None = None,
    variables: Sequence[Hashable] | None = None,
    lag_step=None,
    dim: Hashable | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    epochs: int = 10,
    pairs_per_epoch: int = 32768,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    widths: Sequence[int] = (32, 64, 128),
    blocks: int = 1,
    stem_stride: int = 1,
    rank_weight: float = 0.0,
    projection: bool = False,
    distance: str = "squared",
    block_length: int | None = None,
    val_every: int = 10,
    val_pairs: int = 2048,
    lat_band: tuple[float, float] | None = None,
    lat_reflection: bool | Sequence[Hashable] = False,
    init: str | os.PathLike | Model | None = None,
    mix_blocks: int = 8,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    name: str = "atmodist-custom",
    threads: int | None = None,
    progress: bool = True,
    data_description: str | None = None,
    stop_after: int | None = None,
) -> Model:
    """Train an AtmoDist encoder by predicting the time lag between two fields.

    Pairs are taken at the same location (random patch centres; longitude
    wraps on global grids), earlier field first, with lags drawn uniformly from
    the classes ``lag_step, 2 * lag_step, ..., max_lag``.  Each series (run,
    member, level, ...) is cut into contiguous time blocks; every
    ``val_every``-th block is held out for validation and no pair straddles
    two blocks.  Normalisation statistics are estimated from a sample of
    training fields and stored in the weights (vorticity and divergence get
    ``z-score -> sign(z) * log1p(0.2 * |z|) -> z-score``).

    Parameters
    ----------
    ds : Dataset or DataArray
        Training data with a regular time axis (numpy, dask, zarr, netCDF, ...).
    max_lag, lag_step : int, str or Timedelta
        Largest lag and class width (``lag_step`` default: the data's time
        step).  An integer (Python or numpy) is that many time steps of the
        data, as ``ds.shift(time=3)`` counts: ``max_lag=12, lag_step=2`` on
        hourly data gives the classes 2 h, 4 h, ..., 12 h.  Anything else is a
        duration (``"6h"``, ``pd.Timedelta``, ``np.timedelta64``).  Floats,
        bools and integers < 1 are refused (see :func:`lag_setup`).
    patch_size : int, optional
        Side of the square patches, in grid points, a multiple of the
        encoder's reduction.  Default: 32 (the shipped simulator encoders'),
        or on a grid with fewer rows or (regional) columns the largest
        multiple of the reduction that fits it: 24 on NCEP's 25 x 53 North
        American grid, as ``atmodist-ncep-air``.
    variables : sequence of str, optional
        Variables to use.  Default: vorticity and divergence, found by CF
        standard_name (``atmosphere_relative_vorticity``,
        ``divergence_of_wind``) if the dataset has both as fields, else every
        variable that has the time and both spatial dims (static 2-D fields
        such as a land mask, and bounds such as ``time_bnds``, are left out);
        the choice is logged at INFO level and recorded in the card.
    dim, spatial_dims : optional
        Time and (lat, lon) dims if cf-xarray cannot find them.
    epochs, pairs_per_epoch, batch_size, lr, weight_decay
        Optimisation (AdamW, cosine learning-rate decay).
    widths, blocks, stem_stride : optional
        Encoder architecture (see :class:`xatmodist.nn.Encoder`).
    rank_weight : float
        Weight of a ranking term added to the cross-entropy: over every two
        pairs of a batch with different lags, ``log(1 + exp(-(log D_long -
        log D_short)))`` with ``D`` the feature distance (RankNet on log
        distances).  The lag head alone learns to tell lags apart, but nothing
        makes the feature distance itself grow with lag across locations; this
        term does (it directly optimises the rank correlation of distance and
        lag).  0 (default) trains with the cross-entropy only, as the paper.
    projection : bool
        Take the distance on a learned per-location projection of the trunk's
        features (see :class:`xatmodist.nn.AtmoDistNet`); needs
        ``rank_weight > 0``, the only term that trains it.
    distance : {"squared", "l1"}
        The trained model's distance: the mean squared (default, as the paper)
        or mean absolute (``"l1"``) difference of the two patches' features,
        times the calibrated alpha (:class:`xatmodist.nn.AtmoDistNet`).  The
        ranking term always ranks the squared distance: the features it
        trains serve both, and ranking the l1 distance itself did worse (fine-
        tuning ``atmodist-swe-vd-v6`` 5 epochs: validation rho 0.900 of the l1
        distance ranked as l1, 0.910 of the squared one ranked as squared,
        while the features ranked as squared give the l1 distance the higher
        rho of the two).  Validation, ``alpha`` and the card use this one.
    block_length : int, optional
        Time steps per block (default ``max(4 * max_lag_steps, 16)``).
    val_every, val_pairs
        Every ``val_every``-th block is validation; ``val_pairs`` fixed pairs
        are scored after each epoch.
    lat_band : (float, float), optional
        Only draw patches between these latitudes.
    lat_reflection : bool or sequence of str
        Augment the training pairs with their north-south mirror images (each
        pair mirrored with probability 1/2, both fields alike): on a rotating
        sphere the mirror image of a state is an equally possible state once
        the fields that change sign under the reflection (vorticity,
        northward wind, ...) are negated.  True finds those by CF
        standard_name (every variable needs one); a list names them
        (``[]`` if none does).  False (default) trains on the data as it is.
    init : str, path or Model, optional
        Start from this trained encoder (fine-tuning): same architecture,
        variables and lag step; its normalisation statistics are kept.
    mix_blocks : int
        Blocks whose pairs are shuffled together into batches.
    seed : int
        Seeds all randomness; a resumed run continues exactly.
    out : path, optional
        Folder for ``checkpoint.pt`` (each epoch, written atomically; it also
        holds the run's settings), ``metrics.jsonl`` and the final model
        (``out/model``).  A folder that already holds a checkpoint or a model
        is refused unless ``resume`` or ``overwrite`` is given.
    resume : bool
        Continue from ``out/checkpoint.pt`` if it exists.  The settings must
        be those of the saved run (every argument but ``out``, ``resume``,
        ``overwrite``, ``stop_after``, ``name``, ``threads``, ``progress`` and
        ``data_description``; ``distance`` may change once the run is
        finished, which re-scores and re-calibrates the finished network);
        any difference is an error listing each changed setting.
    overwrite : bool
        Start a new run in an ``out`` that holds an earlier one, removing its
        checkpoint, metrics and model first (not with ``resume``).
    name : str
        Model name written to the card.
    threads : int, optional
        torch intra-op threads.
    progress : bool
        Show a tqdm progress bar.
    data_description : str, optional
        Free text for the card's ``training.data``.
    stop_after : int, optional
        Stop once this many epochs (counted from the start of the schedule) are
        done, keeping the schedule of ``epochs``; for time-limited batch jobs: run
        with ``stop_after=k, out=...``, then again with ``resume=True``.  The
        returned model is the one at that point.

    Returns
    -------
    Model
        The trained encoder with a complete card (saved to ``out/model`` if
        ``out`` is given).
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from ..nn import AtmoDistNet

    out = checkpoint.check_out(out, resume=resume, overwrite=overwrite)
    src = FieldSource(ds, variables, dim, spatial_dims)
    signs = None
    flipped = None  # the variables negated in mirrored pairs
    if lat_reflection is not False and lat_reflection is not None:
        signs = reflection_signs(src.specs, lat_reflection)
        flipped = [s["name"] for s, g in zip(src.specs, signs, strict=True) if g < 0]
    lag_s, n_classes, stride = lag_setup(src.step_seconds, max_lag, lag_step)
    max_steps = n_classes * stride
    if (
        isinstance(stem_stride, bool)
        or not isinstance(stem_stride, int | np.integer)
        or stem_stride < 1
    ):
        raise InputError(f"stem_stride must be a positive integer; got {stem_stride!r}.")
    reduction = int(stem_stride) * 2 ** (len(widths) - 1)
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
            f"(stem_stride={stem_stride} x 2**{len(widths) - 1} for {len(widths)} stages), so "
            "its feature grid would not tile the patch. Choose a patch_size that is a multiple "
            f"of {reduction}, or a smaller stem_stride."
        )
    given = rank_weight
    try:
        rank_weight = float(rank_weight)
    except (TypeError, ValueError):
        rank_weight = math.nan
    if not math.isfinite(rank_weight) or rank_weight < 0:
        raise InputError(f"rank_weight must be a finite number >= 0; got {given!r}.")
    check_bool(projection, "projection")
    if not isinstance(distance, str) or distance not in DISTANCES:
        raise InputError(
            f"distance must be one of {list(DISTANCES)} (mean squared or mean absolute feature "
            f"difference); got {distance!r}."
        )
    if projection and rank_weight == 0:
        raise InputError(
            "projection=True needs rank_weight > 0: the ranking term is the only loss that "
            "trains the projection (the lag head reads the trunk). Pass e.g. rank_weight=2.0, "
            "or projection=False."
        )
    block_length = block_length or max(4 * max_steps, 16)
    if block_length > src.n_time:
        block_length = src.n_time
    train_blocks, val_blocks = make_blocks(
        n_series=src.n_series,
        n_time=src.n_time,
        block_length=block_length,
        max_lag=max_steps,
        val_every=val_every,
    )
    if not train_blocks or not val_blocks:
        raise InputError(
            f"Not enough time steps: {src.n_series} series x {src.n_time} steps in blocks of "
            f"{block_length} give {len(train_blocks)} training and {len(val_blocks)} validation "
            f"blocks for lags up to {max_steps} steps. Use more data, a smaller max_lag or "
            "a smaller val_every."
        )
    lat_rows = _lat_rows(src, lat_band)
    stream = _PairStream(src, n_classes, stride, patch_size, lat_rows)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    start = None
    if init is not None:
        arch = {
            "in_channels": src.n_channels,
            "n_classes": n_classes,
            "widths": list(widths),
            "blocks": blocks,
            "stem_stride": int(stem_stride),
            "projection": bool(projection),
        }
        start = start_model(init, "encoder", AtmoDistNet, arch, src)
        if not math.isclose(start.card["lag_step_seconds"], lag_s):
            raise InputError(
                f"init={start.name!r} predicts lags in steps of {start.card['lag_step_seconds']} "
                f"s; these arguments give {lag_s} s. Pass the init model's lag_step "
                f"({start.card['lag_step_seconds'] / 3600:g}h)."
            )
    torch.manual_seed(seed)
    net = AtmoDistNet(
        src.n_channels,
        n_classes,
        widths=tuple(widths),
        blocks=blocks,
        stem_stride=stem_stride,
        projection=bool(projection),
        distance=distance,
    )
    if start is not None:
        net.load_state_dict(start.module.state_dict())
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, pairs_per_epoch // batch_size)
    total_steps = epochs * steps_per_epoch
    if total_steps >= 4:
        # 5% warm-up, but at least one step in each of OneCycle's two phases
        pct = min(0.5, max(0.05, 2.0 / total_steps))
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=total_steps, pct_start=pct
        )
    else:  # too short for a schedule: constant learning rate
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    # every setting that changes the result, resolved (variables, lags as durations)
    config = {
        "variables": [s["name"] for s in src.specs],
        "dims": [str(src.time), str(src.lat), str(src.lon)],
        "max_lag": v.duration_text(n_classes * lag_s),
        "lag_step": v.duration_text(lag_s),
        "patch_size": patch_size,
        "epochs": epochs,
        "pairs_per_epoch": pairs_per_epoch,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "widths": list(widths),
        "blocks": blocks,
        "stem_stride": int(stem_stride),
        "rank_weight": rank_weight,
        "projection": bool(projection),
        "distance": distance,
        "block_length": block_length,
        "val_every": val_every,
        "val_pairs": val_pairs,
        "lat_band": list(lat_band) if lat_band else None,
        "lat_reflection": flipped,
        "init": model_id(start),
        "mix_blocks": mix_blocks,
        "seed": seed,
    }
    start_epoch, history, train_seconds = 0, [], 0.0
    ckpt = out / CHECKPOINT if out is not None else None
    if resume and ckpt is not None and ckpt.is_file():
        state = checkpoint.load(ckpt)
        # the distance changes no weights: a finished run may be re-scored with another
        compared = checkpoint.check_config(
            state,
            config,
            ckpt,
            finished_only=("distance",),
            finished=int(state["epoch"]) + 1 >= epochs,
        )
        planned = state["scheduler"].get("total_steps")
        # a checkpoint without settings (older versions): check the schedule's length
        if not compared and planned is not None and int(planned) != epochs * steps_per_epoch:
            raise InputError(
                f"{ckpt} belongs to a run of {planned} optimizer steps, but these arguments "
                f"give {epochs * steps_per_epoch} (epochs={epochs} x {steps_per_epoch} steps "
                f"of batch_size={batch_size} per pairs_per_epoch={pairs_per_epoch}). The "
                "learning-rate schedule depends on them: resume with the epochs, "
                "pairs_per_epoch and batch_size of the interrupted run, or start a new run "
                "in another out folder."
            )
        start_epoch, history, train_seconds = checkpoint.restore(state, net, opt, sched)
        log.info("resumed from %s at epoch %d", ckpt, start_epoch)
    elif start is None:  # an init model brings its own statistics
        rng = np.random.default_rng([seed, 1])
        fields = torch.from_numpy(src.sample_fields(256, rng))
        flat = fields.transpose(0, 1).reshape(src.n_channels, -1).double()
        net.normaliser.fit(
            flat.mean(dim=1).float(),
            flat.std(dim=1).float(),
            fields,
            [s["log_transform"] for s in src.specs],
        )
    if out is not None:
        if overwrite:
            checkpoint.clear(out)
        # metrics.jsonl lists exactly the epochs in the checkpoint being continued: an
        # epoch whose metrics were appended but whose checkpoint save was killed is
        # trained again and must not be listed twice; a fresh run starts a fresh file
        checkpoint.reset_log(out, history)
    va, vb, vc = stream.fixed(val_blocks, val_pairs, seed)
    va, vb, vc = torch.from_numpy(va), torch.from_numpy(vb), torch.from_numpy(vc)

    for epoch in range(start_epoch, epochs):
        if stop_after is not None and epoch >= stop_after:
            break
        t_epoch = time.perf_counter()
        rng = np.random.default_rng([seed, 2, epoch])
        torch.manual_seed(seed * 100_003 + epoch)
        order = rng.permutation(len(train_blocks))
        blocks_ep = [train_blocks[i] for i in order]
        per_block = max(1, math.ceil(pairs_per_epoch / len(blocks_ep)))
        net.train()
        tot_loss, tot_ok, seen, step = 0.0, 0, 0, 0
        bar = tqdm(
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not progress,
            leave=False,
        )
        buf = []
        it = src.iter_blocks(blocks_ep)
        for bi, (blk, fields) in enumerate(it):
            buf.append(stream.draw(rng, blk, fields, per_block, signs))
            if len(buf) < mix_blocks and bi + 1 < len(blocks_ep):
                continue
            xa, xb, cls = (np.concatenate(z) for z in zip(*buf, strict=True))
            buf = []
            perm = rng.permutation(len(cls))
            for s in range(0, len(perm) - batch_size + 1, batch_size):
                if step >= steps_per_epoch:
                    break
                idx = perm[s : s + batch_size]
                a, b = torch.from_numpy(xa[idx]), torch.from_numpy(xb[idx])
                y = torch.from_numpy(cls[idx])
                logits, dist = net.logits_and_distance(a, b)
                loss = F.cross_entropy(logits, y)
                if rank_weight > 0:
                    loss = loss + rank_weight * rank_loss(dist, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                tot_loss += float(loss.detach()) * len(idx)
                tot_ok += int((logits.argmax(1) == y).sum())
                seen += len(idx)
                step += 1
                bar.update(1)
            if step >= steps_per_epoch:
                break
        bar.close()
        it.close()
        elapsed = time.perf_counter() - t_epoch
        train_seconds += elapsed
        val = _score(net, va, vb, vc, n_classes)
        rec = {
            "epoch": epoch + 1,
            "train_loss": tot_loss / max(seen, 1),
            "train_top1": tot_ok / max(seen, 1),
            **{f"val_{k}": v for k, v in val.items()},
            "pairs_per_second": seen / elapsed,
            "seconds": elapsed,
            "lr": sched.get_last_lr()[0],
        }
        history.append(rec)
        log.info("epoch %d: %s", epoch + 1, rec)
        if progress:
            print(  # noqa: T201  (progress report of a training CLI run)
                f"epoch {epoch + 1}/{epochs} loss {rec['train_loss']:.3f} "
                f"top1 {rec['train_top1']:.3f} val_top1 {val['top1']:.3f} "
                f"val_within1 {val['within1']:.3f} val_rho {val['spearman_distance']:.3f} "
                f"{rec['pairs_per_second']:.0f} pairs/s",
                flush=True,
            )
        if out is not None:
            checkpoint.save(
                out,
                epoch=epoch,
                net=net,
                opt=opt,
                sched=sched,
                history=history,
                seconds=train_seconds,
                config=config,
            )

    # a run resumed after its last epoch (e.g. with another distance) has no fresh
    # validation of the returned network: score it again (leaves training mode on)
    rescored = (
        {f"val_{k}": v for k, v in _score(net, va, vb, vc, n_classes).items()}
        if history and len(history) == start_epoch
        else {}
    )
    net.eval()
    alpha = calibrate_alpha(net, va, vb, vc, n_classes)
    net.alpha.fill_(alpha)
    card = {
        "name": name,
        "version": 1,
        "task": "encoder",
        "architecture": "AtmoDistNet",
        "args": {
            "in_channels": src.n_channels,
            "n_classes": n_classes,
            "widths": list(widths),
            "blocks": blocks,
            "stem_stride": int(stem_stride),
            "log_scale": net.normaliser.log_scale,
            **({"projection": True} if projection else {}),
            **({"distance": distance} if distance != DISTANCES[0] else {}),
        },
        "variables": [{k: s[k] for k in ("name", "standard_name", "units")} for s in src.specs],
        "grid": grid_card(src),
        "patch_size": int(patch_size),
        "feature_reduction": net.encoder.reduction,
        "lag_step_seconds": lag_s,
        "lag_classes": [(k + 1) * lag_s for k in range(n_classes)],
        "normalisation": {
            "method": "per-variable z-score; for log variables then sign(z)*log1p(s*|z|) "
            "and a second z-score (Hoffmann & Lessig 2023); statistics are buffers in the weights",
            "log_scale": net.normaliser.log_scale,
            "log_variables": [s["name"] for s in src.specs if s["log_transform"]],
            "mean": net.normaliser.mean_in.tolist(),
            "std": net.normaliser.std_in.tolist(),
        },
        "distance": {
            "kind": distance,
            "definition": "alpha * mean over features and grid of "
            + ("|f(a) - f(b)|" if distance == "l1" else "(f(a) - f(b))**2")
            + ", f = encoder output (last stage"
            + (", through the learned 1x1 projection)" if projection else ")"),
            "alpha": alpha,
            "alpha_fit": "mean MSE of normalised fields / mean feature distance over validation "
            "pairs in the largest third of the lag classes",
        },
        "training": {
            "data": data_description or "user data",
            "series": src.n_series,
            "time_steps": src.n_time,
            "block_length": block_length,
            "train_blocks": len(train_blocks),
            "val_blocks": len(val_blocks),
            "epochs": epochs,
            "pairs_per_epoch": pairs_per_epoch,
            "batch_size": batch_size,
            "lr": lr,
            "weight_decay": weight_decay,
            "loss": "cross-entropy"
            + (f" + {rank_weight:g} x RankNet on log feature distance" if rank_weight else ""),
            "rank_weight": rank_weight,
            "seed": seed,
            "lat_band": list(lat_band) if lat_band else None,
            "lat_reflection": None if flipped is None else {"sign_changing": flipped},
            "init": model_id(start),
            "train_seconds": round(train_seconds, 1),
            "torch_threads": torch.get_num_threads(),
            "history": history,
        },
        "metrics": {"validation": {**history[-1], **rescored} if history else {}},
    }
    model = Model(card=card, module=net)
    if out is not None:
        model.save(out / "model")
    return model


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


def _score(net, a, b, c, n_classes: int, batch: int = 512) -> dict:
    import torch
    from scipy.stats import spearmanr

    net.eval()
    with torch.inference_mode():
        out = [
            net.logits_and_distance(a[i : i + batch], b[i : i + batch], kind=net.distance_kind)
            for i in range(0, len(c), batch)
        ]
    net.train()
    pred = torch.cat([o[0] for o in out]).argmax(1)
    dist = torch.cat([o[1] for o in out]).numpy()
    err = (pred - c).abs()
    return {
        "top1": float((err == 0).float().mean()),
        "within1": float((err <= 1).float().mean()),
        "spearman_distance": float(spearmanr(dist, c.numpy()).statistic),
    }


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


def _bootstrap_ci(x: np.ndarray, y: np.ndarray, seed: int, n: int = 200) -> list[float]:
    """95% percentile interval of Spearman rho(x, y) over ``n`` bootstrap resamples of the pairs.

    The spread a different draw of pairs from the same data would give (pairs are the
    unit of sampling); it does not cover run-to-run differences of the data.
    """
    from scipy.stats import rankdata

    rng = np.random.default_rng([seed, 104729])
    rhos = []
    for _ in range(n):
        i = rng.integers(0, len(x), len(x))
        rhos.append(np.corrcoef(rankdata(x[i]), rankdata(y[i]))[0, 1])
    lo, hi = np.percentile(rhos, [2.5, 97.5])
    return [float(lo), float(hi)]


def evaluate_encoder(
    model,
    ds,
    *,
    n_pairs: int = 4096,
    seed: int = 1,
    variables=None,
    dim=None,
    spatial_dims=None,
    batch: int = 256,
) -> dict:
    """Held-out metrics of an encoder on fresh data (all of ``ds`` is used).

    Returns top-1 and +-1-class accuracy of the lag head, the confusion matrix,
    Spearman rho between true lag and (a) the learned distance, (b) the l2
    distance of the normalised fields, (c) the head's expected lag, all on the
    same patch pairs (for (a) also ``spearman_learned_ci95``, a bootstrap 95%
    interval over the pairs: the spread another draw of pairs would give), and the
    accuracy of
    an l2 nearest-centroid classifier (centroids fitted on one half of the
    pairs, scored on the other), and ``variable_share``: for each variable, the
    mean learned distance when only that variable moves on to the later time,
    as a fraction of the sum over variables (which variables the distance sees).
    """
    import torch
    from scipy.stats import spearmanr

    from ..zoo import load_model

    model = load_model(model)
    card, net = model.card, model.module
    names = [v["name"] for v in card["variables"]]
    if variables is not None:
        names = list(variables)
    src = FieldSource(ds, names, dim, spatial_dims)
    n_classes = len(card["lag_classes"])
    stride_f = card["lag_step_seconds"] / src.step_seconds
    stride = int(round(stride_f))
    if abs(stride_f - stride) > 1e-6 or stride < 1:
        raise InputError(
            f"The data's time step ({src.step_seconds} s) does not divide the model's lag step "
            f"({card['lag_step_seconds']} s)."
        )
    blocks, _ = make_blocks(
        n_series=src.n_series,
        n_time=src.n_time,
        block_length=src.n_time,
        max_lag=n_classes * stride,
        val_every=0,
    )
    stream = _PairStream(src, n_classes, stride, card["patch_size"], None)
    a, b, c = stream.fixed(blocks, n_pairs, seed)
    a, b = torch.from_numpy(a), torch.from_numpy(b)
    with torch.inference_mode():
        logits, dist, l2, alone = [], [], [], []
        for i in range(0, len(c), batch):
            xa, xb = a[i : i + batch], b[i : i + batch]
            logits.append(net(xa, xb))
            dist.append(net.distance(xa, xb))
            l2.append((net.normaliser(xa) - net.normaliser(xb)).pow(2).mean(dim=(1, 2, 3)))
            # the distance when only one variable moves on to the later time (xa encoded once)
            fa = net.features(xa)
            alone.append(
                torch.stack(
                    [
                        net.alpha * net.feature_distance(net.features(swap_variable(xa, xb, k)), fa)
                        for k in range(xa.shape[1])
                    ],
                    dim=1,
                )
            )
    logits = torch.cat(logits)
    expected = (torch.softmax(logits, 1) * torch.arange(n_classes)).sum(1).numpy()
    pred = logits.argmax(1).numpy()
    dist, l2 = torch.cat(dist).numpy(), torch.cat(l2).numpy()
    alone = torch.cat(alone).mean(0).numpy()
    err = np.abs(pred - c)
    conf = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(conf, (c, pred), 1)
    half = len(c) // 2
    centroid = {}
    for name, d in (("l2", l2), ("learned", dist)):
        cent = np.array([d[:half][c[:half] == k].mean() for k in range(n_classes)])
        guess = np.abs(d[half:, None] - cent[None, :]).argmin(1)
        e = np.abs(guess - c[half:])
        centroid[name] = {"top1": float((e == 0).mean()), "within1": float((e <= 1).mean())}
    return {
        "n_pairs": int(len(c)),
        "chance_top1": 1.0 / n_classes,
        "top1": float((err == 0).mean()),
        "within1": float((err <= 1).mean()),
        "mean_abs_class_error": float(err.mean()),
        "per_class_top1": [float(conf[k, k] / max(conf[k].sum(), 1)) for k in range(n_classes)],
        "confusion": conf.tolist(),
        "spearman_learned": float(spearmanr(dist, c).statistic),
        "spearman_learned_ci95": _bootstrap_ci(dist, c, seed),
        "spearman_l2": float(spearmanr(l2, c).statistic),
        "spearman_expected_lag": float(spearmanr(expected, c).statistic),
        "l2_nearest_centroid": centroid["l2"],
        "learned_nearest_centroid": centroid["learned"],
        "variable_share": {
            str(name): float(x / alone.sum()) for name, x in zip(names, alone, strict=True)
        },
    }
