"""The one training loop: seeding, progress, checkpoints with exact resume, metrics log.

Every trainer drives it through a small task object (:class:`Task`): the
network, the optimizer and schedule, the batches of an epoch, the loss of a
batch, the epoch's record and the finished model.  The loop owns everything
else, so the encoder, downscalers and inpainters seed, log, checkpoint, resume
and stop alike.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import _device
from ..errors import InputError
from . import _checkpoint as checkpoint
from . import _parallel as par
from ._checkpoint import CHECKPOINT
from .config import Run

__all__ = ["Task", "run_task"]

log = logging.getLogger(__name__)


class Task:
    """What a trainer tells the loop; subclasses fill it in.

    Attributes
    ----------
    net : torch.nn.Module
        The network being trained.
    steps_per_epoch, epochs, seed, batch_size : int
        The schedule (``batch_size``: samples per step, all ranks together).
    config : dict
        The run's settings that shape the weights (JSON-able), stored in the
        checkpoint and compared on resume.
    finished_only : tuple of str
        Settings that may change once the saved run is finished (they only
        change what is computed after the last epoch).
    """

    net: Any
    steps_per_epoch: int
    epochs: int
    seed: int
    config: dict
    batch_size: int
    finished_only: tuple[str, ...] = ()

    def to(self, device) -> None:
        """Move what the loss computes with to the torch ``device``."""
        self.net.to(device)

    def optimizer(self, total_steps: int):
        """(optimizer, learning-rate scheduler) for ``total_steps`` steps."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Set-up of a fresh run (not resumed), e.g. normalisation statistics."""

    def batches(self, epoch: int, rng: np.random.Generator) -> Iterator:
        """The epoch's batches (the loop takes ``steps_per_epoch`` of them)."""
        raise NotImplementedError

    def loss(self, batch) -> tuple[Any, int, dict]:
        """(loss tensor, samples in the batch, sums of other statistics)."""
        raise NotImplementedError

    def record(self, epoch: int, sums: dict, seen: int, seconds: float, lr: float) -> dict:
        """The epoch's metrics record (``sums`` holds ``"loss"`` summed over samples)."""
        raise NotImplementedError

    def extra_state(self) -> dict | None:
        """More objects to checkpoint by name (``state_dict``/``load_state_dict``)."""
        return None

    def progress_line(self, rec: dict) -> str | None:
        """A line printed after each epoch when progress is shown (None: none)."""
        return None


def _restore(task: Task, config: dict, opt, sched, ckpt: Path) -> tuple[int, list, float]:
    """Load the checkpoint ``ckpt`` into the task's objects after checking its ``config``."""
    state = checkpoint.load(ckpt)
    compared = checkpoint.check_config(
        state,
        config,
        ckpt,
        finished_only=task.finished_only,
        finished=int(state["epoch"]) + 1 >= task.epochs,
    )
    sched_state = state["scheduler"]
    planned = sched_state.get("total_steps", sched_state.get("T_max"))
    total = task.epochs * task.steps_per_epoch
    # a checkpoint without settings (older versions): check the schedule's length
    if not compared and planned is not None and int(planned) != total:
        raise InputError(
            f"{ckpt} belongs to a run of {planned} optimizer steps, but these arguments give "
            f"{total} (epochs={task.epochs} x {task.steps_per_epoch} steps per epoch). The "
            "learning-rate schedule depends on them: resume with the epochs, samples per "
            "epoch and batch_size of the interrupted run, or start a new run in another "
            "out folder."
        )
    return checkpoint.restore(state, task.net, opt, sched, task.extra_state())


