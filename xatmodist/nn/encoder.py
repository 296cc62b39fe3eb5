"""The AtmoDist Siamese network: normaliser, ResNet encoder, lag-classification head.

Pure torch; nothing here knows about xarray.  Tensors are (batch, channel,
height, width) with height = latitude and width = longitude.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "Normaliser",
    "ResBlock",
    "Encoder",
    "AtmoDistNet",
    "DISTANCES",
    "feature_difference",
    "fused_for_inference",
    "scale_features",
    "LogInput",
    "FrozenTrunk",
    "frozen_for_inference",
]


class Normaliser(nn.Module):
    """Per-channel z-score, optional ``sign * log1p(scale * |z|)``, z-score again.

    The paper's transform for heavy-tailed vorticity and divergence.  All
    statistics are persistent buffers, so they travel inside the weights file
    and cannot drift apart from the network that was trained with them.

    Parameters
    ----------
    channels : int
        Number of input channels.
    log_scale : float
        ``scale`` in ``sign(z) * log1p(scale * |z|)``.
    """

    def __init__(self, channels: int, log_scale: float = 0.2) -> None:
        super().__init__()
        self.log_scale = float(log_scale)
        self.register_buffer("mean_in", torch.zeros(channels))
        self.register_buffer("std_in", torch.ones(channels))
        self.register_buffer("log_mask", torch.zeros(channels))
        self.register_buffer("mean_out", torch.zeros(channels))
        self.register_buffer("std_out", torch.ones(channels))

    def _first(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean_in.view(1, -1, 1, 1)) / self.std_in.view(1, -1, 1, 1)
        # log(1 + u) rather than log1p(u): CPU torch has a vectorised log but
        # not log1p (3-4x faster here); the absolute difference is below float32
        # resolution of 1 (6e-8), far under the network's own rounding
        logz = torch.log(self.log_scale * z.abs() + 1.0).copysign(z)
        mask = self.log_mask.view(1, -1, 1, 1) > 0.5
        return torch.where(mask, logz, z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` of shape (B, C, H, W)."""
        y = self._first(x)
        return (y - self.mean_out.view(1, -1, 1, 1)) / self.std_out.view(1, -1, 1, 1)

    @torch.no_grad()
    def fit(
        self, mean: torch.Tensor, std: torch.Tensor, sample: torch.Tensor, log: Sequence[bool]
    ) -> None:
        """Set the statistics from first-pass moments and a sample of fields.

        Parameters
        ----------
        mean, std : Tensor
            Per-channel mean and standard deviation of the raw data.
        sample : Tensor
            (N, C, H, W) fields used for the second-pass moments.
        log : sequence of bool
            Which channels get the log transform.
        """
        self.mean_in.copy_(mean)
        self.std_in.copy_(std.clamp(min=1e-30))
        self.log_mask.copy_(torch.as_tensor([float(b) for b in log]))
        y = self._first(sample.to(self.mean_in.dtype))
        self.mean_out.copy_(y.mean(dim=(0, 2, 3)))
        self.std_out.copy_(y.std(dim=(0, 2, 3)).clamp(min=1e-12))


class ResBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1) skip."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.skip(x))


