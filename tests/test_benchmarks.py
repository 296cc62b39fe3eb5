"""The benchmark table: rows, targets and met? from raw results (no timing here)."""

from __future__ import annotations

import pytest

pytest.importorskip("benchmarks.__main__")
from benchmarks.__main__ import rows_from  # noqa: E402


def test_rows_carry_the_issue_targets():
    results = {
        "distance": {
            "bare torch loop": {"fields_per_s": 100.0},
            "accessor, numpy": {"fields_per_s": 96.0, "ratio_to_bare": 0.96},
            "accessor, dask": {"fields_per_s": 85.0, "ratio_to_bare": 0.85},
        },
        "training": {
            "zarr": True,
            "fit_encoder_pairs_per_s": 90.0,
            "bare_pairs_per_s": 100.0,
            "ratio": 0.9,
        },
        "lpips": {
            "lpips_fields_per_s": 1000.0,
            "default_model": "enc-b",
            "models": {
                "enc-a": {"learned_fields_per_s": 200.0, "ratio": 0.2},
                "enc-b": {"learned_fields_per_s": 2000.0, "ratio": 2.0},
            },
        },
    }
    rows = {r["benchmark"]: r for r in rows_from(results)}
    numpy_row = rows["distance, accessor, numpy vs bare torch loop"]
    assert numpy_row["target"] == "≥ 0.95" and numpy_row["met"] is True
    assert rows["distance, accessor, dask vs bare torch loop"]["met"] is False
    assert rows["training, fit_encoder (zarr) vs bare loop"]["target"] == "≥ 0.8"
    assert rows["learned distance, enc-a vs LPIPS (alex, random)"]["met"] is False
    default = rows["learned distance, enc-b (default) vs LPIPS (alex, random)"]
    assert default["met"] is True and default["value"] == "2000.0 fields/s"


def test_skipped_lpips_row_says_why():
    rows = rows_from({"lpips": {"skipped": "ModuleNotFoundError: No module named 'lpips'"}})
    assert rows[0]["value"].startswith("skipped: ModuleNotFoundError")
    assert rows[0]["met"] is None


def test_the_gpu_check_runs_every_step_on_the_cpu(tmp_path):
    """``python -m benchmarks.gpu --device cpu --quick``: the GPU check's code paths, here."""
    import json

    from benchmarks import gpu

    res = gpu.main(["--device", "cpu", "--quick", "--json", str(tmp_path / "gpu.json")])
    assert json.loads((tmp_path / "gpu.json").read_text())["device"] == "cpu"
    assert all(v == 0.0 for v in res["agreement"]["float32"].values())  # the CPU against itself
    bf = res["agreement"]["bfloat16"]
    assert 0 < bf["distance_max_relative"] < 0.01 and bf["lag_top1_change"] <= 0.01
    assert set(res["inference"]) == {f"{s} {p}" for s in ("64x128", "721x1440")
                                     for p in ("float32", "bfloat16")}  # fmt: skip
    assert res["training"]["bfloat16"]["pairs_per_s"] > 0
    assert 0 < res["matmul"]["float32"]["fraction"]
    assert res["matmul"]["float32"]["encoder_flops_per_patch"] > 1e6


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
def test_the_gpu_check_says_when_there_is_no_gpu():
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "No GPU: torch sees no CUDA device" in r.stdout


def test_the_encoder_table_puts_speed_beside_held_out_quality():
    from benchmarks.__main__ import encoder_table
    from benchmarks.bench_scale import encoder_quality

    q = encoder_quality("atmodist-swe-vd-v9")
    assert 11 < q["mflop_per_patch"] < 12  # 4x4 stem, two stages: 11.5 MFLOP per 32 x 32 patch
    lo, hi = q["heldout_rho_ci95"]
    assert lo < q["heldout_rho"] < hi
    r = {
        "default_model": "enc-a",
        "models": {
            "enc-a": {"learned_fields_per_s": 700.0, "ratio": 0.5, **q},
            "enc-b": {"learned_fields_per_s": 2100.0, "ratio": 1.5, "mflop_per_patch": 1.0},
        },
    }
    lines = encoder_table(r).splitlines()
    assert lines[2].startswith("| enc-a (default) | 11.5 | 700.0 | 0.50 | 0.901 [")
    assert lines[3] == "| enc-b | 1.0 | 2100.0 | 1.50 | — | — | — |"


