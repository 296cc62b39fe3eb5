"""Data: the embedded sample and the shallow-water generator.

:func:`sample` loads a small dataset shipped inside the package (no network,
no simulation).  :func:`shallow_water` draws fresh runs from the simulator the
pretrained encoder was trained on; it needs the ``sim`` extra (torch-harmonics).
Both return CF-compliant Datasets, so everything downstream treats them like
ERA5 read from netCDF or zarr.
"""

from __future__ import annotations

import dataclasses
import logging
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .errors import InputError

__all__ = ["sample", "ncep_air", "shallow_water", "SIMULATOR_DEFAULTS"]

log = logging.getLogger(__name__)

#: Settings of the simulator that produced the pretrained encoder's training data.
SIMULATOR_DEFAULTS: dict = {
    "nlat": 64,
    "nlon": 128,
    "step": "3h",
    "spinup": "5D",
    "dt": 300.0,
    "amplitude": 24.0,
}

_SAMPLE_FILE = "swe_sample.nc"
_NCEP_AIR_FILE = "ncep_air_2014.nc"

_VAR_ATTRS = {
    "z": {
        "standard_name": "geopotential_height",
        "long_name": "geopotential height of the fluid layer",
        "units": "m",
    },
    "vo": {
        "standard_name": "atmosphere_relative_vorticity",
        "long_name": "relative vorticity",
        "units": "s-1",
    },
    "d": {
        "standard_name": "divergence_of_wind",
        "long_name": "divergence",
        "units": "s-1",
    },
}


def sample() -> xr.Dataset:
    """Load the embedded sample: shallow-water runs on the default grid.

    The file ships inside the package and was written by
    ``python scripts/make_sample.py`` with :func:`shallow_water` at the
    simulator defaults (held-out seeds, never seen in training).

    Returns
    -------
    xarray.Dataset
        ``vo``, ``d`` and ``z`` with dims ``(run, time, lat, lon)``, loaded
        into memory.

    Examples
    --------
    >>> ds = xatmodist.datasets.sample()
    >>> ds.vo.dims
    ('run', 'time', 'lat', 'lon')
    """
    ref = resources.files("xatmodist") / "data" / _SAMPLE_FILE
    with resources.as_file(ref) as path, xr.open_dataset(path) as ds:
        ds = ds.load()
    for name in ds.data_vars:  # CF-packed int16 decodes to float64
        ds[name] = ds[name].astype(np.float32)
    return ds


def ncep_air() -> xr.Dataset:
    """Load the embedded real-data sample: NCEP/NCAR near-surface air temperature, 2014.

    NCEP/NCAR Reanalysis 1 air temperature at sigma 0.995 (near the surface)
    over North America, 6-hourly for all of 2014: 1460 fields on a 25 x 53
    regional grid at 2.5 deg (15-75 N, 200-330 E; latitudes descending).  It is
    the data set behind xarray's ``air_temperature`` tutorial (NOAA PSL,
    public), written by ``python scripts/make_ncep_sample.py`` (int16-packed,
    0.002 K steps; provenance in the attributes).  2014 is the evaluation
    year of the real-data encoder ``atmodist-ncep-air``, which never saw it.

    Returns
    -------
    xarray.Dataset
        ``air`` (K, standard_name ``air_temperature``) with dims ``(time, lat,
        lon)``, float32, loaded into memory.

    Examples
    --------
    >>> ds = xatmodist.datasets.ncep_air()
    >>> dict(ds.sizes), ds.air.attrs["units"]
    ({'time': 1460, 'lat': 25, 'lon': 53}, 'K')
    """
    ref = resources.files("xatmodist") / "data" / _NCEP_AIR_FILE
    with resources.as_file(ref) as path, xr.open_dataset(path) as ds:
        ds = ds.load()
    ds["air"] = ds["air"].astype(np.float32)
    return ds


def _config(nlat, nlon, step, spinup, dt, amplitude):
    from ._swe import SWEConfig

    d = SIMULATOR_DEFAULTS
    nlat = d["nlat"] if nlat is None else int(nlat)
    nlon = 2 * nlat if nlon is None else int(nlon)
    if nlon != 2 * nlat:
        raise InputError(
            f"The simulator's grid needs nlon == 2 * nlat; got nlat={nlat}, nlon={nlon}. "
            f"Pass nlon={2 * nlat} or leave it as None."
        )
    step_s = pd.Timedelta(d["step"] if step is None else step).total_seconds()
    spin_s = pd.Timedelta(d["spinup"] if spinup is None else spinup).total_seconds()
    dt = d["dt"] * 64 / nlat if dt is None else float(dt)
    if step_s <= 0 or step_s % dt:
        raise InputError(
            f"The output step must be a positive multiple of the model time step dt={dt} s; "
            f"got step={step!r} ({step_s} s). Choose e.g. step='3h'."
        )
    amplitude = d["amplitude"] if amplitude is None else float(amplitude)
    return SWEConfig(
        nlat=nlat, nlon=nlon, dt=dt, output_step=step_s, spinup=spin_s, amplitude=amplitude
    )


