"""Data access for training: any CF dataset -> blocks of (time, channel, lat, lon).

Only the blocks being used are read (one ``.values`` per block, prefetched in
a background thread), so a lazily opened zarr/netCDF/GRIB dataset far larger
than memory trains the same way as an in-memory one.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Hashable, Iterator, Sequence

import numpy as np
import xarray as xr

from .. import _validate as v
from .._grid import SPATIAL_DIMS_FIX, describe
from ..errors import InputError, warn
from ._pairs import Block

__all__ = ["FieldSource", "default_variables", "reflection_signs", "variable_specs"]

log = logging.getLogger(__name__)

_LOG_STANDARD_NAMES = {
    "atmosphere_relative_vorticity",
    "divergence_of_wind",
    "atmosphere_absolute_vorticity",
}
_LOG_NAMES = {"vo", "d", "vort", "div", "vorticity", "divergence", "vrt"}

#: CF standard names of fields that change sign under a north-south reflection
#: (pseudo-scalars and meridional components): mirrored about the equator, the
#: equations of a rotating atmosphere keep their form with f -> -f, so the
#: mirror image of a state, these fields negated, is an equally possible state
ODD_UNDER_REFLECTION = {
    "atmosphere_relative_vorticity",
    "atmosphere_absolute_vorticity",
    "atmosphere_upward_relative_vorticity",
    "atmosphere_upward_absolute_vorticity",
    "ertel_potential_vorticity",
    "northward_wind",
    "northward_eastward_derivative_of_wind",
    "surface_downward_northward_stress",
    "northward_sea_water_velocity",
}


def reflection_signs(specs: Sequence[dict], odd) -> list[float]:
    """Per variable, +1 or -1: its sign under a north-south reflection.

    ``odd`` is True (the variables whose CF standard_name is in
    :data:`ODD_UNDER_REFLECTION` change sign; every variable needs a
    standard_name) or a sequence of the variable names that change sign.
    """
    names = [s["name"] for s in specs]
    if odd is True:
        missing = [s["name"] for s in specs if not s.get("standard_name")]
        if missing:
            raise InputError(
                f"lat_reflection=True decides from CF standard names which variables change "
                f"sign in the mirror image, but {missing!r} have no standard_name. Add the "
                "attribute, or name the sign-changing variables yourself, e.g. "
                "lat_reflection=['vo'] (or [] if none does)."
            )
        return [-1.0 if s["standard_name"] in ODD_UNDER_REFLECTION else 1.0 for s in specs]
    if isinstance(odd, str) or not isinstance(odd, Sequence):
        raise InputError(
            f"lat_reflection must be False, True or a list of the variables that change sign "
            f"under a north-south reflection (e.g. ['vo']); got {odd!r}."
        )
    unknown = [str(n) for n in odd if str(n) not in names]
    if unknown:
        raise InputError(
            f"lat_reflection names {unknown!r}, which are not among the training variables "
            f"{names!r}."
        )
    flip = {str(n) for n in odd}
    return [-1.0 if n in flip else 1.0 for n in names]


def default_variables(
    ds: xr.Dataset,
    dim: Hashable | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
) -> list[Hashable]:
    """The variables a trainer uses when it is given none.

    Vorticity and divergence, found by CF standard_name
    (``atmosphere_relative_vorticity``, ``divergence_of_wind``; the first of
    several, as inference finds them: :func:`xatmodist._validate.find_variable`),
    if the dataset has both as fields; else every field variable in the dataset's
    order.  A field variable has the time dim and both spatial dims
    (``dim``, ``spatial_dims``, else found as the trainers find them), so
    static 2-D fields (a land mask, orography) and bounds (``time_bnds``) are
    left out.  The choice is logged at INFO level.

    Parameters
    ----------
    ds : Dataset
        The training data.
    dim, spatial_dims : optional
        Time and (lat, lon) dims if cf-xarray cannot find them.

    Returns
    -------
    list
        The chosen variable names.

    Raises
    ------
    InputError
        If the time or spatial dims cannot be found, or no variable has them.
    """
    need = (v.time_dim(ds, dim), *v.spatial_dims(ds, spatial_dims))
    fields = [n for n, da in ds.data_vars.items() if all(d in da.dims for d in need)]
    pair = [
        v.find_variable(ds, sn, among=fields)
        for sn in ("atmosphere_relative_vorticity", "divergence_of_wind")
    ]
    if all(p is not None for p in pair):
        log.info(
            "variables not given: training on vorticity and divergence %s (by standard_name)",
            pair,
        )
        return pair
    if not fields:
        dims = {str(n): tuple(map(str, da.dims)) for n, da in ds.data_vars.items()}
        raise InputError(
            f"No field variable found: a training variable needs the time dim and both "
            f"spatial dims {tuple(map(str, need))!r}; the dataset's variables have {dims!r}. "
            "Pass variables=[...] (and dim=, spatial_dims= if those dims are others)."
        )
    log.info(
        "variables not given: training on every variable with dims %s: %s",
        tuple(map(str, need)),
        fields,
    )
    return fields


def variable_specs(ds: xr.Dataset, names: Sequence[Hashable]) -> list[dict]:
    """Card entries ``{name, standard_name, units, log_transform}`` for ``names``."""
    out = []
    for n in names:
        if n not in ds.data_vars:
            raise InputError(
                f"Variable {n!r} is not in the dataset; it has {list(ds.data_vars)!r}."
            )
        a = ds[n].attrs
        sn = a.get("standard_name")
        out.append(
            {
                "name": str(n),
                "standard_name": sn,
                "units": a.get("units"),
                "log_transform": bool(sn in _LOG_STANDARD_NAMES or str(n).lower() in _LOG_NAMES),
            }
        )
    return out


class FieldSource:
    """A dataset seen as series of fields (series, time, channel, lat, lon).

    Parameters
    ----------
    ds : Dataset or DataArray
        CF-compliant data, numpy or dask backed.
    variables : sequence of names, optional
        Variables to use (default :func:`default_variables`: vorticity and
        divergence by standard_name, else every variable with the time and
        both spatial dims).
    dim : str, optional
        Time dimension (default: CF time axis).
    spatial_dims : (lat, lon), optional
        Spatial dims (default: found via cf-xarray).
    """

    def __init__(self, ds, variables=None, dim=None, spatial_dims=None):
        if isinstance(ds, xr.DataArray):
            ds = ds.to_dataset(name=ds.name if ds.name is not None else "field")
        if not isinstance(ds, xr.Dataset):
            raise InputError(f"Expected an xarray Dataset or DataArray, got {type(ds).__name__}.")
        if variables is None:
            names = default_variables(ds, dim, spatial_dims)
        else:
            names = list(variables)
        if not names:
            raise InputError(
                "variables=[] selects no variable; pass the training variables, e.g. "
                "variables=['vo', 'd'], or leave variables out for the default choice."
            )
        self.specs = variable_specs(ds, names)
        self.time = v.time_dim(ds[names[0]], dim)
        #: the grid (:func:`xatmodist._grid.describe`); a repeated seam column is dropped
        self.grid = describe(ds[names[0]], spatial_dims, how=SPATIAL_DIMS_FIX)
        self.lat, self.lon = self.grid.lat, self.grid.lon
        da = xr.concat(
            [ds[n].astype(np.float32) for n in names],
            dim="variable",
            coords="minimal",
            compat="override",
            join="exact",
        )
        sample_dims = [d for d in da.dims if d not in (self.time, self.lat, self.lon, "variable")]
        da = da.transpose(*sample_dims, self.time, "variable", self.lat, self.lon)
        if sample_dims:
            da = da.stack(series=sample_dims)
            da = da.transpose("series", self.time, "variable", self.lat, self.lon)
        else:
            da = da.expand_dims("series")
        self.da = self.grid.drop_seam(da)
        self.sample_dims = sample_dims
        self.n_series, self.n_time, self.n_channels, self.nlat, self.nlon = self.da.shape
        self.dlat, self.dlon = self.grid.dlat, self.grid.dlon
        self.wrap = self.grid.is_global
        self.lat_descending = self.grid.lat_descending
        step = v.coord_time_step(ds, self.time, required=False)
        self.step_seconds = None if step is None else step.total_seconds()
        _warn_if_grib(ds, names)

    def read(self, block: Block) -> np.ndarray:
        """Fields of one block as float32 (T, C, H, W); NaNs replaced by 0 with a count."""
        arr = np.asarray(
            self.da.isel(series=block.series, **{self.time: slice(block.start, block.stop)}).values,
            dtype=np.float32,
        )
        if not np.isfinite(arr).all():
            arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        return arr

    def iter_blocks(self, blocks: Sequence[Block]) -> Iterator[tuple[Block, np.ndarray]]:
        """Yield (block, fields), reading the next block while the caller trains."""
        if not blocks:
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            fut = pool.submit(self.read, blocks[0])
            for i, b in enumerate(blocks):
                arr = fut.result()
                if i + 1 < len(blocks):
                    fut = pool.submit(self.read, blocks[i + 1])
                yield b, arr

    def sample_fields(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``n`` whole fields (N, C, H, W) from random series and times."""
        n = min(n, self.n_series * self.n_time)
        flat = np.sort(rng.choice(self.n_series * self.n_time, size=n, replace=False))
        out = []
        for s in np.unique(flat // self.n_time):
            ts = flat[flat // self.n_time == s] % self.n_time
            sub = self.da.isel(series=int(s), **{self.time: ts}).values
            out.append(np.asarray(sub, dtype=np.float32))
        arr = np.concatenate(out)
        return np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)


_GRIB_SUFFIXES = (".grib", ".grb", ".grib2", ".grb2", ".grib1")


def _warn_if_grib(ds: xr.Dataset, names: Sequence[Hashable]) -> None:
    """Steer training away from reading GRIB directly (slow to index, block by block)."""

    def lazy(n) -> bool:  # still read from the file (dask, or xarray's lazy indexing)
        return ds[n].chunks is not None or not getattr(ds[n].variable, "_in_memory", True)

    sources = {str(ds[n].encoding.get("source", ds.encoding.get("source", ""))) for n in names}
    if any(lazy(n) for n in names) and any(s.lower().endswith(_GRIB_SUFFIXES) for s in sources):
        warn(
            "Training reads its data block by block, and GRIB (through cfgrib) is slow to "
            "index (2.6x fewer pairs/s than a netCDF copy of the ERA5 ensemble sample: "
            "python -m benchmarks.grib_training): write a chunked copy first and train on "
            "that, e.g. "
            "ds.chunk({'time': 64}).to_zarr('copy.zarr'), then xr.open_zarr('copy.zarr').",
            UserWarning,
        )
