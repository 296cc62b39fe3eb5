"""Recipes, typed settings and the generated command line (issue 19).

Real components: recipe TOML files and netCDF data written to tmp dirs, the
``xatmodist`` command's ``main``, the shipped recipes and cards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from pathlib import Path

import pytest

import xatmodist
from xatmodist.cli import build_parser, main
from xatmodist.recipes import fit, load_recipe, settings_of
from xatmodist.testing import TINY_ENCODER_TRAINING, synthetic_fields
from xatmodist.train import fit_downscaler, fit_encoder, fit_inpainter
from xatmodist.train.config import TRAINERS

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.toml"))
FITS = {"encoder": fit_encoder, "downscaler": fit_downscaler, "inpainter": fit_inpainter}


def _sha(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.module.state_dict().items()):
        h.update(k.encode())
        h.update(v.contiguous().numpy().tobytes())
    return h.hexdigest()


# --- the shipped recipes ------------------------------------------------------------------


def test_every_model_names_a_recipe_that_exists():
    cards = sorted((ROOT / "pretrained").glob("*/card.json"))
    # analogue metrics are fitted by python -m benchmarks.eval_analogs --fit, not a recipe
    cards = [c for c in cards if json.loads(c.read_text())["task"] != "analog"]
    # superseded models are records (their weights are not kept), each naming its recipe
    record = json.loads((ROOT / "pretrained" / "superseded" / "superseded.json").read_text())
    named = [json.loads(c.read_text()) for c in cards] + [
        {"name": n, "training": {"recipe": r["recipe"]}} for n, r in record.items()
    ]
    assert len(named) == len(RECIPES) >= 12
    for card in named:
        recipe = ROOT / card["training"]["recipe"]
        assert recipe.is_file(), card["name"]
        assert load_recipe(recipe)["name"] == card["name"]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_shipped_recipe_settings_are_the_cards(path):
    """Each recipe's settings are valid and give the architecture and schedule of its card."""
    recipe = load_recipe(path)
    settings = settings_of(recipe)
    TRAINERS[recipe["task"]].settings(settings, "recipe")  # every key known, types right
    dest = ROOT / recipe.get("dest", f"pretrained/{recipe['name']}")
    record = json.loads((ROOT / "pretrained" / "superseded" / "superseded.json").read_text())
    if recipe["name"] in record:  # superseded: its record keeps the architecture, not the card
        rec = record[recipe["name"]]
        assert recipe["task"] == rec["task"] and rec["recipe"] == f"recipes/{path.name}"
        assert {k: v for k, v in rec["args"].items() if k in settings} == {
            k: settings[k] for k in rec["args"] if k in settings
        }
        return
    card = json.loads((dest / "card.json").read_text())
    training = card["training"]
    for key in ("epochs", "batch_size", "lr", "seed"):
        assert settings[key] == training[key], key
    assert settings["patch_size"] == card["patch_size"]
    assert settings["variables"] == [v["name"] for v in card["variables"]]
    arch = {k: v for k, v in card["args"].items() if k in settings}
    assert arch == {k: settings[k] for k in arch}
    init = training.get("init")
    assert (init or {}).get("name") == (Path(settings["init"]).name if "init" in settings else None)


# --- running a recipe -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "fields.nc"
    synthetic_fields(n_time=96, nlat=32, nlon=64, seed=3).to_netcdf(path)
    return path


def _recipe(tmp_path: Path, series: Path, **extra) -> Path:
    t = TINY_ENCODER_TRAINING
    settings = {**{k: v for k, v in t.items() if k != "progress"}, "epochs": 2, **extra}
    lines = [
        'name = "tiny-recipe"',
        'task = "encoder"',
        "[data]",
        f'paths = ["{series}"]',
        'time = ["2001-01-01", "2001-01-07"]',
        'kind = "reanalysis"',
        'description = "synthetic fields, the first week"',
        "[heldout]",
        f'paths = ["{series}"]',
        'time = ["2001-01-08", "2001-01-12"]',
        "n_pairs = 64",
        "lag_curve = true",
        "[settings]",
        *(
            f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}"
            for k, v in settings.items()
        ),
    ]
    path = tmp_path / "tiny.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_recipe_trains_evaluates_saves_and_resumes(tmp_path, series, capsys):
    recipe = _recipe(tmp_path, series)
    dest, work = tmp_path / "model", tmp_path / "work"
    cmd = ["train", "--recipe", str(recipe), "--workdir", str(work), "--dest", str(dest)]
    assert main(cmd) == 0
    model = xatmodist.load_model(dest)
    card = model.card
    assert card.training["recipe"] == "recipes/tiny.toml" and card.data_kind == "reanalysis"
    assert card.training["command"] == "xatmodist train --recipe recipes/tiny.toml"
    assert card.training["data"] == "synthetic fields, the first week"
    assert card.training["config"]["schedule"]["epochs"] == 2
    held = card.heldout
    assert held["n_pairs"] == 64 and len(held["lag_curve"]["learned"]) == 3
    # the checkpoint is in the work folder: running again continues (here: is done)
    assert (work / "train_tiny-recipe" / "checkpoint.pt").is_file()
    sha = card.sha256
    assert main(cmd) == 0
    assert xatmodist.load_model(dest).sha256 == sha
    # re-measuring rewrites the metrics alone
    assert main([*cmd, "--evaluate-only"]) == 0
    again = xatmodist.load_model(dest)
    assert again.sha256 == sha and again.card.heldout == held


