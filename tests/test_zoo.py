"""The model zoo: saving, loading, caching, finding, corruption, no network, pickling.

The load cache is keyed by folder and file mtimes, so every test that alters a
model works on its own fresh copy (shutil.copytree) and corruption can never
be hidden by a cached good model.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import shutil
import socket
from pathlib import Path

import pytest
import torch

import xatmodist
from xatmodist import Model, ModelError, ModelNotFoundError, WeightsError, XatmodistError
from xatmodist.cards import EncoderCard
from xatmodist.zoo import (
    CARD_FILE,
    WEIGHTS_FILE,
    format_models,
    list_models,
    load_model,
    model_dirs,
    model_names,
)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fresh(tiny_model, tmp_path):
    """A function returning a fresh copy of the tiny model's folder."""
    count = [0]

    def make(name: str = "copy") -> Path:
        count[0] += 1
        dst = tmp_path / f"{name}-{count[0]}"
        shutil.copytree(tiny_model.path, dst)
        return dst

    return make


def _card(folder: Path) -> dict:
    return json.loads((folder / CARD_FILE).read_text())


def _write_card(folder: Path, card: dict) -> None:
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2))


def _rehash(folder: Path) -> None:
    """Make the card's sha256 match whatever is now in the weights file."""
    card = _card(folder)
    card["sha256"] = _sha(folder / WEIGHTS_FILE)
    _write_card(folder, card)


def _state(model: Model) -> dict:
    return {k: v.clone() for k, v in model.module.state_dict().items()}


# -- save / load ------------------------------------------------------------------------


def test_save_load_round_trip(tiny_model, tmp_path):
    card = {k: v for k, v in tiny_model.card.to_dict().items() if k != "sha256"}
    unsaved = Model(card=card, module=tiny_model.module)  # a plain dict is parsed
    assert isinstance(unsaved.card, EncoderCard)
    assert unsaved.sha256 is None and unsaved.path is None
    out = unsaved.save(tmp_path / "saved")
    assert out == tmp_path / "saved" and unsaved.path == out
    weights, card_file = out / WEIGHTS_FILE, out / CARD_FILE
    assert weights.is_file() and card_file.is_file()
    assert not list(out.glob("*.tmp")), "no temporary file left behind"
    on_disk = json.loads(card_file.read_text())
    assert on_disk["sha256"] == _sha(weights) == unsaved.sha256
    assert on_disk["weights_bytes"] == weights.stat().st_size
    # weights are safetensors, not a pickle
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as fh:
        assert set(fh.keys()) == set(tiny_model.module.state_dict())
        assert fh.metadata()["name"] == "tiny-test-encoder"

    by_folder = load_model(out)
    assert by_folder.card.to_dict() == on_disk
    assert by_folder.card == unsaved.card
    assert by_folder.path == out.resolve()
    assert not by_folder.module.training
    assert not any(p.requires_grad for p in by_folder.module.parameters())
    ref = tiny_model.module.state_dict()
    for k, v in by_folder.module.state_dict().items():
        assert torch.equal(v, ref[k]), k
    # by str, by card.json path, by relative path: the same cached object
    assert load_model(str(out)) is by_folder
    assert load_model(card_file) is by_folder
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert load_model("saved") is by_folder
    finally:
        os.chdir(cwd)


def test_load_is_cached_and_model_passes_through(tiny_model):
    first = load_model(tiny_model.path)
    assert load_model(tiny_model.path) is first
    assert load_model(str(tiny_model.path)) is first
    assert load_model(first) is first
    unsaved = Model(card=copy.deepcopy(tiny_model.card), module=tiny_model.module)
    assert load_model(unsaved) is unsaved


def test_cache_sees_changed_files(fresh):
    folder = fresh()
    first = load_model(folder)
    st = (folder / CARD_FILE).stat()
    os.utime(folder / CARD_FILE, (st.st_atime, st.st_mtime + 10))
    second = load_model(folder)
    assert second is not first
    assert second.card == first.card


def test_load_card_is_a_copy(fresh):
    m = load_model(fresh())
    assert m.card.name == m.name == "tiny-test-encoder"
    assert m.variables[0]["name"] == "vo"
    assert len(m.sha256) == 64


def test_resave_keeps_weights(fresh, tmp_path):
    m = load_model(fresh())
    before = _state(m)
    m2 = Model(card=copy.deepcopy(m.card), module=m.module)
    m2.save(tmp_path / "resaved")
    again = load_model(tmp_path / "resaved")
    assert again.sha256 == m.sha256  # deterministic file for the same tensors
    for k, v in again.module.state_dict().items():
        assert torch.equal(v, before[k])


# -- finding models ----------------------------------------------------------------------


