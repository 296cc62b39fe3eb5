"""Pure-torch modules; nothing here imports xarray.

``ARCHITECTURES`` maps the ``architecture`` name in a model card to the class
that rebuilds it from the card's ``args``.
"""

from __future__ import annotations

from torch import nn

from .encoder import AtmoDistNet, Encoder, Normaliser, ResBlock

__all__ = ["ARCHITECTURES", "AtmoDistNet", "Encoder", "Normaliser", "ResBlock", "build"]

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "AtmoDistNet": AtmoDistNet,
}


def build(architecture: str, args: dict) -> nn.Module:
    """Instantiate ``architecture`` with keyword ``args`` (KeyError if unknown)."""
    return ARCHITECTURES[architecture](**args)