def _to_dataset(fields: np.ndarray, run_ids, times, lat, lon, cfg, seed) -> xr.Dataset:
    """Wrap (run, time, var, lat, lon) fields as a CF Dataset."""
    data_vars = {
        name: (("run", "time", "lat", "lon"), fields[:, :, i], _VAR_ATTRS[name])
        for i, name in enumerate(("z", "vo", "d"))
    }
    ds = xr.Dataset(
        data_vars,
        coords={
            "run": ("run", np.asarray(run_ids), {"long_name": "ensemble run index"}),
            "time": ("time", times, {"standard_name": "time", "axis": "T"}),
            "lat": (
                "lat",
                lat,
                {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"},
            ),
            "lon": (
                "lon",
                lon,
                {"standard_name": "longitude", "units": "degrees_east", "axis": "X"},
            ),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": "Shallow-water turbulence on the rotating sphere",
            "source": "xatmodist.datasets.shallow_water (torch-harmonics ShallowWaterSolver)",
            "simulator": repr(dataclasses.asdict(cfg)),
            "seed": int(seed),
        },
    )
    return ds


def shallow_water(
    *,
    n_runs: int,
    n_steps: int,
    seed: int,
    nlat: int | None = None,
    nlon: int | None = None,
    step: str | pd.Timedelta | None = None,
    spinup: str | pd.Timedelta | None = None,
    dt: float | None = None,
    amplitude: float | None = None,
    batch_size: int = 16,
    path: str | Path | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Simulate shallow-water turbulence on the rotating sphere.

    Each run starts from a random, seeded initial condition (vorticity and
    divergence with a red spectrum, resting geopotential), is forced by a
    stochastic vorticity source in a wavenumber band and damped by linear drag
    and the solver's hyperdiffusion; the first ``spinup`` is discarded.  With
    the defaults (``None``) the settings are those of the pretrained encoder's
    training data (:data:`SIMULATOR_DEFAULTS`): 64 x 128 equiangular grid,
    3-hourly output, amplitude calibrated so that vorticity decorrelates
    within about a day, like 500 hPa vorticity in the atmosphere.

    Parameters
    ----------
    n_runs, n_steps : int
        Number of independent runs and of output times per run.
    seed : int
        Run ``i`` uses seed ``seed + i``; a run does not depend on ``n_runs``
        or ``batch_size``.  The pretrained encoder used seeds below 100_000
        for training; use larger seeds for fresh held-out runs.
    nlat, nlon : int, optional
        Grid size (``nlon = 2 * nlat``).
    step, spinup : str or pandas.Timedelta, optional
        Output interval and discarded spin-up (e.g. ``"3h"``, ``"5D"``).
    dt : float, optional
        Model time step in seconds (default scales with 1 / nlat).
    amplitude : float, optional
        Initial and forcing vorticity scale (in units of 5% of the
        gravity-wave speed over the Earth radius).
    batch_size : int
        Runs integrated together (memory/speed trade-off only).
    path : str or Path, optional
        Write incrementally to this zarr store (one batch of runs at a time)
        and return it opened lazily; for outputs larger than memory.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    xarray.Dataset
        ``z`` (m), ``vo`` and ``d`` (s-1) with dims ``(run, time, lat, lon)``
        and CF attributes; latitude descends from 90 to -90.
    """
    from ._swe import grid_coords, integrate

    if n_runs < 1 or n_steps < 1:
        raise InputError(f"n_runs and n_steps must be >= 1; got {n_runs} and {n_steps}.")
    cfg = _config(nlat, nlon, step, spinup, dt, amplitude)
    lat, lon = grid_coords(cfg)
    times = pd.date_range(
        "2000-01-01", periods=n_steps, freq=pd.Timedelta(seconds=cfg.output_step)
    ).values
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    bar = (
        tqdm(total=n_runs * n_steps, desc="shallow_water", unit="field", disable=not progress)
        if tqdm
        else None
    )
    pieces = []
    for start in range(0, n_runs, batch_size):
        ids = list(range(seed + start, seed + min(n_runs, start + batch_size)))
        steps = []
        for out in integrate(cfg, seeds=ids, n_outputs=n_steps):
            steps.append(out)
            if bar is not None:
                bar.update(len(ids))
        piece = _to_dataset(np.stack(steps, axis=1), ids, times, lat, lon, cfg, seed)
        if path is not None:
            piece = piece.chunk({"run": 1, "time": min(n_steps, 64)})
            if start == 0:
                piece.to_zarr(path, mode="w", consolidated=True)
            else:
                piece.to_zarr(path, append_dim="run", consolidated=True)
        else:
            pieces.append(piece)
    if bar is not None:
        bar.close()
    if path is not None:
        return xr.open_zarr(path)
    return xr.concat(pieces, dim="run") if len(pieces) > 1 else pieces[0]