@pytest.fixture
def zoo_dir(tmp_path, tiny_model, monkeypatch):
    """A private zoo on $XATMODIST_MODELS: an encoder, a downscaler card, noise."""
    zoo = tmp_path / "zoo"
    shutil.copytree(tiny_model.path, zoo / "my-encoder")
    (zoo / "my-downscaler").mkdir()
    card = tiny_model.card.to_dict()
    card.update(name="my-downscaler", task="downscaler", factor=4)
    _write_card(zoo / "my-downscaler", card)
    (zoo / "empty-folder").mkdir()
    (zoo / "README.txt").write_text("not a model")
    (zoo / "broken").mkdir()
    (zoo / "broken" / CARD_FILE).write_text("{not json")
    other = tmp_path / "other-zoo"
    shutil.copytree(tiny_model.path, other / "second-encoder")
    monkeypatch.setenv("XATMODIST_MODELS", os.pathsep.join([str(zoo), str(other)]))
    return zoo


def test_model_dirs_start_with_env(zoo_dir, tmp_path):
    dirs = model_dirs()
    assert dirs[0] == zoo_dir and dirs[1] == tmp_path / "other-zoo"


def test_model_names_finds_env_folder(zoo_dir):
    names = model_names()
    for n in ("my-encoder", "my-downscaler", "second-encoder", "broken"):
        assert n in names
    assert "empty-folder" not in names and "README.txt" not in names
    assert xatmodist.list_models is list_models and xatmodist.model_names is model_names


def test_model_names_filters_by_task(zoo_dir):
    enc = model_names(task="encoder")
    assert "my-encoder" in enc and "second-encoder" in enc
    assert "my-downscaler" not in enc
    assert "broken" not in enc  # unreadable card: skipped when filtering
    assert model_names(task="downscaler")[0] == "my-downscaler"  # env folders come first
    assert "my-encoder" not in model_names(task="inpainter")


def test_list_models_is_a_table(zoo_dir):
    table = list_models()
    assert list(table.columns) == ["task", "summary", "headline", "size_mb", "default"]
    assert table.index.name == "name"
    assert "broken" not in table.index  # an unreadable card is left out of the table
    assert {"my-encoder", "second-encoder", "my-downscaler"} <= set(table.index)
    assert list(table["task"]).index("downscaler") > list(table["task"]).index("encoder")
    assert table["default"].sum() == 1 and table.index[0] == xatmodist.zoo.DEFAULT_ENCODER
    row = table.loc["my-encoder"]
    assert row["task"] == "encoder" and "vo, d" in row["summary"]
    assert row["size_mb"] == pytest.approx(
        (zoo_dir / "my-encoder" / WEIGHTS_FILE).stat().st_size / 1e6
    )
    down = list_models(task="downscaler")
    assert "my-downscaler" in down.index and set(down["task"]) == {"downscaler"}
    assert list_models(task="inpainter").empty is False  # the shipped inpainters


def test_format_models_prints_the_table(zoo_dir):
    text = format_models()
    assert f"* {xatmodist.zoo.DEFAULT_ENCODER}" in text and "my-downscaler" in text
    assert "held-out rho" in text and "MB" in text
    assert "my-downscaler" not in format_models(task="encoder")


def test_load_by_zoo_name(zoo_dir):
    m = load_model("my-encoder")
    assert m.path == (zoo_dir / "my-encoder").resolve()
    assert load_model("second-encoder").name == "tiny-test-encoder"


def test_unknown_name_lists_the_zoo(zoo_dir):
    with pytest.raises(ModelNotFoundError, match=r"No model 'nope'") as info:
        load_model("nope")
    assert "my-encoder" in str(info.value) and "list_models()" in str(info.value)
    assert isinstance(info.value, XatmodistError) and isinstance(info.value, LookupError)


def test_env_var_unset_is_fine(monkeypatch):
    monkeypatch.delenv("XATMODIST_MODELS", raising=False)
    assert isinstance(model_names(), list)
    monkeypatch.setenv("XATMODIST_MODELS", "/no/such/folder")
    assert Path("/no/such/folder") not in model_dirs()


# -- corrupt or inconsistent models ----------------------------------------------------


def test_flipped_bytes_fail_sha(fresh):
    folder = fresh()
    w = folder / WEIGHTS_FILE
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0xFF
    data[-1] ^= 0x01
    w.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"sha256 .* does not match the card's") as info:
        load_model(folder)
    assert "re-save" in str(info.value) and str(w) in str(info.value)


def test_truncated_weights_with_matching_sha(fresh):
    folder = fresh()
    w = folder / WEIGHTS_FILE
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    _rehash(folder)
    with pytest.raises(WeightsError, match=r"expected a safetensors file") as info:
        load_model(folder)
    assert "truncated" in str(info.value) and "Model.save()" in str(info.value)
    assert type(info.value) is WeightsError  # not a bare SafetensorError