def run_task(
    task: Task, run: Run, out: Path | None, progress: bool, device=None, precision: str = "float32"
) -> tuple[list, float, int]:
    """Train ``task``; return (history, training seconds, the epoch the call started at).

    ``out`` is checked already (:func:`~xatmodist.train._checkpoint.check_out`).
    Each epoch draws its data from ``numpy.random.default_rng([seed, 2,
    epoch])`` and seeds torch with ``seed * 100_003 + epoch``, so a resumed run
    draws what an uninterrupted one would.  Under ``torchrun`` the ranks share
    each batch (:mod:`~xatmodist.train._parallel`); rank 0 writes.  The task
    trains on the torch ``device`` (None: the CPU) with its forward passes
    under autocast in ``precision`` (float16 with a gradient scaler).
    """
    import torch

    device = torch.device("cpu") if device is None else device
    rank, size = par.world(device)
    if size > 1:
        par.check_batch(task.batch_size, size, "samples")
        if task.extra_state():
            raise InputError(
                "Adversarial training (a discriminator updated inside the loss) does not run "
                f"data-parallel yet; run it in one process, not {size} ranks."
            )
    # the settings a resumed run must repeat; the world size too when there are ranks
    config = {**task.config, **({"world_size": size} if size > 1 else {})}
    start, history, seconds = 0, [], 0.0
    ckpt = out / CHECKPOINT if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    resume = run.resume and ckpt is not None and ckpt.is_file()
    if not resume:
        task.prepare()  # on the CPU: statistics of the training data
    task.to(device)  # before the optimizer and its restored state
    opt, sched = task.optimizer(task.epochs * task.steps_per_epoch)
    if resume:
        start, history, seconds = _restore(task, config, opt, sched, ckpt)
        log.info("resumed from %s at epoch %d", ckpt, start)
    scaler = torch.amp.GradScaler(device.type) if precision == "float16" else None
    par.barrier(size)  # every rank has read the checkpoint before rank 0 rewrites the log
    if out is not None and rank == 0:
        if run.overwrite:
            checkpoint.clear(out)
        # metrics.jsonl lists exactly the epochs in the checkpoint being continued
        checkpoint.reset_log(out, history)
    end = task.epochs if run.stop_after is None else min(task.epochs, int(run.stop_after))
    for epoch in range(start, end):
        rec, elapsed = _epoch(
            task, epoch, (opt, sched, scaler), progress and rank == 0, (rank, size), precision
        )
        seconds += elapsed
        history.append(rec)
        log.info("epoch %d: %s", epoch + 1, rec)
        line = task.progress_line(rec) if progress and rank == 0 else None
        if line:
            print(line, flush=True)  # noqa: T201  (progress report of a training run)
        if out is not None and rank == 0:
            checkpoint.save(
                out,
                epoch=epoch,
                net=task.net,
                opt=opt,
                sched=sched,
                history=history,
                seconds=seconds,
                extra=task.extra_state(),
                config=config,
            )
        par.barrier(size)
    return history, seconds, start


def _epoch(task: Task, epoch: int, step, progress: bool, ranks: tuple[int, int], precision: str):
    """Train one epoch; return (its record, seconds).  ``step``: (optimizer, schedule, scaler)."""
    import torch
    from tqdm.auto import tqdm

    opt, sched, scaler = step
    rank, size = ranks
    device = next(task.net.parameters()).device
    t0 = time.perf_counter()
    rng = np.random.default_rng([task.seed, 2, epoch])
    torch.manual_seed(task.seed * 100_003 + epoch)
    task.net.train()
    sums: dict[str, float] = {"loss": 0.0}
    seen = 0
    bar = tqdm(
        total=task.steps_per_epoch,
        desc=f"epoch {epoch + 1}/{task.epochs}",
        disable=not progress,
        leave=False,
    )
    batches = task.batches(epoch, rng)
    try:
        for batch in itertools.islice(batches, task.steps_per_epoch):
            if size > 1:
                batch = par.shard(batch, rank, size, task.batch_size)
            batch = tuple(
                _device.to_device(x, device) if isinstance(x, torch.Tensor) else x for x in batch
            )
            with _device.autocast(device, precision):
                loss, n, stats = task.loss(batch)
            opt.zero_grad(set_to_none=True)
            (loss if scaler is None else scaler.scale(loss)).backward()
            if size > 1:
                par.average_gradients(task.net.parameters(), size)
            if scaler is None:
                opt.step()
            else:  # skips the step where the scaled gradients overflowed (on every rank alike)
                scaler.step(opt)
                scaler.update()
            sched.step()
            sums["loss"] += float(loss.detach()) * n
            for k, x in stats.items():
                sums[k] = sums.get(k, 0) + x
            seen += n
            bar.update(1)
    finally:
        batches.close()
        bar.close()
    if size > 1:
        par.average_buffers(task.net, size)
        totals = par.sum_over_ranks({**sums, "seen": seen})
        seen = int(totals.pop("seen"))
        sums = totals
    elapsed = time.perf_counter() - t0
    return task.record(epoch, sums, seen, elapsed, sched.get_last_lr()[0]), elapsed
