"""Checkpoints and the metrics log shared by the training loops.

``checkpoint.pt`` is written atomically (temp file, then rename) after every
epoch and loaded with ``weights_only=True`` (no code execution);
``metrics.jsonl`` gets a line after its checkpoint is on disk and is rewritten
from the checkpoint's history when a run starts, so it never lists an epoch
twice.

The checkpoint also holds the run's settings (``config``, JSON): a resumed call
must pass the same ones (:func:`check_config`), and a folder that already
holds a run is not overwritten unless asked (:func:`check_out`, :func:`clear`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from .._validate import check_bool
from ..errors import InputError

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
MODEL = "model"

__all__ = [
    "CHECKPOINT",
    "METRICS",
    "MODEL",
    "atomic_save",
    "atomic_write_text",
    "check_config",
    "check_out",
    "clear",
    "jsonable",
    "load",
    "reset_log",
    "save",
]


def _plain(obj):
    """``json.dumps`` fallback: numpy scalars and arrays as Python values, the rest as text."""
    if isinstance(obj, np.generic | np.ndarray):
        return obj.tolist()
    return str(obj)


def jsonable(config: Mapping) -> dict:
    """``config`` as it reads back from JSON (tuples as lists, numpy scalars as numbers)."""
    return json.loads(json.dumps(dict(config), default=_plain))


def check_out(out, *, resume, overwrite) -> Path | None:
    """``out`` as a Path; refuse a folder that holds an earlier run unless asked.

    An earlier run is a checkpoint (``out/checkpoint.pt``) or a saved model
    (``out/model``).  ``resume=True`` continues it, ``overwrite=True`` replaces
    it (the caller removes it with :func:`clear` once its arguments are
    checked); without either, a second run into the same folder would silently
    replace the first one's checkpoint, metrics and model.
    """
    resume = check_bool(resume, "resume")
    overwrite = check_bool(overwrite, "overwrite")
    if resume and overwrite:
        raise InputError(
            "resume=True continues the run in out, overwrite=True replaces it; got both. "
            "Pass only one of them."
        )
    if out is None:
        return None
    out = Path(out)
    if resume or overwrite:
        return out
    found = [str(out / n) for n in (CHECKPOINT, MODEL) if (out / n).exists()]
    if found:
        raise InputError(
            f"The out folder {str(out)!r} already holds a training run ({', '.join(found)}), "
            "which this call would overwrite. Pass resume=True to continue that run, "
            "overwrite=True to replace it with a new one, or another out folder."
        )
    return out


def clear(out: Path) -> None:
    """Remove an earlier run from ``out``: checkpoint, its temp file, metrics, saved model.

    Of the model folder only the files :meth:`xatmodist.zoo.Model.save` writes
    are removed (the folder too, if that empties it).
    """
    from ..zoo import CARD_FILE, WEIGHTS_FILE

    for name in (CHECKPOINT, Path(CHECKPOINT).with_suffix(".tmp").name, METRICS):
        (out / name).unlink(missing_ok=True)
    model = out / MODEL
    if model.is_dir():
        for name in (WEIGHTS_FILE, CARD_FILE):
            (model / name).unlink(missing_ok=True)
        try:
            model.rmdir()
        except OSError:  # other files of the user's: keep them
            pass


def check_config(
    state: dict,
    config: Mapping,
    path: Path,
    *,
    finished_only: Iterable[str] = (),
    finished: bool = False,
) -> bool:
    """Refuse to resume the checkpoint ``state`` (read from ``path``) with other settings.

    ``config`` holds the current call's settings, as :func:`save` stores them.
    Settings in ``finished_only`` change only what is computed after the last
    epoch (e.g. the encoder's distance) and may differ once the saved run is
    ``finished``.  Returns False for a checkpoint written before settings were
    saved (nothing compared; the caller may check what it can), else True.
    """
    if "config" not in state:
        return False
    saved = json.loads(state["config"])
    now = jsonable(config)
    free = set(finished_only) if finished else set()
    missing = object()
    changed = [
        (k, saved.get(k, missing), now.get(k, missing))
        for k in list(saved) + [k for k in now if k not in saved]
        if k not in free and saved.get(k, missing) != now.get(k, missing)
    ]
    if changed:

        def show(v):
            return "(not set)" if v is missing else json.dumps(v)

        lines = "; ".join(f"{k}: {show(a)} -> {show(b)}" for k, a, b in changed)
        was = ", ".join(f"{k}={show(a)}" for k, a, _ in changed)
        given = ", ".join(f"{k}={show(b)}" for k, _, b in changed)
        raise InputError(
            f"{path} belongs to a run with other settings (saved -> this call): {lines}. "
            f"Resuming continues that run and needs its settings: resume with {was} "
            f"instead of {given}, or start a new run in another out folder "
            "(or in this one with overwrite=True instead of resume=True)."
        )
    return True


def atomic_save(obj, path: Path) -> None:
    """torch.save to ``path`` via a temp file and a rename."""
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to ``path`` via a temp file and a rename."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load(path: Path) -> dict:
    """The checkpoint's state (tensors and plain types only)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def restore(state: dict, net, opt, sched, extra: dict | None = None) -> tuple[int, list, float]:
    """Load ``state`` into the objects; return (next epoch, history, train seconds).

    ``extra``: more objects with ``load_state_dict`` (e.g. a discriminator and
    its optimizer), by the names they were saved under.
    """
    net.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    for key, obj in (extra or {}).items():
        obj.load_state_dict(state["extra"][key])
    return int(state["epoch"]) + 1, json.loads(state["history"]), float(state["train_seconds"])


def reset_log(out: Path, history: list) -> None:
    """Make ``metrics.jsonl`` list exactly the epochs of the run being continued."""
    atomic_write_text(out / METRICS, "".join(json.dumps(r) + "\n" for r in history))


def save(
    out: Path,
    *,
    epoch: int,
    net,
    opt,
    sched,
    history: list,
    seconds: float,
    extra: dict | None = None,
    config: Mapping | None = None,
) -> None:
    """Checkpoint after ``epoch``, then append its metrics line (``history[-1]``).

    ``extra``: more objects with ``state_dict`` to save, by name.  ``config``:
    the run's settings (JSON-able), checked by :func:`check_config` on resume.
    """
    atomic_save(
        {
            "epoch": epoch,
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "history": json.dumps(history),
            "train_seconds": seconds,
            **({"extra": {k: v.state_dict() for k, v in extra.items()}} if extra else {}),
            **({"config": json.dumps(jsonable(config))} if config is not None else {}),
        },
        out / CHECKPOINT,
    )
    with open(out / METRICS, "a") as f:
        f.write(json.dumps(history[-1]) + "\n")
