"""torch's intra-op thread count, set for a computation and restored after it.

``torch.set_num_threads`` is process-wide.  Setting it in a kernel or a trainer
and leaving it set changed every later computation of the process: after one
``set_options(torch_threads=1)`` block, a training run in the same process ran
on one thread, and oneDNN's kernels (split over threads differently) gave
other bits than the same run in a fresh process.  Here the count is set while
at least one computation asks for it and restored when the last one ends
(dask's threaded scheduler runs several kernels at once, all with the same
option value).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["torch_threads", "restores_torch_threads"]

_LOCK = threading.Lock()
_USERS = 0
_SAVED: int | None = None


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads (None: leave torch's setting)."""
    global _USERS, _SAVED
    if n is None:
        yield
        return
    import torch

    with _LOCK:
        if _USERS == 0:
            _SAVED = torch.get_num_threads()
        _USERS += 1
        if torch.get_num_threads() != n:
            torch.set_num_threads(int(n))
    try:
        yield
    finally:
        with _LOCK:
            _USERS -= 1
            if _USERS == 0 and _SAVED is not None and torch.get_num_threads() != _SAVED:
                torch.set_num_threads(_SAVED)


def restores_torch_threads(fn: Callable) -> Callable:
    """Decorate a trainer that takes ``threads=``: the count is restored when it returns."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        n = kwargs.get("threads")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            from .errors import InputError

            raise InputError(f"threads must be a positive int or None; got {n!r}.")
        with torch_threads(n):
            return fn(*args, **kwargs)

    return wrapper
