"""Sphinx configuration of the xatmodist documentation.

Build with ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``).
The tutorials in ``tutorials/`` are MyST notebooks executed at build time, and
one page per pretrained model is rendered from ``pretrained/*/card.json``
into ``generated/models/`` (the superseded ones' records,
``pretrained/superseded/superseded.json``, into the page ``generated/superseded.md``)
before Sphinx reads the sources, so every number on the site comes from code
or files in this repository.

The build needs no network: intersphinx is not used (see below).
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import sphinx_autosummary_accessors

import xatmodist
from xatmodist._render import render_card
from xatmodist.cards import Card

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

# -- model cards -> generated/models/<name>.md; superseded.json -> generated/superseded.md
# the pages come from the same code as a model's own page in Jupyter
# (xatmodist._render.render_card, Model._repr_markdown_)


def _write_if_changed(page: Path, text: str) -> None:
    if not page.is_file() or page.read_text() != text:
        page.write_text(text)


def write_model_pages(
    src: Path = ROOT / "pretrained",
    dest: Path = DOCS / "generated" / "models",
):
    """Render each ``src/*/card.json``; rewrite a page only when it changed."""
    dest.mkdir(parents=True, exist_ok=True)
    written = set()
    for card_file in sorted(src.glob("*/card.json")):
        card = Card.from_dict(json.loads(card_file.read_text()), str(card_file))
        folder = card_file.parent.name
        page = dest / f"{folder}.md"
        _write_if_changed(page, render_card(card, f"pretrained/{folder}/"))
        written.add(page.name)
    for stale in dest.glob("*.md"):
        if stale.name not in written:
            stale.unlink()
    return sorted(written)


def write_superseded_page(
    src: Path = ROOT / "pretrained" / "superseded", dest: Path = DOCS / "generated"
):
    """``superseded.md``: the superseded models' records, headline numbers and successors."""
    record = json.loads((src / "superseded.json").read_text())
    lines = [
        "# Superseded models",
        "",
        "The documentation and the changelog quote these models' numbers; their weights are",
        "no longer kept in the repository. `pretrained/superseded/superseded.json` records",
        "each one: its successor, its held-out numbers, its recipe, the sha256 of its weights",
        "and the commit that last held them (none for a training stage whose weights were",
        "never committed). To use one again, retrain it from its recipe",
        "(`xatmodist train --recipe recipes/NAME.toml` writes it to",
        "`pretrained/superseded/NAME`, loadable by that folder) or check out that commit.",
        "",
        "| model | task | held-out | superseded by | why | recipe |",
        "|---|---|---|---|---|---|",
    ]
    for name, rec in sorted(record.items()):
        lines.append(
            f"| `{name}` | {rec['task']} | {rec['headline'] or '-'} | `{rec['by']}` "
            f"| {rec['why']} | `{rec['recipe']}` |"
        )
    _write_if_changed(dest / "superseded.md", "\n".join(lines) + "\n")


write_model_pages()
write_superseded_page()
