"""xatmodist: self-supervised learned distances (AtmoDist) for atmospheric fields.

Importing the package registers the ``.atmodist`` accessor on
:class:`xarray.DataArray` and :class:`xarray.Dataset`.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("xatmodist")
except PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0+unknown"

from . import datasets, derive, metrics
from .accessor import _register
from .analogs import analog_forecast, analogs, archive_features
from .derive import vorticity_divergence
from .distance import distance, embed
from .downscale import downscale
from .errors import (
    ChunkError,
    GridError,
    InputError,
    ModelError,
    ModelNotFoundError,
    OutOfDistributionWarning,
    UnitsError,
    UnitsWarning,
    VariableNotFoundError,
    WeightsError,
    XatmodistError,
)
from .inpaint import inpaint
from .lag import lag_curve, predict_lag
from .options import get_options, set_options
from .zoo import Model, format_models, list_models, load_model, model_names

_register()

__all__ = [
    "__version__",
    "ChunkError",
    "GridError",
    "InputError",
    "Model",
    "ModelError",
    "ModelNotFoundError",
    "OutOfDistributionWarning",
    "UnitsError",
    "UnitsWarning",
    "VariableNotFoundError",
    "WeightsError",
    "XatmodistError",
    "analog_forecast",
    "analogs",
    "archive_features",
    "datasets",
    "derive",
    "metrics",
    "distance",
    "downscale",
    "embed",
    "format_models",
    "get_options",
    "inpaint",
    "lag_curve",
    "list_models",
    "load_model",
    "model_names",
    "predict_lag",
    "set_options",
    "vorticity_divergence",
]
