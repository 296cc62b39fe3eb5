"""Typed model cards: parsing per task, every validation error, derived values, rendering."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

import xatmodist
from xatmodist import Model, ModelError
from xatmodist.cards import Card, DownscalerCard, EncoderCard, Grid, InpainterCard, Variable


@pytest.fixture
def enc(tiny_model) -> dict:
    """The tiny encoder's card as JSON would hold it."""
    return tiny_model.card.to_dict()


def _as(d: dict, **change) -> dict:
    d = copy.deepcopy(d)
    d.update(change)
    return d


def test_from_dict_dispatches_on_task(enc):
    assert type(Card.from_dict(enc)) is EncoderCard
    down = _as(enc, task="downscaler", factor=4)
    for k in ("lag_step_seconds", "lag_classes"):
        down.pop(k)
    card = Card.from_dict(down)
    assert type(card) is DownscalerCard and card.factor == card.input_factor == 4
    paint = _as(down, task="inpainter", max_hole_radius=8, min_input_size=16)
    paint.pop("factor")
    card = Card.from_dict(paint)
    assert type(card) is InpainterCard and card.max_hole_radius == 8 and card.input_factor == 1


def test_typed_fields_and_derived_values(enc):
    card = Card.from_dict(enc)
    assert card.variables[0] == Variable("vo", "atmosphere_relative_vorticity", "s-1")
    assert card.variable_names == ["vo", "d"]
    assert card.variable_dicts == enc["variables"]
    assert isinstance(card.grid, Grid) and card.grid.nlat == 64 and card.grid.is_global is None
    assert card.grid.descending  # a card that does not say: north to south
    assert card.lag_step == pd.Timedelta("3h") and card.max_lag == pd.Timedelta("12h")
    assert list(card.lag_classes_timedelta) == [pd.Timedelta(hours=3 * k) for k in (1, 2, 3, 4)]
    assert card.data_kind is None and card.heldout == {} and card.headline == ""
    assert card.size_mb == enc["weights_bytes"] / 1e6
    assert "encoder, 4 lags of 3 h; vo, d on 64 x 128" == card.summary


def test_unknown_keys_and_key_order_survive(enc):
    d = {"future_key": {"a": 1}, **_as(enc, version=2)}
    d["grid"] = {**d["grid"], "global": True, "projection": "latlon"}
    d["variables"][0] = {**d["variables"][0], "long_name": "vorticity"}
    card = Card.from_dict(d)
    assert card.extra == {"future_key": {"a": 1}} and card.grid.is_global is True
    assert card.to_dict() == d and list(card.to_dict()) == list(d)
    assert list(card.to_dict()["grid"]) == list(d["grid"])


def test_keys_gained_after_reading_go_where_cards_keep_them(enc):
    d = {k: v for k, v in enc.items() if k not in ("sha256", "weights_bytes")}
    card = Card.from_dict(d)
    card.sha256, card.weights_bytes = "ab" * 32, 10
    assert list(card.to_dict())[-2:] == ["sha256", "weights_bytes"]


def test_from_dict_copies(enc):
    card = Card.from_dict(enc)
    card.training["data"] = "changed"
    card.args["n_classes"] = 99
    assert enc["training"]["data"] != "changed" and enc["args"]["n_classes"] == 4


def test_model_takes_a_plain_dict_and_validates_it(tiny_model, enc):
    m = Model(card=enc, module=tiny_model.module)
    assert isinstance(m.card, EncoderCard) and m.card == tiny_model.card
    with pytest.raises(ModelError, match=r"Model\(card=\.\.\.\): missing required keys"):
        Model(card={"name": "x"}, module=tiny_model.module)


def _bad(enc, **change) -> dict:
    d = _as(enc, **change)
    return {k: v for k, v in d.items() if v is not _DROP}


_DROP = object()


