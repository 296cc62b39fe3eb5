"""Where torch runs and in which precision: the ``device`` and ``precision`` options.

One place resolves the option strings, checks them against the machine and
moves tensors, for inference (:mod:`xatmodist._kernels`) and training
(:mod:`xatmodist.train._loop`) alike.

* ``device``: ``"auto"`` (a CUDA GPU if torch sees one, else Apple's MPS if
  available, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
  The option travels with a dask task as its string, so ``"auto"`` is
  resolved by each worker: on a cluster of GPU workers (one per GPU, as
  ``dask_cuda.LocalCUDACluster`` starts them) every worker takes its own GPU.
* ``precision``: ``"float32"`` (default), ``"bfloat16"`` or ``"float16"``:
  convolutions and matrix products run under :func:`torch.autocast` in that
  type; inputs, normalisation, outputs and reductions stay float32.  float16
  needs a GPU (CPU autocast is meant for bfloat16).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import Any

from .errors import InputError

__all__ = [
    "PRECISIONS",
    "autocast",
    "check_device",
    "check_precision",
    "resolve",
    "to_device",
]

PRECISIONS = ("float32", "bfloat16", "float16")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def check_device(device: Any) -> None:
    """Refuse a device string this process cannot use, saying what it can."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise InputError(
            f"Option 'device' must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got {device!r}."
        )
    if device.startswith("cuda"):
        n = _cuda_count()
        if n == 0:
            raise InputError(
                f"device={device!r} needs a CUDA GPU, and torch sees none in this process "
                f"(torch {_torch_version()}, CUDA_VISIBLE_DEVICES="
                f"{os.environ.get('CUDA_VISIBLE_DEVICES', '(not set)')!r}). Use device='cpu', "
                "or 'auto' to take a GPU only where there is one (e.g. a client without a GPU "
                "sending work to GPU workers), or install a CUDA build of torch."
            )
        k = int(device.split(":")[1]) if ":" in device else 0
        if k >= n:
            raise InputError(
                f"device={device!r}: torch sees {n} CUDA device(s), numbered 0 to {n - 1}."
            )
    if device == "mps" and not _mps_available():
        where = "this torch build" if sys.platform == "darwin" else f"{sys.platform}"
        raise InputError(
            "device='mps' is Apple's Metal GPU backend, available on macOS with Apple silicon "
            f"only; it is not available on {where}. Use device='cpu' or 'auto'."
        )


def _torch_version() -> str:
    import torch

    return torch.__version__


def resolve(device: str):
    """The :class:`torch.device` of an option string (``"auto"`` decided here)."""
    import torch

    if device == "auto":
        if _cuda_count():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps" if _mps_available() else "cpu")
    check_device(device)
    return torch.device(device)


def check_precision(precision: Any, device: str) -> None:
    """Refuse an unknown precision, or float16 where ``device`` resolves to the CPU."""
    if precision not in PRECISIONS:
        raise InputError(
            f"Option 'precision' must be one of {list(PRECISIONS)}; got {precision!r}."
        )
    if precision == "float16" and resolve(device).type == "cpu":
        raise InputError(
            f"precision='float16' needs a GPU; device={device!r} runs on the CPU here, whose "
            "autocast computes in bfloat16. Use precision='bfloat16' on a CPU, or a GPU device."
        )


def autocast(device, precision: str):
    """:func:`torch.autocast` in ``precision`` on ``device``; nothing for float32."""
    import torch

    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, precision))


def to_device(t, device):
    """``t`` on ``device``: pinned and copied without blocking to a GPU, as is on the CPU."""
    if device.type == "cpu":
        return t
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


def training_device(device: str, local_rank: int):
    """The device of one training process: ``cuda:LOCAL_RANK`` for a CUDA run under torchrun."""
    import torch

    dev = resolve(device)
    if dev.type == "cuda" and "LOCAL_RANK" in os.environ and ":" not in device:
        n = _cuda_count()
        if local_rank >= n:
            raise InputError(
                f"torchrun started local rank {local_rank}, but this node has {n} CUDA "
                f"device(s); start at most {n} processes per node (--nproc_per_node={n})."
            )
        return torch.device("cuda", local_rank)
    return dev
