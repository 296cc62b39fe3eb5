"""Analogues: the archive states nearest to each target state, and forecasts from them.

The archive is encoded once (:func:`archive_features`, or features saved with
:func:`~xatmodist.embed` and reopened), then searched exactly: for every
target, the distances to all archive states, chunk by chunk, reduced to the
``k`` nearest with a dask tree reduction.  Memory is bounded by one archive
chunk's features and the targets' features, whatever the archive's length.

For an encoder the distance is the model's own: :func:`~xatmodist.distance`
is ``alpha`` times the mean over patches of the mean over each patch's
feature grid of ``(f_a - f_b)**2`` (or ``|f_a - f_b|``), which is ``alpha``
times the mean over the whole feature grid (every patch has as many
features), so a pair's analogue distance is the number ``distance()`` gives,
up to float rounding.  ``metric="l2"`` searches with the mean squared
difference of the normalised fields over the grid (the Euclidean analogues of
the literature, as ``lag_curve``'s ``l2``).  ``metric="hybrid"`` adds the two:
the encoder's ``alpha`` scales its distance to the normalised fields' mean
squared difference at large lags, so neither term dominates.

An *analogue metric* (a model of task ``"analog"``, fitted by
:func:`xatmodist.train.fit_analog_metric`) maps the encoder's features to the
state's predicted successor; passed as ``model=``, it searches among predicted
successors.  On daily sea-level pressure, ``analog-ncep-slp`` gave the best
analogue forecasts of the metrics tried (``benchmarks/eval_analogs.py``;
numbers in ``docs/tutorials/analogs.md``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from functools import partial

import numpy as np
import pandas as pd
import xarray as xr

from . import _validate as v
from ._apply import apply, prepare, provenance
from ._kernels import normalise_kernel
from .errors import InputError, ModelError, warn
from .zoo import DEFAULT_ENCODER, Model, load_model

__all__ = ["analogs", "analog_forecast", "archive_features"]

_METRICS = ("learned", "l2", "hybrid")
#: archive chunks merged per step of the top-k tree reduction
SPLIT_EVERY = 8


# --------------------------------------------------------------------------- features


def archive_features(
    archive: xr.Dataset | xr.DataArray,
    *,
    model: str | Model | None = None,
    metric: str = "learned",
    variables: Mapping | Sequence | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    channel_dim: Hashable | None = None,
) -> xr.DataArray:
    """What the analogue search compares, one flat vector per field (dim ``element``).

    ``metric="learned"``: the encoder's feature grid (``embed(pool="none")``);
    ``"l2"``: the normalised fields (the model's input normalisation);
    ``"hybrid"``: both, side by side (attr ``learned_elements`` says where
    the normalised fields start).  Lazy for
    dask input; compute it once (or write it to zarr and reopen it) and pass
    it as ``features=`` to :func:`analogs` to search a large archive without
    encoding it again.  The attrs name the model, its sha256 and the metric,
    which :func:`analogs` checks.
    """
    _check_metric(metric)
    owner, enc = resolve_model(model, metric)
    p = prepare(archive, enc, variables, spatial_dims, channel_dim)
    parts = []
    if metric in ("learned", "hybrid"):
        from .distance import embed_prepared

        f = embed_prepared(p, "none")
        f = f.stack(element=("feature_lat", "feature_lon", "feature"))
        if owner.task == "analog":  # the predicted successor's components
            f = _project(f.drop_vars([c for c in f.coords if "element" in f[c].dims]), owner)
        parts.append(f)
    if metric in ("l2", "hybrid"):
        sizes = {v.CHANNEL: p.da.sizes[v.CHANNEL], "y": p.da.sizes[p.lat], "x": p.da.sizes[p.lon]}
        z = apply(normalise_kernel, [p], out_core_dims=list(sizes), output_sizes=sizes)
        parts.append(z.stack(element=list(sizes)))
    parts = [x.drop_vars([c for c in x.coords if "element" in x[c].dims]) for x in parts]
    f = parts[0] if len(parts) == 1 else xr.concat(parts, dim="element", coords="minimal")
    f.name = "analog_features"
    f.attrs = {
        "long_name": f"what analogs() compares ({metric} metric)",
        **provenance(owner, metric=metric),
        "learned_elements": parts[0].sizes["element"] if metric != "l2" else 0,
    }
    return f


def resolve_model(model, metric: str) -> tuple[Model, Model]:
    """(the model that defines the distance, the encoder that reads the fields).

    An encoder is both; an analogue metric (task ``"analog"``) reads the
    fields with the encoder its card names (checked by sha256).
    """
    m = load_model(DEFAULT_ENCODER if model is None else model)
    if m.task == "encoder":
        return m, m
    if m.task != "analog":
        raise ModelError(
            f"analogs needs an encoder or an analogue metric as model=; {m.name!r} is a "
            f"{m.task}. Pass e.g. model={DEFAULT_ENCODER!r}."
        )
    if metric != "learned":
        raise InputError(
            f"{m.name!r} is an analogue metric: it searches with its own distance, so "
            f"metric={metric!r} does not apply. Drop metric=, or pass its encoder "
            f"({m.card.encoder['name']!r}) as model= for metric={metric!r}."
        )
    enc = load_model(m.card.encoder["name"], task="encoder")
    want = m.card.encoder.get("sha256")
    if want and enc.sha256 != want:
        raise ModelError(
            f"The analogue metric {m.name!r} was fitted on encoder {enc.name!r} with sha256 "
            f"{want[:16]}..., but the one found has {str(enc.sha256)[:16]}...; refit it "
            "(xatmodist.train.fit_analog_metric) or restore that encoder."
        )
    return m, enc


def _project(f: xr.DataArray, owner: Model) -> xr.DataArray:
    """An analogue metric applied to flattened encoder features (lazy for dask)."""
    r = int(owner.card.args["components"])
    n_in = int(owner.card.args["in_features"])
    if f.sizes["element"] != n_in:
        raise InputError(
            f"The analogue metric {owner.name!r} takes {n_in} encoder features per field (its "
            f"training grid); these fields give {f.sizes['element']}. Use fields on the grid "
            "of its card, or fit a metric for this grid (xatmodist.train.fit_analog_metric)."
        )
    out = xr.apply_ufunc(
        _project_kernel,
        f,
        input_core_dims=[["element"]],
        output_core_dims=[["component"]],
        dask="parallelized",
        output_dtypes=[np.float32],
        dask_gufunc_kwargs={"output_sizes": {"component": r}},
        kwargs={"model": owner.reference()},
    )
    return out.rename(component="element")


#: rows per pass of an analogue metric's projection: one size, so a field's output does not
#: depend on its chunk (BLAS blocks a product by its row count; see _kernels._run_batches)
PROJECT_ROWS = 64


def _project_kernel(x: np.ndarray, *, model: str) -> np.ndarray:
    from ._kernels import _run

    net = load_model(model).module
    lead = x.shape[:-1]
    flat = np.ascontiguousarray(x.reshape(-1, x.shape[-1]), dtype=np.float32)
    r = int(net.proj.out_features)
    if not len(flat):
        return np.zeros(lead + (r,), dtype=np.float32)
    out = _run(net, [flat], PROJECT_ROWS, None)
    return out.reshape(lead + (r,))


def _terms(model: Model, metric: str, n_learned: int, n: int) -> tuple:
    """The distance as a sum of terms (first element, end, "squared"|"l1", weight)."""
    if model.task == "analog":  # squared differences of the predicted successor's components
        return ((0, n, "squared", 1.0),)
    learned = (0, n_learned, str(model.module.distance_kind), float(model.module.alpha))
    if metric == "learned":
        return (learned,)
    if metric == "l2":
        return ((0, n, "squared", 1.0),)
    return (learned, (n_learned, n, "squared", 1.0))


def _check_metric(metric: str) -> None:
    if metric not in _METRICS:
        raise InputError(f"metric must be one of {_METRICS}; got {metric!r}.")


# --------------------------------------------------------------------------- kernels


def _distances(t: np.ndarray, a: np.ndarray, terms) -> np.ndarray:
    """The distance of every row of ``t`` to every row of ``a``: the sum of ``terms``.

    Each term is ``weight`` times the mean squared or absolute difference over
    its elements, in float64.
    """
    import torch

    out = np.zeros((len(t), len(a)))
    with torch.inference_mode():
        for lo, hi, kind, weight in terms:
            tt = torch.from_numpy(np.ascontiguousarray(t[:, lo:hi], dtype=np.float64))
            aa = torch.from_numpy(np.ascontiguousarray(a[:, lo:hi], dtype=np.float64))
            if kind == "squared":
                d = torch.cdist(tt, aa, p=2.0, compute_mode="donot_use_mm_for_euclid_dist") ** 2
            else:
                d = torch.cdist(tt, aa, p=1.0)
            out += weight * d.numpy() / (hi - lo)
    return out


def _chunk_topk(t, tlab, a, alab, pos, *, k, terms, window):
    """The ``k`` nearest of one archive chunk for every target: (n_t, k, 2) (distance, position).

    Unusable entries (NaN fields, inside the exclusion window) have distance
    inf and position -1.  Ties are broken by archive position.
    """
    d = _distances(t, a, terms)
    d[~np.isfinite(d)] = np.inf
    if window is not None:
        d[np.abs(tlab[:, None] - alab[None, :]) <= window] = np.inf
    p = np.broadcast_to(pos[None, :].astype(np.float64), d.shape)
    return _topk(np.stack([d, p], axis=-1), k)


def _topk(c: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` smallest candidates (…, n, 2) along n by (distance, position); padded with inf."""
    n = c.shape[-2]
    if n < k:
        pad = np.full(c.shape[:-2] + (k - n, 2), np.inf)
        pad[..., 1] = -1
        c = np.concatenate([c, pad], axis=-2)
    d, p = c[..., 0], c[..., 1]
    # lexicographic: distance, then position (unused -1 entries last through inf distance)
    order = np.lexsort((np.where(p < 0, np.inf, p), d), axis=-1)[..., :k]
    return np.take_along_axis(c, order[..., None], axis=-2)


def _merge(x, axis, keepdims, k):
    """Tree-reduction step: the ``k`` best of concatenated candidate blocks (axis 1)."""
    del axis, keepdims
    return _topk(x, k)


# --------------------------------------------------------------------------- search


def analogs(
    target: xr.Dataset | xr.DataArray,
    archive: xr.Dataset | xr.DataArray | None = None,
    *,
    k: int = 10,
    dim: Hashable | None = None,
    exclude=None,
    model: str | Model | None = None,
    metric: str = "learned",
    features: xr.DataArray | None = None,
    variables: Mapping | Sequence | None = None,
    spatial_dims: Sequence[Hashable] | None = None,
    channel_dim: Hashable | None = None,
) -> xr.Dataset:
    """The ``k`` archive states nearest to each target state.

    Parameters
    ----------
    target : Dataset or DataArray
        The states to find analogues for, with the model's variables, on the
        archive's grid; any non-spatial dims (one state per label).
    archive : Dataset or DataArray, optional
        The past states, one non-spatial dim ``dim`` (stack others first, e.g.
        ``archive.stack(sample=("run", "time"))``).  Not needed when
        ``features`` are given (its labels come from them).
    k : int
        Analogues per target.
    dim : str, optional
        The archive's search dim (default: its CF time axis, else its one
        non-spatial dim).
    exclude : duration, optional
        Leave out archive states within this window of each target's own
        label (e.g. ``"5D"`` when target and archive overlap), so that a
        state cannot pick itself or its neighbours.  Needs datetime labels
        on both.
    model : str, path or Model, optional
        Encoder (default: ``xatmodist.zoo.DEFAULT_ENCODER``), or an analogue
        metric (task ``"analog"``, e.g. ``"analog-ncep-slp"``), which reads
        the fields with its encoder and searches with its own distance.
    metric : {"learned", "l2", "hybrid"}
        The encoder's distance; the mean squared difference of the
        normalised fields (Euclidean analogues); or their sum.
    features : DataArray, optional
        The archive's :func:`archive_features` (computed or lazy, e.g.
        reopened from zarr), so that a large archive is encoded once.
    variables, spatial_dims, channel_dim
        As in :func:`~xatmodist.distance`.

    Returns
    -------
    Dataset
        ``distance`` and the archive labels (a variable named after ``dim``),
        over the target's non-spatial dims and ``analog`` (length ``k``),
        nearest first; ties go to the earlier archive position.  Lazy if an
        input was dask-backed: the search runs chunk by chunk over the
        archive's features and a tree reduction keeps the ``k`` best.

    Notes
    -----
    Archive fields with NaN are never chosen (their distances are NaN), and
    each kernel warns how many it skipped.  Exact search: the result equals
    brute force with the same distance.

    Examples
    --------
    >>> ds = xatmodist.datasets.sample()
    >>> archive = ds.isel(run=slice(1, None)).stack(sample=("run", "time"))
    >>> best = xatmodist.analogs(ds.isel(run=0, time=[0, 8]), archive, k=3, dim="sample")
    >>> best.distance.dims
    ('time', 'analog')
    """
    _check_metric(metric)
    k = _check_k(k)
    owner, enc = resolve_model(model, metric)
    p = prepare(target, enc, variables, spatial_dims, channel_dim)
    if features is None:
        if archive is None:
            raise InputError("Pass the archive, or its features= (xatmodist.archive_features).")
        pa = prepare(archive, enc, variables, spatial_dims, channel_dim)
        v.check_same_grid(p.da, pa.da, [p.lat, p.lon])
        features = archive_features(
            archive, model=owner, metric=metric, variables=variables,
            spatial_dims=spatial_dims, channel_dim=channel_dim,
        )  # fmt: skip
    else:
        _check_features(features, owner, metric)
    adim = _archive_dim(features, dim)
    labels = features[adim]
    _check_labels(labels, adim)
    n_arch = features.sizes[adim]
    if k > n_arch:
        raise InputError(
            f"k={k} analogues were asked for, but the archive holds {n_arch} states along "
            f"{adim!r}. Pass k <= {n_arch} or a longer archive."
        )
    tf = archive_features(
        target, model=owner, metric=metric, variables=variables,
        spatial_dims=spatial_dims, channel_dim=channel_dim,
    )  # fmt: skip
    if tf.sizes["element"] != features.sizes["element"]:
        raise InputError(
            f"The target gives {tf.sizes['element']} features per state and the archive's "
            f"features= {features.sizes['element']}: they come from other grids or patches. "
            "Compute the archive's features on the target's grid."
        )
    terms = _terms(owner, metric, int(tf.attrs["learned_elements"]), tf.sizes["element"])
    tdims = [d for d in tf.dims if d != "element"]
    window, tlab = _window(exclude, tf, tdims, labels, adim)
    flat_t = tf.stack(_target=tdims) if tdims else tf.expand_dims(_target=[0])
    flat_t = flat_t.transpose("_target", "element")
    best = _search(
        flat_t.data, tlab, features.transpose(adim, "element").data, labels, k, terms, window
    )
    return _result(best, flat_t, tdims, tf, labels, adim, k, owner, metric, exclude)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive int (analogues per target); got {k!r}.")
    return int(k)


def _check_features(features, model: Model, metric: str) -> None:
    if not isinstance(features, xr.DataArray) or "element" not in features.dims:
        raise InputError(
            "features= must be the DataArray of xatmodist.archive_features(archive, ...) "
            f"(dims (dim, 'element')); got {type(features).__name__}"
            + (f" with dims {tuple(features.dims)}" if hasattr(features, "dims") else "")
            + "."
        )
    have = (features.attrs.get("xatmodist_model_sha256"), features.attrs.get("metric"))
    want = (model.sha256, metric)
    if have != want:
        raise InputError(
            f"features= were computed with model sha256 {have[0]!r} and metric {have[1]!r}; "
            f"this search uses model {model.name!r} (sha256 {want[0]!r}) and metric "
            f"{metric!r}. Recompute them with archive_features(archive, model=..., "
            "metric=...) or pass the matching model and metric."
        )


def _archive_dim(features: xr.DataArray, dim) -> Hashable:
    others = [d for d in features.dims if d != "element"]
    if dim is not None:
        if dim not in others:
            raise InputError(f"dim={dim!r} is not a dim of the archive; its dims are {others}.")
        if len(others) > 1:
            raise InputError(_one_dim_message(others, dim))
        return dim
    if len(others) != 1:
        raise InputError(_one_dim_message(others, None))
    return others[0]


def _one_dim_message(others, dim) -> str:
    return (
        f"The archive must have one non-spatial dim to search along; it has {others}. Stack "
        f"them into one, e.g. archive.stack(sample={tuple(others)!r}), and pass dim='sample'"
        + (f" (dim={dim!r} was given)." if dim is not None else ".")
    )


def _check_labels(labels: xr.DataArray, dim) -> None:
    idx = labels.to_index()
    if idx.has_duplicates:
        dup = idx[idx.duplicated()][0]
        raise InputError(
            f"The archive's {dim!r} labels repeat ({dup!r} occurs more than once), so an "
            "analogue's label would be ambiguous. Drop the duplicates first, e.g. "
            f"archive.drop_duplicates({dim!r})."
        )
    if not isinstance(idx, pd.MultiIndex) and not idx.is_monotonic_increasing:
        raise InputError(
            f"The archive's {dim!r} labels are not sorted. Sort it first: archive.sortby({dim!r})."
        )


def _window(exclude, tf: xr.DataArray, tdims, labels: xr.DataArray, adim):
    """(window in ns or None, each target's label in ns (flattened) or None)."""
    if exclude is None:
        return None, None
    if not np.issubdtype(labels.dtype, np.datetime64):
        raise InputError(
            f"exclude={exclude!r} is a time window, but the archive's {adim!r} labels are "
            f"{labels.dtype} values, not datetimes. Drop exclude=, or search an archive "
            "labelled by time."
        )
    try:
        window = pd.Timedelta(exclude)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"exclude must be a duration such as '5D' or '12h'; got {exclude!r}."
        ) from err
    if window < pd.Timedelta(0):
        raise InputError(f"exclude must not be negative; got {exclude!r}.")
    tdim = adim if adim in tf.dims else (v.time_dim(tf) if tdims else None)
    if tdim is None or tdim not in tf.coords or not np.issubdtype(tf[tdim].dtype, np.datetime64):
        raise InputError(
            f"exclude={exclude!r} needs each target's time: the target has no datetime "
            f"coordinate along its dims {tdims}. Give it one, or drop exclude=."
        )
    lab = tf[tdim].broadcast_like(tf.isel(element=0, drop=True)).transpose(*tdims)
    return int(window.value), lab.values.astype("datetime64[ns]").astype(np.int64).reshape(-1)


