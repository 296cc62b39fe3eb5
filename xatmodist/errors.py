"""Exceptions raised by xatmodist.

Every error a user can trigger derives from :class:`XatmodistError`, so one
``except xatmodist.XatmodistError`` catches them all.  Messages follow one
pattern: what was expected, what arrived, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "XatmodistError",
    "InputError",
    "VariableNotFoundError",
    "UnitsError",
    "ChunkError",
    "GridError",
    "ModelError",
    "ModelNotFoundError",
    "WeightsError",
    "OutOfDistributionWarning",
    "UnitsWarning",
    "warn",
]


class XatmodistError(Exception):
    """Base class of every exception raised by xatmodist."""


class InputError(XatmodistError, ValueError):
    """The data passed in cannot be used as it is (dims, sizes, values)."""


class VariableNotFoundError(InputError, KeyError):
    """A variable the model needs is not in the dataset."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnitsError(InputError):
    """A variable's units differ from those the model was trained on."""


class ChunkError(InputError):
    """A dask array is chunked along a dimension that must be one chunk."""


class GridError(InputError):
    """Grids are too small, mismatched between inputs, or not regular."""


class ModelError(XatmodistError):
    """A model cannot be found, loaded or used."""


class ModelNotFoundError(ModelError, LookupError):
    """No model of that name in the zoo and no such path."""


class WeightsError(ModelError):
    """Weights are corrupt, do not match their card, or are not safetensors."""


class OutOfDistributionWarning(UserWarning):
    """The input differs from the model's training data (e.g. grid spacing)."""


class UnitsWarning(UserWarning):
    """A variable has no ``units`` attribute to check against the model card."""


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointing at the first caller outside xatmodist (the user's line).

    Inside a dask task (no user frame on the stack) it points at the frame that
    called into xatmodist.
    """
    import os
    import sys
    import warnings

    pkg = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(pkg):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
