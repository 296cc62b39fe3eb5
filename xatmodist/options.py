"""Global options, settable for a block (context manager) or for the session.

Examples
--------
>>> with xatmodist.set_options(batch_size=64):
...     xatmodist.get_options()["batch_size"]
64
"""

from __future__ import annotations

from typing import Any

from . import _device
from .errors import InputError

__all__ = ["set_options", "get_options"]

_OPTIONS: dict[str, Any] = {
    "batch_size": 64,
    "torch_threads": None,
    "progress": True,
    "jit": True,
    "device": "auto",
    "precision": "float32",
}


def _positive_int(name):
    def check(v):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InputError(f"Option {name!r} must be a positive int; got {v!r}.")

    return check


def _threads(v):
    if v is not None:
        _positive_int("torch_threads")(v)


def _bool(name):
    def check(v):
        if not isinstance(v, bool):
            raise InputError(f"Option {name!r} must be True or False; got {v!r}.")

    return check


_VALIDATORS = {
    "batch_size": _positive_int("batch_size"),
    "torch_threads": _threads,
    "progress": _bool("progress"),
    "jit": _bool("jit"),
    "device": _device.check_device,
    "precision": lambda v: None,  # checked with the device it will run on (__init__)
}


class set_options:  # noqa: N801  (lower case like xarray.set_options)
    """Set options globally or, used with ``with``, for a block.

    Parameters
    ----------
    batch_size : int
        Patches per forward pass of an encoder (default 64).  Every pass holds
        exactly this many (the last one of a chunk padded), so a result does
        not depend on how the input is chunked, on any CPU; another
        ``batch_size`` may change results in the last bits
        (docs/reliability.md).  64 ran the default encoder faster per patch
        than 256 on 2 CPU threads (5607 vs 4940 patches/s,
        ``python -m benchmarks.pass_size``) and pads small chunks less.
        Downscalers and inpainters take one whole field per pass.
    torch_threads : int or None
        torch intra-op threads for inference; None leaves torch's default.
        On a dask cluster use one thread per worker process.
    progress : bool
        Show progress bars for long computations (demo, training).
    jit : bool
        Run the encoder's trunk as a frozen TorchScript graph (convolutions
        fused with their ReLUs and residual adds; about a third faster on CPU,
        equal up to float rounding).  False runs it eagerly (for debugging).
        Travels with the task graph, so it holds on dask workers too.  Used
        on the CPU in float32 only; on a GPU, or in another precision, the
        eager network with folded batch norms runs (cuDNN picks fused kernels
        itself, and a frozen graph does not take autocast).
    device : str
        Where the networks run: ``"auto"`` (default: a CUDA GPU if torch sees
        one, else Apple's ``"mps"`` if available, else the CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or ``"mps"``.  Travels with dask tasks as the
        string, so ``"auto"`` is decided by each worker: with one worker per
        GPU (``dask_cuda.LocalCUDACluster``) each uses its own.  Batches move
        to a GPU from pinned memory without blocking; results come back as
        numpy.  A device torch cannot see is refused here.
    precision : str
        ``"float32"`` (default), ``"bfloat16"`` or ``"float16"`` (GPU only):
        convolutions and matrix products under :func:`torch.autocast` in that
        type; inputs, normalisation and results stay float32.  Results are
        no longer bitwise those of float32 (docs/scaling.md gives measured
        differences).
    """

    def __init__(self, **kwargs: Any) -> None:
        self.old = {}
        for k, v in kwargs.items():
            if k not in _OPTIONS:
                raise InputError(f"Unknown option {k!r}; the options are {sorted(_OPTIONS)}.")
            _VALIDATORS[k](v)
            self.old[k] = _OPTIONS[k]
        if "device" in kwargs or "precision" in kwargs:
            _device.check_precision(
                kwargs.get("precision", _OPTIONS["precision"]),
                kwargs.get("device", _OPTIONS["device"]),
            )
        _OPTIONS.update(kwargs)

    def __enter__(self) -> set_options:
        return self

    def __exit__(self, *exc: object) -> None:
        _OPTIONS.update(self.old)


def get_options() -> dict[str, Any]:
    """A copy of the current options."""
    return dict(_OPTIONS)
