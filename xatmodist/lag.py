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
from .distance import embed_prepared
from .errors import InputError, OutOfDistributionWarning, warn
from .zoo import Model, load_model

__all__ = ["predict_lag", "lag_curve"]

_OUTPUTS = ("probability", "expected", "argmax")
_fmt = v.duration_text


def _check_time_step(step: pd.Timedelta, model: Model) -> None:
    """Warn when the data are coarser in time than the lag step the model learned."""
    model_step = model.card.lag_step
    if step > model_step:
        warn(
            f"The data's time step is {_fmt(step)} but model {model.name!r} learned lags in "
            f"steps of {_fmt(model_step)}: lags shorter than {_fmt(step)} cannot be paired, "
            "and fields averaged or sampled this coarsely may differ from those it learned "
            "on. Use data at the model's time step, or an encoder trained on yours "
            "(xatmodist.train.fit_encoder).",
            OutOfDistributionWarning,
        )


def _check_lag_class(lag: pd.Timedelta, step: pd.Timedelta, model: Model) -> None:
    """Warn when ``lag`` is not one of the model's lag classes (its answer is one of them)."""
    classes = model.card.lag_classes_timedelta
    if lag in set(classes):
        return
    model_step = model.card.lag_step
    note = ""
    if step != model_step:
        note = (
            f" The data's time step is {_fmt(step)}; the model's lags come in steps of "
            f"{_fmt(model_step)}."
        )
    warn(
        f"A lag of {_fmt(lag)} is not one of the lag classes of model {model.name!r} "
        f"({_fmt(classes[0])} to {_fmt(classes[-1])} in steps of {_fmt(model_step)}), so the "
        f"probabilities are over lags it was never asked.{note} Pass a lag from "
        f"{[_fmt(c) for c in classes[:4]]}..., or an encoder trained for this lag "
        "(xatmodist.train.fit_encoder).",
        OutOfDistributionWarning,
    )


def _pairs(a, dim, k: int):
    first = a.isel({dim: slice(None, -k)})
    later = a.isel({dim: slice(k, None)}).assign_coords({dim: first[dim].values})
    return first, later


def predict_lag(
    a: xr.Dataset | xr.DataArray,
    b: xr.Dataset | xr.DataArray | None = None,
    *,
    dim: Hashable | None = None,
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
    dim : str, optional
        Time dim used when ``b`` is None (default: the CF time axis, e.g.
        ``valid_time``, else the dim holding datetimes).
    lag : int, str or Timedelta
        Lag used when ``b`` is None: an int is that many time steps (as
        ``a.shift(time=3)``), a duration (``"6h"``) a whole multiple of the time
        step.  A lag that is not one of the model's lag classes warns
        (:class:`~xatmodist.OutOfDistributionWarning`).
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
    paired = None  # (lag, step) of pairs made here along dim
    if b is None:
        if lag is None:
            raise InputError(
                "Without b, pass lag= (a number of time steps, e.g. lag=2, or a duration such "
                "as lag='6h') to pair each field with the one that much later along dim."
            )
        dim = v.time_dim(a, dim)
        step = v.coord_time_step(a, dim)
        k = v.lag_steps(lag, step, "lag")
        if k >= a.sizes[dim]:
            raise InputError(
                f"lag={lag!r} is {k} steps but {dim!r} has only {a.sizes[dim]} values; pass a "
                f"smaller lag (at most {a.sizes[dim] - 1} steps) or more fields."
            )
        a, b = _pairs(a, dim, k)
        paired = (k * step, step)
    pa = prepare(a, model, variables, spatial_dims, channel_dim)
    pb = prepare(b, pa.model, variables, spatial_dims, channel_dim)
    if paired is not None:
        _check_time_step(paired[1], pa.model)
        _check_lag_class(*paired, pa.model)
    v.check_same_grid(pa.da, pb.da, [pa.lat, pa.lon])
    classes = pa.model.card.lag_classes_timedelta
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
    dim: Hashable | None = None,
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

    Parameters
    ----------
    a : Dataset or DataArray
        Fields on a regular time axis.
    dim : str, optional
        Time dim (default: the CF time axis, e.g. ``valid_time``, else the dim
        holding datetimes).
    max_lag : int, str or Timedelta, optional
        Longest lag: an int is that many time steps, a duration (``"48h"``) a
        whole multiple of the time step.  Default: the model's longest lag class.
    model, variables, spatial_dims, channel_dim
        As in :func:`xatmodist.distance`.

    Returns
    -------
    Dataset
        ``learned`` and ``l2`` over dim ``lag`` (timedelta64; means taken in
        float64, so any chunking gives them to 1e-12 relative), plus
        ``learned_relative`` and ``l2_relative`` (each divided by its value at
        the largest lag) to compare their shapes.  Lazy if the input was
        dask-backed.
    """
    from .nn.encoder import feature_difference  # torch, imported with the model

    m = load_model(model, task="encoder")
    dim = v.time_dim(a, dim)
    step = v.coord_time_step(a, dim)
    n = a.sizes[dim]
    if max_lag is None:
        max_lag = m.card.max_lag
        if max_lag >= n * step:
            raise InputError(
                f"The model's longest lag, {_fmt(max_lag)}, is {int(max_lag / step)} steps of "
                f"{_fmt(step)} but {dim!r} has only {n} values; pass max_lag= (at most "
                f"{n - 1} steps, e.g. max_lag={_fmt((n - 1) * step)!r} or max_lag={n - 1})."
            )
    _check_time_step(step, m)
    kmax = v.lag_steps(max_lag, step, "max_lag")
    if kmax >= n:
        raise InputError(
            f"max_lag={max_lag!r} is {kmax} steps but {dim!r} has only {n} values; pass a "
            f"smaller max_lag (at most {n - 1} steps, e.g. max_lag={_fmt((n - 1) * step)!r})."
        )
    # encode every field once; the distance for lag k is then a difference of features
    p = prepare(a, m, variables, spatial_dims, channel_dim)
    feats = embed_prepared(p, "none")
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
        # means in float64: over many pairs the sum's order (numpy, or dask's tree per
        # chunking) would otherwise show in float32's last bits
        learned.append(alpha * feature_difference(f0 - f1, kind).astype(np.float64).mean())
        l2.append(((z0 - z1) ** 2).astype(np.float64).mean())
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