def test_ensemble_scores_of_a_calibrated_and_a_collapsed_ensemble():
    """The downscaling evaluation's probabilistic scores (issue 24): members drawn from the
    truth's own distribution are calibrated (spread-skill 1, flat rank histogram); members
    that all equal one guess have no spread and put the truth at the ends of the ranks."""
    import numpy as np
    import xarray as xr

    from benchmarks.eval_downscaling import ensemble_scores
    from benchmarks.eval_inpainting import hole_ensemble_scores

    rng = np.random.default_rng(0)
    lat, lon = np.linspace(87, -87, 32), np.arange(64) * 5.625
    dims = ("time", "lat", "lon")

    truth = xr.Dataset(
        {n: (dims, rng.standard_normal((6, 32, 64))) for n in ("vo", "d")},
        coords={"lat": lat, "lon": lon},
    )
    members = xr.Dataset(
        {n: (("member",) + dims, rng.standard_normal((8, 6, 32, 64))) for n in ("vo", "d")},
        coords={"lat": lat, "lon": lon},
    )
    band = truth.sel(lat=slice(70, -70))
    r = ensemble_scores(members, truth, np.linspace(0, 3e6, 11), band)["vo"]
    assert abs(r["spread_skill"] - 1) < 0.05
    assert np.allclose(r["rank_histogram"], 1 / 9, atol=0.01)
    assert abs(r["mean_rmse"] - np.sqrt(1 + 1 / 8)) < 0.05  # error of an 8-member mean
    t = rng.standard_normal(5000)
    calibrated = hole_ensemble_scores(rng.standard_normal((8, 5000)), t, 1.0)
    collapsed = hole_ensemble_scores(np.zeros((8, 5000)) + 0.1, t, 1.0)
    assert abs(calibrated["spread_skill"] - 1) < 0.05
    assert collapsed["spread_skill"] < 1e-12
    assert collapsed["crps"] == pytest.approx(np.mean(np.abs(t - 0.1)), rel=1e-6)
    hist = collapsed["rank_histogram"]
    assert hist[0] + hist[-1] == pytest.approx(1.0)


def test_spectral_calibration_locates_spread_and_excess_power():
    """``spectral_calibration``: members exchangeable with the truth have the truth's power and a
    spread equal to the mean's error at every wavenumber; grid-scale noise added to the truth
    shows as excess member power and an over-dispersed spread only where it lives."""
    import numpy as np
    import xarray as xr

    from benchmarks.eval_downscaling import spectral_calibration

    rng = np.random.default_rng(0)
    grid = {"lat": np.linspace(87, -87, 32), "lon": np.arange(64) * 5.625}
    dims = ("time", "lat", "lon")
    truth = xr.DataArray(rng.standard_normal((40, 32, 64)), dims=dims, coords=grid)
    members = xr.DataArray(
        rng.standard_normal((8, 40, 32, 64)), dims=("member",) + dims, coords=grid
    )
    r = spectral_calibration(members, truth)
    assert len(r["member"]) == 33
    np.testing.assert_allclose(r["member"][1:-1], 1, atol=0.1)
    np.testing.assert_allclose(r["spread_error"][1:-1], 1, atol=0.15)
    spec = np.fft.rfft(rng.standard_normal((8, 40, 32, 64)), axis=-1)
    spec[..., :24] = 0  # noise at wavenumbers 24..32 only
    noisy = truth + xr.DataArray(
        np.fft.irfft(spec, n=64, axis=-1), dims=("member",) + dims, coords=grid
    )
    r = spectral_calibration(noisy, truth)
    np.testing.assert_allclose(r["member"][1:20], 1, atol=0.01)
    assert max(r["error"][1:20]) < 1e-3 and min(r["member"][26:32]) > 1.5
    # the truth sits at the members' centre there: spread (M + 1) x the mean's error, not 1
    assert min(r["spread_error"][26:32]) > 5
    # a deterministic model's counterpart of the member row
    from benchmarks.eval_downscaling import power_ratio

    np.testing.assert_allclose(power_ratio(truth, truth), 1)
    np.testing.assert_allclose(power_ratio(2 * truth, truth), 4)
    assert power_ratio(noisy.isel(member=0), truth)[1:20] == pytest.approx(r["member"][1:20], 0.05)