def _search(t, tlab, a, labels, k: int, terms: tuple, window):
    """(n_t, k, 2) of (distance, archive position), lazily when either input is dask."""
    import dask.array as da

    pos = np.arange(a.shape[0])
    alab = None
    if window is not None:
        alab = labels.values.astype("datetime64[ns]").astype(np.int64)
    tl = np.zeros(t.shape[0], dtype=np.int64) if tlab is None else tlab
    al = np.zeros(a.shape[0], dtype=np.int64) if alab is None else alab
    kw = {"k": k, "terms": terms, "window": window}
    lazy = isinstance(t, da.Array) or isinstance(a, da.Array)
    if not lazy:
        return _chunk_kernel(np.asarray(t), tl, np.asarray(a), al, pos, **kw)
    a = da.asarray(a).rechunk({1: -1})
    t = da.asarray(t).rechunk({1: -1})
    t = t.rechunk({0: t.shape[0]})  # all targets against each archive chunk
    achunks = a.chunks[0]
    al_d = da.from_array(al, chunks=(achunks,))
    pos_d = da.from_array(pos, chunks=(achunks,))
    tl_d = da.from_array(tl, chunks=(t.shape[0],))
    cand = da.blockwise(
        partial(_chunk_kernel, **kw),
        "ijc",
        t, "ie", tl_d, "i", a, "je", al_d, "j", pos_d, "j",
        new_axes={"c": 2},
        adjust_chunks={"j": k},
        concatenate=True,
        dtype=np.float64,
        meta=np.empty((0, 0, 0), dtype=np.float64),
    )  # fmt: skip
    return da.reduction(
        cand,
        chunk=lambda x, axis, keepdims: x,
        combine=partial(_merge, k=k),
        aggregate=partial(_merge, k=k),
        axis=1,
        keepdims=True,
        concatenate=True,
        split_every=SPLIT_EVERY,
        output_size=k,
        dtype=np.float64,
        meta=np.empty((0, 0, 0), dtype=np.float64),
    )