class Encoder(nn.Module):
    """ResNet trunk: a stem and one stage per width, each stage halving the grid.

    Parameters
    ----------
    in_channels : int
        Number of input variables.
    widths : sequence of int
        Channels of each stage; stage ``i > 0`` downsamples by 2.
    blocks : int
        Residual blocks per stage.
    stem_stride : int
        1: a 3x3 convolution at full resolution (the paper's layout).  ``s > 1``:
        a non-overlapping ``s x s`` "patchify" convolution with stride ``s``, as in
        vision transformers and ConvNeXt.  It is a linear map of each ``s x s``
        block, lossless whenever ``widths[0] >= in_channels * s * s``, and makes
        every later layer ``s**2`` times cheaper.
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int] = (32, 64, 128),
        blocks: int = 1,
        stem_stride: int = 1,
    ):
        super().__init__()
        stem_stride = int(stem_stride)
        if stem_stride < 1:
            raise ValueError(f"stem_stride must be a positive integer; got {stem_stride}.")
        stem = (
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
            if stem_stride == 1
            else nn.Conv2d(in_channels, widths[0], stem_stride, stride=stem_stride, bias=False)
        )
        self.stem = nn.Sequential(
            stem,
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        cin = widths[0]
        for i, w in enumerate(widths):
            layers = [ResBlock(cin, w, stride=1 if i == 0 else 2)]
            layers += [ResBlock(w, w) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.out_channels = cin
        self.reduction = stem_stride * 2 ** (len(widths) - 1)

    def forward(self, x: torch.Tensor, layers: Sequence[int] | None = None):
        """Return the last stage's features, or a list of the requested stages'."""
        y = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            y = stage(y)
            if layers is not None and i in layers:
                outs.append(y)
        return outs if layers is not None else y


#: how :meth:`AtmoDistNet.distance` compares features (the first is the default)
DISTANCES = ("squared", "l1")


def feature_difference(diff, kind: str):
    """``diff ** 2`` (``kind="squared"``) or ``|diff|`` (``"l1"``), elementwise.

    Works on tensors, numpy arrays and xarray objects alike, so lazy code
    (:func:`xatmodist.lag_curve`) and training losses share one definition.
    """
    return abs(diff) if kind == "l1" else diff**2


class AtmoDistNet(nn.Module):
    """Siamese lag classifier; its encoder defines the AtmoDist distance.

    Parameters
    ----------
    in_channels : int
        Number of variables per field.
    n_classes : int
        Number of lag classes.
    widths, blocks, stem_stride
        Passed to :class:`Encoder`.
    log_scale : float
        Passed to :class:`Normaliser`.
    projection : bool
        False (the paper's layout): the distance is taken on the trunk's last
        stage.  True: on a per-location projection of it (1x1 convolution,
        ReLU, 1x1 convolution, same width), as the projection heads of
        contrastive learning.  The lag head still reads the trunk; the
        projection is shaped by the ranking term of training
        (``fit_encoder(rank_weight=...)``), so the distance space does not have
        to be the space the classifier needs.
    distance : {"squared", "l1"}
        How :meth:`distance` compares two patches' features: ``"squared"``, the
        mean squared difference (as the AtmoDist paper); ``"l1"``, the mean
        absolute difference, a true metric (it obeys the triangle inequality)
        and less dominated by the few feature cells that change most.  Either
        is multiplied by the calibrated ``alpha``.  Training ranks the squared
        distance whatever this is (:meth:`logits_and_distance`).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        widths: Sequence[int] = (32, 64, 128),
        blocks: int = 1,
        log_scale: float = 0.2,
        stem_stride: int = 1,
        projection: bool = False,
        distance: str = "squared",
    ) -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        self.distance_kind = distance
        self.normaliser = Normaliser(in_channels, log_scale)
        self.encoder = Encoder(in_channels, widths, blocks, stem_stride)
        c = self.encoder.out_channels
        self.projection = (
            nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 1))
            if projection
            else nn.Identity()
        )
        self.head = nn.Sequential(
            nn.Conv2d(3 * c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(c, n_classes),
        )
        # alpha of the calibrated distance (set after training); a buffer so it
        # is saved with the weights
        self.register_buffer("alpha", torch.ones(()))
        # channels-last (NHWC) convolutions are faster on CPU (oneDNN); loading a
        # state dict keeps the layout, saving makes contiguous copies
        self.to(memory_format=torch.channels_last)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk's last-stage features of raw fields ``x`` (B, C, H, W): the head's input."""
        return self.encoder(self.normaliser(x).contiguous(memory_format=torch.channels_last))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The features the distance is taken on (the trunk's, projected if so built)."""
        return self.projection(self.trunk(x))

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """Lag-class logits for pairs (earlier ``xa``, later ``xb``)."""
        return self.logits_and_distance(xa, xb)[0]

    def logits_and_distance(
        self, xa: torch.Tensor, xb: torch.Tensor, kind: str = "squared"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Lag-class logits and the uncalibrated feature distance, one encoder pass.

        Training uses both: the cross-entropy on the logits and, optionally, a
        ranking term that orders the distances by lag.  The distance is the
        mean squared feature difference (``kind="squared"``), which training
        ranks whatever ``distance`` the network was built with (see
        ``fit_encoder``'s ``distance``); validation asks for the network's own
        (``kind=net.distance_kind``).
        """
        logits, diff = self.logits_and_difference(xa, xb)
        return logits, feature_difference(diff, kind).mean(dim=(1, 2, 3))

    def logits_and_difference(
        self, xa: torch.Tensor, xb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Lag-class logits and the difference of the distance features, one encoder pass.

        The difference ``features(xa) - features(xb)`` (B, C, h, w) gives any
        distance kind (:func:`feature_difference`); distillation compares the
        student's and the teacher's in their own kinds.
        """
        f = self.trunk(torch.cat([xa, xb], dim=0))
        fa, fb = f.chunk(2, dim=0)
        logits = self.head(torch.cat([fa, fb, (fa - fb).abs()], dim=1))
        pa, pb = self.projection(f).chunk(2, dim=0)
        return logits, pa - pb

    def distance(self, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """Calibrated feature distance per pair: alpha * mean((f_a - f_b)**2), or of |f_a - f_b|."""
        # differences in float32: under autocast the features may be bfloat16/float16,
        # and nearby states have nearly equal features (no-op in float32)
        f = self.features(torch.cat([xa, xb], dim=0)).float()
        fa, fb = f.chunk(2, dim=0)
        return self.alpha * self.feature_distance(fa, fb)

    def feature_distance(
        self, fa: torch.Tensor, fb: torch.Tensor, dim: int | tuple[int, ...] = (1, 2, 3), **kw
    ) -> torch.Tensor:
        """Uncalibrated distance of features ``fa`` and ``fb``.

        The mean over ``dim`` of their squared or absolute difference, as the
        network's ``distance`` says (``kw``, e.g. ``keepdim``, go to ``mean``).
        """
        return feature_difference(fa - fb, self.distance_kind).mean(dim=dim, **kw)


@torch.no_grad()
def scale_features(net: AtmoDistNet, scale: torch.Tensor) -> None:
    """Multiply the distance features of ``net`` by ``scale`` (C,) > 0 per channel, in place.

    Folded into the weights, so nothing is added to a forward pass: into the
    last 1x1 convolution of a projection, else into the two batch norms that
    end the trunk's last block (``relu(bn2(...) + skip(...))``; ``relu`` commutes
    with a positive scale), whose skip must then be a convolution (a stage
    that changes width or stride).  In the second case the lag head reads the
    scaled trunk, so its first convolution's input weights are divided by the
    scale: its logits are unchanged (up to float rounding).

    Raises
    ------
    ValueError
        For a non-positive scale, a wrong length, or a trunk that ends in an
        identity skip without a projection.
    """
    c = net.encoder.out_channels
    scale = torch.as_tensor(scale, dtype=torch.float32).flatten()
    if scale.numel() != c or not bool((scale > 0).all()) or not bool(scale.isfinite().all()):
        raise ValueError(f"scale must hold {c} finite positive numbers; got {scale.tolist()}.")
    if isinstance(net.projection, nn.Sequential):
        last = net.projection[-1]
        last.weight.mul_(scale.view(-1, 1, 1, 1))
        last.bias.mul_(scale)
        return
    block = net.encoder.stages[-1][-1]
    if not isinstance(block.skip, nn.Sequential):
        raise ValueError(
            "The trunk's last block has an identity skip: its output cannot absorb a "
            "per-channel scale. Build the network with projection=True, or end the last "
            "stage with a change of width or stride."
        )
    for bn in (block.bn2, block.skip[1]):
        bn.weight.mul_(scale)
        bn.bias.mul_(scale)
    head = net.head[0]  # reads [f_a, f_b, |f_a - f_b|]
    head.weight.div_(scale.repeat(3).view(1, -1, 1, 1))


class LogInput(nn.Module):
    """The first half of a :class:`Normaliser` in fewer passes over memory, for inference.

    One multiply-add gives ``z' = scale * (x - mean_in) / std_in`` on the log
    channels (``(x - mean_in) / std_in`` on the others), then
    ``sign(z') * log(1 + |z'|)`` on the log channels: the same map as
    :meth:`Normaliser._first` up to float rounding.  The second z-score is not
    here: :func:`fused_for_inference` folds it into the stem convolution.

    Parameters
    ----------
    normaliser : Normaliser
        The trained normaliser whose statistics it takes (copied).
    """

    def __init__(self, normaliser: Normaliser) -> None:
        super().__init__()
        n = normaliser
        log = n.log_mask > 0.5
        scale = torch.where(log, torch.full_like(n.std_in, n.log_scale), torch.ones_like(n.std_in))
        gain = scale / n.std_in
        self.register_buffer("gain", gain.view(1, -1, 1, 1).clone())
        self.register_buffer("shift", (-n.mean_in * gain).view(1, -1, 1, 1).clone())
        self.register_buffer("log", log.view(1, -1, 1, 1).clone())
        self.mode = "all" if bool(log.all()) else "none" if not bool(log.any()) else "some"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``sign(z') * log(1 + |z'|)`` (log channels) or ``z'`` of raw fields ``x``."""
        z = torch.addcmul(self.shift, x, self.gain)
        if self.mode == "none":
            return z
        y = z.abs().add_(1.0).log_().copysign_(z)
        return y if self.mode == "all" else torch.where(self.log, y, z)


def _absorb_input_affine(conv: nn.Conv2d, gain: torch.Tensor, shift: torch.Tensor) -> nn.Conv2d:
    """One convolution equal to ``conv(x * gain + shift)`` (per input channel), exactly.

    Only for a convolution without padding (a patchify stem): with zero
    padding the border would see ``shift`` where it saw zeros.
    """
    w = conv.weight.detach()
    out = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=0,
        bias=True,
    ).eval()
    with torch.no_grad():
        out.weight.copy_(w * gain.view(1, -1, 1, 1))
        bias = (w * shift.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
        if conv.bias is not None:
            bias = bias + conv.bias.detach()
        out.bias.copy_(bias)
    return out


def fused_for_inference(net: AtmoDistNet) -> AtmoDistNet:
    """An eval-mode copy of ``net`` with every batch norm folded into its convolution.

    Same function (up to float rounding), about a third less work per forward
    pass on CPU: batch norm in eval mode is a per-channel affine map that the
    preceding convolution can absorb.  Where the stem is a patchify convolution
    (no padding), the normaliser's second z-score is folded into it as well
    and the copy's ``normaliser`` is a :class:`LogInput` (the first half, in
    fewer passes): its output is then *not* the normalised field; take that
    from ``net.normaliser``.  For inference only; ``net`` is unchanged.
    """
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    out = copy.deepcopy(net).eval()

    def fold(parent: nn.Module, conv: str, bn: str) -> None:
        fused = fuse_conv_bn_eval(getattr(parent, conv), getattr(parent, bn))
        setattr(parent, conv, fused)
        setattr(parent, bn, nn.Identity())

    enc = out.encoder
    stem = enc.stem[0]
    if stem.padding in (0, (0, 0)) and stem.kernel_size == stem.stride:
        n = out.normaliser
        # y = (u - mean_out) / std_out of the log stage u; LogInput gives u
        enc.stem[0] = _absorb_input_affine(stem, 1.0 / n.std_out, -n.mean_out / n.std_out)
        out.normaliser = LogInput(n)
    fold(enc.stem, "0", "1")
    for stage in enc.stages:
        for block in stage:
            fold(block, "conv1", "bn1")
            fold(block, "conv2", "bn2")
            if isinstance(block.skip, nn.Sequential):
                fold(block.skip, "0", "1")
    fold(out.head, "0", "1")
    for p in out.parameters():
        p.requires_grad_(False)
    return out.to(memory_format=torch.channels_last)


class FrozenTrunk(nn.Module):
    """An :class:`Encoder` traced and frozen by TorchScript for CPU inference.

    ``torch.jit.freeze`` + ``torch.jit.optimize_for_inference`` fuse each
    convolution with the ReLU (and residual add) after it in oneDNN, which
    eager PyTorch runs as separate passes over memory: about a third less time
    per patch on this project's CPU (``python -m benchmarks``).  Same function
    up to float rounding (relative differences ~1e-6).  Only the last stage's
    features (no ``layers=``); no gradients.

    Parameters
    ----------
    encoder : Encoder
        An eval-mode encoder (batch norms folded or not).
    example : Tensor
        An input of the shape it will see (any batch size works afterwards).
    """

    def __init__(self, encoder: Encoder, example: torch.Tensor) -> None:
        super().__init__()
        import warnings

        self.out_channels = encoder.out_channels
        self.reduction = encoder.reduction
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TorchScript's deprecation/tracer notes
            traced = torch.jit.trace(encoder.eval(), example, check_trace=False)
            self.graph = torch.jit.optimize_for_inference(torch.jit.freeze(traced))

    def forward(self, x: torch.Tensor, layers: Sequence[int] | None = None) -> torch.Tensor:
        """The last stage's features of normalised input ``x``."""
        if layers is not None:
            raise ValueError("FrozenTrunk gives the last stage only; use the eager Encoder.")
        return self.graph(x)


def frozen_for_inference(net: AtmoDistNet, patch: int) -> AtmoDistNet:
    """:func:`fused_for_inference`, its encoder a :class:`FrozenTrunk` for ``patch``-sized input.

    TorchScript is deprecated upstream; its successor, ``torch.compile``, needs
    a C++ compiler at run time on CPU, which users' machines and dask workers
    may lack.  Where TorchScript cannot trace or freeze the trunk (a torch
    build without oneDNN, or a future torch without ``torch.jit``), this logs
    why and returns the fused eager network: same numbers, eager speed.
    """
    out = fused_for_inference(net)
    c = net.normaliser.mean_in.numel()
    example = torch.zeros(2, c, patch, patch).contiguous(memory_format=torch.channels_last)
    try:
        out.encoder = FrozenTrunk(out.encoder, example)
    except Exception as err:  # noqa: BLE001  (torch builds differ)
        import logging

        logging.getLogger(__name__).info("TorchScript unavailable (%s); eager encoder", err)
    return out
