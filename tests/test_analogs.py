"""Analogue search (issue 21): exact against brute force, lazy, cached features, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import xatmodist
from xatmodist import InputError
from xatmodist.testing import raise_if_dask_computes


@pytest.fixture(scope="module")
def sample():
    warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
    return xatmodist.datasets.sample()


@pytest.fixture(scope="module")
def archive(sample):
    return sample.isel(run=1)  # 40 states, datetime labels


@pytest.fixture(scope="module")
def target(sample):
    return sample.isel(run=0, time=[0, 9, 30])


def _normalised(x) -> np.ndarray:
    """The default encoder's normalisation of (..., lat, lon) fields: (N, 2, lat, lon)."""
    import torch

    a = np.stack([x.vo.values, x.d.values], axis=-3).astype(np.float32)
    a = a.reshape((-1,) + a.shape[-3:])
    with torch.inference_mode():
        return xatmodist.load_model().module.normaliser(torch.from_numpy(a)).double().numpy()


def _brute(target, archive, k, metric="learned"):
    """Every pair's distance() and a sort: (distances, labels), (n_target, k)."""
    ds, labs = [], []
    for i in range(target.sizes["time"]):
        t = target.isel(time=i, drop=True)
        d = np.zeros(archive.sizes["time"])
        if metric in ("learned", "hybrid"):
            d += xatmodist.distance(t, archive).values.astype(np.float64)
        if metric in ("l2", "hybrid"):
            d += ((_normalised(t) - _normalised(archive)) ** 2).mean(axis=(1, 2, 3))
        order = np.argsort(d, kind="stable")[:k]
        ds.append(d[order])
        labs.append(archive.time.values[order])
    return np.array(ds), np.array(labs)


@pytest.mark.parametrize("metric", ["learned", "l2", "hybrid"])
def test_exact_search_equals_brute_force(target, archive, metric):
    got = xatmodist.analogs(target, archive, k=5, metric=metric)
    d, lab = _brute(target, archive, 5, metric)
    assert got.distance.dims == ("time", "analog") and got.sizes["analog"] == 5
    np.testing.assert_array_equal(got.time_analog.values, lab)
    np.testing.assert_allclose(got.distance.values, d, rtol=1e-5)
    assert (np.diff(got.distance.values, axis=1) >= 0).all()  # nearest first


def test_accessor_and_numpy_dask_agree_bitwise_and_lazily(target, archive):
    ref = target.atmodist.analogs(archive, k=4)
    for ach, tch in [(7, 1), (40, 3), (3, 2)]:
        a, t = archive.chunk({"time": ach}), target.chunk({"time": tch})
        with raise_if_dask_computes():
            lazy = xatmodist.analogs(t, a, k=4)
        assert lazy.distance.chunks is not None
        xr.testing.assert_identical(lazy.compute(), ref)


def test_cached_features_give_the_same_result(target, archive, tmp_path):
    feats = xatmodist.archive_features(archive.chunk({"time": 10}))
    feats.to_dataset().to_zarr(tmp_path / "f.zarr")
    reopened = xr.open_zarr(tmp_path / "f.zarr")["analog_features"]
    got = xatmodist.analogs(target, features=reopened, k=3).compute()
    xr.testing.assert_identical(got, xatmodist.analogs(target, archive, k=3))
    with pytest.raises(InputError, match=r"features= were computed with model sha256"):
        xatmodist.analogs(target, features=reopened, k=3, metric="l2")
    with pytest.raises(InputError, match=r"must be the DataArray of xatmodist.archive_features"):
        xatmodist.analogs(target, features=archive.vo, k=3)


def test_exclude_keeps_a_state_from_picking_itself(archive):
    t = archive.isel(time=[5, 20])
    near = xatmodist.analogs(t, archive, k=2)
    np.testing.assert_array_equal(near.time_analog.values[:, 0], t.time.values)  # itself
    assert float(near.distance[:, 0].max()) == 0.0
    far = xatmodist.analogs(t, archive, k=2, exclude="2D")
    gap = np.abs(far.time_analog.values - t.time.values[:, None])
    assert (gap > np.timedelta64(2, "D")).all()


