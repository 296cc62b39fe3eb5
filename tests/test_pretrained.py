"""Every shipped model: a complete card, weights that load, and re-measured quality.

Parametrised over the ``pretrained/`` folder, so a new model is tested the
moment its folder lands.  The quality checks re-measure the encoders on the
embedded sample (held-out simulator runs, never used in training) with the
same evaluation as the cards, not the numbers the cards record.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import xatmodist
from xatmodist.nn.encoder import fused_for_inference
from xatmodist.train import evaluate_encoder

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
MODELS = sorted(p.name for p in PRETRAINED.iterdir() if (p / "card.json").is_file())
CARDS = {name: json.loads((PRETRAINED / name / "card.json").read_text()) for name in MODELS}
ENCODERS = [n for n in MODELS if CARDS[n]["task"] == "encoder"]
#: the encoders of both variables, whose distance is the library's learned distance
VD = [n for n in ENCODERS if [v["name"] for v in CARDS[n]["variables"]] == ["vo", "d"]]
#: single-variable encoders, shipped as a loss term of other models (atmodist-swe-d)
LOSS_ONLY = [n for n in ENCODERS if n not in VD]


def test_the_zoo_is_what_the_folder_holds():
    assert set(MODELS) <= set(xatmodist.list_models())
    assert xatmodist.zoo.DEFAULT_ENCODER in ENCODERS
    assert {"encoder", "downscaler", "inpainter"} <= {c["task"] for c in CARDS.values()}


@pytest.mark.parametrize("name", MODELS)
def test_card_is_complete(name):
    card = CARDS[name]
    assert card["name"] == name
    for key in ("architecture", "args", "grid", "patch_size", "normalisation", "training"):
        assert card[key], key
    for v in card["variables"]:
        assert v["name"] and v["units"] == "s-1" and v["standard_name"]
    assert card["grid"]["dlat"] > 0 and card["grid"]["dlon"] > 0
    assert card["training"]["data"] and card["training"]["command"].startswith("python ")
    assert card["training"]["train_seconds"] > 0
    assert card["metrics"]["heldout"], "held-out metrics are missing"
    digest = hashlib.sha256((PRETRAINED / name / "weights.safetensors").read_bytes()).hexdigest()
    assert card["sha256"] == digest
    if card["task"] == "encoder":
        n = card["args"]["n_classes"]
        assert len(card["lag_classes"]) == n
        assert card["lag_classes"][0] == card["lag_step_seconds"]
        assert card["distance"]["alpha"] > 0
    else:
        enc = card["training"].get("encoder")
        if enc is not None:  # a model trained with the AtmoDist loss names its encoder
            assert enc in ENCODERS
            assert card["training"]["encoder_sha256"] == CARDS[enc]["sha256"]
        for extra in card["training"].get("extra_encoders") or []:
            assert extra["name"] in ENCODERS
            assert extra["sha256"] == CARDS[extra["name"]]["sha256"]
            want = [v["name"] for v in CARDS[extra["name"]]["variables"]]
            assert extra["variables"] == want
        init = card["training"].get("init")
        if init is not None:  # a fine-tuned model names the shipped model it started from
            assert CARDS[init["name"]]["task"] == card["task"]
            assert init["sha256"] == CARDS[init["name"]]["sha256"]
            assert CARDS[init["name"]]["args"] == card["args"]


@pytest.mark.parametrize("name", ENCODERS)
def test_fused_inference_copy_matches_the_trained_network(name):
    net = xatmodist.load_model(name).module
    fused = fused_for_inference(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # untouched
    ds = xatmodist.datasets.sample()
    p = CARDS[name]["patch_size"]
    names = [v["name"] for v in CARDS[name]["variables"]]
    x = torch.from_numpy(np.stack([ds[n].values[0, :8, :p, :p] for n in names], 1))
    y = torch.from_numpy(np.stack([ds[n].values[0, 8:16, :p, :p] for n in names], 1))
    with torch.inference_mode():
        np.testing.assert_allclose(fused.distance(x, y), net.distance(x, y), rtol=1e-5)
        np.testing.assert_allclose(fused(x, y), net(x, y), rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def sample_scores():
    ds = xatmodist.datasets.sample()
    return {n: evaluate_encoder(n, ds, n_pairs=2048, seed=3) for n in ENCODERS}


@pytest.mark.parametrize("name", VD)
def test_encoders_beat_chance_and_l2_on_held_out_sample(name, sample_scores):
    s = sample_scores[name]
    assert s["top1"] >= 5 * s["chance_top1"]
    assert s["top1"] >= 2 * s["l2_nearest_centroid"]["top1"]
    assert s["within1"] >= 0.8
    assert s["spearman_learned"] > s["spearman_l2"] + 0.1


@pytest.mark.parametrize("name", LOSS_ONLY)
def test_loss_encoders_see_their_variable_better_than_l2(name, sample_scores):
    """A divergence encoder's lag skill is weak (divergence decorrelates within hours), but
    its distance orders lags where the l2 distance of divergence does not."""
    s = sample_scores[name]
    assert s["top1"] >= 1.5 * s["chance_top1"]
    assert s["spearman_learned"] > s["spearman_l2"] + 0.1
    users = [
        n
        for n in MODELS
        if any(e["name"] == name for e in CARDS[n]["training"].get("extra_encoders") or [])
    ]
    assert users, f"{name} is shipped as a loss term but no model uses it"


RANKED = [n for n in VD if CARDS[n]["training"].get("rank_weight")]


@pytest.mark.parametrize("name", RANKED)
def test_ranked_encoder_distance_orders_lags_better_than_v1(name, sample_scores):
    """The ranking term (v2 and later) makes the distance itself follow lag."""
    v1, s = sample_scores["atmodist-swe-vd"], sample_scores[name]
    assert s["spearman_learned"] > v1["spearman_learned"] + 0.1
    assert s["within1"] >= 0.8


def test_default_meets_the_held_out_targets_its_card_records():
    """Issue 3's targets on held-out runs, as the default's card records them (the
    embedded sample's two runs are too few for rho to two decimals)."""
    held = CARDS[xatmodist.zoo.DEFAULT_ENCODER]["metrics"]["heldout"]
    assert held["n_pairs"] >= 8192 and "never used in training" in held["data"]
    assert held["top1"] >= 5 * held["chance_top1"]
    assert held["top1"] >= 2 * held["l2_nearest_centroid"]["top1"]
    assert held["within1"] >= 0.85
    assert held["spearman_learned"] >= 0.9
    assert held["spearman_learned"] >= held["spearman_l2"] + 0.1


def test_no_encoder_orders_lags_clearly_better_than_the_default():
    """No zoo encoder's held-out rho lies above the default's bootstrap 95% interval
    (all cards are measured on the same pairs), so a cheaper default may stand
    against a statistical tie but not against a clear winner."""
    default = CARDS[xatmodist.zoo.DEFAULT_ENCODER]["metrics"]["heldout"]
    upper = default["spearman_learned_ci95"][1]
    for n in VD:
        held = CARDS[n]["metrics"]["heldout"]
        assert held["command"].split()[4:] == default["command"].split()[4:], n  # same pairs
        assert held["spearman_learned"] <= upper, n