def test_a_card_is_a_recipe_and_retrains_bitwise(tmp_path, series):
    ds = xatmodist.cli.open_data([str(series)]).sel(time=slice("2001-01-01", "2001-01-07"))
    first = fit_encoder(
        ds,
        epochs=2,
        rank_weight=0.5,
        max_lag=3,
        **{k: v for k, v in TINY_ENCODER_TRAINING.items() if k != "max_lag"},
    )
    first.save(tmp_path / "first")
    again = fit(tmp_path / "first", ds, progress=False)
    assert _sha(again) == _sha(first)
    assert again.card.training["config"] == first.card.training["config"]


def test_recipe_errors(tmp_path, series):
    with pytest.raises(xatmodist.InputError, match="does not exist"):
        load_recipe(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    with pytest.raises(xatmodist.InputError, match="not valid TOML"):
        load_recipe(bad)
    bad.write_text('name = "x"\ntask = "encoder"\n')
    with pytest.raises(xatmodist.InputError, match="needs 'settings'"):
        load_recipe(bad)
    bad.write_text('name = "x"\ntask = "painter"\n[settings]\n')
    with pytest.raises(xatmodist.InputError, match="task must be one of"):
        load_recipe(bad)
    recipe = _recipe(tmp_path, series, max_lags="9h")
    with pytest.raises(xatmodist.InputError, match=r"does not take: \['max_lags'\]"):
        fit(recipe, synthetic_fields(n_time=40, nlat=32, nlon=64))
    no_data = tmp_path / "nodata.toml"
    no_data.write_text('name = "x"\ntask = "encoder"\n[data]\n[settings]\nmax_lag = 3\n')
    with pytest.raises(xatmodist.InputError, match="needs paths"):
        xatmodist.recipes.run_recipe(no_data, workdir=tmp_path)


def test_a_card_without_settings_is_not_a_recipe():
    with pytest.raises(xatmodist.InputError, match="records no training settings"):
        load_recipe(ROOT / "pretrained" / "atmodist-swe-vd")


# --- typed settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("task", sorted(TRAINERS))
def test_signature_docs_and_cli_come_from_the_settings(task):
    trainer = TRAINERS[task]
    names = [f.name for _, f, _, _ in trainer.fields()]
    params = list(inspect.signature(FITS[task]).parameters)[1:]
    assert params == names
    doc = FITS[task].__doc__
    defaults = trainer.defaults()
    for name in names:
        assert f"\n{name} : " in doc
    # every setting is an option with the library's default in its help, passed only if given
    sub = build_parser()._subparsers._group_actions[0].choices["train"]
    parser = sub._subparsers._group_actions[0].choices[task]
    dests = {a.dest: a for a in parser._actions}
    for _, f, doc_text, _ in trainer.fields():
        assert doc_text, f"{f.name} has no documentation"
        assert f.name in dests and dests[f.name].default is not None
        shown = f"default: {defaults[f.name]}" if f.name in defaults else "required"
        assert shown in dests[f.name].help
    args = parser.parse_args(["data.nc"])
    assert set(vars(args)) <= {"data", "func", "recipe", "what"}


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("epochs", 0, "epochs must be a positive integer; got 0"),
        ("epochs", 2.0, "epochs must be a positive integer; got 2.0"),
        ("seed", -1, "seed must be an integer >= 0; got -1"),
        ("lr", 0, "lr must be a finite number > 0; got 0"),
        ("weight_decay", float("inf"), "weight_decay must be a finite number >= 0"),
        ("projection", "yes", "projection must be True or False; got 'yes'"),
        ("distance", "cosine", r"distance must be one of \['squared', 'l1'\]; got 'cosine'"),
        ("threads", 0, "threads must be a positive integer; got 0"),
    ],
)
def test_settings_are_checked_by_type(setting, value, message):
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64)
    with pytest.raises(xatmodist.InputError, match=message):
        fit_encoder(ds, **{**TINY_ENCODER_TRAINING, setting: value})


def test_unknown_and_missing_settings_are_type_errors():
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['max_lags'\]"):
        fit_encoder(ds, max_lags="9h")
    with pytest.raises(TypeError, match=r"needs the keyword argument\(s\) \['max_lag'\]"):
        fit_encoder(ds)


def test_the_settings_groups_are_what_the_card_records(tmp_path):
    ds = synthetic_fields(n_time=40, nlat=32, nlon=64)
    m = fit_encoder(ds, epochs=1, **TINY_ENCODER_TRAINING)
    config = m.card.training["config"]
    assert config["task"] == "encoder"
    for section, group in TRAINERS["encoder"].groups:
        assert set(config[section]) == {f.name for f in dataclasses.fields(group)}
    assert config["lag"]["max_lag"] == "9h" and config["architecture"]["widths"] == [8, 16]


def test_the_command_line_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "parsing only" not in out and "Learned distances" in out
    capsys.readouterr()
    assert main(["train"]) == 2
    assert "needs a task and data" in capsys.readouterr().err
    assert main(["models"]) == 0
    assert xatmodist.zoo.DEFAULT_ENCODER in capsys.readouterr().out
