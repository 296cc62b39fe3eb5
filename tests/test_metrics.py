"""xatmodist.metrics: spectra, semivariogram, RMSE and spectral error against analytic cases."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xatmodist.errors import ChunkError, GridError, InputError
from xatmodist.metrics import (
    EARTH_RADIUS,
    kinetic_energy_spectrum,
    rmse,
    semivariogram,
    spectral_error,
    zonal_power_spectrum,
)
from xatmodist.metrics.spectra import squared_units
from xatmodist.metrics.variogram import _sample_pairs
from xatmodist.testing import raise_if_dask_computes

A = EARTH_RADIUS


def grid(nlat: int = 19, dlon: float = 5.0, lon0: float = 0.0, width: float = 360.0):
    lat = np.linspace(-90.0, 90.0, nlat)
    lon = lon0 + np.arange(0.0, width - 1e-9, dlon)
    return lat, lon


def field(values, lat, lon, dims=("lat", "lon"), **coords) -> xr.DataArray:
    return xr.DataArray(
        values,
        dims=dims,
        coords={
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
            **coords,
        },
        attrs={"units": "K", "long_name": "temperature"},
    )


def wave(k: int, amplitude: float = 3.0, *, dlon: float = 5.0) -> xr.DataArray:
    lat, lon = grid(dlon=dlon)
    values = amplitude * np.cos(k * np.deg2rad(lon))[None, :] + 0 * lat[:, None]
    return field(values, lat, lon)


def noise(shape=(4, 19, 72), sigma: float = 1.0, seed: int = 0) -> xr.DataArray:
    lat, lon = grid(shape[1], 360.0 / shape[2])
    values = np.random.default_rng(seed).normal(0.0, sigma, shape)
    return field(values, lat, lon, dims=("time", "lat", "lon"), time=np.arange(shape[0]))


# --------------------------------------------------------------------------
# zonal power spectrum


@pytest.mark.parametrize(("k", "dlon"), [(1, 5.0), (4, 5.0), (35, 5.0), (22, 8.0)])
def test_pure_wave_has_all_power_at_its_wavenumber(k, dlon):
    da = wave(k, 3.0, dlon=dlon)
    p = zonal_power_spectrum(da, average_lat=False)
    assert p.dims == ("lat", "zonal_wavenumber")
    assert p.sizes["zonal_wavenumber"] == da.sizes["lon"] // 2 + 1
    np.testing.assert_allclose(p.sel(zonal_wavenumber=k), 4.5, rtol=1e-12)
    np.testing.assert_allclose(p.drop_sel(zonal_wavenumber=k), 0.0, atol=1e-12)
    avg = zonal_power_spectrum(da)
    assert avg.dims == ("zonal_wavenumber",)
    np.testing.assert_allclose(avg.sel(zonal_wavenumber=k), 4.5, rtol=1e-12)


def test_nyquist_wave_power_is_its_mean_square():
    da = wave(36, 2.0)  # cos(36 lambda) on 72 points alternates +-2
    p = zonal_power_spectrum(da)
    np.testing.assert_allclose(p.sel(zonal_wavenumber=36), 4.0, rtol=1e-12)


def test_wavelength_and_wavenumber_coordinates():
    p = zonal_power_spectrum(wave(4), average_lat=False)
    k = p.zonal_wavenumber
    assert k.dtype.kind == "i" and k.attrs["units"] == "1"
    assert p.wavelength.dims == ("lat", "zonal_wavenumber")
    assert p.wavelength.attrs["units"] == "m"
    at_eq = p.wavelength.sel(lat=0.0)
    np.testing.assert_allclose(at_eq.sel(zonal_wavenumber=4), 2 * np.pi * A / 4)
    np.testing.assert_allclose(
        p.wavelength.sel(lat=60.0, zonal_wavenumber=4), 2 * np.pi * A * 0.5 / 4
    )
    assert np.isinf(at_eq.sel(zonal_wavenumber=0))
    avg = zonal_power_spectrum(wave(4))
    assert avg.wavelength.dims == ("zonal_wavenumber",)
    np.testing.assert_allclose(avg.wavelength.sel(zonal_wavenumber=4), 2 * np.pi * A / 4)
    assert "equator" in avg.wavelength.attrs["long_name"]


def test_attrs_units_squared_and_name_kept():
    da = wave(3).rename("t2m")
    p = zonal_power_spectrum(da)
    assert p.attrs["units"] == "K2"
    assert "temperature" in p.attrs["long_name"]
    assert p.attrs["window"] == "none"
    assert p.name == "t2m"
    assert "units" not in zonal_power_spectrum(da.drop_attrs(deep=False)).attrs


@pytest.mark.parametrize(
    ("units", "squared"),
    [
        ("K", "K2"),
        ("m s-1", "m2 s-2"),
        ("m**2 s**-2", "m4 s-4"),
        ("s^-1", "s-2"),
        ("1", "1"),
        ("kg/m2", "(kg/m2)2"),
    ],
)
def test_squared_units(units, squared):
    assert squared_units(units) == squared


@pytest.mark.parametrize("nlon", [72, 45])
def test_parseval_for_random_fields(nlon):
    da = noise((3, 19, nlon), sigma=2.0, seed=nlon) + 1.5
    p = zonal_power_spectrum(da, average_lat=False)
    np.testing.assert_allclose(p.sum("zonal_wavenumber"), (da**2).mean("lon"), rtol=1e-10)
    avg = zonal_power_spectrum(da)
    w = np.cos(np.deg2rad(da.lat)).clip(0)
    expected = (da**2).mean("lon").weighted(w).mean("lat")
    np.testing.assert_allclose(avg.sum("zonal_wavenumber"), expected, rtol=1e-10)
    assert avg.dims == ("time", "zonal_wavenumber")


def test_float32_stays_float32():
    p = zonal_power_spectrum(noise().astype(np.float32))
    assert p.dtype == np.float32


def test_repeated_last_column_is_dropped():
    da = wave(5)
    closed = xr.concat([da, da.isel(lon=[0]).assign_coords(lon=[360.0])], "lon")
    xr.testing.assert_allclose(zonal_power_spectrum(closed), zonal_power_spectrum(da))


def test_longitudes_crossing_the_date_line():
    da = wave(5)
    shifted = da.roll(lon=36, roll_coords=True)  # 180 .. 355, 0 .. 175
    shifted = shifted.assign_coords(lon=(shifted.lon + 180) % 360 - 180)
    xr.testing.assert_allclose(zonal_power_spectrum(shifted), zonal_power_spectrum(da))


def test_regional_grid_is_windowed_and_counts_cycles_per_domain():
    lat, lon = grid(dlon=2.5, lon0=-30.0, width=90.0)  # 36 points, 90 degrees
    values = 5.0 + 2.0 * np.cos(2 * np.pi * 3 * (lon - lon[0]) / 90.0)[None, :] + 0 * lat[:, None]
    p = zonal_power_spectrum(field(values, lat, lon))
    assert "tukey" in p.attrs["window"]
    assert "domain" in p.zonal_wavenumber.attrs["long_name"]
    assert int(p.isel(zonal_wavenumber=slice(1, None)).argmax("zonal_wavenumber")) + 1 == 3
    np.testing.assert_allclose(p.sel(zonal_wavenumber=0), 25.0)  # the removed mean
    np.testing.assert_allclose(p.sum("zonal_wavenumber"), 25.0 + 2.0, rtol=0.05)
    np.testing.assert_allclose(p.wavelength.sel(zonal_wavenumber=3), A * np.pi / 2 / 3)
    hann = zonal_power_spectrum(field(values, lat, lon), window="hann")
    assert "hann" in hann.attrs["window"]
    bare = zonal_power_spectrum(field(values, lat, lon), window="none")
    np.testing.assert_allclose(bare.sel(zonal_wavenumber=3), 2.0, rtol=1e-10)


def test_nan_circles_are_skipped_in_the_latitude_average():
    da = wave(4)
    da[3, 5] = np.nan
    p = zonal_power_spectrum(da)
    np.testing.assert_allclose(p.sel(zonal_wavenumber=4), 4.5)
    assert np.isnan(zonal_power_spectrum(da, average_lat=False).isel(lat=3)).all()


def test_kinetic_energy_spectrum():
    lat, lon = grid()
    lam = np.deg2rad(lon)[None, :] + 0 * lat[:, None]
    u = field(2.0 * np.cos(3 * lam), lat, lon).assign_attrs(units="m s-1")
    v = field(1.0 * np.sin(3 * lam), lat, lon).assign_attrs(units="m s-1")
    e = kinetic_energy_spectrum(u, v)
    np.testing.assert_allclose(e.sel(zonal_wavenumber=3), (4.0 + 1.0) / 4)
    np.testing.assert_allclose(e.sum("zonal_wavenumber"), 0.5 * (2.0 + 0.5))
    assert e.attrs["units"] == "m2 s-2" and e.name == "kinetic_energy"
    with pytest.raises(GridError):
        kinetic_energy_spectrum(u, v.isel(lon=slice(1, None)))


# --------------------------------------------------------------------------
# semivariogram


def test_white_noise_semivariogram_is_its_variance():
    sigma = 2.0
    g = semivariogram(noise((4, 37, 72), sigma=sigma), bins=10)
    assert g.dims == ("distance",)
    assert g.attrs["units"] == "K2"
    assert g.distance.attrs["units"] == "m"
    # 5 standard errors of a mean of 4 * n (sigma^2 chi2_1) values
    tol = 5 * sigma**2 * np.sqrt(2.0 / (4 * g.n_pairs))
    assert (np.abs(g - sigma**2) < tol).all()


def test_constant_field_has_zero_semivariogram():
    da = xr.full_like(noise(), 7.0)
    g = semivariogram(da, bins=8)
    np.testing.assert_array_equal(g, 0.0)


def test_smooth_field_matches_the_analytic_semivariogram():
    # z = x-component of the position on the unit sphere. For area-uniform pairs at
    # central angle t, E[(z(p) - z(q))^2] = |p - q|^2 / 3, so gamma = (1 - cos t) / 3.
    lat, lon = np.arange(-89.0, 90.0, 2.0), np.arange(0.0, 360.0, 2.0)
    z = np.cos(np.deg2rad(lat))[:, None] * np.cos(np.deg2rad(lon))[None, :]
    g = semivariogram(field(z, lat, lon), bins=np.linspace(0, np.pi * A, 21), n_pairs=50000)
    exact = (1 - np.cos(g.distance / A)) / 3
    np.testing.assert_allclose(g.isel(distance=slice(2, None)), exact[2:], rtol=0.08)
    assert (g.diff("distance").isel(distance=slice(0, 15)) > 0).all()


def test_same_pairs_for_every_field():
    da = noise()
    g1 = semivariogram(da, bins=6)
    g2 = semivariogram(2 * da, bins=6)
    xr.testing.assert_identical(g1.n_pairs, g2.n_pairs)
    np.testing.assert_allclose(g2, 4 * g1, rtol=1e-12)
    assert not g1.equals(semivariogram(da, bins=6, seed=1))


def test_dim_keeps_fields_apart():
    da = noise()
    per_field = semivariogram(da, bins=5, dim=[])
    assert per_field.dims == ("time", "distance")
    # no NaNs: every field has the same counts, so pooling is the plain mean
    np.testing.assert_allclose(semivariogram(da, bins=5), per_field.mean("time"), rtol=1e-12)
    two = da.expand_dims(member=2)
    assert semivariogram(two, bins=5, dim="time").dims == ("member", "distance")


def test_semivariogram_bins_and_max_distance():
    da = noise()
    g = semivariogram(da, bins=4, max_distance=4e6, n_pairs=5000)
    np.testing.assert_allclose(g.distance, [0.5e6, 1.5e6, 2.5e6, 3.5e6])
    assert 0 < int(g.n_pairs.sum()) < 5000
    edges = [0.0, 1e6, 5e6, 2.1e7]
    g = semivariogram(da, bins=edges)
    np.testing.assert_allclose(g.distance, [0.5e6, 3e6, 13e6])
    assert int(g.n_pairs.sum()) == 20000


def test_semivariogram_ignores_nans():
    da = noise((2, 37, 72), seed=3)
    masked = da.where(~((da.lat > 20) & (da.lat < 40)))
    g = semivariogram(masked, bins=6)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, 1.0, rtol=0.2)


def test_pair_sampler_is_seeded_area_weighted_and_distinct():
    lat, lon = np.arange(-87.5, 90.0, 5.0), np.arange(0.0, 360.0, 5.0)
    p1 = _sample_pairs(lat_deg=lat, lon_deg=lon, n_pairs=4000, seed=5)
    p2 = _sample_pairs(lat_deg=lat, lon_deg=lon, n_pairs=4000, seed=5)
    np.testing.assert_array_equal(p1.first, p2.first)
    assert (p1.first != p1.second).all()
    assert (p1.angle >= 0).all() and (p1.angle <= np.pi).all()
    # area weighting: mean |sin(lat)| of points is 1/2 on the sphere (2/pi uniform in lat)
    rows = lat[p1.first // lon.size]
    assert abs(np.abs(np.sin(np.deg2rad(rows))).mean() - 0.5) < 0.03


# --------------------------------------------------------------------------
# rmse


def test_rmse_of_a_constant_offset():
    a = noise()
    assert float(rmse(a, a + 1.5)) == pytest.approx(1.5, rel=1e-12)
    per_time = rmse(a, a - 1.5, dim=[])
    assert per_time.dims == ("time",)
    np.testing.assert_allclose(per_time, 1.5, rtol=1e-12)
    assert per_time.attrs["units"] == "K"


def test_rmse_weighting_matches_a_hand_computation():
    lat, lon = grid()
    err = (lat / 90.0)[:, None] + 0 * lon[None, :]  # error grows towards the poles
    truth = field(np.zeros_like(err), lat, lon)
    pred = field(err, lat, lon)
    w = np.cos(np.deg2rad(lat)).clip(0)
    expected = np.sqrt(np.sum(w * (lat / 90.0) ** 2) / np.sum(w))
    weighted = float(rmse(pred, truth))
    plain = float(rmse(pred, truth, weighted=False))
    assert weighted == pytest.approx(expected, rel=1e-12)
    assert plain == pytest.approx(np.sqrt(np.mean((lat / 90.0) ** 2)), rel=1e-12)
    assert plain > weighted * 1.2


def test_rmse_dims_and_nans():
    a = noise().expand_dims(member=3).copy()
    b = noise(seed=1)  # broadcast over member
    assert rmse(a, b, dim="time").dims == ("member",)
    assert rmse(a, b).dims == ()
    a[0, 0, 2, 3] = np.nan
    assert np.isfinite(rmse(a, b))
    assert np.isnan(rmse(a, b, skipna=False))
    with pytest.raises(InputError, match="spatial"):
        rmse(a, b, dim="lat")
    with pytest.raises(GridError):
        rmse(a, b.assign_coords(lat=b.lat + 1.0))


# --------------------------------------------------------------------------
# spectral error


def test_spectral_error_analytic():
    truth = noise()
    assert float(spectral_error(truth, truth, k_min=5, k_max=30)) == 0.0
    err = spectral_error(2 * truth, truth, k_min=5, k_max=30)
    assert float(err) == pytest.approx(np.log(4.0), rel=1e-12)
    assert err.attrs["k_min"] == 5 and err.attrs["units"] == "1"
    per_time = spectral_error(truth / 2, truth, k_min=1, k_max=36, dim=[])
    assert per_time.dims == ("time",)
    np.testing.assert_allclose(per_time, np.log(4.0), rtol=1e-12)


def test_spectral_error_band_checks():
    truth = noise()
    with pytest.raises(InputError, match="k_max"):
        spectral_error(truth, truth, k_min=1, k_max=37)
    with pytest.raises(InputError, match="k_min <= k_max"):
        spectral_error(truth, truth, k_min=9, k_max=3)
    with pytest.raises(InputError, match="non-negative integer"):
        spectral_error(truth, truth, k_min=-1, k_max=3)


# --------------------------------------------------------------------------
# laziness


def test_dask_input_stays_lazy_and_matches_numpy():
    pytest.importorskip("dask")
    a, b = noise(), noise(seed=1)
    la, lb = a.chunk({"time": 2}), b.chunk({"time": 2})
    cases = {
        "spectrum": (lambda x, y: zonal_power_spectrum(x)),
        "spectrum_per_lat": (lambda x, y: zonal_power_spectrum(x, average_lat=False)),
        "ke": (lambda x, y: kinetic_energy_spectrum(x, y)),
        "variogram": (lambda x, y: semivariogram(x, bins=5)),
        "variogram_per_field": (lambda x, y: semivariogram(x, bins=5, dim=[])),
        "rmse": (lambda x, y: rmse(x, y, dim=[])),
        "spectral_error": (lambda x, y: spectral_error(x, y, k_min=2, k_max=20)),
    }
    for name, fn in cases.items():
        with raise_if_dask_computes():
            lazy = fn(la, lb)
        assert lazy.chunks is not None, name
        xr.testing.assert_allclose(lazy.compute(), fn(a, b))


def test_chunked_core_dims_raise_chunk_error():
    pytest.importorskip("dask")
    da = noise()
    with pytest.raises(ChunkError, match="lon"):
        zonal_power_spectrum(da.chunk({"lon": 36}))
    zonal_power_spectrum(da.chunk({"lat": 5}))  # latitude may be chunked
    with pytest.raises(ChunkError, match="lat"):
        semivariogram(da.chunk({"lat": 5}))


@pytest.mark.parametrize(
    "chunks", [{"time": 2}, {"time": 1, "lat": 5}, {"lat": 4, "lon": 7}], ids=str
)
def test_rmse_takes_any_chunking(chunks):
    """As open_dataset(chunks={"time": 6}) gives: reduced over time and space, lazily."""
    pytest.importorskip("dask")
    a, b = noise(), noise(seed=1)
    for dim in (None, [], "time"):
        eager = rmse(a, b, dim=dim)
        with raise_if_dask_computes():
            lazy = rmse(a.chunk(chunks), b, dim=dim)
        assert lazy.chunks is not None or lazy.ndim == 0
        np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-12)
    # the same number as xskillscore's weighted rmse
    import xskillscore

    w = np.cos(np.deg2rad(a.lat)) * xr.ones_like(a.lon)
    ref = xskillscore.rmse(a, b, dim=["lat", "lon", "time"], weights=w.broadcast_like(a))
    np.testing.assert_allclose(float(rmse(a.chunk(chunks), b)), float(ref), rtol=1e-12)


# --------------------------------------------------------------------------
# error paths


@pytest.mark.parametrize(
    "fn",
    [
        zonal_power_spectrum,
        semivariogram,
        lambda x: rmse(x, x),
        lambda x: spectral_error(x, x, k_min=1, k_max=2),
    ],
)
def test_missing_longitude_raises_input_error(fn):
    da = noise().rename(lon="foo").drop_vars("foo")
    with pytest.raises(InputError, match="lon="):
        fn(da)


def test_explicit_dim_names():
    da = noise().rename(lat="rows", lon="cols")
    p = zonal_power_spectrum(da, lat="rows", lon="cols")
    xr.testing.assert_allclose(p, zonal_power_spectrum(noise()))
    with pytest.raises(InputError, match="not a dimension"):
        zonal_power_spectrum(da, lat="rows", lon="nope")
    # naming one of them is enough when the other one can be found
    half = noise().rename(lat="rows").drop_vars("rows").assign_coords(rows=noise().lat.values)
    xr.testing.assert_allclose(
        semivariogram(half, lat="rows", bins=3), semivariogram(noise(), bins=3).rename()
    )


def test_irregular_longitude_raises_grid_error():
    da = wave(3)
    lon = da.lon.values.copy()
    lon[10] += 1.0
    with pytest.raises(GridError, match="regular"):
        zonal_power_spectrum(da.assign_coords(lon=lon))


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda d: d.drop_vars("lon"), InputError, "no coordinate"),
        (lambda d: d.assign_coords(lat=d.lat * 2), GridError, r"\[-90, 90\]"),
        (lambda d: d.to_dataset(name="t"), InputError, "DataArray"),
        (lambda d: d.astype(complex), InputError, "real numbers"),
        (
            lambda d: xr.concat([d, d.assign_coords(lon=d.lon + 360)], "lon"),
            GridError,
            "full circle",
        ),
    ],
)
def test_spectrum_input_errors(change, error, match):
    with pytest.raises(error, match=match):
        zonal_power_spectrum(change(wave(3)))


def test_other_input_errors():
    da = noise()
    with pytest.raises(InputError, match="window"):
        zonal_power_spectrum(da, window="blackman")
    with pytest.raises(InputError, match="radius"):
        zonal_power_spectrum(da, radius=-1)
    with pytest.raises(InputError, match="spatial"):
        semivariogram(da, dim="lon")
    with pytest.raises(InputError, match="not dimensions"):
        semivariogram(da, dim="member")
    with pytest.raises(InputError, match="not both"):
        semivariogram(da, bins=[0.0, 1e6], max_distance=1e6)
    with pytest.raises(InputError, match="increasing"):
        semivariogram(da, bins=[0.0, 2e6, 1e6])
    with pytest.raises(InputError, match="positive"):
        semivariogram(da, bins=0)
    with pytest.raises(InputError, match="max_distance"):
        semivariogram(da, max_distance=-5.0)
    with pytest.raises(InputError, match="n_pairs"):
        semivariogram(da, n_pairs=0)