def test_a_stacked_archive_of_several_runs(sample, target):
    arch = sample.isel(run=slice(1, None)).stack(sample=("run", "time"))
    got = xatmodist.analogs(target, arch, k=2, dim="sample")
    assert got["sample"].dims == ("time", "analog")
    with pytest.raises(InputError, match=r"one non-spatial dim.*stack"):
        xatmodist.analogs(target, sample, k=2)
    with pytest.raises(InputError, match=r"exclude=.*not datetimes"):
        xatmodist.analogs(target, arch, k=2, dim="sample", exclude="1D")


def test_nan_archive_fields_are_skipped_with_a_warning(target, archive):
    gappy = archive.copy(deep=True)
    bad = [1, 2, 3]
    gappy["vo"][dict(time=bad, lat=slice(0, 4))] = np.nan
    with pytest.warns(UserWarning, match=r"3 archive field\(s\) hold NaN"):
        got = xatmodist.analogs(target, gappy, k=5)
    assert not np.isin(got.time_analog.values, archive.time.values[bad]).any()
    assert np.isfinite(got.distance.values).all()


def test_analog_forecast_is_the_mean_of_the_successors(target, archive):
    fc = xatmodist.analog_forecast(target, archive, ["1D", "2D"], k=1, weights="uniform")
    keep = (archive.time + np.timedelta64(2, "D")).isin(archive.time)  # has a 2-day successor
    best = xatmodist.analogs(target, archive.sel(time=keep), k=1)
    for j, lead in enumerate(np.array([1, 2], dtype="timedelta64[D]")):
        want = archive.sel(time=best.time_analog.isel(analog=0) + lead)
        np.testing.assert_array_equal(fc.vo.isel(lead=j).values, want.vo.values)
    weighted = xatmodist.analog_forecast(target, archive, "1D", k=3)
    assert weighted.sizes["lead"] == 1 and np.isfinite(weighted.vo).all()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda t, a: xatmodist.analogs(t, a, k=41), r"k=41 analogues.*holds 40 states"),
        (lambda t, a: xatmodist.analogs(t, a, k=0), r"k must be a positive int"),
        (lambda t, a: xatmodist.analogs(t, a, k=2.5), r"k must be a positive int"),
        (lambda t, a: xatmodist.analogs(t, a, k=39, exclude="3D"), r"only \d+ usable archive"),
        (lambda t, a: xatmodist.analogs(t, a.isel(time=[3, 1, 2]), k=1), r"not sorted.*sortby"),
        (
            lambda t, a: xatmodist.analogs(t, a.isel(time=[1, 1, 2]), k=1),
            r"labels repeat.*drop_duplicates",
        ),
        (
            lambda t, a: xatmodist.analogs(t, a.isel(lat=slice(2, None)), k=1),
            r"grid|Grid",
        ),
        (lambda t, a: xatmodist.analogs(t, a[["vo"]], k=1), r"'d'|divergence"),
        (lambda t, a: xatmodist.analogs(t, a, k=1, exclude="soon"), r"duration such as '5D'"),
        (lambda t, a: xatmodist.analogs(t, a, k=1, metric="cosine"), r"metric must be one of"),
        (lambda t, a: xatmodist.analogs(t, k=1), r"Pass the archive, or its features="),
        (lambda t, a: xatmodist.analogs(t, a, k=1, dim="run"), r"dim='run' is not a dim"),
        (
            lambda t, a: xatmodist.analog_forecast(t, a, "60D", k=1),
            r"No archive state has a successor",
        ),
        (
            lambda t, a: xatmodist.analog_forecast(t, a, "1D", k=1, weights="rank"),
            r"weights must be 'distance' or 'uniform'",
        ),
    ],
)
def test_bad_input(target, archive, call, match):
    with pytest.raises(xatmodist.XatmodistError, match=match):
        call(target, archive)