def _chunk_kernel(t, tl, a, al, pos, **kw):
    return _warn_nan(_chunk_topk(t, tl, a, al, pos, **kw), a)


def _warn_nan(out: np.ndarray, a: np.ndarray) -> np.ndarray:
    bad = int((~np.isfinite(a)).any(axis=1).sum())
    if bad:
        warn(
            f"{bad} archive field(s) hold NaN/inf and are never chosen as analogues.",
            UserWarning,
        )
    return out


def _result(best, flat_t, tdims, tf, labels, adim, k, model, metric, exclude) -> xr.Dataset:
    import dask.array as da

    d = best[..., 0]
    p = best[..., 1]
    values = np.asarray(labels.values)
    take = partial(_labels_at, values=values)
    if isinstance(p, da.Array):
        lab = p.map_blocks(take, dtype=values.dtype, meta=np.empty((0, 0), dtype=values.dtype))
        d = d.map_blocks(_check_found, k=k, dtype=np.float64)
    else:
        lab = take(p)
        d = _check_found(d, k)
    shape = [tf.sizes[x] for x in tdims] + [k]
    dims = [*tdims, "analog"]
    coords = {c: tf.coords[c] for c in tf.coords if set(tf.coords[c].dims) <= set(tdims)}
    name = adim if adim not in tdims else f"{adim}_analog"
    ds = xr.Dataset(
        {
            "distance": (dims, d.reshape(shape).astype(np.float32)),
            name: (dims, lab.reshape(shape)),
        },
        coords={**coords, "analog": np.arange(k)},
    )
    ds["distance"].attrs = {
        "long_name": f"AtmoDist {metric} distance to the analogue",
        "units": "1",
        **provenance(model, metric=metric),
    }
    ds[name].attrs = {"long_name": f"the analogue's {adim} in the archive"}
    ds.attrs = {"k": k, "exclude": str(exclude) if exclude is not None else "none"}
    return ds


