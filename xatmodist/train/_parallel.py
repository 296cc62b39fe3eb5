"""Data-parallel training with ``torch.distributed`` (launched by ``torchrun``).

Every rank draws the same global batch (the same seeded generators as a single
process) and trains on its own contiguous share of it; gradients are averaged
over the ranks (one ``all_reduce`` of the flattened gradients per step), so
the ranks keep identical weights and together take the step one process would
take with the whole batch.  What differs from one process: batch-norm
statistics are those of each rank's share (the running statistics are
averaged over the ranks after every epoch), and the encoder's ranking term
compares pairs within a share only.  Rank 0 alone writes checkpoints, the
metrics log and the model.  The backend is ``nccl`` when the ranks train on
CUDA GPUs (each on ``cuda:LOCAL_RANK``), ``gloo`` on CPUs.
"""

from __future__ import annotations

import os

from ..errors import InputError

__all__ = ["average_buffers", "average_gradients", "barrier", "shard", "sum_over_ranks", "world"]


def world(device=None) -> tuple[int, int]:
    """(rank, world size): from ``torchrun``'s environment, (0, 1) without it.

    Starts the process group if ``torchrun`` set ``WORLD_SIZE`` > 1 and nobody
    started it yet: ``nccl`` for a CUDA ``device`` (made this process's
    current device first), ``gloo`` otherwise.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        cuda = device is not None and device.type == "cuda"
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def check_batch(batch_size: int, size: int, what: str) -> None:
    """Refuse a global batch that the ranks cannot share equally."""
    if batch_size % size or batch_size < size:
        raise InputError(
            f"batch_size={batch_size} cannot be shared equally by {size} ranks: each rank "
            f"trains on batch_size / world size {what}. Pass a batch_size that is a multiple "
            f"of {size} (e.g. {max(size, batch_size - batch_size % size)}) or run fewer ranks."
        )


def shard(batch: tuple, rank: int, size: int, n: int) -> tuple:
    """Rank ``rank``'s contiguous share of every tensor of ``batch`` with ``n`` rows."""
    import torch

    per = n // size
    return tuple(
        x[rank * per : (rank + 1) * per] if isinstance(x, torch.Tensor) and len(x) == n else x
        for x in batch
    )


def average_gradients(params, size: int) -> None:
    """Replace every gradient by its mean over the ranks (one flat ``all_reduce``)."""
    import torch
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    i = 0
    for g in grads:
        g.copy_(flat[i : i + g.numel()].view_as(g))
        i += g.numel()


def sum_over_ranks(values: dict) -> dict:
    """The sums of ``values`` (numbers by name) over the ranks."""
    import torch
    import torch.distributed as dist

    on = "cuda" if dist.get_backend() == "nccl" else "cpu"  # nccl reduces GPU tensors only
    t = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=on)
    dist.all_reduce(t)
    return dict(zip(values, t.tolist(), strict=True))


def average_buffers(net, size: int) -> None:
    """Average the floating-point buffers (batch-norm running statistics) over the ranks."""
    import torch.distributed as dist

    for b in net.buffers():
        if b.is_floating_point():
            dist.all_reduce(b)
            b /= size


def barrier(size: int) -> None:
    """Wait for every rank (nothing to wait for in one process)."""
    if size > 1:
        import torch.distributed as dist

        dist.barrier()
