"""xatmodist._grid: the one description of a latitude/longitude grid (and the time-step helper)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xatmodist
from xatmodist import _grid
from xatmodist._grid import GRID_STEP_RTOL, describe
from xatmodist._validate import coord_time_step
from xatmodist.errors import GridError, InputError
from xatmodist.testing import raise_if_dask_computes, synthetic_fields

LAT_ATTRS = {"standard_name": "latitude", "units": "degrees_north"}
LON_ATTRS = {"standard_name": "longitude", "units": "degrees_east"}


def field(lat, lon, *, dims=("lat", "lon"), attrs=True, extra=()) -> xr.DataArray:
    """A zero field on the grid ``lat`` x ``lon`` (CF attributes unless ``attrs=False``)."""
    lat, lon = np.asarray(lat), np.asarray(lon)
    sizes = (*(len(e[1]) for e in extra), lat.size, lon.size)
    coords = {
        dims[0]: (dims[0], lat, LAT_ATTRS if attrs else {}),
        dims[1]: (dims[1], lon, LON_ATTRS if attrs else {}),
        **{name: (name, values) for name, values in extra},
    }
    return xr.DataArray(
        np.zeros(sizes, np.float32), dims=(*(e[0] for e in extra), *dims), coords=coords
    )


LAT = np.arange(-60.0, 61.0, 2.5)


# --------------------------------------------------------------------------
# the seam rule, once


@pytest.mark.parametrize(
    ("lon", "is_global", "has_seam"),
    [
        (np.arange(0.0, 360.0, 2.5), True, False),  # 144 columns, n * dlon = 360
        (np.arange(0.0, 360.1, 2.5), True, True),  # 0 .. 360: the last repeats the first
        (np.arange(-180.0, 180.1, 2.5), True, True),  # -180 .. 180
        (np.arange(0.0, 360.0, 1.875).astype(np.float32), True, False),  # T63, float32
        (np.arange(-20.0, 40.1, 2.5), False, False),  # regional
        (np.arange(0.0, 357.5, 2.5), False, False),  # one column short of the circle
        (np.r_[np.arange(340.0, 360.0, 2.5), np.arange(0.0, 20.1, 2.5)], False, False),
    ],
    ids=["global", "seam-0-360", "seam-180", "t63-float32", "regional", "short", "dateline"],
)
def test_seam_rule(lon, is_global, has_seam):
    """Global iff n * dlon or (n - 1) * dlon is 360 deg; the second has a seam column."""
    da = field(LAT, lon)
    g = describe(da)
    assert (g.is_global, g.has_seam) == (is_global, has_seam)
    assert _grid.is_global(da, "lon") is is_global  # the wrapper the model functions use
    assert g.nlon == lon.size and g.nlon_unique == lon.size - has_seam
    dropped = g.drop_seam(da)
    assert dropped.sizes["lon"] == g.nlon_unique
    if has_seam:
        assert describe(dropped).is_global and not describe(dropped).has_seam
    assert g.width_deg == pytest.approx(360.0 if is_global else lon.size * g.dlon)


def test_more_than_a_full_circle_is_refused():
    lon = np.arange(0.0, 400.0, 5.0)
    with pytest.raises(GridError, match=r"covers 400 degrees, more than a full circle.*isel"):
        describe(field(LAT, lon))


def test_dateline_crossing_is_one_regular_axis():
    lon = np.r_[np.arange(340.0, 360.0, 2.5), np.arange(0.0, 20.1, 2.5)]
    g = describe(field(LAT, lon))
    assert g.dlon == 2.5 and g.lon_deg[0] == 340.0 and g.lon_deg[-1] == 380.0


# --------------------------------------------------------------------------
# orientation and spacing


def test_orientation_and_spacing():
    g = describe(field(LAT[::-1], np.arange(0.0, 90.0, 1.5)))
    assert g.lat_descending and (g.dlat, g.dlon) == (2.5, 1.5)
    assert (g.nlat, g.nlon, g.lat, g.lon) == (LAT.size, 60, "lat", "lon")
    assert not describe(field(LAT, np.arange(0.0, 90.0, 1.5))).lat_descending
    assert _grid.grid_spacing(field(LAT, np.arange(0.0, 90.0, 1.5)), "lat", "lon") == (2.5, 1.5)


def test_spacing_km():
    g = describe(field(np.arange(-1.0, 1.1, 1.0), np.arange(10.0, 13.0, 1.0)))
    km = 6.37122e6 * np.deg2rad(1.0) / 1e3  # 1 deg at the equator (mean latitude 0)
    assert g.spacing_km(6.37122e6) == pytest.approx(km)


def test_without_coordinates_the_spacing_is_nan():
    da = xr.DataArray(np.zeros((4, 5)), dims=("lat", "lon"))
    g = describe(da)
    assert np.isnan(g.dlat) and np.isnan(g.dlon)
    assert (g.lat_coord, g.is_global, g.has_seam, g.lat_descending) == (None, False, False, False)
    assert np.isnan(_grid.grid_spacing(da, "lat", "lon")).all()
    with pytest.raises(InputError, match=r"'lat' has no coordinate values.*assign_coords"):
        describe(da, require_coords=True)


def test_gaussian_grid_within_the_tolerance():
    """T63 latitudes (steps 1.850 to 1.865 deg) pass at GRID_STEP_RTOL, not when strict."""
    x, _ = np.polynomial.legendre.leggauss(96)
    lat = np.rad2deg(np.arcsin(x))[::-1]
    da = field(lat, np.arange(0.0, 360.0, 1.875))
    g = describe(da)
    assert g.lat_descending and g.is_global and 1.85 < g.dlat < 1.87
    with pytest.raises(GridError, match=r"within 0.1% of the median; not Gaussian"):
        describe(da, rtol=1e-3)


@pytest.mark.parametrize(
    ("lat", "hint"),
    [
        (np.r_[np.arange(-60.0, 0.0, 2.5), np.arange(0.0, 30.0, 3.5)], r"steps from 2.5 to 3.5"),
        (np.r_[-60.0, -55.0, -57.5, np.arange(-52.5, 60.0, 2.5)], r"sortby\('lat'\)"),
        (np.r_[np.arange(-60.0, 0.1, 2.5), np.arange(0.0, 60.1, 2.5)], r"steps from 0 to 2.5"),
    ],
    ids=["irregular", "out-of-order", "repeated"],
)
def test_irregular_axis(lat, hint):
    """What was expected (near-uniform within 2%), what arrived (the steps), how to fix."""
    with pytest.raises(GridError) as err:
        describe(field(lat, np.arange(0.0, 30.0, 2.5)))
    for part in (
        r"'lat' is not a monotonic grid with near-uniform steps",
        f"within {GRID_STEP_RTOL * 100:g}% of the median, as on Gaussian grids",
        "Regrid",
        hint,
    ):
        assert re.search(part, str(err.value)), (part, str(err.value))


def test_one_point_axis():
    g = describe(field([45.0], np.arange(0.0, 360.0, 10.0)))
    assert g.nlat == 1 and np.isnan(g.dlat) and g.is_global
    with pytest.raises(GridError, match=r"'lat' must be 1-D with at least 2 points"):
        _grid.grid_spacing(field([45.0], np.arange(0.0, 360.0, 10.0)), "lat", "lon")


# --------------------------------------------------------------------------
# discovery


def test_discovery_by_cf_attributes_names_and_arguments():
    odd = field(LAT, np.arange(0.0, 30.0, 2.5), dims=("phi", "lam"))
    assert (describe(odd).lat, describe(odd).lon) == ("phi", "lam")  # CF attributes
    plain = field(LAT, np.arange(0.0, 30.0, 2.5), dims=("latitude", "longitude"), attrs=False)
    assert _grid.spatial_dims(plain) == ("latitude", "longitude")  # usual names
    other = field(LAT, np.arange(0.0, 30.0, 2.5), dims=("a", "b"), attrs=False)
    assert describe(other, ("a", "b")).dlat == 2.5
    assert _grid.latlon_dims(other, lat="a", lon="b") == ("a", "b")
    # a 1-D coordinate stands for its dim
    aux = other.assign_coords(la=("a", LAT, LAT_ATTRS), lo=("b", other.b.values, LON_ATTRS))
    g = describe(aux.drop_vars(["a", "b"]))
    assert (g.lat, g.lat_coord, g.lon, g.lon_coord, g.dlat) == ("a", "la", "b", "lo", 2.5)
    assert describe(aux, lat="la", lon="lo").lat_coord == "la"


def test_discovery_errors():
    plain = field(LAT, np.arange(0.0, 30.0, 2.5), dims=("a", "b"), attrs=False)
    with pytest.raises(InputError, match=r"Could not find the latitude dimension.*'a', 'b'.*"):
        _grid.spatial_dims(plain)
    with pytest.raises(InputError, match=r"usual name. Pass spatial_dims=\("):
        _grid.spatial_dims(plain)
    with pytest.raises(InputError, match=r"usual name. Name the dimensions with lat="):
        describe(plain)
    named = plain.rename(a="lat", b="lon")
    assert _grid.spatial_dims(named) == ("lat", "lon")
    with pytest.raises(InputError, match=r"CF attributes \(standard_name.*\)\. How"):
        describe(named, guess_names=False, how="How")
    with pytest.raises(InputError, match=r"got \('a', 'zz'\), the input has dims"):
        describe(plain, ("a", "zz"))
    with pytest.raises(InputError, match=r"lon='zz' is not a dimension or.*\['a', 'b'\]"):
        describe(plain, lat="a", lon="zz")
    with pytest.raises(InputError, match=r"same dimension 'a'"):
        describe(plain, lat="a", lon="a")
    curvilinear = plain.assign_coords(lat2d=(("a", "b"), np.zeros((LAT.size, 12))))
    with pytest.raises(GridError, match=r"'lat2d' to be a 1-D coordinate.*Curvilinear"):
        describe(curvilinear, lat="lat2d", lon="b")


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (
            lambda d: d.assign_coords(lat=d.lat.assign_attrs(units="radians")),
            GridError,
            r"in degrees, but its units are 'radians'.*np.rad2deg",
        ),
        (lambda d: d.assign_coords(lat=d.lat.astype(str)), GridError, "to hold numbers"),
        (
            lambda d: d.assign_coords(lon=("lon", np.r_[np.nan, d.lon.values[1:]], LON_ATTRS)),
            GridError,
            "NaN or inf",
        ),
        (lambda d: d.assign_coords(lat=d.lat * 2), GridError, r"within \[-90, 90\].*lat="),
    ],
    ids=["radians", "text", "nan", "beyond-pole"],
)
def test_coordinate_errors(change, error, match):
    with pytest.raises(error, match=match):
        describe(change(field(LAT, np.arange(0.0, 30.0, 2.5))))


# --------------------------------------------------------------------------
# the time axis


def test_coord_time_step():
    times = pd.date_range("2000-01-01", periods=4, freq="6h")
    da = xr.DataArray(np.zeros(4), dims="time", coords={"time": times})
    assert coord_time_step(da, "time") == pd.Timedelta("6h")
    assert coord_time_step(da.isel(time=[0]), "time", required=False) is None
    bare = da.drop_vars("time")
    assert coord_time_step(bare, "time", required=False) is None
    with pytest.raises(InputError, match=r"'time' needs a datetime coordinate.*assign_coords"):
        coord_time_step(bare, "time")
    with pytest.raises(InputError, match=r"gap"):
        coord_time_step(da.isel(time=[0, 1, 3]), "time")


# --------------------------------------------------------------------------
# inference on a grid with a repeated seam column


def _with_seam(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` (global, lon 0..360 exclusive) with its first column repeated at lon + 360."""
    col = ds.isel(lon=[0]).assign_coords(lon=ds.lon.values[:1] + 360.0)
    out = xr.concat([ds, col], dim="lon")
    out.lon.attrs = ds.lon.attrs
    return out


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_a_seam_column_changes_no_distance_or_embedding(tiny_model, chunked):
    """0..360 inclusive gives the numbers of 0..360 exclusive: the kernels never see the seam."""
    plain = synthetic_fields(n_time=4, nlat=32, nlon=40)
    seam = _with_seam(plain)
    assert describe(seam).has_seam and seam.sizes["lon"] == 41
    a, b = seam.isel(time=[0, 1]), seam.isel(time=[2, 3]).assign_coords(time=seam.time[:2])
    pa, pb = plain.isel(time=[0, 1]), plain.isel(time=[2, 3]).assign_coords(time=plain.time[:2])
    if chunked:
        a, b = a.chunk(time=1), b.chunk(time=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
        with raise_if_dask_computes():
            lazy = {
                "distance": xatmodist.distance(a, b, model=tiny_model),
                "map": xatmodist.distance(a, b, model=tiny_model, spatial=True),
                "mean": xatmodist.embed(a, model=tiny_model),
                "none": xatmodist.embed(a, model=tiny_model, pool="none"),
            }
        want = {
            "distance": xatmodist.distance(pa, pb, model=tiny_model),
            "map": xatmodist.distance(pa, pb, model=tiny_model, spatial=True),
            "mean": xatmodist.embed(pa, model=tiny_model),
            "none": xatmodist.embed(pa, model=tiny_model, pool="none"),
        }
    for key, got in lazy.items():
        assert (got.chunks is not None) == chunked, key
        xr.testing.assert_identical(got.compute(), want[key])


def test_inpaint_on_a_seam_grid_fills_the_distinct_columns():
    """The result is the fill of the grid without the seam, its seam column a copy of the first."""
    truth = xatmodist.datasets.sample()[["vo", "d"]].isel(run=0, time=slice(0, 2)).load()
    hole = xr.zeros_like(truth.vo, dtype=bool)
    hole[:, 20:30, np.r_[124:128, 0:4]] = True  # across 0 deg E
    plain = truth.where(~hole)
    want = xatmodist.inpaint(plain)
    seam = _with_seam(plain)
    got = xatmodist.inpaint(seam)
    assert got.sizes == seam.sizes and (got.lon.values == seam.lon.values).all()
    xr.testing.assert_identical(got.isel(lon=slice(0, -1)), want)
    np.testing.assert_array_equal(got.vo.isel(lon=-1).values, want.vo.isel(lon=0).values)
    # an explicit mask on the input grid (seam column included) is taken as well
    masked = xatmodist.inpaint(seam.fillna(0.0), mask=_with_seam(hole.to_dataset()).vo)
    xr.testing.assert_identical(
        masked.isel(lon=slice(0, -1)), xatmodist.inpaint(plain.fillna(0.0), mask=hole)
    )


def test_downscale_on_a_seam_grid_refines_the_distinct_columns():
    """The refined grid of 0..360 inclusive is that of 0..360 exclusive (no repeated column)."""
    coarse = synthetic_fields(n_time=2).coarsen(lat=4, lon=4).mean().astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xatmodist.OutOfDistributionWarning)
        want = xatmodist.downscale(coarse)
        with raise_if_dask_computes():
            got = xatmodist.downscale(_with_seam(coarse).chunk(time=1))
    xr.testing.assert_identical(got.compute(), want)
