"""Shared input checks: variables, units, dims, grids, chunks, and their messages.

Every function here raises an :mod:`xatmodist.errors` exception that says what
was expected, what arrived and how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from . import _grid
from ._grid import grid_spacing, is_global, spatial_dims  # one grid module, re-exported
from .errors import (
    ChunkError,
    GridError,
    InputError,
    OutOfDistributionWarning,
    UnitsError,
    UnitsWarning,
    VariableNotFoundError,
    warn,
)

__all__ = [
    "to_channels",
    "resolve_variables",
    "find_variable",
    "spatial_dims",
    "time_dim",
    "grid_spacing",
    "is_global",
    "check_core_chunks",
    "check_grid",
    "same_units",
]

CHANNEL = "variable"


def _time_candidates(obj: xr.Dataset | xr.DataArray) -> list[Hashable]:
    """Dims that hold time: CF time axis (standard_name/axis), then datetime coordinates."""
    cands = [c for c in _grid.cf_names(obj, "time") if c in obj.dims]
    for d in obj.dims:
        if d in obj.coords and d not in cands:
            c = obj[d]
            if c.dtype.kind == "M" or (c.dtype.kind == "O" and c.size and _is_cftime(c)):
                cands.append(d)
    if "time" in obj.dims and "time" not in cands:
        cands.append("time")
    return cands


def _is_cftime(c: xr.DataArray) -> bool:
    first = c.values.flat[0]
    return type(first).__module__.split(".")[0] == "cftime"


def time_dim(obj: xr.Dataset | xr.DataArray, dim: Hashable | None = None) -> Hashable:
    """The time dimension: ``dim`` if given, else the CF time axis, else a datetime dim.

    One discovery for every function that pairs fields in time: a dim whose
    coordinate has ``standard_name="time"`` or ``axis="T"`` (e.g. ERA5's
    ``valid_time``), else one holding datetimes, else a dim named ``"time"``.
    """
    cands = _time_candidates(obj)
    if dim is not None:
        if dim not in obj.dims:
            hint = f" Did you mean dim={cands[0]!r}?" if cands else ""
            raise InputError(
                f"dim={dim!r} is not a dimension of the input; it has {tuple(obj.dims)!r}.{hint}"
            )
        return dim
    if cands:
        return cands[0]
    raise InputError(
        f"Could not find a time dimension among {tuple(obj.dims)!r}: none has a datetime "
        "coordinate or CF attributes (standard_name='time' or axis='T'). Pass "
        "dim='your_time_dim'."
    )


def time_step(times, name: Hashable) -> pd.Timedelta:
    """The step of a regular, increasing time coordinate, or InputError saying where not.

    ``times`` are datetime64 or cftime values.  The message names the first
    place the axis is not regular: a gap, a repeated or a decreasing time.
    """
    t = np.asarray(times)
    if t.ndim != 1 or t.size < 2:
        raise InputError(
            f"{name!r} needs a datetime coordinate with at least 2 values to turn lags into "
            f"steps; got {t.size} value(s)."
        )
    if t.dtype.kind in "iufb":
        raise InputError(
            f"Coordinate {name!r} holds numbers ({t.dtype}), not datetimes; lags need real "
            f"times. Decode them (xr.decode_cf, or open with decode_times=True) or assign "
            f"a datetime coordinate: a.assign_coords({name}=pd.date_range(...))."
        )
    try:
        d = pd.to_timedelta(np.diff(t))
    except (TypeError, ValueError):
        try:
            d = pd.to_timedelta([b - a for a, b in zip(t[:-1], t[1:], strict=True)])
        except (TypeError, ValueError) as err:
            raise InputError(
                f"Coordinate {name!r} is not datetime-like ({t.dtype}); decode times "
                "(xr.open_dataset(..., decode_times=True)) or assign a datetime coordinate."
            ) from err
    step = pd.Timedelta(np.median(d.values))
    if step > pd.Timedelta(0):
        bad = np.nonzero(d.values != step.to_timedelta64())[0]
    else:  # mostly decreasing or constant: point at the first step that does not increase
        bad = np.nonzero(d.values <= np.timedelta64(0, "ns"))[0]
    if len(bad):
        i = int(bad[0])
        t0, t1 = _fmt_time(t[i]), _fmt_time(t[i + 1])
        where = f"between index {i} ({t0}) and {i + 1} ({t1})"
        if d[i] <= pd.Timedelta(0):
            what = "repeats a time" if d[i] == pd.Timedelta(0) else "goes back in time"
            fix = (
                f"Sort and drop duplicates first: a.sortby({name!r}) and "
                f"a.drop_duplicates({name!r})."
            )
        else:
            what = f"jumps by {d[i]} where its usual step is {step} (a gap)"
            fix = (
                f"Sorting does not close a gap: select a regular stretch, e.g. "
                f"a.sel({name}=slice(None, {t0!r})), or fill it with NaN fields "
                f"(a.resample({name}={duration_text(step)!r}).asfreq(); fields with NaN give NaN)."
            )
        raise InputError(
            f"Coordinate {name!r} must be regular and increasing to pair fields by lag; "
            f"it {what} {where}; {len(bad)} irregular step(s) in all. {fix}"
        )
    return step


def coord_time_step(
    obj: xr.Dataset | xr.DataArray, dim: Hashable, *, required: bool = True
) -> pd.Timedelta | None:
    """The step of ``obj``'s time coordinate ``dim`` (:func:`time_step`).

    Without a coordinate, or (``required=False``) with fewer than 2 times:
    InputError if ``required``, else None.
    """
    if dim not in obj.coords:
        if not required:
            return None
        raise InputError(
            f"{dim!r} needs a datetime coordinate to turn lags into steps; it has none. "
            f"Assign one: a.assign_coords({dim}=pd.date_range(...))."
        )
    times = obj[dim].values
    if not required and times.size < 2:
        return None
    return time_step(times, dim)


def _fmt_time(x) -> str:
    return str(pd.Timestamp(x)) if isinstance(x, np.datetime64) else str(x)


def duration_text(td: pd.Timedelta | float) -> str:
    """A duration (Timedelta, or seconds) in the largest unit that divides it: '1D', '6h'."""
    secs = td.total_seconds() if isinstance(td, pd.Timedelta) else float(td)
    for unit, size in (("D", 86400), ("h", 3600), ("min", 60)):
        if secs and secs % size == 0:
            return f"{secs / size:g}{unit}"
    return f"{secs:g}s"


_UNITLESS = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)\s*")


def lag_duration(lag, step: pd.Timedelta, name: str) -> pd.Timedelta:
    """A lag as a duration: an integer is that many time steps, anything else a duration.

    The one rule for every lag argument (``predict_lag(lag=)``,
    ``lag_curve(max_lag=)``, ``fit_encoder(max_lag=, lag_step=)``): an int
    (Python or numpy, not bool) counts time steps of the data, as
    ``ds.shift(time=3)`` does; a string with a unit (``"6h"``), a Timedelta or
    a numpy timedelta64 is a duration.  Floats, bools, integers < 1, NaT and
    strings without a unit (``"12"``) are refused.
    """
    hint = (
        f"Pass a whole number of the data's time steps ({name}=4 means 4 steps of "
        f"{duration_text(step)}) or a duration such as '6h'"
    )
    if isinstance(lag, np.timedelta64):
        pass  # a duration (numpy counts timedelta64 among its integers)
    elif isinstance(lag, bool | np.bool_ | float | np.floating):
        raise InputError(
            f"{name} must be a whole number of time steps or a duration; got {lag!r} "
            f"({type(lag).__name__}). {hint}."
        )
    elif isinstance(lag, int | np.integer):
        if lag < 1:
            raise InputError(f"{name}={lag!r} is not a positive number of time steps. {hint}.")
        return int(lag) * step
    elif isinstance(lag, str) and _UNITLESS.fullmatch(lag):
        raise InputError(
            f"{name}={lag!r} has no unit. Write a duration such as '{lag.strip()}h', or pass "
            f"the integer for that many time steps of the data ({duration_text(step)})."
        )
    try:
        td = pd.Timedelta(lag)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"{name} must be a duration such as '6h' or a number of time steps (int); got {lag!r}."
        ) from err
    if pd.isna(td):
        raise InputError(f"{name} must be a duration like '3h' or '1D'; got {lag!r}. {hint}.")
    return td


def lag_steps(lag, step: pd.Timedelta, name: str) -> int:
    """A lag (see :func:`lag_duration`) as a positive whole number of time steps."""
    k = lag_duration(lag, step, name) / step
    if k < 1 or abs(k - round(k)) > 1e-9:
        raise InputError(
            f"{name}={lag!r} must be a positive whole multiple of the data's time step "
            f"{duration_text(step)} (or an int: that many steps)."
        )
    return int(round(k))


_UNIT_ALIASES = {
    "s-1": "s-1",
    "s**-1": "s-1",
    "s^-1": "s-1",
    "1/s": "s-1",
    "/s": "s-1",
    "per second": "s-1",
    "m": "m",
    "meter": "m",
    "meters": "m",
    "metre": "m",
    "metres": "m",
    "gpm": "m",
    "m2 s-2": "m2 s-2",
    "m**2 s**-2": "m2 s-2",
    "m^2 s^-2": "m2 s-2",
    "m2/s2": "m2 s-2",
    "k": "K",
    "kelvin": "K",
    "pa": "Pa",
    "m s-1": "m s-1",
    "m s**-1": "m s-1",
    "m/s": "m s-1",
}


def _canonical_units(u: str) -> str:
    key = re.sub(r"\s+", " ", str(u).strip())
    return _UNIT_ALIASES.get(key.lower(), key)


def same_units(a: str | None, b: str | None) -> bool:
    """True if two CF unit strings mean the same (common spellings only)."""
    if a is None or b is None:
        return True
    return _canonical_units(a) == _canonical_units(b)


def find_variable(
    ds: xr.Dataset,
    standard_name: str | None,
    name: Hashable | None = None,
    *,
    among: Sequence[Hashable] | None = None,
) -> Hashable | None:
    """The variable of ``ds`` that is a wanted quantity: by CF standard_name, else by name.

    The one rule for finding a variable, at inference (:func:`resolve_variables`)
    and in training (``train._source.default_variables``).

    Parameters
    ----------
    ds : Dataset
        The data.
    standard_name : str or None
        The quantity's CF standard_name; the first variable (in the dataset's
        order) whose ``standard_name`` attribute equals it is the match.
    name : hashable, optional
        The quantity's name, matched when no variable has the standard_name;
        None matches by standard_name only.
    among : sequence of hashable, optional
        Candidate variables (default: every data variable of ``ds``).

    Returns
    -------
    hashable or None
        The variable's name in ``ds``; None if none matches.
    """
    pool = list(ds.data_vars) if among is None else list(among)
    if standard_name:
        for n in pool:
            if ds[n].attrs.get("standard_name") == standard_name:
                return n
    if name is not None and name in pool:
        return name
    return None


def resolve_variables(
    ds: xr.Dataset,
    wanted: Sequence[Mapping],
    variables: Mapping[str, Hashable] | Sequence[Hashable] | None = None,
    *,
    check_units: bool = True,
) -> list[Hashable]:
    """Names in ``ds`` of the model variables ``wanted``, in the model's order.

    Matching order: explicit ``variables`` (a mapping model-name -> dataset
    name, or a list in the model's order), then CF ``standard_name``, then name.
    """
    if variables is not None and not isinstance(variables, Mapping):
        if isinstance(variables, (str, bytes)) or not isinstance(variables, Sequence):
            raise InputError(
                f"variables= must map model names to dataset names (e.g. "
                f"{{{wanted[0]['name']!r}: 'your_name'}}) or list dataset names in the model's "
                f"order {[w['name'] for w in wanted]!r}; got {type(variables).__name__} "
                f"{variables!r}."
            )
        variables = list(variables)
        if len(variables) != len(wanted):
            raise InputError(
                f"variables= lists {len(variables)} names but the model takes "
                f"{len(wanted)}: {[w['name'] for w in wanted]!r}."
            )
        variables = {w["name"]: v for w, v in zip(wanted, variables, strict=True)}
    out = []
    for w in wanted:
        if variables is not None and w["name"] in variables:
            name = variables[w["name"]]
            if name not in ds.data_vars:
                raise VariableNotFoundError(
                    f"variables= maps {w['name']!r} to {name!r}, which is not in the dataset; "
                    f"it has {list(ds.data_vars)!r}. Map {w['name']!r} to one of those names."
                )
        else:
            name = find_variable(ds, w.get("standard_name"), w["name"])
        if name is None:
            raise VariableNotFoundError(
                f"The model needs {w['name']!r} (standard_name={w.get('standard_name')!r}, "
                f"units={w.get('units')!r}); the dataset has {list(ds.data_vars)!r}. "
                f"Rename it, set its standard_name attribute, or pass "
                f"variables={{{w['name']!r}: 'your_name'}}.{_other_quantity_hint(ds, wanted)}"
            )
        check_numeric(ds[name], name)
        if check_units:
            got = ds[name].attrs.get("units")
            if got is None and w.get("units"):
                warn(
                    f"Variable {name!r} has no 'units' attribute, so it cannot be checked "
                    f"against the {w['units']!r} that the model expects for {w['name']!r}; "
                    "it is used as if it were in those units. Set "
                    f"ds[{name!r}].attrs['units'] = {w['units']!r} once you have checked.",
                    UnitsWarning,
                )
            if got is not None and w.get("units") and not same_units(got, w["units"]):
                raise UnitsError(
                    f"Variable {name!r} has units {got!r} but the model expects "
                    f"{w['units']!r} for {w['name']!r}. Convert it first "
                    f"(e.g. with pint-xarray) and set attrs['units'] = {w['units']!r}. If "
                    f"{name!r} is another quantity than {w['name']!r}, this model does not fit "
                    f"it: {_TRAIN_HINT}"
                )
        out.append(name)
    return out


def is_real(dtype) -> bool:
    """True for float and (signed or unsigned) integer dtypes: not bool, complex, text, times."""
    return np.dtype(dtype).kind in "fiu"


def check_numeric(da: xr.DataArray, name: Hashable) -> None:
    """Raise InputError unless ``da`` holds real numbers (float or int)."""
    kind = da.dtype.kind
    if not is_real(da.dtype):
        what = {
            "b": "booleans",
            "c": "complex numbers",
            "M": "datetimes",
            "m": "timedeltas",
            "U": "strings",
            "S": "bytes",
            "O": "Python objects",
        }.get(kind, f"values of kind {kind!r}")
        raise InputError(
            f"Variable {name!r} holds {what} (dtype {da.dtype}); the model needs real numbers "
            "(float or int). Convert it, e.g. ds[name].astype('float32'), or pass the right "
            "variable."
        )


_TRAIN_HINT = (
    "list the zoo's models and their variables with xatmodist.list_models(), or train one "
    "for your variables: xatmodist.train.fit_encoder(ds, variables=[...]) for distances, "
    "fit_downscaler(ds, content_loss='l2') or fit_inpainter(ds, loss='l2') (or with the "
    "AtmoDist loss of an encoder trained on those variables, encoder=...)."
)


def _other_quantity_hint(ds: xr.Dataset, wanted: Sequence[Mapping]) -> str:
    """A pointer to the trainers when the dataset holds none of the model's variables."""
    names = {w["name"] for w in wanted} | {w.get("standard_name") for w in wanted}
    have = set(ds.data_vars) | {da.attrs.get("standard_name") for da in ds.data_vars.values()}
    if names & have:
        return ""
    return (
        f" The dataset holds none of the model's variables {[w['name'] for w in wanted]}: if "
        f"it holds other quantities (e.g. temperature), no model trained on those fits; "
        f"{_TRAIN_HINT}"
    )


def to_channels(
    obj: xr.Dataset | xr.DataArray,
    wanted: Sequence[Mapping],
    variables=None,
    channel_dim: Hashable | None = None,
    *,
    keep_dtype: bool = False,
) -> xr.DataArray:
    """Stack the model's variables of ``obj`` along a ``variable`` dim (last non-core).

    Values become float32 unless ``keep_dtype`` (then the variables' common dtype).
    """
    if isinstance(obj, xr.Dataset):
        names = resolve_variables(obj, wanted, variables)
        arrs = [obj[n] if keep_dtype else obj[n].astype(np.float32, copy=False) for n in names]
        for n, a in zip(names, arrs, strict=True):
            if a.dims != arrs[0].dims:
                raise InputError(
                    f"Variables {names[0]!r} and {n!r} have different dims "
                    f"({arrs[0].dims} vs {a.dims}); transpose or select to match."
                )
        da = xr.concat(arrs, dim=CHANNEL, coords="minimal", compat="override", join="exact")
        return da.assign_coords({CHANNEL: [w["name"] for w in wanted]})
    if not isinstance(obj, xr.DataArray):
        raise InputError(
            f"Expected an xarray DataArray or Dataset, got {type(obj).__name__}. "
            "Wrap numpy arrays with xr.DataArray(..., dims=('time', 'lat', 'lon'))."
        )
    if channel_dim is None and CHANNEL in obj.dims:
        channel_dim = CHANNEL
    if channel_dim is not None:
        if channel_dim not in obj.dims:
            raise InputError(
                f"channel_dim={channel_dim!r} is not a dim of the DataArray {tuple(obj.dims)!r}."
            )
        ds = obj.to_dataset(dim=channel_dim)
        if "units" in obj.attrs:  # the DataArray's units hold for each of its variables
            for da in ds.data_vars.values():
                da.attrs.setdefault("units", obj.attrs["units"])
        return to_channels(ds, wanted, variables, keep_dtype=keep_dtype)
    if len(wanted) == 1:
        name = obj.name if obj.name is not None else wanted[0]["name"]
        return to_channels(
            obj.to_dataset(name=name),
            wanted,
            variables or {wanted[0]["name"]: name},
            keep_dtype=keep_dtype,
        )
    if obj.name is not None:
        return to_channels(obj.to_dataset(), wanted, variables, keep_dtype=keep_dtype)
    raise InputError(
        f"The model takes {len(wanted)} variables {[w['name'] for w in wanted]!r} but got a "
        "single unnamed DataArray without a channel dim. Pass a Dataset, or a DataArray with "
        "a 'variable' dim (ds.to_dataarray('variable'))."
    )


def check_dataarray(obj, name: str, *, contents: str = "real numbers") -> None:
    """Raise InputError unless ``obj`` is a DataArray of real (float or int) numbers."""
    if not isinstance(obj, xr.DataArray):
        hint = (
            f" Select one variable first, e.g. ds[{name!r}] (or use ds.map(...))."
            if isinstance(obj, xr.Dataset)
            else " Wrap it with xarray.DataArray(..., dims=..., coords=...)."
        )
        raise InputError(
            f"Expected {name} to be an xarray.DataArray on a latitude/longitude grid, "
            f"but got {type(obj).__name__}.{hint}"
        )
    if not is_real(obj.dtype):
        raise InputError(
            f"Expected {name} to hold {contents}, but its dtype is {obj.dtype}. "
            f"Convert it with {name}.astype('float32')."
        )


def check_bool(value, name: str) -> bool:
    """``value`` if it is a bool (Python or numpy), else InputError naming ``name``."""
    if not isinstance(value, bool | np.bool_):
        raise InputError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def positive_float(value, message: str) -> float:
    """``value`` as a finite float > 0, else InputError(``message``)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = float("nan")
    if not np.isfinite(out) or out <= 0:
        raise InputError(message)
    return out


def check_radius(radius, earth_radius: float = 6.37122e6) -> float:
    """The sphere radius as a positive float, or InputError."""
    return positive_float(
        radius,
        f"Expected radius to be a positive number of metres (Earth: {earth_radius:g}), "
        f"but got {radius!r}.",
    )


def check_core_chunks(da: xr.DataArray, dims: Sequence[Hashable]) -> None:
    """Raise ChunkError if any of ``dims`` spans more than one dask chunk."""
    if da.chunks is None:
        return
    bad = {d: len(c) for d, c in zip(da.dims, da.chunks, strict=True) if d in dims and len(c) > 1}
    if bad:
        fix = ", ".join(f"{d!r}: -1" for d in dims)
        raise ChunkError(
            f"Dimensions {list(bad)} are split into {list(bad.values())} dask chunks, but each "
            f"field must be one chunk over {list(dims)}. Rechunk first: "
            f".chunk({{{fix}}}) (xatmodist does not rechunk silently)."
        )


def check_grid(
    card: Mapping,
    dlat: float,
    dlon: float,
    *,
    tolerance: float = 0.25,
    input_factor: int = 1,
) -> None:
    """Warn (OutOfDistributionWarning) if the spacing differs from the card's by > 25%.

    ``input_factor``: the input grid is this much coarser than the card's grid
    (downscalers record their output grid).
    """
    for got, key, ref in ((dlat, "dlat", card.grid.dlat), (dlon, "dlon", card.grid.dlon)):
        ref = ref * input_factor if ref else ref
        if ref and np.isfinite(got) and abs(got - ref) > tolerance * ref:
            warn(
                f"Grid spacing {key}={got:.4g} deg differs from the {ref:.4g} deg that model "
                f"{card.name!r} was trained on by more than {tolerance:.0%}; results "
                "are out of distribution. Regrid to the model's spacing or train a model for "
                f"this grid (xatmodist.train).{_real_data_hint(card)}",
                OutOfDistributionWarning,
            )
            return


def _real_data_hint(card: Mapping) -> str:
    """For a model not trained on reanalysis: the zoo's encoders that were, and the trainer."""
    if card.data_kind == "reanalysis":
        return ""
    from .zoo import reanalysis_models

    names = reanalysis_models("encoder")
    if not names:
        return ""
    return (
        f" Model {card.name!r} learned on a simulator; for real reanalysis the zoo has "
        f"encoders trained on it: {names} (their cards say which variables and grids), or "
        "train one on your data with xatmodist.train.fit_encoder."
    )


def check_same_grid(a: xr.DataArray, b: xr.DataArray, dims: Sequence[Hashable]) -> None:
    """Raise GridError if ``a`` and ``b`` differ in size or coordinates along ``dims``."""
    for d in dims:
        if a.sizes.get(d) != b.sizes.get(d):
            raise GridError(
                f"The two inputs have different sizes along {d!r}: {a.sizes.get(d)} vs "
                f"{b.sizes.get(d)}. Both must be on the same grid; regrid or select first."
            )
        if d in a.coords and d in b.coords:
            ca, cb = np.asarray(a[d].values), np.asarray(b[d].values)
            if ca.shape != cb.shape or not np.allclose(ca, cb, rtol=0, atol=1e-6):
                raise GridError(
                    f"The two inputs have different {d!r} coordinates "
                    f"({ca[:3]}... vs {cb[:3]}...). Put both on the same grid first."
                )
