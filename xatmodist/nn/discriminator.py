"""Patch discriminator for adversarial training of the downscaler (PhIRE-style GAN term)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PatchDiscriminator"]


class PatchDiscriminator(nn.Module):
    """Convolutional critic: one real/fake logit per receptive field (PatchGAN).

    Strided 3x3 convolutions with leaky ReLU halve the grid ``depth`` times
    and a 1x1 convolution gives a logit map; the adversarial loss averages it.
    It sees z-scored fields, so it judges structure, not units.  Only used
    during training: it is never saved with the downscaler's weights.

    Parameters
    ----------
    in_channels : int
        Number of variables.
    width : int
        Channels of the first layer (doubled at each downsampling).
    depth : int
        Number of stride-2 stages.
    """

    def __init__(self, in_channels: int, width: int = 32, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        c = width
        for _ in range(depth):
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            c *= 2
        layers.append(nn.Conv2d(c, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit map (B, 1, H / 2**depth, W / 2**depth) of z-scored fields ``x``."""
        return self.net(x)
