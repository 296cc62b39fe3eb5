"""Stand-ins for superseded models in cost benchmarks.

Superseded weights are no longer kept in the repository
(``pretrained/superseded/superseded.json`` records each one: its recipe,
numbers, sha256 and the commit that last held its weights).  What a model
costs per step depends on its architecture alone, so a cost baseline such as
v4 is rebuilt from the recorded architecture with random weights.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import torch

import xatmodist
from xatmodist.nn import AtmoDistNet
from xatmodist.zoo import Model

RECORD = Path(__file__).resolve().parents[1] / "pretrained" / "superseded" / "superseded.json"


def architecture_twin(name: str, seed: int = 0) -> str:
    """A saved encoder with superseded ``name``'s architecture and random weights; its folder.

    The card, normalisation and variables are those of its successor (``by`` in
    the record); the card's name says what it is.
    """
    rec = json.loads(RECORD.read_text())[name]
    if rec["architecture"] != "AtmoDistNet":
        raise ValueError(f"{name} is a {rec['architecture']}; only encoders are rebuilt here")
    successor = xatmodist.load_model(rec["by"])
    torch.manual_seed(seed)
    net = AtmoDistNet(**rec["args"]).eval()
    net.normaliser.load_state_dict(successor.module.normaliser.state_dict())
    card = dataclasses.replace(
        successor.card, name=f"{name}-architecture-random-weights", args=dict(rec["args"])
    )
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-")) / "model"
    Model(card=card, module=net, path=None).save(folder)
    return str(folder)