@pytest.mark.parametrize(
    "change, match",
    [
        ({"task": "classifier"}, r"task must be one of .*got 'classifier'"),
        ({"architecture": "TransformerNet"}, r"unknown architecture 'TransformerNet'"),
        ({"args": [1]}, r"'args' must be an object"),
        ({"variables": [{"units": "K"}]}, r"'variables' must be a non-empty list"),
        ({"variables": [{"name": 3}]}, r"'variables' must be a non-empty list"),
        ({"patch_size": True}, r"'patch_size' must be a positive int, got True"),
        ({"grid": {"dlat": "2", "dlon": 2.0}}, r"'grid' needs at least dlat and dlon"),
        ({"grid": [2.0, 2.0]}, r"'grid' needs at least dlat and dlon"),
        ({"training": "none"}, r"'training' must be an object, got 'none'"),
        ({"metrics": [1]}, r"'metrics' must be an object"),
        ({"normalisation": 3}, r"'normalisation' must be an object"),
        ({"distance": "l1"}, r"'distance' must be an object"),
        ({"lag_step_seconds": _DROP}, r"an encoder card needs 'lag_step_seconds'"),
        ({"lag_step_seconds": "3h"}, r"'lag_step_seconds' must be a positive number, got '3h'"),
        ({"lag_step_seconds": 0}, r"'lag_step_seconds' must be a positive number, got 0"),
        ({"lag_classes": []}, r"'lag_classes' must be a non-empty list of positive numbers"),
        ({"lag_classes": [3600, -1]}, r"'lag_classes' must be a non-empty list"),
        ({"task": "downscaler"}, r"a downscaler card needs an integer 'factor'.*got None"),
        ({"task": "downscaler", "factor": 2.5}, r"integer 'factor' \(at least 1\); got 2\.5"),
        ({"task": "downscaler", "factor": 0}, r"integer 'factor' \(at least 1\); got 0"),
        ({"task": "inpainter"}, r"a positive number 'max_hole_radius'.*got None"),
        ({"task": "inpainter", "max_hole_radius": -2}, r"'max_hole_radius' .*got -2"),
        (
            {"task": "inpainter", "max_hole_radius": 8, "min_input_size": 0},
            r"'min_input_size' must be a positive int, got 0",
        ),
    ],
)
def test_every_validation_error_names_the_source(enc, change, match):
    with pytest.raises(ModelError, match=match) as info:
        Card.from_dict(_bad(enc, **change), source="my/card.json")
    assert str(info.value).startswith("my/card.json: ")


def test_not_an_object_and_missing_keys(enc):
    with pytest.raises(ModelError, match=r"expected a JSON object, got list"):
        Card.from_dict([enc])
    with pytest.raises(ModelError, match=r"missing required keys \['grid', 'patch_size'\]"):
        Card.from_dict(_bad(enc, grid=_DROP, patch_size=_DROP))


def test_zoo_cards_have_headlines():
    enc = xatmodist.load_model(xatmodist.zoo.DEFAULT_ENCODER).card
    assert enc.headline.startswith("held-out rho 0.9") and "top-1" in enc.headline
    down = xatmodist.load_model("downscale-swe-vd-x4").card
    assert down.headline.startswith("held-out vo RMSE 0.2")
    paint = xatmodist.load_model("inpaint-swe-vd").card
    assert paint.headline.endswith(", 16x16 holes")  # the smallest holes
    assert xatmodist.load_model("atmodist-ncep-air").card.data_kind == "reanalysis"


def test_model_renders_itself_as_markdown():
    m = xatmodist.load_model("atmodist-swe-vd")
    text = m._repr_markdown_()
    assert text.startswith("# `atmodist-swe-vd`\n") and "*encoder*" in text
    assert "| `vo` | `atmosphere_relative_vorticity` | `s-1` |" in text
    assert f"{m.card.heldout['spearman_learned']:.3f}" in text
    assert "## Held-out metrics" in text and str(m.path) in text
    down = xatmodist.load_model("downscale-swe-vd-x4")._repr_markdown_()
    assert "band spectral error" in down and "## Distance" not in down
    paint = xatmodist.load_model("inpaint-swe-vd-l2")._repr_markdown_()
    assert "Holes of 16x16 cells:" in paint


def test_unsaved_model_renders_without_metrics(tiny_model):
    m = Model(card=copy.deepcopy(tiny_model.card), module=tiny_model.module)
    text = m._repr_markdown_()
    assert "tiny-test-encoder" in text and "(not saved)" in text
    assert "This card records no held-out metrics." in text