def test_content_step_and_ensemble_rows():
    """Issue 23's step-cost target against v4 and issue 24's ensemble-cost target."""
    step = {"seconds_per_step": 0.2, "v4_over_this": 1.2}
    slow = {"seconds_per_step": 0.3, "v4_over_this": 0.8}
    v4 = {"seconds_per_step": 0.24, "v4_over_this": 1.0}
    results = {
        "content_step": {
            "default": "enc",
            "downscaler": {"enc": step, "atmodist-swe-vd-v4": v4},
            "inpainter": {"enc": slow, "atmodist-swe-vd-v4": v4},
        },
        "ensemble": {
            "members": 8,
            "models": {"ens": {"ensemble_seconds": 1.0, "singles_seconds": 0.95, "ratio": 1.05}},
        },
    }
    rows = {r["benchmark"]: r for r in rows_from(results)}
    down = rows["downscaler step, AtmoDist loss of enc (default) vs of v4"]
    assert down["met"] is True and down["value"] == "200 ms/step"
    assert rows["inpainter step, AtmoDist loss of enc (default) vs of v4"]["met"] is False
    ens = rows["ens: 8 members vs 8 single passes"]
    assert ens["target"] == "≤ 1.1" and ens["met"] is True


def test_ensemble_models_option_of_both_evaluation_scripts():
    """``--ensemble-models LABEL=MODEL``: replaces the scored table; refused without
    ``--ensembles``, with ``--update-cards`` and for entries that are not LABEL=MODEL."""
    import argparse

    from benchmarks._cli import add_ensemble_models, apply_ensemble_models

    def parse(*argv):
        p = argparse.ArgumentParser()
        p.add_argument("--ensembles", action="store_true")
        p.add_argument("--update-cards", action="store_true")
        add_ensemble_models(p)
        table = {"atmodist-ens": "zoo-a", "l2-ens": "zoo-b"}
        apply_ensemble_models(p, p.parse_args(argv), table)
        return table

    assert parse("--ensembles") == {"atmodist-ens": "zoo-a", "l2-ens": "zoo-b"}
    got = parse("--ensembles", "--ensemble-models", "a=data/t/m=1", "b=x")
    assert got == {"a": "data/t/m=1", "b": "x"}
    for argv in (
        ("--ensemble-models", "a=x"),
        ("--ensembles", "--update-cards", "--ensemble-models", "a=x"),
        ("--ensembles", "--ensemble-models", "just-a-folder"),
        ("--ensembles", "--ensemble-models", "=x"),
        ("--ensembles", "--ensemble-models"),
    ):
        with pytest.raises(SystemExit):
            parse(*argv)
    # --extra of both scripts: the same LABEL=MODEL entries
    from benchmarks._cli import label_models

    p = argparse.ArgumentParser()
    assert label_models(p, "--extra", ["gan=data/t/m"]) == {"gan": "data/t/m"}
    assert label_models(p, "--extra", []) == {}
    with pytest.raises(SystemExit):
        label_models(p, "--extra", ["data/t/m"])


@pytest.mark.parametrize("band", [["5", "2"], ["0", "8"]])
def test_eval_downscaling_refuses_a_bad_band(monkeypatch, band):
    import benchmarks.eval_downscaling as ev

    monkeypatch.setattr("sys.argv", ["eval_downscaling", "--band", *band])
    with pytest.raises(SystemExit):
        ev.main()
    monkeypatch.setattr("sys.argv", ["eval_downscaling", "--band", "17", "27", "--update-cards"])
    with pytest.raises(SystemExit):
        ev.main()
    assert ev.BAND == (17, 31)
