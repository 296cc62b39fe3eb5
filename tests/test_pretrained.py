"""Every shipped model: a complete card, weights that load, and re-measured quality.

Parametrised over the ``pretrained/`` folder, so a new model is tested the
moment its folder lands.  The quality checks re-measure the encoders on the
embedded sample (held-out simulator runs, never used in training) with the
same evaluation as the cards, not the numbers the cards record.  Superseded
models are records (``pretrained/superseded/superseded.json``; their weights
are no longer kept), and their numbers still count against the default encoder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import xatmodist
from xatmodist.cards import Card
from xatmodist.nn.encoder import fused_for_inference
from xatmodist.recipes import load_recipe
from xatmodist.train import evaluate_encoder

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
SUPERSEDED_DIR = PRETRAINED / "superseded"
MODELS = sorted(p.name for p in PRETRAINED.iterdir() if (p / "card.json").is_file())
#: the superseded models' records (successor, numbers, recipe, sha256, last commit with weights)
RECORD = json.loads((SUPERSEDED_DIR / "superseded.json").read_text())
SUPERSEDED = sorted(RECORD)
FOLDERS = {n: PRETRAINED / n for n in MODELS}
#: the typed cards of the shipped models
CARDS = {n: Card.from_dict(json.loads((f / "card.json").read_text())) for n, f in FOLDERS.items()}
ENCODERS = [n for n in MODELS if CARDS[n].task == "encoder"]
#: encoders trained on real reanalysis (NCEP), evaluated on their own held-out years
REAL = [n for n in ENCODERS if CARDS[n].data_kind == "reanalysis"]
#: the encoders of both variables, whose distance is the library's learned distance
VD = [n for n in ENCODERS if CARDS[n].variable_names == ["vo", "d"]]
#: the held-out numbers of those and of the superseded ones, which the default must still
#: stand against
HELD_VD = {n: CARDS[n].heldout for n in VD} | {
    n: r["heldout"]
    for n, r in RECORD.items()
    if r["task"] == "encoder" and r["variables"] == ["vo", "d"]
}
#: single-variable encoders, shipped as a loss term of other models (atmodist-swe-d)
LOSS_ONLY = [n for n in ENCODERS if n not in VD and n not in REAL]
#: what the package ships: the models a user should pick (issue 19)
CURATED = {
    "atmodist-swe-vd-v9",  # the default encoder: v6 distilled, fast (issue 23)
    "atmodist-swe-vd-v6",  # its teacher, the best lag classifier
    "atmodist-swe-vd",  # the paper's recipe
    "atmodist-ncep-air",  # real data
    "atmodist-ncep-slp",
    "atmodist-swe-d",  # a loss term of downscale-swe-vd-x4-vo-d-gan
    "downscale-swe-vd-x4",  # the default downscaler and its l2 twin
    "downscale-swe-vd-x4-l2",
    "downscale-swe-vd-x4-vo-d-gan",  # the best downscaler and its l2 twin
    "downscale-swe-vd-x4-l2-gan",
    "inpaint-swe-vd",  # the inpainter and its l2 twin
    "inpaint-swe-vd-l2",
    "analog-ncep-slp",  # the analogue metric (issue 21)
    "downscale-swe-vd-x4-ens",  # generators that sample, each with its l2 twin (issue 24)
    "downscale-swe-vd-x4-l2-ens",
    "inpaint-swe-vd-ens",
    "inpaint-swe-vd-l2-ens",
}


def test_the_zoo_is_what_the_folder_holds():
    assert set(MODELS) <= set(xatmodist.model_names())
    assert xatmodist.zoo.DEFAULT_ENCODER in ENCODERS
    assert {"encoder", "downscaler", "inpainter"} <= {CARDS[n].task for n in MODELS}


def test_the_zoo_is_curated():
    assert set(MODELS) == CURATED
    table = xatmodist.list_models()
    assert set(table.index) >= CURATED and not set(table.index) & set(SUPERSEDED)
    assert table.loc[xatmodist.zoo.DEFAULT_ENCODER, "default"]
    # was 59 MB with 16 models; 47 MB for the 12 of issue 19, + 3.2 MB for the analogue metric;
    # issue 23: v7 (2.0 MB) in, the fast encoder (7.8 MB) out; issue 24: + 14 MB for the four
    # sampling models; issue 23 again: v9 (4.9 MB: its lag head reads 3 x 160 channels) in,
    # v7 out: 61.2 MB
    assert table["size_mb"].loc[sorted(CURATED)].sum() < 64
    for task in ("downscaler", "inpainter"):  # each AtmoDist-loss model with its l2 twin
        kept = [CARDS[n] for n in MODELS if CARDS[n].task == task]
        losses = [c.training.get("content_loss") or c.training.get("loss") for c in kept]
        assert losses.count("l2") == len(kept) - losses.count("l2") >= 1, task
        adversarial = [
            c.training.get("loss") or c.training.get("content_loss")
            for c in kept
            if c.training.get("adversarial")
        ]
        assert adversarial.count("atmodist") == adversarial.count("l2"), task
        sampling = [c.training.get("loss") or c.training.get("content_loss")
                    for c in kept if c.args.get("noise")]  # fmt: skip
        assert sorted(sampling) == ["atmodist", "l2"], task


def test_superseded_models_are_records_that_name_their_successor_and_recipe():
    """No superseded weights or cards in the repository: a record per model, with its
    successor (a shipped model of the same task), reason, numbers, recipe and the commit
    that last held its weights."""
    assert not list(SUPERSEDED_DIR.glob("**/card.json"))
    assert not list(SUPERSEDED_DIR.glob("**/*.safetensors"))
    root = PRETRAINED.parent
    for name, entry in RECORD.items():
        assert entry["by"] in MODELS and entry["why"] and entry["headline"], name
        assert CARDS[entry["by"]].task == entry["task"], name
        assert len(entry["sha256"]) == 64, name
        # None: a training stage whose weights were never committed (its recipe rebuilds it)
        assert entry["weights_in_commit"] is None or len(entry["weights_in_commit"]) == 40, name
        recipe = root / entry["recipe"]
        assert recipe.is_file(), name
        assert load_recipe(recipe)["dest"] == f"pretrained/superseded/{name}", name
    assert not set(SUPERSEDED) & set(MODELS) and not set(SUPERSEDED) & set(xatmodist.model_names())


def test_a_superseded_name_says_how_to_get_the_model_back():
    name = "atmodist-swe-vd-v4"
    rec = RECORD[name]
    with pytest.raises(xatmodist.ModelNotFoundError) as err:
        xatmodist.load_model(name)
    text = str(err.value)
    assert f"superseded by {rec['by']!r}" in text
    assert f"xatmodist train --recipe {rec['recipe']}" in text
    assert rec["weights_in_commit"] in text
    # a training stage whose weights were never committed: the recipe is the way back
    stage = RECORD["atmodist-swe-vd-v9a"]
    assert stage["weights_in_commit"] is None
    with pytest.raises(xatmodist.ModelNotFoundError) as err:
        xatmodist.load_model("atmodist-swe-vd-v9a")
    text = str(err.value)
    assert f"xatmodist train --recipe {stage['recipe']}" in text
    assert "never committed" in text and "check out commit" not in text


@pytest.mark.parametrize("name", MODELS)
def test_card_round_trips(name):
    """Reading a card and writing it back gives the same file (Model.save re-saves it so)."""
    text = (FOLDERS[name] / "card.json").read_text()
    d = json.loads(text)
    assert CARDS[name].to_dict() == d and list(CARDS[name].to_dict()) == list(d)
    assert Card.from_dict(d).to_json() == text


@pytest.mark.parametrize("name", MODELS)
def test_card_is_complete(name):
    card = CARDS[name]
    assert card.name == name
    assert card.architecture and card.args and card.patch_size
    assert card.normalisation and card.training
    for v in card.variables:
        assert v.name and v.units and v.standard_name
        if card.data_kind != "reanalysis":
            assert v.units == "s-1"
    assert card.grid.dlat > 0 and card.grid.dlon > 0
    assert card.grid.nlat and card.grid.nlon and card.grid.is_global is not None
    assert card.training["data"]
    if card.task == "analog":  # fitted and evaluated by one script, not a training recipe
        assert card.training["command"].startswith("python -m benchmarks.eval_analogs")
        assert card.encoder["name"] in ENCODERS
        assert card.encoder["sha256"] == CARDS[card.encoder["name"]].sha256
    else:
        recipe = card.training["recipe"]
        assert card.training["command"] == f"xatmodist train --recipe {recipe}"
        assert (PRETRAINED.parent / recipe).is_file()
    assert card.training["train_seconds"] > 0
    assert card.heldout, "held-out metrics are missing"
    assert card.headline
    digest = hashlib.sha256((FOLDERS[name] / "weights.safetensors").read_bytes()).hexdigest()
    assert card.sha256 == digest
    assert card.weights_bytes == (FOLDERS[name] / "weights.safetensors").stat().st_size
    if card.task == "analog":
        rmse = card.heldout["rmse"]
        assert rmse["this_model"][0] < 0.95 * rmse["l2"][0]  # the 5% at the first lead
    elif card.task == "encoder":
        n = card.args["n_classes"]
        assert len(card.lag_classes) == n
        assert card.lag_classes[0] == card.lag_step_seconds
        assert card.distance["alpha"] > 0
    else:
        _check_provenance(card)


def _check_provenance(card):
    enc = card.training.get("encoder")
    if enc is not None:  # a model trained with the AtmoDist loss names its encoder
        assert enc in ENCODERS
        assert card.training["encoder_sha256"] == CARDS[enc].sha256
    for extra in card.training.get("extra_encoders") or []:
        assert extra["name"] in ENCODERS
        assert extra["sha256"] == CARDS[extra["name"]].sha256
        assert extra["variables"] == CARDS[extra["name"]].variable_names
    init = card.training.get("init")
    if init is not None:  # a fine-tuned model names the model it started from
        task, sha256, args = _shipped_or_recorded(init["name"])
        assert task == card.task
        assert init["sha256"] == sha256
        # the same network; a sampling model may start from a deterministic one (noise 0)
        noise = ("noise", "noise_steps")
        theirs = {k: v for k, v in args.items() if k not in noise}
        assert theirs == {k: v for k, v in card.args.items() if k not in noise}
        assert args.get("noise", 0) in (0, card.args.get("noise", 0))


def _shipped_or_recorded(name: str) -> tuple[str, str, dict]:
    """(task, sha256, args) of a shipped model's card or a superseded model's record."""
    if name in CARDS:
        return CARDS[name].task, CARDS[name].sha256, CARDS[name].args
    rec = RECORD[name]
    return rec["task"], rec["sha256"], rec["args"]


@pytest.mark.parametrize("name", ENCODERS)
def test_fused_inference_copy_matches_the_trained_network(name):
    net = xatmodist.load_model(name).module
    fused = fused_for_inference(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # untouched
    p = CARDS[name].patch_size
    names = CARDS[name].variable_names
    if name in REAL:  # fields drawn around the training statistics
        rng = np.random.default_rng(0)
        mean = net.normaliser.mean_in.numpy()[None, :, None, None]
        std = net.normaliser.std_in.numpy()[None, :, None, None]
        x, y = (
            torch.from_numpy((mean + std * rng.standard_normal((8, len(names), p, p))).astype("f4"))
            for _ in range(2)
        )
    else:
        ds = xatmodist.datasets.sample()
        x = torch.from_numpy(np.stack([ds[n].values[0, :8, :p, :p] for n in names], 1))
        y = torch.from_numpy(np.stack([ds[n].values[0, 8:16, :p, :p] for n in names], 1))
    with torch.inference_mode():
        np.testing.assert_allclose(fused.distance(x, y), net.distance(x, y), rtol=1e-5)
        np.testing.assert_allclose(fused(x, y), net(x, y), rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def sample_scores():
    ds = xatmodist.datasets.sample()
    return {n: evaluate_encoder(n, ds, n_pairs=2048, seed=3) for n in ENCODERS if n not in REAL}


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
        if any(e["name"] == name for e in CARDS[n].training.get("extra_encoders") or [])
    ]
    assert users, f"{name} is shipped as a loss term but no model uses it"


RANKED = [n for n in VD if CARDS[n].training.get("rank_weight")]


@pytest.mark.parametrize("name", RANKED)
def test_ranked_encoder_distance_orders_lags_better_than_v1(name, sample_scores):
    """The ranking term (v2 and later) makes the distance itself follow lag."""
    v1, s = sample_scores["atmodist-swe-vd"], sample_scores[name]
    assert s["spearman_learned"] > v1["spearman_learned"] + 0.1
    assert s["within1"] >= 0.8


def test_default_meets_the_held_out_targets_its_card_records():
    """Issue 3's targets on held-out runs, as the default's card records them (the
    embedded sample's two runs are too few for rho to two decimals)."""
    held = CARDS[xatmodist.zoo.DEFAULT_ENCODER].heldout
    assert held["n_pairs"] >= 8192 and "never used in training" in held["data"]
    assert held["top1"] >= 5 * held["chance_top1"]
    assert held["top1"] >= 2 * held["l2_nearest_centroid"]["top1"]
    assert held["within1"] >= 0.85
    assert held["spearman_learned"] >= 0.9
    assert held["spearman_learned"] >= held["spearman_l2"] + 0.1


def test_no_encoder_orders_lags_clearly_better_than_the_default():
    """No zoo encoder's held-out rho, shipped or superseded, lies above the default's
    bootstrap 95% interval (all cards are measured on the same pairs), so a cheaper
    default may stand against a statistical tie but not against a clear winner."""
    default = CARDS[xatmodist.zoo.DEFAULT_ENCODER].heldout
    upper = default["spearman_learned_ci95"][1]
    assert len(HELD_VD) >= 9  # v1, fast, v2..v7, v7a
    for n, held in HELD_VD.items():
        # the same pairs: the same held-out runs, number of pairs and seed (by
        # `xatmodist evaluate encoder` or by the recipe's [heldout], which gives v6's
        # card numbers exactly)
        assert held["data"] == default["data"] and held["n_pairs"] == default["n_pairs"], n
        assert "--seed 1" in held["command"] or "--evaluate-only" in held["command"], n
        assert held["spearman_learned"] <= upper, n


def _largest_drop(curve) -> float:
    """The largest fall of a lag curve below its running maximum, relative to its maximum."""
    x = np.asarray(curve, dtype=float)
    return float(np.max(np.maximum.accumulate(x) - x) / x.max())


def test_real_data_encoders_re_measured_on_the_embedded_year():
    """atmodist-ncep-air on the embedded sample (2014, its evaluation year): re-measured,
    not read from the card."""
    name = "atmodist-ncep-air"
    assert name in REAL
    s = evaluate_encoder(name, xatmodist.datasets.ncep_air(), n_pairs=2048, seed=3)
    assert s["top1"] >= 2 * s["l2_nearest_centroid"]["top1"]
    assert s["spearman_learned"] >= s["spearman_l2"] + 0.2
    held = CARDS[name].heldout
    assert abs(s["spearman_learned"] - held["spearman_learned"]) < 0.05


def test_the_diurnal_cycle_bends_the_learned_distance_far_less_than_l2():
    """Near-surface temperature 24 h apart is closer than 12 h apart in l2 (the diurnal
    cycle); the learned distance of atmodist-ncep-air over 2014 grows with lag up to
    42 h and then dips by at most 5% of its maximum, the l2 distance by more than 15%."""
    curve = CARDS["atmodist-ncep-air"].heldout["lag_curve"]
    assert _largest_drop(curve["learned"]) < 0.05 < 0.15 < _largest_drop(curve["l2"])
    assert (np.diff(curve["learned"][:7]) > 0).all()
    day = CARDS["atmodist-ncep-air"].heldout["diurnal"]
    assert day["top1_given_time_of_day"] > 0.5, "skill beyond the time of day"


@pytest.mark.parametrize("name", REAL)
def test_real_data_cards_record_held_out_years_and_baselines(name):
    """On their held-out years the real-data encoders beat the l2 baselines on the same
    pairs in every measure (issue 20's stricter targets are met only in part: README)."""
    held = CARDS[name].heldout
    assert held["n_pairs"] >= 8192 and "never used in training" in held["data"]
    l2c = held["l2_nearest_centroid"]
    assert held["top1"] > 1.3 * l2c["top1"] and held["within1"] > l2c["within1"]
    assert held["spearman_learned"] >= held["spearman_l2"] + 0.2
    assert _largest_drop(held["lag_curve"]["learned"]) < 0.05
    assert CARDS[name].patch_size <= CARDS[name].grid.nlat
    # the recipe's training years end before its held-out years begin
    from xatmodist.recipes import load_recipe

    recipe = load_recipe(PRETRAINED.parent / CARDS[name].training["recipe"])
    assert recipe["data"]["time"][1] < recipe["heldout"]["time"][0]


def test_temperature_in_celsius_is_refused_by_a_kelvin_card():
    air = xatmodist.datasets.ncep_air().isel(time=slice(0, 8))
    celsius = (air - 273.15).assign_attrs(units="degC")
    celsius["air"].attrs = {**air.air.attrs, "units": "degC"}
    with pytest.raises(xatmodist.UnitsError, match="units 'degC' but the model expects 'K'"):
        xatmodist.distance(celsius, celsius.isel(time=0), model="atmodist-ncep-air")
