"""The pretext task as a tool: lag prediction and the lag curve (predictability)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from . import _validate as v
from ._apply import apply, prepare, provenance
from ._kernels import lag_kernel, normalise_kernel
from ._validate import CHANNEL
from .distance import embed
from .errors import InputError
from .zoo import Model, load_model

__all__ = ["predict_lag", "lag_curve"]

_OUTPUTS = ("probability", "expected", "argmax")


def _time_step(a, dim) -> pd.Timedelta:
    if dim not in a.coords or a.sizes[dim] < 2:
        raise InputError(
            f"{dim!r} needs a datetime coordinate with at least 2 values to turn lags into "
            f"steps; got {a.sizes.get(dim, 0)} values."
        )
    t = a[dim].values
    if t.dtype.kind in "iufb":
        raise InputError(
            f"Coordinate {dim!r} holds numbers ({t.dtype}), not datetimes; lags need real "
            f"times. Decode them (xr.decode_cf, or open with decode_times=True) or assign "
            f"a datetime coordinate: a.assign_coords({dim}=pd.date_range(...))."
        )
    try:
        d = pd.to_timedelta(np.diff(t))
    except (TypeError, ValueError):
        d = pd.to_timedelta([b - c for c, b in zip(t[:-1], t[1:], strict=True)])
    if (d <= pd.Timedelta(0)).any() or (d != d[0]).any():
        raise InputError(
            f"Coordinate {dim!r} must be regular and increasing to pair fields by lag; "
            f"steps range from {d.min()} to {d.max()}. Sort (a.sortby({dim!r})) or select a "
            "regular stretch."
        )
    return d[0]


def _steps(lag, step: pd.Timedelta, name: str) -> int:
    try:
        lag_td = pd.Timedelta(lag)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be a duration such as '6h'; got {lag!r}.") from err
    k = lag_td / step
    if k < 1 or abs(k - round(k)) > 1e-9:
        raise InputError(
            f"{name}={lag!r} must be a positive whole multiple of the time step {step}."
        )
    return int(round(k))


def _pairs(a, dim, k: int):
    first = a.isel({dim: slice(None, -k)})
    later = a.isel({dim: slice(k, None)}).assign_coords({dim: first[dim].values})
    return first, later


def predict_lag(
    a: xr.Dataset | xr.DataArray,
    b: xr.Dataset | xr.DataArray | None = None,
    *,
    dim: Hashable = "time",
    lag=None,
    output: str = "probability",
    model: str | Model | None = None,
    variables: Mapping | Sequence | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    channel_dim: Hashable | None = None,
) -> xr.DataArray:
    """Predict the time lag between pairs of fields (the AtmoDist pretext task).

    Parameters
    ----------
    a : Dataset or DataArray
        Earlier fields.
    b : Dataset or DataArray, optional
        Later fields, aligned with ``a``.  If omitted, each field of ``a`` is
        paired with the one ``lag`` later along ``dim`` (the result keeps the
        earlier field's coordinate; the last fields have no partner and are
        dropped).
    dim : str
        Time dim used when ``b`` is None.
    lag : str or Timedelta
        Lag used when ``b`` is None (a multiple of the time step).
    output : {"probability", "expected", "argmax"}
        Probabilities over the model's lag classes (new dim ``lag`` with
        timedelta64 coordinates), their expectation, or the most likely lag
        (timedelta64).
    model, variables, spatial_dims, channel_dim
        As in :func:`xatmodist.distance`.

    Returns
    -------
    DataArray
        Lazy if an input was dask-backed.
    """
    if output not in _OUTPUTS:
        raise InputError(f"output must be one of {_OUTPUTS}; got {output!r}.")
    if b is None:
        if lag is None:
            raise InputError("Without b, pass lag= (e.g. lag='6h') to pair fields along dim.")
        dim = v.time_dim(a, dim)
        k = _steps(lag, _time_step(a, dim), "lag")
        if k >= a.sizes[dim]:
            raise InputError(
                f"lag={lag!r} is {k} steps but {dim!r} has only {a.sizes[dim]} values."
            )
        a, b = _pairs(a, dim, k)
    pa = prepare(a, model, variables, spatial_dims, channel_dim)
    pb = prepare(b, pa.model, variables, spatial_dims, channel_dim)
    v.check_same_grid(pa.da, pb.da, [pa.lat, pa.lon])
    card = pa.model.card
    classes = pd.to_timedelta(np.asarray(card["lag_classes"], dtype=np.float64), unit="s")
    prob = apply(
        lag_kernel, [pa, pb], out_core_dims=["lag"], output_sizes={"lag": len(classes)}
    ).assign_coords(lag=("lag", classes.values, {"long_name": "time lag"}))
    attrs = provenance(pa.model)
    if output == "probability":
        prob.name = "lag_probability"
        prob.attrs = {"long_name": "probability of each lag class", "units": "1", **attrs}
        return prob
    secs = xr.DataArray(classes.total_seconds().values, dims="lag")
    if output == "expected":
        s = (prob * secs).sum("lag", skipna=False)
    else:
        s = xr.where(prob.isnull().any("lag"), np.nan, secs.isel(lag=prob.fillna(0).argmax("lag")))
        s = s.drop_vars("lag", errors="ignore")
    out = (s.astype(np.float64) * 1e9).astype("timedelta64[ns]")
    out.name = f"lag_{output}"
    out.attrs = {"long_name": f"{output} time lag", **attrs}
    return out


def lag_curve(
    a: xr.Dataset | xr.DataArray,
    *,
    dim: Hashable = "time",
    max_lag=None,
    model: str | Model | None = None,
    variables: Mapping | Sequence | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    channel_dim: Hashable | None = None,
) -> xr.Dataset:
    """Mean learned and l2 distance as a function of lag: AtmoDist's predictability view.

    For each lag ``k * step`` up to ``max_lag`` (default: the model's largest
    lag class), every field is compared with the one ``k`` steps later along
    ``dim``; distances are averaged over all pairs (and any other dims).
    Each field is encoded once: the learned distance of a pair is computed from
    the stored feature grids (``embed(pool="none")``), and the l2 distance from
    the normalised whole fields.

    Returns
    -------
    Dataset
        ``learned`` and ``l2`` over dim ``lag`` (timedelta64), plus
        ``learned_relative`` and ``l2_relative`` (each divided by its value at
        the largest lag) to compare their shapes.  Lazy if the input was
        dask-backed.
    """
    from .nn.encoder import feature_difference  # torch, imported with the model

    m = load_model(model)
    dim = v.time_dim(a, dim)
    step = _time_step(a, dim)
    if max_lag is None:
        max_lag = pd.Timedelta(seconds=float(m.card["lag_classes"][-1]))
    kmax = _steps(max_lag, step, "max_lag")
    if kmax >= a.sizes[dim]:
        raise InputError(
            f"max_lag={max_lag!r} is {kmax} steps but {dim!r} has only {a.sizes[dim]} values."
        )
    kw = {
        "model": m,
        "variables": variables,
        "spatial_dims": spatial_dims,
        "channel_dim": channel_dim,
    }
    # encode every field once; the distance for lag k is then a difference of features
    feats = embed(a, pool="none", **kw)
    p = prepare(a, m, variables, spatial_dims, channel_dim)
    z = apply(
        normalise_kernel,
        [p],
        out_core_dims=[CHANNEL, "y", "x"],
        output_sizes={CHANNEL: p.da.sizes[CHANNEL], "y": p.da.sizes[p.lat], "x": p.da.sizes[p.lon]},
    )
    alpha, kind = float(m.module.alpha), m.module.distance_kind
    learned, l2 = [], []
    for k in range(1, kmax + 1):
        f0, f1 = _pairs(feats, dim, k)
        z0, z1 = _pairs(z, dim, k)
        learned.append(alpha * feature_difference(f0 - f1, kind).mean())
        l2.append(((z0 - z1) ** 2).mean())
    lags = pd.to_timedelta(np.arange(1, kmax + 1) * step.value, unit="ns")
    coord = {"lag": ("lag", lags.values, {"long_name": "time lag"})}
    out = xr.Dataset(
        {
            "learned": xr.concat(learned, dim="lag", coords="minimal", compat="override"),
            "l2": xr.concat(l2, dim="lag", coords="minimal", compat="override"),
        }
    ).assign_coords(coord)
    out["learned_relative"] = out.learned / out.learned.isel(lag=-1)
    out["l2_relative"] = out.l2 / out.l2.isel(lag=-1)
    out.learned.attrs = {"long_name": "mean AtmoDist learned distance", "units": "1"}
    out.l2.attrs = {"long_name": "mean squared difference of normalised fields", "units": "1"}
    out.attrs = provenance(m, dim=dim)
    return out