def _labels_at(p: np.ndarray, values: np.ndarray) -> np.ndarray:
    return values[p.astype(np.int64)]


def _check_found(d: np.ndarray, k: int) -> np.ndarray:
    if np.isinf(d).any():
        i = int(np.nonzero(np.isinf(d).any(axis=-1))[0][0])
        n = int(np.isfinite(d[i]).sum())
        raise InputError(
            f"Target {i} (in order) has only {n} usable archive states (outside the exclusion "
            f"window and without NaN) for k={k}. Pass a smaller k or exclude=, or a longer "
            "archive."
        )
    return d


# --------------------------------------------------------------------------- forecasts


def analog_forecast(
    target: xr.Dataset | xr.DataArray,
    archive: xr.Dataset | xr.DataArray,
    lead,
    *,
    k: int = 10,
    weights: str = "distance",
    dim: Hashable | None = None,
    **kwargs,
):
    """The analogue forecast: the mean of the analogues' successors at each ``lead``.

    The analogues are searched among the archive states whose successor at
    the longest lead is in the archive (``archive[dim]`` + lead); the
    forecast at a lead is the mean of their successors, weighted by
    ``1 / distance`` (``weights="distance"``) or equally (``"uniform"``).

    Parameters
    ----------
    target, archive : Dataset or DataArray
        As in :func:`analogs`; the archive's ``dim`` holds datetimes.
    lead : duration or sequence of durations
        Forecast leads (e.g. ``["1D", "2D"]``, or time steps as ints).
    k, dim
        As in :func:`analogs`.
    weights : {"distance", "uniform"}
    **kwargs
        More arguments of :func:`analogs` (``model``, ``metric``, ``exclude``, ...).

    Returns
    -------
    Dataset or DataArray
        The archive's variables over the target's dims, a ``lead`` dim
        (timedelta64) and the spatial dims.
    """
    if weights not in ("distance", "uniform"):
        raise InputError(f"weights must be 'distance' or 'uniform'; got {weights!r}.")
    adim = v.time_dim(archive, dim)
    times = archive[adim]
    if not np.issubdtype(times.dtype, np.datetime64):
        raise InputError(
            f"analog_forecast finds successors by time: the archive's {adim!r} labels must "
            f"be datetimes; got {times.dtype}."
        )
    step = v.time_step(times.values, adim)
    leads = [lead] if isinstance(lead, (str, int, pd.Timedelta, np.timedelta64)) else list(lead)
    leads = [v.lag_duration(x, step, "lead") for x in leads]
    idx = times.to_index()
    longest = max(leads)
    usable = (idx + longest).isin(idx)
    if not usable.any():
        raise InputError(
            f"No archive state has a successor {longest} later inside the archive; pass "
            "shorter leads or a longer archive."
        )
    best = analogs(target, archive.isel({adim: np.nonzero(usable)[0]}), k=k, dim=adim, **kwargs)
    w = (
        1.0 / np.maximum(best.distance, 1e-12)
        if weights == "distance"
        else xr.ones_like(best.distance)
    )
    w = w / w.sum("analog")
    out = []
    found = best[adim if adim in best.data_vars else f"{adim}_analog"]
    for ld in leads:
        succ = archive.sel({adim: found + np.timedelta64(ld)})
        out.append((succ * w).sum("analog").drop_vars(adim, errors="ignore"))
    res = xr.concat(out, dim=pd.Index(np.array(leads, dtype="timedelta64[ns]"), name="lead"))
    return res
