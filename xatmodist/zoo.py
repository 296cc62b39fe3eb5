"""Model zoo: pretrained models shipped in ``pretrained/``, their cards, loading.

A model is a folder with ``card.json`` (everything needed to rebuild and use
the network; read into a typed card, :mod:`xatmodist.cards`) and
``weights.safetensors`` (no pickle: loading never executes code).  The card
holds the sha256 of the weights, checked on every load.  Nothing is ever
downloaded.  The package ships a curated zoo; superseded models are recorded
in ``pretrained/superseded/superseded.json`` of a source checkout (successor,
numbers, recipe, sha256, the commit that last held the weights); their weights
are not kept.  Retrained from its recipe, such a model is written to
``pretrained/superseded/NAME`` (not installed, not listed), loadable by folder
or with ``XATMODIST_MODELS``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .cards import TASKS, Card
from .errors import ModelError, ModelNotFoundError, WeightsError

__all__ = [
    "Model",
    "format_models",
    "list_models",
    "load_model",
    "model_dirs",
    "model_names",
    "require_task",
    "DEFAULT_ENCODER",
]

log = logging.getLogger(__name__)

#: the encoder used when none is named, and the one name of it: no zoo encoder's
#: distance, shipped or superseded, orders held-out lags clearly better (every
#: card's Spearman rho lies within this one's bootstrap 95% interval;
#: tests/test_pretrained.py checks it).  v9 is v6 distilled into a trunk a fifth of
#: its cost, with per-channel distance weights: held-out rho 0.901 (v6: 0.900) at
#: about 2x the fields/s of LPIPS-AlexNet (v6: 0.5x); v6 stays in the zoo as the best
#: lag classifier (top-1 0.639 against 0.608)
DEFAULT_ENCODER = "atmodist-swe-vd-v9"
CARD_FILE = "card.json"
WEIGHTS_FILE = "weights.safetensors"
#: superseded models (recorded, weights not kept): ``pretrained/superseded/`` of a checkout
SUPERSEDED = "superseded"


def model_dirs() -> list[Path]:
    """Folders searched for named models, in order.

    ``$XATMODIST_MODELS`` (``os.pathsep``-separated) first, then the
    ``pretrained/`` folder installed inside the package, then the one at the
    top of a source checkout.
    """
    dirs = [Path(p) for p in os.environ.get("XATMODIST_MODELS", "").split(os.pathsep) if p]
    dirs.append(Path(str(resources.files("xatmodist"))) / "pretrained")
    dirs.append(Path(__file__).resolve().parent.parent / "pretrained")
    return [d for d in dirs if d.is_dir()]


def model_names(task: str | None = None) -> list[str]:
    """Names of the models in the zoo, optionally only those of one ``task``.

    Examples
    --------
    >>> "atmodist-swe-vd" in xatmodist.model_names()
    True
    """
    return [name for name, _ in _zoo_cards(task)]


def list_models(task: str | None = None):
    """The zoo as a table: one row per model (of ``task``), the default encoder first.

    Returns
    -------
    pandas.DataFrame
        Indexed by model name, with columns ``task``, ``summary`` (one line),
        ``headline`` (the main held-out metric), ``size_mb`` (of the weights)
        and ``default`` (True for :data:`DEFAULT_ENCODER`); rows by task
        (encoders, downscalers, inpainters), the default first.  For the names
        alone use :func:`model_names`; print it with :func:`format_models`.

    Examples
    --------
    >>> table = xatmodist.list_models(task="encoder")
    >>> table.index[0] == xatmodist.zoo.DEFAULT_ENCODER
    True
    """
    import pandas as pd

    rows = [
        {
            "name": name,
            "task": card.task,
            "summary": card.summary,
            "headline": card.headline,
            "size_mb": card.size_mb,
            "default": name == DEFAULT_ENCODER,
        }
        for name, card in _zoo_cards(task, read=True)
    ]
    columns = ["name", "task", "summary", "headline", "size_mb", "default"]
    table = pd.DataFrame(rows, columns=columns)
    rank = table["task"].map({t: i for i, t in enumerate(TASKS)})
    table = table.assign(_rank=rank, _first=~table["default"])
    table = table.sort_values(["_rank", "_first", "name"], kind="stable")
    return table.drop(columns=["_rank", "_first"]).set_index("name")


def format_models(task: str | None = None) -> str:
    """The zoo (of ``task``) as a text table, the default encoder marked with ``*``."""
    table = list_models(task)
    if table.empty:
        return "No models found" + (f" of task {task!r}." if task else ".")
    lines = []
    for name, row in table.iterrows():
        size = "" if row["size_mb"] != row["size_mb"] else f"{row['size_mb']:.1f} MB"
        mark = "*" if row["default"] else " "
        lines.append((f"{mark} {name}", row["task"], size, row["summary"], row["headline"]))
    widths = [max(len(str(r[i])) for r in lines) for i in range(4)]
    out = [
        "  ".join(str(c).ljust(w) for c, w in zip(r[:4], widths, strict=False)).rstrip()
        + (f"\n      {r[4]}" if r[4] else "")
        for r in lines
    ]
    return "\n".join(out + [f"* default encoder ({DEFAULT_ENCODER})"])


def _zoo_cards(task: str | None = None, *, read: bool = False):
    """(name, card) of each zoo model (of ``task``), first folder first; cards read once.

    Without ``task`` or ``read`` the card is not read (None); invalid cards are
    skipped when it is.
    """
    seen: set[str] = set()
    for d in model_dirs():
        for sub in sorted(d.iterdir()):
            path = sub / CARD_FILE
            if sub.name in seen or not path.is_file():
                continue
            card = None
            if task is not None or read:
                try:
                    card = Card.from_dict(json.loads(path.read_text()), str(path))
                except (OSError, ValueError, ModelError):
                    continue
                if task is not None and card.task != task:
                    continue
            seen.add(sub.name)
            yield sub.name, card


def reanalysis_models(task: str = "encoder") -> list[str]:
    """Zoo models of ``task`` trained on real reanalysis (:attr:`Card.data_kind`)."""
    return [name for name, card in _zoo_cards(task) if card.data_kind == "reanalysis"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Model:
    """A network with its card.

    Attributes
    ----------
    card : Card
        The typed model card (:class:`~xatmodist.cards.EncoderCard`,
        :class:`~xatmodist.cards.DownscalerCard` or
        :class:`~xatmodist.cards.InpainterCard`; see ``pretrained/*/card.json``).
        A plain dict passed here is validated with
        :meth:`Card.from_dict <xatmodist.cards.Card.from_dict>`.
    module : torch.nn.Module
        The network, in eval mode.
    path : Path or None
        Folder it was loaded from.
    """

    card: Card
    module: Any
    path: Path | None = None

    def __post_init__(self):
        if not isinstance(self.card, Card):
            self.card = Card.from_dict(self.card, "Model(card=...)")

    @property
    def name(self) -> str:
        """The model's name."""
        return self.card.name

    @property
    def task(self) -> str:
        """``"encoder"``, ``"downscaler"`` or ``"inpainter"``."""
        return self.card.task

    @property
    def sha256(self) -> str | None:
        """sha256 of the weights file (None before the first save)."""
        return self.card.sha256

    @property
    def variables(self) -> list[dict]:
        """The input variables as ``{name, standard_name, units}`` dicts."""
        return self.card.variable_dicts

    def save(self, path: str | Path) -> Path:
        """Write ``weights.safetensors`` and ``card.json`` (with sha256) to a folder."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.module.state_dict().items()}
        weights = path / WEIGHTS_FILE
        fd, tmp = tempfile.mkstemp(dir=path, suffix=".tmp")
        os.close(fd)
        save_file(state, tmp, metadata={"name": self.card.name})
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; models are shared on clusters
        os.replace(tmp, weights)
        self.card.sha256 = _sha256(weights)
        self.card.weights_bytes = weights.stat().st_size
        (path / CARD_FILE).write_text(self.card.to_json())
        self.path = path
        return path

    def reference(self) -> str:
        """A folder path that loads this model in any process of this machine.

        The folder it was saved to or loaded from; a model never saved (as a
        trainer returns it without ``out=``) is written once to a private
        temporary folder, removed when the process exits (the model itself is
        not changed).  Kernels and dask workers load the model from this path.
        """
        if self.path is not None:
            return str(self.path)
        tmp = self.__dict__.get("_unsaved_copy")
        if tmp is None or not (Path(tmp) / WEIGHTS_FILE).is_file():
            tmp = _unsaved_folder()
            Model(card=copy.deepcopy(self.card), module=self.module).save(tmp)
            self.__dict__["_unsaved_copy"] = tmp
        return str(tmp)

    def __getstate__(self):  # a Model travelling to a dask worker goes as its path
        return {"path": self.reference()}

    def __repr__(self) -> str:
        return f"<xatmodist.Model {self.summary()}>"

    def summary(self) -> str:
        """One line: name, task, variables with units, grid, patch size, headline metric."""
        c = self.card
        names = ", ".join(f"{v.name} [{v.units or '?'}]" for v in c.variables)
        parts = [
            f"{c.name!r}",
            c.task,
            f"variables {names}",
            f"grid {c.grid.dlat:.4g} x {c.grid.dlon:.4g} deg",
            f"patch {c.patch_size}",
        ]
        if c.task == "downscaler":
            parts.insert(2, f"x{c.input_factor}")
        headline = c.headline
        if headline:
            parts.append(headline)
        if self.path is None:
            parts.append("not saved")
        return ", ".join(parts)

    def __setstate__(self, state):
        other = load_model(state["path"])
        self.__dict__.update(other.__dict__)

    def _repr_markdown_(self) -> str:
        """The model's page (as in the documentation), for Jupyter."""
        from ._render import render_card

        return render_card(self.card, self._folder_text())

    def _folder_text(self) -> str:
        return str(self.path) if self.path is not None else "(not saved)"


#: prefix of the private folders that hold models never saved (Model.reference)
_UNSAVED_PREFIX = "xatmodist-unsaved-"
_UNSAVED: list[Path] = []


def _unsaved_folder() -> Path:
    import atexit
    import shutil

    if not _UNSAVED:
        atexit.register(lambda: [shutil.rmtree(p, ignore_errors=True) for p in _UNSAVED])
    path = Path(tempfile.mkdtemp(prefix=_UNSAVED_PREFIX))
    _UNSAVED.append(path)
    return path


def _resolve(name_or_path: str | os.PathLike) -> Path:
    p = Path(name_or_path)
    if (p / CARD_FILE).is_file():
        return p
    if p.name == CARD_FILE and p.is_file():
        return p.parent
    for d in model_dirs():
        if (d / str(name_or_path) / CARD_FILE).is_file():
            return d / str(name_or_path)
    if _UNSAVED_PREFIX in str(name_or_path):
        raise ModelNotFoundError(
            f"No model at {str(name_or_path)!r}: the model was never saved, so it travels as a "
            "temporary copy on the disk of the process that trained it, which this process "
            "cannot read (a worker on another machine, or the training process has ended). "
            "Save it with model.save(folder) on storage every worker can read, and pass that "
            "folder (or the saved model)."
        )
    raise ModelNotFoundError(
        f"No model {str(name_or_path)!r}: expected one of {model_names()} or a folder holding "
        f"{CARD_FILE} and {WEIGHTS_FILE}. Check the name with xatmodist.list_models()."
        f"{_superseded_hint(name_or_path)}"
    )


def _superseded_hint(name) -> str:
    """How to get a superseded model of that name back (its record in a source checkout)."""
    folder = Path(__file__).resolve().parent.parent / "pretrained" / SUPERSEDED
    record = folder / "superseded.json"
    rec = json.loads(record.read_text()).get(str(name)) if record.is_file() else None
    if rec is None:
        return ""
    commit = rec.get("weights_in_commit")
    return (
        f" {str(name)!r} was superseded by {rec['by']!r} and its weights are no longer kept: "
        f"retrain it with `xatmodist train --recipe {rec['recipe']}` (written to "
        f"{folder / str(name)}; load it by that folder or with XATMODIST_MODELS={folder})"
        + (
            f", or check out commit {commit}."
            if commit
            else " (a training stage whose weights were never committed)."
        )
    )


_CACHE: dict[tuple[str, float], Model] = {}
_CACHE_LOCK = threading.Lock()


def load_model(
    name_or_path: str | os.PathLike | Model | None = None, *, task: str | None = None
) -> Model:
    """Load a model by zoo name or folder path (cached per process).

    Parameters
    ----------
    name_or_path : str, path or Model, optional
        A name from :func:`list_models`, a folder with ``card.json`` and
        ``weights.safetensors``, or an already loaded :class:`Model`
        (returned as is).  Default: the default encoder.
    task : {"encoder", "downscaler", "inpainter"}, optional
        The task the caller needs; another model's task raises
        :class:`ModelError` naming the zoo's models of that task.

    Returns
    -------
    Model
        The network in eval mode with its card; the same object on later calls
        in this process while the files are unchanged.

    Raises
    ------
    ModelNotFoundError
        Unknown name or path.
    WeightsError
        The weights file is missing, truncated, not safetensors, does not match
        the sha256 in the card, or does not fit the architecture.
    ModelError
        The card is invalid, or the model is not of ``task``.
    """
    if task is not None and task not in TASKS:
        raise ModelError(f"task must be one of {TASKS}; got {task!r}.")
    model = _load(name_or_path)
    if task is not None:
        require_task(model, task)
    return model


def require_task(model: Model, task: str, role: str | None = None, purpose: str = "this") -> None:
    """Raise :class:`ModelError` unless ``model`` is of ``task``, naming the zoo's that are.

    ``role`` names the argument the model came in (``"init"``: the message
    reads ``init='...' is a downscaler``), ``purpose`` what needs the task.
    """
    got = model.card.task
    if got == task:
        return
    who = f"{role}={model.name!r}" if role else f"Model {model.name!r}"
    raise ModelError(
        f"{who} is {_article(got)} {got}, but {purpose} needs {_article(task)} {task}. The "
        f"zoo's {task}s are {model_names(task=task)}; pass one of those (or a folder holding "
        "one)."
    )


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _load(name_or_path) -> Model:
    if isinstance(name_or_path, Model):
        return name_or_path
    if name_or_path is not None and not isinstance(name_or_path, (str, os.PathLike)):
        raise ModelError(
            f"model must be a zoo name, a folder path or a loaded Model; got "
            f"{type(name_or_path).__name__} {name_or_path!r}. See xatmodist.list_models()."
        )
    path = _resolve(DEFAULT_ENCODER if name_or_path is None else name_or_path).resolve()
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise WeightsError(
            f"{path}: expected weights in {WEIGHTS_FILE}, found none. "
            "Only safetensors weights are loaded (pickle checkpoints can execute code); "
            "convert with Model.save()."
        )
    key = (str(path), weights.stat().st_mtime + (path / CARD_FILE).stat().st_mtime)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        model = _load_uncached(path)
        _CACHE[key] = model
        return model


def _load_uncached(path: Path) -> Model:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .nn import build

    try:
        card = json.loads((path / CARD_FILE).read_text())
    except ValueError as err:
        raise ModelError(f"{path / CARD_FILE}: not valid JSON ({err}).") from err
    card = Card.from_dict(card, str(path / CARD_FILE))
    weights = path / WEIGHTS_FILE
    expected = card.sha256
    actual = _sha256(weights)
    if not isinstance(expected, str):
        raise WeightsError(
            f"{path / CARD_FILE}: expected the 'sha256' of the weights as a hex string, got "
            f"{expected!r}; cannot verify {weights}. "
            "Save the model with Model.save(), which records it."
        )
    if actual != expected:
        raise WeightsError(
            f"{weights}: sha256 {actual[:16]}... does not match the card's {expected[:16]}...; "
            "the file is corrupt or was replaced. Restore it or re-save the model."
        )
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(
            f"{weights}: expected a safetensors file, got one that cannot be read ({err}); "
            "it is truncated or in another format (pickle checkpoints are not loaded). "
            "Restore it or re-save the model with Model.save()."
        ) from err
    n_in = card.args.get("in_channels")
    if n_in is not None and n_in != len(card.variables):
        raise ModelError(
            f"{path / CARD_FILE}: the network takes in_channels={n_in!r} but the card lists "
            f"{len(card.variables)} variables {card.variable_names!r}; "
            "they must agree. Fix the card or re-save the model."
        )
    try:
        module = build(card.architecture, card.args)
    except (TypeError, ValueError, IndexError, KeyError, RuntimeError) as err:
        raise ModelError(
            f"{path / CARD_FILE}: args {card.args!r} do not fit {card.architecture} "
            f"({type(err).__name__}: {err}). Fix the card's args or re-save the model."
        ) from err
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(line.strip() for line in str(err).splitlines()[:2])
        raise WeightsError(
            f"{weights}: tensors do not fit {card.architecture}({card.args}): "
            f"{detail[:400]}. The card's args must be those the weights were saved with; "
            "restore the card or re-save the model."
        ) from err
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    log.debug("loaded model %s from %s", card.name, path)
    return Model(card=card, module=module, path=path)