# --------------------------------------------------------------------------- analogue metrics


@pytest.fixture(scope="module")
def metric(sample, tmp_path_factory):
    """An analogue metric of the default encoder, fitted on one sample run (tiny, real code)."""
    from xatmodist.train import fit_analog_metric

    out = tmp_path_factory.mktemp("analog") / "m"
    return fit_analog_metric(
        sample.isel(run=1), encoder=xatmodist.zoo.DEFAULT_ENCODER, lead="6h", components=8,
        name="tiny-analog", out=str(out),
    )  # fmt: skip


def test_an_analogue_metric_searches_among_predicted_successors(metric, target, archive):
    import torch

    m = xatmodist.load_model(metric.path)
    assert m.task == "analog" and m.card.lead_seconds == 6 * 3600
    assert m.card.training["components"] == 8 and 0 < m.card.training["train_r2"] <= 1
    got = xatmodist.analogs(target, archive, k=4, model=m.path)
    # brute force: the projection of every field's flattened feature grid, squared differences
    enc = xatmodist.zoo.DEFAULT_ENCODER

    def proj(x):
        f = xatmodist.embed(x, model=enc, pool="none").values.reshape(x.sizes["time"], -1)
        with torch.inference_mode():
            return m.module(torch.from_numpy(f)).double().numpy()

    pt, pa = proj(target), proj(archive)
    d = ((pt[:, None] - pa[None]) ** 2).mean(-1)
    order = np.argsort(d, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(got.time_analog.values, archive.time.values[order])
    np.testing.assert_allclose(got.distance.values, np.take_along_axis(d, order, 1), rtol=1e-4)
    lazy = xatmodist.analogs(target.chunk({"time": 2}), archive.chunk({"time": 7}), k=4,
                             model=m.path)  # fmt: skip
    xr.testing.assert_identical(lazy.compute(), got)


def test_analogue_metric_errors(metric, target, archive, tmp_path):
    import json
    import shutil

    with pytest.raises(InputError, match=r"searches with its own distance.*metric='l2'"):
        xatmodist.analogs(target, archive, k=2, model=metric.path, metric="l2")
    with pytest.raises(InputError, match=r"takes \d+ encoder features per field"):
        xatmodist.analogs(target.isel(lat=slice(0, 32)), archive.isel(lat=slice(0, 32)), k=2,
                          model=metric.path)  # fmt: skip
    moved = tmp_path / "other"
    shutil.copytree(metric.path, moved)
    card = json.loads((moved / "card.json").read_text())
    card["encoder"]["sha256"] = "0" * 64
    (moved / "card.json").write_text(json.dumps(card))
    with pytest.raises(xatmodist.ModelError, match=r"fitted on encoder .* refit it"):
        xatmodist.analogs(target, archive, k=2, model=moved)
    with pytest.raises(xatmodist.ModelError, match=r"needs an encoder or an analogue metric"):
        xatmodist.analogs(target, archive, k=2, model="inpaint-swe-vd")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"components": 0}, r"components must be a positive int"),
        ({"ridge": 0}, r"ridge must be a positive number"),
        ({"lead": "5D"}, r"Only 0 states .* have a successor"),
        ({"lead": "soon"}, r"lead"),
    ],
)
def test_fit_analog_metric_bad_input(archive, kwargs, match):
    from xatmodist.train import fit_analog_metric

    kw = {"encoder": xatmodist.zoo.DEFAULT_ENCODER, "lead": "6h", **kwargs}
    with pytest.raises(InputError, match=match):
        fit_analog_metric(archive, **kw)


def test_fit_analog_metric_refuses_nan(archive):
    from xatmodist.train import fit_analog_metric

    gappy = archive.copy(deep=True)
    gappy["vo"][dict(time=3, lat=0, lon=0)] = np.nan
    with pytest.raises(InputError, match=r"hold NaN/inf"):
        fit_analog_metric(gappy, encoder=xatmodist.zoo.DEFAULT_ENCODER, lead="6h", components=8)
