"""The analogue metric: from an encoder's features to the predicted successor (ridge regression).

Self-supervised like the encoder: the target of each training state is the
same series ``lead`` later.  :func:`fit_analog_metric` regresses the leading
principal components of the normalised successor field on the encoder's
flattened feature grid (ridge regression, solved in its dual form: one
``n x n`` system for ``n`` training states).  Analogues are then searched
among predicted successors: two states are near when their successors are
predicted to be alike, which is what an analogue forecast needs.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .. import _validate as v
from ..errors import InputError
from ..zoo import Model, load_model

__all__ = ["fit_analog_metric"]


def fit_analog_metric(
    ds: xr.Dataset | xr.DataArray,
    *,
    encoder: str | Model,
    lead,
    components: int = 64,
    ridge: float = 0.1,
    dim: Hashable | None = None,
    name: str = "analog-metric",
    data_description: str | None = None,
    variables: Mapping | Sequence | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    out: str | None = None,
) -> Model:
    """Fit an analogue metric of ``encoder`` on ``ds``: successors ``lead`` later.

    Parameters
    ----------
    ds : Dataset or DataArray
        Training states with the encoder's variables, one time dim (states
        whose successor ``lead`` later is not in ``ds`` are not used, so
        several runs can be joined with distinct times).
    encoder : str, path or Model
        The encoder whose features the metric maps.
    lead : duration or int
        How far ahead the successor is (an int: time steps).
    components : int
        Leading principal components of the normalised successor fields.
    ridge : float
        Ridge penalty relative to the mean eigenvalue of the feature Gram
        matrix.
    dim : str, optional
        The time dim (default: the CF time axis).
    name, data_description : str
        The card's name and ``training.data``.
    variables, spatial_dims
        As in :func:`xatmodist.distance`.
    out : str, optional
        Folder to save the model to.

    Returns
    -------
    Model
        Task ``"analog"``; pass it as ``model=`` to :func:`xatmodist.analogs`.
    """
    import torch

    from ..analogs import archive_features
    from ..nn import SuccessorMetric

    enc = load_model(encoder, task="encoder")
    if isinstance(components, bool) or not isinstance(components, int) or components < 1:
        raise InputError(f"components must be a positive int; got {components!r}.")
    if isinstance(ridge, bool) or not isinstance(ridge, int | float) or not ridge > 0:
        raise InputError(f"ridge must be a positive number; got {ridge!r}.")
    tdim = v.time_dim(ds, dim)
    step = v.coord_time_step(ds, tdim) if _regular(ds, tdim) else _min_step(ds, tdim)
    lead_td = v.lag_duration(lead, step, "lead")
    times = ds[tdim].to_index()
    has_next = (times + lead_td).isin(times)
    if has_next.sum() <= components:
        raise InputError(
            f"Only {int(has_next.sum())} states of {tdim!r} have a successor {lead_td} later in "
            f"the data; the fit needs more than components={components}. Pass more data, a "
            "shorter lead or fewer components."
        )
    import time

    t0 = time.perf_counter()
    kw = {"variables": variables, "spatial_dims": spatial_dims}
    f = np.asarray(archive_features(ds, model=enc, **kw).values, dtype=np.float64)
    z = np.asarray(archive_features(ds, model=enc, metric="l2", **kw).values, dtype=np.float64)
    if not (np.isfinite(f).all() and np.isfinite(z).all()):
        raise InputError("The training states hold NaN/inf; drop or fill those fields first.")
    now = np.nonzero(has_next)[0]
    later = times.get_indexer(times[now] + lead_td)
    x, zf = f[now], z[later]
    r = min(components, len(now) - 1, z.shape[1])
    mz = z.mean(0)
    _, sv, vt = np.linalg.svd(z - mz, full_matrices=False)
    y = (zf - mz) @ vt[:r].T
    mx = x.mean(0)
    xc, yc = x - mx, y - y.mean(0)
    gram = xc @ xc.T
    lam = ridge * np.trace(gram) / len(gram)
    w = xc.T @ np.linalg.solve(gram + lam * np.eye(len(gram)), yc)  # (features, r)
    fitted = xc @ w
    r2 = 1 - ((fitted - yc) ** 2).sum() / (yc**2).sum()
    scale = np.sqrt(r / z.shape[1])  # mean square of outputs = per-value mean square
    net = SuccessorMetric(x.shape[1], r)
    with torch.no_grad():
        net.mean.copy_(torch.from_numpy(mx))
        net.proj.weight.copy_(torch.from_numpy((w * scale).T))
    net.eval()
    c = enc.card
    card = {
        "name": name,
        "version": 1,
        "task": "analog",
        "architecture": "SuccessorMetric",
        "args": {"in_features": int(x.shape[1]), "components": int(r)},
        "variables": c.variable_dicts,
        "grid": c.grid.to_dict(),
        "patch_size": int(c.patch_size),
        "encoder": {"name": enc.name, "sha256": enc.sha256},
        "lead_seconds": float(lead_td.total_seconds()),
        "normalisation": {
            "method": "the encoder's input normalisation (its card); outputs are the leading "
            "principal components of the normalised successor, scaled by sqrt(components / "
            "values per field)",
            **{
                k: (c.normalisation or {})[k]
                for k in ("mean", "std")
                if k in (c.normalisation or {})
            },
            "explained_variance_of_components": float((sv[:r] ** 2).sum() / (sv**2).sum()),
        },
        "training": {
            "data": data_description or "user data",
            "method": "ridge regression of the successor's principal components on the "
            "encoder's flattened feature grid (dual form)",
            "n_states": int(len(now)),
            "first": str(times[now[0]]),
            "last": str(times[now[-1]]),
            "ridge": float(ridge),
            "ridge_lambda": float(lam),
            "components": int(r),
            "train_r2": float(r2),
            "train_seconds": round(time.perf_counter() - t0, 1),
            **({"data_kind": c.data_kind} if c.data_kind else {}),
        },
        "metrics": {},
    }
    model = Model(card=card, module=net)
    if out is not None:
        model.save(out)
    return model


def _regular(ds, tdim) -> bool:
    d = np.diff(ds[tdim].values)
    return len(d) > 0 and bool((d == d[0]).all())


def _min_step(ds, tdim) -> pd.Timedelta:
    """The smallest positive time step (joined runs have jumps between them)."""
    d = np.diff(ds[tdim].values)
    d = d[d > np.timedelta64(0)]
    if not len(d):
        raise InputError(f"{tdim!r} needs increasing times; sort the data by {tdim!r}.")
    return pd.Timedelta(d.min())
