"""Inpainting network: a small U-Net that sees the field with holes and the mask."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Inpainter"]


class _Block(nn.Module):
    """conv-ReLU-conv with an identity skip; ``dilation`` widens the receptive field."""

    def __init__(self, width: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        return x + self.conv2(torch.relu(self.conv1(torch.relu(x))))


class Inpainter(nn.Module):
    """Reconstruct fields (B, C, H, W) from their observed part and a hole mask.

    The input is z-scored (per-channel ``mean``/``std`` persistent buffers),
    set to zero in the holes and stacked with the mask; an encoder-decoder
    with skip connections (``levels`` halvings, dilated residual blocks at the
    coarsest level so that the receptive field spans the largest holes)
    predicts the whole field.  ``H`` and ``W`` must be multiples of
    ``2**levels`` (:meth:`multiple`); callers pad.

    Parameters
    ----------
    in_channels : int
        Number of variables.
    width : int
        Channels at full resolution; doubled per level up to 4x.
    levels : int
        Number of 2x downsamplings.
    blocks : int
        Dilated residual blocks at the coarsest level (dilations 1, 2, 4, ...).
    noise : int
        0: deterministic.  ``k > 0``: a generator that samples; ``k`` maps of
        standard normal noise (``forward``'s ``noise``, at the field's
        resolution), zero where observed, enter at full resolution and,
        block-averaged and rescaled to unit variance, at the coarsest level,
        each through a 3x3 convolution initialised to zero: a deterministic
        model's weights load unchanged and give its deterministic output.
    """

    def __init__(
        self, in_channels: int, width: int = 24, levels: int = 3, blocks: int = 3, noise: int = 0
    ):
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        if int(noise) < 0:
            raise ValueError(f"noise must be an integer >= 0, got {noise}")
        self.noise = int(noise)
        self.levels = levels
        self.register_buffer("mean", torch.zeros(in_channels))
        self.register_buffer("std", torch.ones(in_channels))
        ws = [width * min(2**i, 4) for i in range(levels + 1)]
        self.head = nn.Conv2d(in_channels + 1, ws[0], 3, padding=1)
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ws[i], ws[i + 1], 4, stride=2, padding=1), _Block(ws[i + 1]))
            for i in range(levels)
        )
        self.mid = nn.Sequential(*[_Block(ws[-1], dilation=2**i) for i in range(blocks)])
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(ws[i + 1], ws[i], 3, padding=1),
            )
            for i in range(levels)
        )
        self.merge = nn.ModuleList(nn.Conv2d(2 * ws[i], ws[i], 3, padding=1) for i in range(levels))
        self.tail = nn.Conv2d(ws[0], in_channels, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        # noise paths at full resolution and at the coarsest level (zero-initialised)
        self.noise_in = nn.ModuleList(
            nn.Conv2d(self.noise, w, 3, padding=1, bias=False)
            for w in ((ws[0], ws[-1]) if self.noise else ())
        )
        for conv in self.noise_in:
            nn.init.zeros_(conv.weight)

    @property
    def multiple(self) -> int:
        """Spatial sizes must be multiples of this."""
        return 2**self.levels

    def noise_shape(self, batch: int, h: int, w: int) -> tuple[int, int, int, int]:
        """Shape of ``forward``'s ``noise`` for ``batch`` fields of ``h`` x ``w``."""
        return (batch, self.noise, h, w)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The network's reconstruction of every point (physical units).

        Parameters
        ----------
        x : Tensor (B, C, H, W)
            Fields in physical units; values under the mask are ignored (but
            must be finite).
        mask : Tensor (B, 1, H, W)
            1 where missing, 0 where observed.
        noise : Tensor (B, noise, H, W), optional
            Standard normal noise driving a sampling model (:meth:`noise_shape`);
            None gives the zero-noise output (a deterministic model's only one).
        """
        m, s = self.mean.view(1, -1, 1, 1), self.std.view(1, -1, 1, 1)
        mask = mask.to(x.dtype)
        z = (x - m) / s * (1.0 - mask)
        h = self.head(torch.cat([z, mask], dim=1))
        use_noise = self.noise > 0 and noise is not None
        if use_noise:
            if tuple(noise.shape) != self.noise_shape(x.shape[0], *x.shape[2:]):
                raise ValueError(
                    f"noise must have shape {self.noise_shape(x.shape[0], *x.shape[2:])}, "
                    f"got {tuple(noise.shape)}"
                )
            noise = noise.to(x.dtype) * mask
            h = h + self.noise_in[0](noise)
        skips = []
        for down in self.down:
            skips.append(h)
            h = down(torch.relu(h))
        if use_noise:
            k = self.multiple
            h = h + self.noise_in[1](torch.nn.functional.avg_pool2d(noise, k) * k)
        h = self.mid(h)
        for i in reversed(range(self.levels)):
            h = self.up[i](torch.relu(h))
            h = self.merge[i](torch.relu(torch.cat([h, skips[i]], dim=1)))
        y = z + self.tail(torch.relu(h))
        return y * s + m

    def fill(
        self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x`` with the masked points replaced by the reconstruction (``noise``: a sample's)."""
        mask = mask.to(x.dtype)
        return mask * self(x, mask, noise) + (1.0 - mask) * x
