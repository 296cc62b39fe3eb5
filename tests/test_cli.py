"""The command line: each subcommand end to end on small data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import xatmodist
from xatmodist.cli import main
from xatmodist.testing import synthetic_fields


def test_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    assert "atmodist-swe-vd" in capsys.readouterr().out


def test_demo_writes_figure_and_table(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "learned" in out and "l2" in out and "Lag prediction" in out
    png = tmp_path / "demo.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"


def test_simulate_train_evaluate_resume(tmp_path, capsys):
    pytest.importorskip("torch_harmonics")
    nc = tmp_path / "sim.nc"
    args = [
        "simulate",
        "--n-runs",
        "2",
        "--n-steps",
        "24",
        "--seed",
        "3",
        "--nlat",
        "32",
        "--spinup",
        "1D",
        "--out",
        str(nc),
    ]
    assert main(args) == 0
    assert nc.is_file()
    train = [
        "train",
        "encoder",
        str(nc),
        "--max-lag",
        "9h",
        "--patch-size",
        "16",
        "--epochs",
        "1",
        "--pairs-per-epoch",
        "64",
        "--batch-size",
        "32",
        "--val-every",
        "2",
        "--out",
        str(tmp_path / "run"),
        "--name",
        "cli-test",
    ]
    assert main(train) == 0
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    # resuming a finished run does no more epochs and rewrites the same model
    assert main([*train, "--resume"]) == 0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1
    # training again into the same folder is refused unless --resume or --overwrite ...
    sha = json.loads((tmp_path / "run" / "model" / "card.json").read_text())["sha256"]
    capsys.readouterr()
    assert main(train) == 2
    assert "overwrite=True" in capsys.readouterr().err
    # ... and --max-lag 3 means 3 time steps of the 3-hourly data: the same run as 9h
    steps = [*train, "--overwrite"]
    steps[steps.index("--max-lag") + 1] = "3"
    assert main(steps) == 0
    assert json.loads((tmp_path / "run" / "model" / "card.json").read_text())["sha256"] == sha
    # a time-limited job: 1 epoch of a 2-epoch schedule, then resume to the end
    two = [*train[:-4], "--out", str(tmp_path / "run2"), "--name", "cli-test"]
    two[two.index("--epochs") + 1] = "2"
    assert main([*two, "--stop-after", "1"]) == 0
    assert len((tmp_path / "run2" / "metrics.jsonl").read_text().splitlines()) == 1
    assert main([*two, "--resume"]) == 0
    assert len((tmp_path / "run2" / "metrics.jsonl").read_text().splitlines()) == 2
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "encoder",
                str(tmp_path / "run" / "model"),
                str(nc),
                "--n-pairs",
                "64",
                "--json",
            ]
        )
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert {"top1", "within1", "spearman_learned", "spearman_l2"} <= set(metrics)
    # the table, with the bootstrap interval of rho under rho
    evaluate = ["evaluate", "encoder", str(tmp_path / "run" / "model"), str(nc), "--n-pairs", "64"]
    assert main(evaluate) == 0
    table = capsys.readouterr().out.splitlines()
    rho = next(i for i, line in enumerate(table) if line.startswith("Spearman rho learned"))
    lo, hi = metrics["spearman_learned_ci95"]
    assert table[rho + 1].split() == [
        "95%",
        "bootstrap",
        "interval",
        f"{lo:.3f}",
        "..",
        f"{hi:.3f}",
    ]
    # the v2 recipe's options: patchify stem and the distance ranking term
    v2 = [*train[:-4], "--out", str(tmp_path / "run3"), "--name", "cli-v2"]
    v2 += ["--widths", "8", "16", "--stem-stride", "2", "--rank-weight", "0.5", "--projection"]
    v2 += ["--distance", "l1"]
    assert main(v2) == 0
    card = json.loads((tmp_path / "run3" / "model" / "card.json").read_text())
    assert card["args"]["stem_stride"] == 2 and card["args"]["widths"] == [8, 16]
    assert card["training"]["rank_weight"] == 0.5 and card["args"]["projection"] is True
    assert card["args"]["distance"] == "l1"
    # fine-tuning with mirror images: bare --lat-reflection finds vo by standard_name
    tuned = [*train[:-4], "--out", str(tmp_path / "run4"), "--name", "cli-tuned"]
    tuned += ["--init", str(tmp_path / "run" / "model"), "--lat-reflection"]
    assert main(tuned) == 0
    card = json.loads((tmp_path / "run4" / "model" / "card.json").read_text())
    assert card["training"]["lat_reflection"] == {"sign_changing": ["vo"]}
    assert card["training"]["init"]["name"] == "cli-test"
    named = [*train[:-4], "--out", str(tmp_path / "run5"), "--lat-reflection", "d"]
    assert main(named) == 0
    card = json.loads((tmp_path / "run5" / "model" / "card.json").read_text())
    assert card["training"]["lat_reflection"] == {"sign_changing": ["d"]}


def test_errors_exit_2_with_message(tmp_path, capsys):
    synthetic_fields(n_time=4).to_netcdf(tmp_path / "x.nc")
    code = main(["evaluate", "encoder", "no-such-model", str(tmp_path / "x.nc")])
    assert code == 2
    assert "No model 'no-such-model'" in capsys.readouterr().err
    assert main(["evaluate", "encoder", "x", str(tmp_path / "missing.nc")]) == 2


def test_console_script_entry_point():
    r = subprocess.run(
        [sys.executable, "-m", "xatmodist.cli", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0 and "simulate" in r.stdout
    assert xatmodist.__version__


def test_train_downscaler_and_inpainter(tmp_path, capsys):
    """The field-model trainers from the command line, GAN fine-tuning included."""
    nc = tmp_path / "hr.nc"
    synthetic_fields(n_time=8, nlat=32, nlon=64, seed=5).to_netcdf(nc)
    small = ["--patch-size", "16", "--epochs", "1", "--samples-per-epoch", "16"]
    small += ["--batch-size", "8", "--threads", "1"]
    base = ["train", "downscaler", str(nc), "--loss", "l2", *small, "--upsample", "resize"]
    assert main([*base, "--out", str(tmp_path / "ds"), "--name", "cli-ds"]) == 0
    first = tmp_path / "ds" / "model"
    gan = [*base, "--out", str(tmp_path / "gan"), "--adversarial", "--init", str(first)]
    assert main([*gan, "--adversarial-weight", "0.01"]) == 0
    card = json.loads((tmp_path / "gan" / "model" / "card.json").read_text())
    assert card["args"]["upsample"] == "resize"
    assert card["training"]["adversarial"]["weight"] == 0.01
    assert card["training"]["init"]["name"] == "cli-ds"
    inp = ["train", "inpainter", str(nc), "--loss", "l2", *small, "--hole", "4", "8"]
    assert main([*inp, "--out", str(tmp_path / "inp")]) == 0
    card = json.loads((tmp_path / "inp" / "model" / "card.json").read_text())
    assert card["task"] == "inpainter" and card["training"]["holes"]["sizes"] == [4, 8]
    assert "saved" in capsys.readouterr().out
    # the AtmoDist loss with given variable weights and a divergence encoder
    from xatmodist.testing import tiny_encoder

    enc, d_enc = tmp_path / "enc", tmp_path / "d-enc"
    tiny_encoder(enc)
    tiny_encoder(d_enc, variables=["d"], name="tiny-d-encoder")
    atmo = ["train", "downscaler", str(nc), "--loss", "atmodist", "--encoder", str(enc), *small]
    ad = [*atmo, "--variable-weights", "vo=1", "d=0", "--extra-encoder", str(d_enc)]
    assert main([*ad, "--out", str(tmp_path / "ad")]) == 0
    card = json.loads((tmp_path / "ad" / "model" / "card.json").read_text())
    assert card["training"]["variable_weights"] == {"vo": 1.0, "d": 0.0}
    assert card["training"]["extra_encoders"][0]["name"] == "tiny-d-encoder"
    tuned = [*inp, "--out", str(tmp_path / "inp2"), "--init", str(tmp_path / "inp" / "model")]
    assert main(tuned) == 0
    assert main([*atmo, "--variable-weights", "vo:1", "--out", str(tmp_path / "x")]) == 2
    assert "NAME=WEIGHT pairs, e.g. vo=1 d=0; got 'vo:1'" in capsys.readouterr().err
