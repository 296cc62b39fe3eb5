"""Pure-torch modules; nothing here imports xarray.

``ARCHITECTURES`` maps the ``architecture`` name in a model card to the class
that rebuilds it from the card's ``args``.
"""

from __future__ import annotations

from torch import nn

from .analog import SuccessorMetric
from .discriminator import PatchDiscriminator
from .downscaler import Downscaler
from .encoder import AtmoDistNet, Encoder, Normaliser, ResBlock
from .inpainter import Inpainter

__all__ = [
    "ARCHITECTURES",
    "AtmoDistNet",
    "Downscaler",
    "Encoder",
    "Inpainter",
    "Normaliser",
    "PatchDiscriminator",
    "ResBlock",
    "SuccessorMetric",
    "build",
]

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "AtmoDistNet": AtmoDistNet,
    "Downscaler": Downscaler,
    "Inpainter": Inpainter,
    "SuccessorMetric": SuccessorMetric,
}


def build(architecture: str, args: dict) -> nn.Module:
    """Instantiate ``architecture`` with keyword ``args`` (KeyError if unknown)."""
    return ARCHITECTURES[architecture](**args)