@pytest.mark.parametrize("size", [0, 4, 12])
def test_tiny_weights_file(fresh, size):
    folder = fresh()
    w = folder / WEIGHTS_FILE
    w.write_bytes(w.read_bytes()[:size])
    _rehash(folder)
    with pytest.raises(WeightsError, match=r"cannot be read"):
        load_model(folder)


def test_pickle_weights_refused(fresh, tiny_model):
    folder = fresh()
    w = folder / WEIGHTS_FILE
    torch.save(tiny_model.module.state_dict(), w)
    _rehash(folder)
    with pytest.raises(WeightsError, match=r"expected a safetensors file") as info:
        load_model(folder)
    assert "pickle" in str(info.value)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ({"widths": [8, 32]}, WeightsError, r"size mismatch for encoder\.stages\.1"),
        ({"widths": [8, 16, 32]}, WeightsError, r"Missing key\(s\)"),
        ({"widths": [16]}, WeightsError, r"tensors do not fit AtmoDistNet"),
        ({"n_classes": 5}, WeightsError, r"size mismatch for head"),
        ({"in_channels": 3}, ModelError, r"in_channels=3 but the card lists 2 variables"),
        ({"widths": []}, ModelError, r"do not fit AtmoDistNet \(IndexError"),
        ({"widths": [-1, 16]}, ModelError, r"do not fit AtmoDistNet \(RuntimeError"),
        ({"foo": 1}, ModelError, r"unexpected keyword argument 'foo'"),
        ({"in_channels": "two"}, ModelError, r"in_channels='two'"),
        ({"blocks": "one"}, ModelError, r"do not fit AtmoDistNet \(TypeError"),
    ],
    ids=[
        "widths",
        "extra-stage",
        "fewer-stages",
        "n-classes",
        "in-channels",
        "no-widths",
        "negative-width",
        "unknown-arg",
        "str-in-channels",
        "str-blocks",
    ],
)
def test_card_args_that_do_not_fit_weights(fresh, args, error, match):
    folder = fresh()
    card = _card(folder)
    card["args"].update(args)
    _write_card(folder, card)
    with pytest.raises(error, match=match) as info:
        load_model(folder)
    msg = str(info.value)
    assert isinstance(info.value, ModelError)
    assert "re-save" in msg, msg  # says how to fix it
    assert "\n" not in msg  # one clear line, not torch's whole report


@pytest.mark.parametrize(
    "change, match",
    [
        ({"architecture": "TransformerNet"}, r"unknown architecture 'TransformerNet'.*knows"),
        ({"architecture": ["AtmoDistNet"]}, r"unknown architecture"),
        ({"task": "classifier"}, r"task must be one of .*got 'classifier'"),
        ({"args": [2, 4]}, r"'args' must be an object"),
        ({"variables": []}, r"'variables' must be a non-empty list"),
        ({"variables": ["vo", "d"]}, r"'variables' must be a non-empty list"),
        ({"grid": {"nlat": 64}}, r"'grid' needs at least dlat and dlon"),
        ({"patch_size": "16"}, r"'patch_size' must be a positive int, got '16'"),
        ({"patch_size": 0}, r"'patch_size' must be a positive int, got 0"),
    ],
    ids=[
        "arch",
        "arch-list",
        "task",
        "args",
        "variables-empty",
        "variables-str",
        "grid",
        "patch-str",
        "patch-zero",
    ],
)
def test_invalid_card_values(fresh, change, match):
    folder = fresh()
    card = _card(folder)
    card.update(change)
    _write_card(folder, card)
    with pytest.raises(ModelError, match=match) as info:
        load_model(folder)
    assert str(folder / CARD_FILE) in str(info.value)
    assert not isinstance(info.value, WeightsError)


def test_card_variables_must_match_in_channels(fresh, fields):
    folder = fresh()
    card = _card(folder)
    card["variables"] = card["variables"][:1]  # the network still takes 2 channels
    _write_card(folder, card)
    with pytest.raises(ModelError, match=r"in_channels=2 but the card lists 1 variables"):
        load_model(folder)


@pytest.mark.parametrize(
    "key", ["name", "task", "architecture", "args", "variables", "grid", "patch_size"]
)
def test_card_missing_required_key(fresh, key):
    folder = fresh()
    card = _card(folder)
    del card[key]
    _write_card(folder, card)
    with pytest.raises(ModelError, match=rf"missing required keys \['{key}'\]") as info:
        load_model(folder)
    assert "Model.save()" in str(info.value)


