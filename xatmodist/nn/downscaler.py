"""Super-resolution network: residual CNN with sub-pixel (pixel-shuffle) upsampling."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Downscaler"]


class _Block(nn.Module):
    """conv-ReLU-conv with an identity skip (EDSR style, no batch norm)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        return x + self.conv2(torch.relu(self.conv1(x)))


class Downscaler(nn.Module):
    """Map coarse fields (B, C, h, w) to fields ``factor`` times finer (B, C, h*f, w*f).

    The network predicts a correction to the bicubic interpolation of the
    z-scored input; per-channel mean and std are persistent buffers, so inputs
    and outputs are in physical units.

    Parameters
    ----------
    in_channels : int
        Number of variables.
    factor : int
        Refinement factor, a power of 2.
    width, blocks : int
        Channels and residual blocks of the trunk (at the coarse resolution).
    upsample : {"shuffle", "resize"}
        Each 2x step: sub-pixel convolution (conv to 4x channels, pixel
        shuffle) or resize-convolution (nearest-neighbour upsampling, then a
        conv), which cannot produce the checkerboard patterns sub-pixel
        convolution is prone to (Odena et al., Distill 2016).
    noise : int
        0: deterministic.  ``k > 0``: a generator that samples; ``k`` maps of
        standard normal noise at the output resolution (``forward``'s
        ``noise``) enter the trunk after every 2x step, block-averaged to that
        step's resolution (and rescaled to unit variance), through a 3x3
        convolution initialised to zero: a deterministic model's weights load
        unchanged and give its deterministic output until training teaches
        the noise paths.
    noise_steps : int, optional
        Noise enters after the first ``noise_steps`` 2x steps only (None:
        after every step), and is drawn at the last of their resolutions.
        Noise at the output resolution, through two 3x3 convolutions, can only
        add grid-scale texture; stopping a step earlier leaves the last step's
        convolutions to shape it.
    """

    def __init__(
        self,
        in_channels: int,
        factor: int = 4,
        width: int = 48,
        blocks: int = 6,
        upsample: str = "shuffle",
        noise: int = 0,
        noise_steps: int | None = None,
    ):
        super().__init__()
        if upsample not in ("shuffle", "resize"):
            raise ValueError(f"upsample must be 'shuffle' or 'resize', got {upsample!r}")
        steps = int(round(math.log2(factor)))
        if factor < 2 or 2**steps != factor:
            raise ValueError(f"factor must be a power of 2 >= 2, got {factor}")
        self.factor = factor
        self.noise = int(noise)
        if self.noise < 0:
            raise ValueError(f"noise must be an integer >= 0, got {noise}")
        self.register_buffer("mean", torch.zeros(in_channels))
        self.register_buffer("std", torch.ones(in_channels))
        self.head = nn.Conv2d(in_channels, width, 3, padding=1)
        self.body = nn.Sequential(*[_Block(width) for _ in range(blocks)])
        up: list[nn.Module] = []
        for _ in range(steps):
            if upsample == "shuffle":
                up += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.ReLU()]
            else:
                up += [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(width, width, 3, padding=1),
                    nn.ReLU(),
                ]
        self.up = nn.Sequential(*up)
        self.steps = steps
        if noise_steps is not None and not 1 <= int(noise_steps) <= steps:
            raise ValueError(f"noise_steps must be None or 1..{steps}, got {noise_steps}")
        self.noise_steps = steps if noise_steps is None else int(noise_steps)
        # one noise path per noised 2x step, after it (zero-initialised: no effect until trained)
        self.noise_in = nn.ModuleList(
            nn.Conv2d(self.noise, width, 3, padding=1, bias=False)
            for _ in range(self.noise_steps if self.noise else 0)
        )
        for conv in self.noise_in:
            nn.init.zeros_(conv.weight)
        self.tail = nn.Conv2d(width, in_channels, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def noise_shape(self, batch: int, h: int, w: int) -> tuple[int, int, int, int]:
        """Shape of ``forward``'s ``noise`` for ``batch`` coarse inputs of ``h`` x ``w``."""
        f = 2**self.noise_steps
        return (batch, self.noise, h * f, w * f)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Refine ``x`` (physical units) by ``factor`` in both spatial dims.

        ``noise`` (:meth:`noise_shape`, standard normal) drives a sampling
        model; None gives the zero-noise output (a deterministic model's only one).
        """
        return self.refine(*self.trunk(x), noise)

    def sample(self, x: torch.Tensor, noises: Sequence[torch.Tensor]) -> torch.Tensor:
        """One refinement of ``x`` per noise in ``noises``, stacked as (B, M, C, H, W).

        The trunk does not see the noise, so it runs once for all samples;
        sample ``m`` equals ``forward(x, noises[m])`` exactly.
        """
        t = self.trunk(x)
        return torch.stack([self.refine(*t, n) for n in noises], dim=1)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The noise-free part of a pass: the bicubic base and the coarse features."""
        m, s = self.mean.view(1, -1, 1, 1), self.std.view(1, -1, 1, 1)
        z = (x - m) / s
        base = F.interpolate(z, scale_factor=self.factor, mode="bicubic", align_corners=False)
        h = self.head(z)
        return base, self.body(h) + h

    def refine(
        self, base: torch.Tensor, h: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """The up-sampling steps on the trunk's output ``(base, h)``, with ``noise``.

        ``h`` has the input's batch and coarse grid, which give the noise's shape.
        """
        m, s = self.mean.view(1, -1, 1, 1), self.std.view(1, -1, 1, 1)
        if self.noise == 0 or noise is None:
            return (base + self.tail(self.up(h))) * s + m
        want = self.noise_shape(h.shape[0], *h.shape[2:])
        if tuple(noise.shape) != want:
            raise ValueError(f"noise must have shape {want}, got {tuple(noise.shape)}")
        per = len(self.up) // self.steps  # modules per 2x step
        for i in range(self.steps):
            h = self.up[i * per : (i + 1) * per](h)
            if i < self.noise_steps:
                k = 2**self.noise_steps // 2 ** (i + 1)  # block size: noise grid to this step's
                n = F.avg_pool2d(noise, k) * k if k > 1 else noise
                h = h + self.noise_in[i](n.to(h.dtype))
        return (base + self.tail(h)) * s + m
