"""Checkpoints and the metrics log shared by the training loops.

``checkpoint.pt`` is written atomically (temp file, then rename) after every
epoch and loaded with ``weights_only=True`` (no code execution);
``metrics.jsonl`` gets a line after its checkpoint is on disk and is rewritten
from the checkpoint's history when a run starts, so it never lists an epoch
twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"

__all__ = ["CHECKPOINT", "METRICS", "atomic_save", "atomic_write_text", "load", "reset_log", "save"]


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
) -> None:
    """Checkpoint after ``epoch``, then append its metrics line (``history[-1]``).

    ``extra``: more objects with ``state_dict`` to save, by name.
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
        },
        out / CHECKPOINT,
    )
    with open(out / METRICS, "a") as f:
        f.write(json.dumps(history[-1]) + "\n")
