"""The ``.atmodist`` accessor on DataArray and Dataset.

Thin by design: each method binds the object as the first argument of the
public function of the same name and delegates; no maths and no state here
(settings stored on an accessor are lost on the next operation).
"""

from __future__ import annotations

import xarray as xr

from .analogs import analog_forecast, analogs
from .distance import distance, embed
from .downscale import downscale
from .inpaint import inpaint
from .lag import lag_curve, predict_lag

__all__ = ["AtmoDistAccessor"]


class AtmoDistAccessor:
    """AtmoDist methods on xarray objects: ``obj.atmodist.distance(other)`` etc."""

    def __init__(self, obj: xr.Dataset | xr.DataArray) -> None:
        self._obj = obj

    def distance(self, other, **kwargs) -> xr.DataArray:
        """Learned distance to ``other``; see :func:`xatmodist.distance`."""
        return distance(self._obj, other, **kwargs)

    def predict_lag(self, other=None, **kwargs) -> xr.DataArray:
        """Lag prediction; see :func:`xatmodist.predict_lag`."""
        return predict_lag(self._obj, other, **kwargs)

    def embed(self, **kwargs) -> xr.DataArray:
        """Encoder features; see :func:`xatmodist.embed`."""
        return embed(self._obj, **kwargs)

    def downscale(self, **kwargs) -> xr.Dataset | xr.DataArray:
        """Finer grid; see :func:`xatmodist.downscale`."""
        return downscale(self._obj, **kwargs)

    def inpaint(self, **kwargs) -> xr.Dataset | xr.DataArray:
        """Holes filled; see :func:`xatmodist.inpaint`."""
        return inpaint(self._obj, **kwargs)

    def analogs(self, archive=None, **kwargs) -> xr.Dataset:
        """Nearest archive states; see :func:`xatmodist.analogs`."""
        return analogs(self._obj, archive, **kwargs)

    def analog_forecast(self, archive, lead, **kwargs):
        """Forecast from analogues' successors; see :func:`xatmodist.analog_forecast`."""
        return analog_forecast(self._obj, archive, lead, **kwargs)

    def lag_curve(self, **kwargs) -> xr.Dataset:
        """Distance against lag; see :func:`xatmodist.lag_curve`."""
        return lag_curve(self._obj, **kwargs)


def _register() -> None:
    import warnings

    with warnings.catch_warnings():
        # re-importing in the same process (e.g. importlib.reload) re-registers
        warnings.simplefilter("ignore", xr.core.extensions.AccessorRegistrationWarning)
        xr.register_dataarray_accessor("atmodist")(AtmoDistAccessor)
        xr.register_dataset_accessor("atmodist")(AtmoDistAccessor)
