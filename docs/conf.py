"""Sphinx configuration of the xatmodist documentation.

Build with ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``).
The tutorials in ``tutorials/`` are MyST notebooks executed at build time, and
one page per pretrained model is rendered from ``pretrained/*/card.json``
into ``generated/models/`` before Sphinx reads the sources, so every number
on the site comes from code or files in this repository.

The build needs no network: intersphinx is not used (see below).
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import sphinx_autosummary_accessors

import xatmodist

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# -- project -----------------------------------------------------------------

project = "xatmodist"
author = "xatmodist developers"
copyright = f"{datetime.date.today().year}, {author}"  # noqa: A001
version = release = xatmodist.__version__

# -- extensions --------------------------------------------------------------

extensions = [
    "myst_nb",  # MyST markdown pages and executed MyST notebooks (includes myst_parser)
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx_autosummary_accessors",  # DataArray.atmodist.* API pages, like xarray's
    "sphinx_copybutton",
]

templates_path = ["_templates", sphinx_autosummary_accessors.templates_path]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"

# intersphinx is deliberately off: fetching objects.inv from xarray, dask, torch
# and numpy needs the network, and the build must work offline (CI runners and
# this project's machines cannot reach those sites).  Cross-references to
# xarray/numpy objects in docstrings therefore render as plain literals.
intersphinx_mapping: dict = {}

# -- autodoc / autosummary / numpydoc ----------------------------------------

autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # numpydoc's Parameters section carries the types

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()  # ruff's pydocstyle (numpy) checks the library

# -- MyST / myst-nb ----------------------------------------------------------

myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

# "force": every build executes every tutorial, so the outputs always come from
# the library as it is now (a clean CI build executes them anyway).  Set
# XATMODIST_DOCS_EXECUTE=cache locally to reuse outputs of unchanged notebooks
# (jupyter-cache in docs/_build/.jupyter_cache) while iterating on prose.
nb_execution_mode = os.environ.get("XATMODIST_DOCS_EXECUTE", "force")
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 300  # seconds per cell
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True  # ... and prints its traceback in the build log
nb_execution_in_temp = False  # cells run in the notebook's folder (docs/tutorials)
nb_kernel_rgx_aliases = {".*": "python3"}  # the venv's own ipykernel
# any output on stderr (a warning, a progress bar, a log line) becomes a Sphinx
# warning, hence an error under -W: the tutorials must run cleanly
nb_output_stderr = "warn"
nb_merge_streams = True

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"xatmodist {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}

copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

# -- model cards -> generated/models/<name>.md --------------------------------


def _hours(seconds) -> str:
    h = float(seconds) / 3600
    return f"{h:g} h"


_MD_SPECIAL = set("\\`*_[]<>|#~")


def _md(text) -> str:
    """Free text from a card as literal markdown (``*``, ``_``, ``|`` ... escaped)."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in str(text))


def _fmt(x) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, str):
        return x if x.startswith("`") and x.endswith("`") else _md(x)
    if isinstance(x, float):
        if 100 <= abs(x) < 1e6:
            return f"{x:.1f}"
        return f"{x:.3f}" if 0.01 <= abs(x) < 100 else f"{x:.3g}"
    return str(x)


def _table(rows, header=("", "")) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return out + [""]