@pytest.mark.parametrize("key", ["lag_classes", "lag_step_seconds"])
def test_encoder_card_needs_lag_keys(fresh, key):
    folder = fresh()
    card = _card(folder)
    del card[key]
    _write_card(folder, card)
    with pytest.raises(ModelError, match=rf"an encoder card needs '{key}'"):
        load_model(folder)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", r"not valid JSON"),
        ("", r"not valid JSON"),
        ("[1, 2]", r"expected a JSON object, got list"),
        (b"\xff\xfe\x00", r"not valid JSON"),
    ],
    ids=["garbage", "empty", "list", "not-utf8"],
)
def test_card_not_a_json_object(fresh, text, match):
    folder = fresh()
    path = folder / CARD_FILE
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    with pytest.raises(ModelError, match=match):
        load_model(folder)


def test_missing_sha256(fresh):
    folder = fresh()
    card = _card(folder)
    del card["sha256"]
    _write_card(folder, card)
    with pytest.raises(WeightsError, match=r"'sha256'") as info:
        load_model(folder)
    assert "Model.save()" in str(info.value)


def test_sha256_not_a_string(fresh):
    folder = fresh()
    card = _card(folder)
    card["sha256"] = 12345
    _write_card(folder, card)
    with pytest.raises(WeightsError, match=r"hex string, got 12345"):
        load_model(folder)


def test_missing_weights_file(fresh):
    folder = fresh()
    (folder / WEIGHTS_FILE).unlink()
    (folder / "model.pt").write_bytes(b"pickle")
    with pytest.raises(WeightsError, match=r"expected weights in weights\.safetensors") as info:
        load_model(folder)
    assert "Model.save()" in str(info.value)


def test_missing_card_is_not_found(fresh):
    folder = fresh()
    (folder / CARD_FILE).unlink()
    with pytest.raises(ModelNotFoundError, match=r"card\.json"):
        load_model(folder)


def test_bad_model_argument_type():
    with pytest.raises(ModelError, match=r"got int 3"):
        load_model(3)


def test_failed_load_is_not_cached(fresh):
    folder = fresh()
    w = folder / WEIGHTS_FILE
    good = w.read_bytes()
    w.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(WeightsError):
        load_model(folder)
    w.write_bytes(good)
    st = w.stat()
    os.utime(w, (st.st_atime, st.st_mtime + 5))
    assert load_model(folder).name == "tiny-test-encoder"


# -- no network -------------------------------------------------------------------------


def test_loading_never_touches_the_network(fresh, fields, monkeypatch):
    class NoNetwork(socket.socket):
        def __init__(self, *a, **k):
            raise AssertionError("xatmodist tried to open a socket")

    def no_connect(*a, **k):
        raise AssertionError("xatmodist tried to connect")

    monkeypatch.setattr(socket, "socket", NoNetwork)
    monkeypatch.setattr(socket, "create_connection", no_connect)
    folder = fresh()
    m = load_model(folder)  # not cached yet: reads and checks the files
    assert m.path == folder.resolve()
    a = fields.isel(time=[0])
    out = xatmodist.distance(a, fields.isel(time=[1]).assign_coords(time=a.time), model=m)
    assert out.sizes["time"] == 1
    with pytest.raises(ModelNotFoundError):
        load_model("some-model-that-would-need-downloading")


# -- pickling ----------------------------------------------------------------------------


def test_model_pickles_as_its_path(fresh):
    folder = fresh()
    m = load_model(folder)
    blob = pickle.dumps(m)
    assert len(blob) < 1024
    assert str(folder).encode() in blob  # the path, not the tensors
    back = pickle.loads(blob)
    assert back.card == m.card
    assert back.path == m.path
    assert back.module is m.module  # same process: served by the cache


def test_unpickle_in_a_fresh_cache_reloads(fresh, monkeypatch):
    from xatmodist import zoo

    m = load_model(fresh())
    blob = pickle.dumps(m)
    monkeypatch.setattr(zoo, "_CACHE", {})
    back = pickle.loads(blob)
    assert back.card == m.card and back.module is not m.module
    for k, v in back.module.state_dict().items():
        assert torch.equal(v, m.module.state_dict()[k])


def test_unsaved_model_pickles_as_a_private_copy(tiny_model):
    """A Model travels to a worker as a path; an unsaved one as a temporary copy's."""
    unsaved = Model(card=copy.deepcopy(tiny_model.card), module=tiny_model.module)
    unsaved.card.sha256 = None
    back = pickle.loads(pickle.dumps(unsaved))
    assert back.path is not None and "xatmodist-unsaved-" in str(back.path)
    assert back.sha256 is not None and unsaved.sha256 is None and unsaved.path is None
    for k, v in back.module.state_dict().items():
        assert torch.equal(v, unsaved.module.state_dict()[k])
    assert unsaved.reference() == str(back.path), "written once"