def render_card(card: dict, folder: str) -> str:
    """Markdown page for one model card (missing fields are left out)."""
    name = card["name"]
    lines = [f"# `{name}`", ""]
    lines += [
        f"*{card.get('task', '?')}* — architecture `{card.get('architecture', '?')}`, "
        f"files in `pretrained/{folder}/` (`card.json`, `weights.safetensors`).",
        "",
        "```python",
        "import xatmodist",
        f'model = xatmodist.load_model("{name}")',
        "```",
        "",
    ]
    training = card.get("training", {}) or {}
    lines += ["## Data", ""]
    if training.get("data"):
        lines += [_md(training["data"]), ""]
    rows = [
        (f"`{v.get('name')}`", f"`{v.get('standard_name', '')}`", f"`{v.get('units', '')}`")
        for v in card.get("variables", [])
    ]
    lines += _table(rows, ("variable", "standard_name", "units"))

    lines += ["## Grid, patches and lag classes", ""]
    grid = card.get("grid", {}) or {}
    rows = [(k, grid[k]) for k in ("nlat", "nlon", "dlat", "dlon", "global") if k in grid]
    rows.append(("patch size (grid points)", card.get("patch_size")))
    if "feature_reduction" in card:
        rows.append(("feature grid reduction", card["feature_reduction"]))
    if "lag_classes" in card:
        lc = card["lag_classes"]
        rows.append(("lag step", _hours(card["lag_step_seconds"])))
        rows.append(("lag classes", f"{len(lc)}: {_hours(lc[0])} ... {_hours(lc[-1])}"))
    lines += _table(rows, ("", "value"))

    norm = card.get("normalisation")
    if norm:
        lines += ["## Normalisation", ""]
        if norm.get("method"):
            lines += [_md(norm["method"]), ""]
        names = [v.get("name") for v in card.get("variables", [])]
        rows = []
        for i, n in enumerate(names):
            mean = norm.get("mean", [None] * len(names))[i]
            std = norm.get("std", [None] * len(names))[i]
            rows.append((f"`{n}`", mean, std, n in norm.get("log_variables", [])))
        lines += _table(rows, ("variable", "mean", "std", "log transform"))
    dist = card.get("distance")
    if dist:
        lines += ["## Distance", ""]
        rows = [(k, dist[k]) for k in ("definition", "alpha", "alpha_fit") if k in dist]
        lines += _table(rows, ("", "value"))

    if training:
        lines += ["## Training", ""]
        keys = (
            "series",
            "time_steps",
            "block_length",
            "train_blocks",
            "val_blocks",
            "epochs",
            "pairs_per_epoch",
            "batch_size",
            "lr",
            "weight_decay",
            "seed",
            "torch_threads",
            "train_seconds",
        )
        rows = [(k, training[k]) for k in keys if k in training and k != "train_seconds"]
        if "train_seconds" in training:
            s = float(training["train_seconds"])
            rows.append(("training time", f"{s / 60:.1f} min ({s:.0f} s)"))
        lines += _table(rows, ("", "value"))
        if training.get("command"):
            lines += ["Reproduce with", "", "```bash", training["command"], "```", ""]
        hist = training.get("history") or []
        if hist:
            cols = [
                c
                for c in (
                    "epoch",
                    "train_loss",
                    "train_top1",
                    "val_top1",
                    "val_within1",
                    "loss",
                    "samples_per_second",
                    "seconds",
                )
                if c in hist[0]
            ]
            lines += ["Per epoch (validation: held-out time blocks of the training runs):", ""]
            lines += _table([[h.get(c) for c in cols] for h in hist], cols)

    metrics = card.get("metrics", {}) or {}
    held = metrics.get("heldout")
    lines += ["## Held-out metrics", ""]
    if held:
        if held.get("data"):
            lines += [f"Data: {_md(held['data'])}.", ""]
        rows = []
        labels = {
            "n_pairs": "pairs",
            "chance_top1": "chance (top-1)",
            "top1": "top-1 accuracy of the lag head",
            "within1": "within ±1 class",
            "mean_abs_class_error": "mean absolute class error",
            "spearman_learned": "Spearman ρ, learned distance vs lag",
            "spearman_l2": "Spearman ρ, l2 distance vs lag",
        }
        rows += [(label, held[k]) for k, label in labels.items() if k in held]
        if held.get("spearman_learned_ci95"):
            lo, hi = held["spearman_learned_ci95"]
            rows.append(("Spearman ρ, learned: bootstrap 95% interval", f"{lo:.3f} .. {hi:.3f}"))
        for k, label in (
            ("learned_nearest_centroid", "learned-distance nearest centroid"),
            ("l2_nearest_centroid", "l2 nearest centroid"),
        ):
            if isinstance(held.get(k), dict):
                rows.append(
                    (
                        f"{label}: top-1 / ±1",
                        f"{held[k].get('top1', float('nan')):.3f} / "
                        f"{held[k].get('within1', float('nan')):.3f}",
                    )
                )
        if rows:
            lines += _table(rows, ("metric", "value"))
        if card.get("task") == "inpainter":
            for hole, mine in (held.get("this_model") or {}).items():
                methods = {card["name"]: mine, **(held.get("baselines") or {}).get(hole, {})}
                rows = [
                    (f"`{name}`", f"`{var}`", m[var]["rmse"], m[var]["hf_spectral_error"])
                    for name, m in methods.items()
                    for var in m
                    if isinstance(m[var], dict)
                ]
                lines += [f"Holes of {hole} cells:", ""]
                lines += _table(
                    rows, ("method", "variable", "RMSE / std in the hole", "spectral error")
                )
        for method in ("this_model", "bicubic"):
            if card.get("task") == "inpainter":
                break
            if isinstance(held.get(method), dict):
                name = card["name"] if method == "this_model" else "bicubic interpolation"
                rows = [
                    (f"`{var}`", m["rmse"], m["band_spectral_error"], m["semivariogram_error"])
                    for var, m in held[method].items()
                    if isinstance(m, dict)
                ]
                lines += [f"{name}:", ""]
                lines += _table(
                    rows, ("variable", "RMSE / std", "band spectral error", "semivariogram error")
                )
        if "per_class_top1" in held and "lag_classes" in card:
            rows = [
                (_hours(lag), acc)
                for lag, acc in zip(card["lag_classes"], held["per_class_top1"], strict=False)
            ]
            lines += ["Top-1 accuracy per lag class:", ""]
            lines += _table(rows, ("lag", "top-1"))
        curve = held.get("lag_curve")
        if isinstance(curve, dict):
            rows = list(zip(curve["lag_hours"], curve["learned"], curve["l2"], strict=False))
            lines += ["Mean distance against lag over the held-out data (`lag_curve`):", ""]
            lines += _table(rows, ("lag (h)", "learned", "l2"))
            lines += [
                f"The learned distance grows with every lag: {curve['learned_monotonic']}; "
                f"the l2 distance: {curve['l2_monotonic']}.",
                "",
            ]
        day = held.get("diurnal")
        if isinstance(day, dict):
            rows = [
                ("predicted lag has the true lag's time of day", day["same_time_of_day"]),
                ("  by chance", day["chance_same_time_of_day"]),
                ("top-1 among those (beyond the diurnal phase)", day["top1_given_time_of_day"]),
            ]
            lines += ["The diurnal phase:", ""]
            lines += _table(rows, ("", "share"))
        if held.get("command"):
            lines += ["Re-measure with", "", "```bash", held["command"], "```", ""]
    else:
        lines += ["This card records no held-out metrics.", ""]
    if card.get("sha256"):
        lines += [f"Weights sha256: `{card['sha256']}`", ""]
    return "\n".join(lines)


def write_model_pages(src: Path = ROOT / "pretrained", dest: Path = DOCS / "generated" / "models"):
    """Render each ``pretrained/*/card.json``; rewrite a page only when it changed."""
    dest.mkdir(parents=True, exist_ok=True)
    written = set()
    for card_file in sorted(src.glob("*/card.json")):
        card = json.loads(card_file.read_text())
        page = dest / f"{card_file.parent.name}.md"
        text = render_card(card, card_file.parent.name)
        if not page.is_file() or page.read_text() != text:
            page.write_text(text)
        written.add(page.name)
    for stale in dest.glob("*.md"):
        if stale.name not in written:
            stale.unlink()
    return sorted(written)


write_model_pages()
