"""Array kernels: numpy blocks in, numpy blocks out; torch inside.

These never see xarray.  Each takes arrays shaped (..., C, H, W) (the leading
dims are whatever dask hands over), the model *reference* (a name or path,
resolved through the per-process cache of :func:`xatmodist.zoo.load_model`,
so no network is pickled into the task graph), and the tiling.

**The benchmark interface.**  The benchmarks (``benchmarks/``) compare the
library with bare torch loops that must run the same networks on the same
inputs.  They use these names, documented here and listed in ``__all__``, and
no underscored ones:

* :func:`inference_encoder`: the encoder of a model as the kernels run it
  (batch norms folded, trunk frozen by TorchScript with ``jit``);
* :func:`make_tiling` and :func:`tiles`: the patches that cover a field, and
  the fields cut into them;
* :func:`pad_fields`: the halo padding of the downscale and inpaint kernels;
* :data:`FIELDS_PER_PASS`: whole fields per forward pass of those kernels.

They are internal (no deprecation cycle) but kept stable for the
benchmarks; a change to them changes the benchmarks in the same commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from . import _device
from ._threads import torch_threads
from .errors import InputError, warn
from .zoo import load_model

#: inputs further than this many training standard deviations from the training mean
#: are refused: they overflow the network and usually mean wrong units
MAX_SIGMA = 1000.0

__all__ = [
    "Tiling",
    "make_tiling",
    "distance_kernel",
    "embed_kernel",
    "lag_kernel",
    # the benchmark interface (module docstring)
    "inference_encoder",
    "tiles",
    "pad_fields",
    "FIELDS_PER_PASS",
]


@dataclass(frozen=True)
class Tiling:
    """Top-left rows and columns of the patches that cover a field."""

    rows: tuple[int, ...]
    cols: tuple[int, ...]
    patch: int
    nlon: int

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)


def _starts(n: int, patch: int, wrap: bool) -> tuple[int, ...]:
    k = -(-n // patch)  # ceil
    if wrap:
        # equally spaced around the circle; the last patch wraps past the seam
        return tuple(int(round(i * n / k)) for i in range(k))
    if k == 1:
        return (0,)
    return tuple(int(round(x)) for x in np.linspace(0, n - patch, k))


def make_tiling(nlat: int, nlon: int, patch: int, wrap: bool, lon_offset: int = 0) -> Tiling:
    """Patches covering an ``nlat x nlon`` grid (longitude wraps if ``wrap``).

    On global grids the columns start at ``lon_offset`` (the column nearest 0 deg E), so
    0..360 and -180..180 representations of the same field get the same patches.
    """
    cols = _starts(nlon, patch, wrap)
    if wrap and lon_offset:
        cols = tuple((c + lon_offset) % nlon for c in cols)
    return Tiling(_starts(nlat, patch, False), cols, patch, nlon)


def tiles(x: np.ndarray, t: Tiling) -> np.ndarray:
    """Fields (N, C, H, W) cut into the patches of ``t``: (N * ny * nx, C, P, P).

    Patches in row-major order (field, patch row, patch column); columns wrap
    modulo ``t.nlon``.
    """
    p = t.patch
    n, c = x.shape[:2]
    # one copy, patch by patch, straight into the output's order (a gather of all
    # patches at once followed by a transpose copied twice)
    out = np.empty((n, len(t.rows), len(t.cols), c, p, p), dtype=x.dtype)
    for i, r in enumerate(t.rows):
        band = x[:, :, r : r + p]
        for j, col in enumerate(t.cols):
            if col + p <= t.nlon:
                out[:, i, j] = band[..., col : col + p]
            else:  # across the seam
                out[:, i, j] = band[..., (col + np.arange(p)) % t.nlon]
    return out.reshape(-1, c, p, p)


def check_range(flat: np.ndarray, mean, std, variables: list[dict] | None = None) -> None:
    """Refuse (N, C, H, W) values further than MAX_SIGMA training stds from the mean.

    Per-channel extremes only (no float64 copy of the block); NaNs are ignored.
    ``variables`` (the card's) name the channel in the message.
    """
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        hi = np.nanmax(flat, axis=(0, 2, 3)).astype(np.float64)
        lo = np.nanmin(flat, axis=(0, 2, 3)).astype(np.float64)
    z = np.nan_to_num(np.maximum(np.abs(hi - mean), np.abs(lo - mean)) / std, nan=0.0)
    if (z > MAX_SIGMA).any():
        c = int(np.argmax(z))
        what = f"Channel {c}"
        units = ""
        if variables is not None and c < len(variables):
            what = f"Variable {variables[c]['name']!r}"
            if variables[c].get("units"):
                units = f" (the model expects {variables[c]['units']!r})"
        raise InputError(
            f"{what} has values {z[c]:.3g} training standard deviations from the "
            f"training mean (the model accepts up to {MAX_SIGMA:g}; training mean "
            f"{mean[c]:.3g}, std {std[c]:.3g}). Check its units{units} and convert the data."
        )


def _zero_nonfinite(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fields (N, C, H, W) with NaN/inf as 0, which fields had any (N,), and the finite mask."""
    finite = np.isfinite(flat)
    bad = ~finite.all(axis=(1, 2, 3))
    if bad.any():
        flat = np.where(finite, flat, 0.0)
    return flat, bad, finite


def _prepare(
    x: np.ndarray, net=None, variables: list[dict] | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Flatten to (N, C, H, W) float32; mark fields with NaN/inf (computed as zeros).

    With ``net``, refuse values far outside the training distribution.
    """
    lead = x.shape[:-3]
    flat, bad, finite = _zero_nonfinite(x.reshape((-1,) + x.shape[-3:]))
    if bad.any():
        if bad.all() and bad.size > 1 and (~finite).all(axis=0).any():
            warn(
                f"All {bad.size} fields of this chunk have NaN/inf at the same points (a "
                "land/sea mask?), so all their results are NaN. Select a region without "
                "missing points, or fill them first (e.g. ds.atmodist.inpaint(), or "
                "ds.fillna(...)).",
                UserWarning,
            )
    if net is not None and flat.size:
        check_range(flat, net.normaliser.mean_in, net.normaliser.std_in, variables)
    return flat.astype(np.float32, copy=False), bad, lead


#: whole fields per forward pass of a downscaler or inpainter.  A fixed size keeps a
#: field's result independent of its chunk; one field needs no padding (a chunk may hold
#: a single field with a hole) and ran within 7% (inpainter, 61 vs 66 fields/s) and 14%
#: (downscaler, 90 vs 104) of the fastest size, 4, and faster than the 16 used before, on
#: 64 x 128 fields and 2 CPU threads (python -m benchmarks.pass_size)
FIELDS_PER_PASS = 1


def _padded(t: np.ndarray, size: int) -> np.ndarray:
    """``t`` with zero rows appended up to ``size`` rows."""
    if len(t) == size:
        return t
    pad = np.zeros((size - len(t),) + t.shape[1:], dtype=t.dtype)
    return np.concatenate([t, pad])


def _run_batches(
    fn, batches, threads: int | None, size: int, device: str = "cpu", precision: str = "float32"
):
    """``fn`` on each batch (a list of numpy arrays) under inference mode, outputs joined.

    The batches move to ``device`` (an option string, resolved here) and run
    under autocast in ``precision``; the outputs come back as float32 numpy
    arrays.

    Every call of ``fn`` gets exactly ``size`` rows (a short batch is padded with
    zeros, whose outputs are dropped): oneDNN picks its convolution kernels and
    their split over threads by instruction set *and batch size*, so a row's
    result may change in the last bits with the size of the batch it travels in
    (seen with AVX2 and 2 threads).  With one pass size, a field's result no
    longer depends on how many fields its chunk holds, on any CPU
    (docs/reliability.md).
    """
    import torch

    dev = _device.resolve(device)
    outs = []
    with torch_threads(threads), torch.inference_mode(), _device.autocast(dev, precision):
        for ts in batches:
            n = len(ts[0])
            out = fn(*(_device.to_device(torch.from_numpy(_padded(t, size)), dev) for t in ts))
            outs.append(out.float().cpu().numpy()[:n])
    return np.concatenate(outs) if outs else None


def _slices(n: int, step: int):
    return (slice(i, i + step) for i in range(0, n, step))


def _run(fn, tiles_list, batch: int, threads: int | None, device: str = "cpu", precision="float32"):
    """``fn`` on exactly ``batch`` rows of the arrays in ``tiles_list`` at a time."""
    n = len(tiles_list[0])
    parts = ([t[s] for t in tiles_list] for s in _slices(n, batch))
    return _run_batches(fn, parts, threads, batch, device, precision)


#: batches of patches tiled together by :func:`_run_tiled`
TILE_BATCHES = 8


def _run_tiled(
    fn,
    fields: list[np.ndarray],
    tiling: Tiling,
    batch: int,
    threads: int | None,
    device: str = "cpu",
    precision: str = "float32",
):
    """``_run(fn, [tiles of each of fields], ...)``, tiling ``TILE_BATCHES`` batches at a time.

    The tiles of a block hold as many values as the block itself (more where
    patches overlap); tiling a few batches' worth at a time bounds that copy
    (4 MB per input for 2 variables at the defaults) instead of doubling the
    memory of a large block.  Fields with fewer patches than that are tiled
    whole, several at once; a larger field (e.g. 721 x 1440) streams its
    patches in runs of ``TILE_BATCHES * batch``, so the copy is bounded by
    ``batch_size``, not by the field.  Tiling batch by batch was slower than
    tiling everything at once in same-process A/B rounds (torch's threads idle
    while numpy tiles); 8 batches at a time was not.  Every pass holds exactly
    ``batch`` patches (see :func:`_run_batches`), so where the batch boundaries
    fall does not change any patch's result.
    """
    ny, nx = tiling.shape
    run = TILE_BATCHES * batch

    def batches():
        if ny * nx <= run:  # whole fields, several at a time
            for s in _slices(len(fields[0]), max(1, run // (ny * nx))):
                cut = [tiles(f[s], tiling) for f in fields]
                for t in _slices(len(cut[0]), batch):
                    yield [x[t] for x in cut]
            return
        for i in range(len(fields[0])):  # one large field, a run of its patches at a time
            for k in _slices(ny * nx, run):
                cut = [_patch_run(f[i], tiling, k) for f in fields]
                for t in _slices(len(cut[0]), batch):
                    yield [x[t] for x in cut]

    return _run_batches(fn, batches(), threads, batch, device, precision)


def _patch_run(x: np.ndarray, t: Tiling, k: slice) -> np.ndarray:
    """Patches ``k`` (row-major numbers) of one field (C, H, W) of ``t``: (K, C, P, P)."""
    p, nx = t.patch, len(t.cols)
    i, j = np.divmod(np.arange(k.start, min(k.stop, len(t.rows) * nx)), nx)
    r = np.asarray(t.rows)[i][:, None] + np.arange(p)  # (K, P)
    c = (np.asarray(t.cols)[j][:, None] + np.arange(p)) % t.nlon  # (K, P)
    return np.ascontiguousarray(x[:, r[:, :, None], c[:, None, :]].transpose(1, 0, 2, 3))


#: inference copies of loaded networks: (id(model), kind, device) -> (model, network)
_FUSED: dict[tuple, tuple] = {}
#: one thread builds an inference copy while the others wait (dask's threaded
#: scheduler starts many tasks at once; tracing twice would waste time, and
#: warnings.catch_warnings around the tracing is not thread-safe)
_FUSED_LOCK = threading.Lock()


def inference_encoder(
    model: str, jit: bool = True, device: str = "cpu", precision: str = "float32"
):
    """The encoder of ``model`` for inference on ``device`` (one copy per model, kind, device).

    Batch norms folded; on the CPU in float32 and with ``jit`` the trunk is a
    frozen TorchScript graph (:func:`xatmodist.nn.encoder.frozen_for_inference`);
    elsewhere the eager folded network (cuDNN fuses on its own, and a frozen
    graph does not take autocast).
    """
    from .nn.encoder import frozen_for_inference, fused_for_inference

    dev = _device.resolve(device)
    frozen = bool(jit) and dev.type == "cpu" and precision == "float32"
    m = load_model(model)
    key = (id(m), frozen, str(dev))
    with _FUSED_LOCK:
        hit = _FUSED.get(key)
        if hit is None or hit[0] is not m:
            net = (
                frozen_for_inference(m.module, int(m.card.patch_size))
                if frozen
                else fused_for_inference(m.module)
            )
            hit = _FUSED[key] = (m, net.to(dev))
    return hit[1]


def _module(model: str, device: str):
    """The network of ``model`` on ``device`` (the loaded one on the CPU)."""
    m = load_model(model)
    dev = _device.resolve(device)
    if dev.type == "cpu":
        return m.module
    import copy

    key = (id(m), "module", str(dev))
    with _FUSED_LOCK:
        hit = _FUSED.get(key)
        if hit is None or hit[0] is not m:
            hit = _FUSED[key] = (m, copy.deepcopy(m.module).to(dev))
    return hit[1]


def _pair(a: np.ndarray, b: np.ndarray, model: str, jit: bool, device: str, precision: str):
    """Broadcast a pair of blocks, load the model, flatten and check both."""
    a, b = np.broadcast_arrays(a, b)
    net = inference_encoder(model, jit, device, precision)
    m = load_model(model)
    fa, bad_a, lead = _prepare(a, m.module, m.variables)
    fb, bad_b, _ = _prepare(b, m.module, m.variables)
    return net, fa, fb, bad_a, bad_b, lead


def distance_kernel(
    a: np.ndarray,
    b: np.ndarray,
    *,
    model: str,
    tiling: Tiling,
    spatial: bool,
    metric: str = "learned",
    batch: int = 64,
    threads: int | None = None,
    jit: bool = True,
    device: str = "cpu",
    precision: str = "float32",
) -> np.ndarray:
    """Distance per field (..., ) or per patch (..., ny, nx) if ``spatial``."""
    net, fa, fb, bad_a, bad_b, lead = _pair(a, b, model, jit, device, precision)
    ny, nx = tiling.shape
    n = fa.shape[0]
    if n == 0:
        return np.zeros(lead + ((ny, nx) if spatial else ()), dtype=np.float32)
    if metric == "learned":
        d = _run_tiled(net.distance, [fa, fb], tiling, batch, threads, device, precision)
    elif metric == "l2":
        norm = _module(model, device).normaliser  # the inference copy's may be folded
        d = _run_tiled(
            lambda x, y: (norm(x) - norm(y)).pow(2).mean(dim=(1, 2, 3)),
            [fa, fb],
            tiling,
            batch,
            threads,
            device,
            precision,
        )
    else:  # pragma: no cover - validated by the caller
        raise ValueError(metric)
    d = d.reshape(n, ny, nx).astype(np.float32)
    d[bad_a | bad_b] = np.nan
    if not spatial:
        d = d.mean(axis=(1, 2))
        return d.reshape(lead)
    return d.reshape(lead + (ny, nx))


def embed_kernel(
    a: np.ndarray,
    *,
    model: str,
    tiling: Tiling,
    pool: str,
    batch: int = 64,
    threads: int | None = None,
    jit: bool = True,
    device: str = "cpu",
    precision: str = "float32",
) -> np.ndarray:
    """Features: (..., F) for pool='mean', (..., ny, nx, F) for 'tile', feature grid for 'none'."""
    net = inference_encoder(model, jit, device, precision)
    m = load_model(model)
    fa, bad, lead = _prepare(a, m.module, m.variables)
    ny, nx = tiling.shape
    nf = net.encoder.out_channels
    r = net.encoder.reduction
    g = tiling.patch // r
    n = fa.shape[0]
    if pool == "mean":
        fn = lambda x: net.features(x).mean(dim=(2, 3))  # noqa: E731
        shape = (nf,)
    elif pool == "tile":
        fn = lambda x: net.features(x).mean(dim=(2, 3))  # noqa: E731
        shape = (ny, nx, nf)
    else:
        fn = net.features
        shape = (ny * g, nx * g, nf)
    if n == 0:
        return np.zeros(lead + shape, dtype=np.float32)
    f = _run_tiled(fn, [fa], tiling, batch, threads, device, precision).astype(np.float32)
    if pool == "mean":
        f = f.reshape(n, ny * nx, nf).mean(axis=1)
    elif pool == "tile":
        f = f.reshape(n, ny, nx, nf)
    else:
        f = (
            f.reshape(n, ny, nx, nf, g, g)
            .transpose(0, 1, 4, 2, 5, 3)
            .reshape(n, ny * g, nx * g, nf)
        )
    f[bad] = np.nan
    return f.reshape(lead + shape)


def lag_kernel(
    a: np.ndarray,
    b: np.ndarray,
    *,
    model: str,
    tiling: Tiling,
    batch: int = 64,
    threads: int | None = None,
    jit: bool = True,
    device: str = "cpu",
    precision: str = "float32",
) -> np.ndarray:
    """Lag-class probabilities (..., K), averaged over the patches of each field."""
    import torch

    net, fa, fb, bad_a, bad_b, lead = _pair(a, b, model, jit, device, precision)
    k = net.head[-1].out_features
    n = fa.shape[0]
    if n == 0:
        return np.zeros(lead + (k,), dtype=np.float32)
    p = _run_tiled(
        lambda x, y: torch.softmax(net(x, y).float(), dim=1),
        [fa, fb],
        tiling,
        batch,
        threads,
        device,
        precision,
    )
    ny, nx = tiling.shape
    p = p.reshape(n, ny * nx, k).mean(axis=1).astype(np.float32)
    p[bad_a | bad_b] = np.nan
    return p.reshape(lead + (k,))


def normalise_kernel(
    a: np.ndarray,
    *,
    model: str,
    tiling: Tiling,
    batch: int = 64,
    threads: int | None = None,
    jit: bool = True,
    device: str = "cpu",
    precision: str = "float32",
) -> np.ndarray:
    """The model's input normalisation applied to whole fields (..., C, H, W).

    ``jit``, ``device`` and ``precision`` are accepted as by the other encoder kernels
    and have nothing to do here (a cheap elementwise map, on the CPU in float32).
    """
    import torch

    m = load_model(model)
    net = m.module
    fa, bad, lead = _prepare(a, net, m.variables)
    if fa.shape[0] == 0:
        return np.zeros(a.shape, dtype=np.float32)
    with torch.inference_mode():
        z = net.normaliser(torch.from_numpy(fa)).numpy().astype(np.float32)
    z[bad] = np.nan
    return z.reshape(a.shape)


def downscale_kernel(
    a: np.ndarray,
    *,
    model: str,
    tiling: Tiling,
    wrap: bool,
    halo: int = 8,
    batch: int = 64,
    threads: int | None = None,
    device: str = "cpu",
    precision: str = "float32",
    noise: Noise | Sequence[Noise] | None = None,
) -> np.ndarray:
    """Refined fields (..., C, H*f, W*f); whole fields with a halo (wrapped on global grids).

    ``noise``: one member of a sampling model's ensemble (:class:`Noise`), or a
    list of members, refined together as (..., M, C, H*f, W*f): the network's
    trunk, which does not see the noise, then runs once per field for all of
    them (:meth:`xatmodist.nn.Downscaler.sample`; each member is exactly its
    own pass).  A pass's noise maps are drawn as it runs.
    """
    net = _module(model, device)
    f = net.factor
    one = isinstance(noise, Noise)
    noises = [noise] if one else list(noise or [])
    lead, (c, h, w) = a.shape[:-3], a.shape[-3:]
    size = lead + ((len(noises),) if noises and not one else ()) + (c, h * f, w * f)
    flat, bad, _ = _zero_nonfinite(a.reshape((-1, c, h, w)).astype(np.float32, copy=False))
    if flat.shape[0] == 0:
        return np.zeros(size, dtype=np.float32)
    hy, hx = min(halo, h - 1), min(halo, w - 1)
    padded = np.ascontiguousarray(pad_fields(flat, hy, hx, 1, wrap, mirror="reflect"))
    shape = net.noise_shape(1, *padded.shape[-2:])[1:]

    def batches():
        for s in _slices(len(flat), FIELDS_PER_PASS):
            rows = np.arange(len(flat))[s]
            yield [padded[s], *(nz.maps(shape, rows) for nz in noises)]

    fn = (lambda x, *n: net.sample(x, n)) if noises else net
    out = _run_batches(fn, batches(), threads, FIELDS_PER_PASS, device, precision)
    out = out[..., hy * f : hy * f + h * f, hx * f : hx * f + w * f].astype(np.float32)
    out[bad] = np.nan
    return out.reshape(size)


@dataclass(frozen=True)
class Noise:
    """The noise of member ``member`` of a sampling model's ensemble, for one block of fields.

    ``index`` holds each field's position in the whole (flattened) input, so
    a field's noise depends on ``seed``, ``member`` and that position alone,
    never on how the input is chunked: :meth:`maps` draws the maps of field
    ``i`` from ``numpy.random.default_rng([seed, member, index[i]])``.
    """

    seed: int
    member: int
    index: np.ndarray

    def maps(self, shape: tuple[int, ...], rows: np.ndarray) -> np.ndarray:
        """Standard normal float32 maps (len(rows), *shape) of the block's fields ``rows``."""
        flat = self.index.reshape(-1)
        out = np.empty((len(rows), *shape), dtype=np.float32)
        for k, i in enumerate(rows):
            rng = np.random.default_rng([self.seed, self.member, int(flat[i])])
            out[k] = rng.standard_normal(shape, dtype=np.float32)
        return out


#: kernels that refine every member in one call (``noise=`` a list of :class:`Noise`,
#: output (..., M, C, H, W)): a downscaler's trunk does not see the noise and runs once
MEMBERS_AT_ONCE = frozenset({downscale_kernel})


def ensemble_kernel(
    *arrays: np.ndarray, kernel: Callable, members: int, seed: int, **kwargs
) -> np.ndarray:
    """``kernel`` once per member, stacked as (..., member, C, H, W).

    ``arrays[-1]`` is the fields' positions in the whole input (see
    :class:`Noise`); the others are ``kernel``'s inputs.
    """
    *inputs, index = arrays
    index = np.broadcast_to(index, inputs[0].shape[:-3])
    if kernel in MEMBERS_AT_ONCE:
        noises = [Noise(seed, m, index) for m in range(members)]
        return kernel(*inputs, noise=noises, **kwargs)
    return np.stack(
        [kernel(*inputs, noise=Noise(seed, m, index), **kwargs) for m in range(members)],
        axis=-4,
    )


def hole_radius(mask: np.ndarray, wrap: bool = False) -> np.ndarray:
    """Largest distance (grid cells) from a masked point to the nearest unmasked one, per field.

    ``mask`` is (N, H, W), True = missing; with ``wrap`` the last axis is
    periodic.  Domain edges mirror, so a hole touching an edge counts as
    twice as wide as it looks from inside (no padding needed: a mirror image
    of an observed point is never nearer than the point itself, and the
    distance transform looks for observed points inside the array only).
    Nothing observed gives ``inf``; no hole gives 0.

    Examples
    --------
    >>> m = np.zeros((1, 9, 9), dtype=bool)
    >>> m[0, 2:7, 2:7] = True  # a 5x5 hole: its centre is 3 cells from observed points
    >>> hole_radius(m)
    array([3.])
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    n, _, w = mask.shape
    out = np.zeros(n)
    for i in range(n):
        m = mask[i]
        if not m.any():
            continue
        if m.all():
            out[i] = np.inf
            continue
        if wrap:  # one period on each side: the nearest observed point may be across the seam
            p = np.pad(m, ((0, 0), (w, w)), mode="wrap")
            out[i] = float(ndimage.distance_transform_edt(p)[:, w : 2 * w].max())
        else:
            out[i] = float(ndimage.distance_transform_edt(m).max())
    return out


def pad_fields(
    x: np.ndarray, hy: int, hx: int, mult: int, wrap: bool, mirror: str = "symmetric"
) -> np.ndarray:
    """Pad (..., H, W) by a halo, then up to multiples of ``mult`` at the bottom/right.

    Latitude is mirrored (numpy pad mode ``mirror``: "symmetric" repeats the
    edge row, "reflect" does not); longitude wraps on global grids and mirrors
    otherwise.
    """
    h, w = x.shape[-2:]
    ey = (-(h + 2 * hy)) % mult
    ex = (-(w + 2 * hx)) % mult
    lead = [(0, 0)] * (x.ndim - 2)
    x = np.pad(x, lead + [(hy, hy + ey), (0, 0)], mode=mirror)
    return np.pad(x, lead + [(0, 0), (hx, hx + ex)], mode="wrap" if wrap else mirror)


def inpaint_kernel(
    a: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    model: str,
    tiling: Tiling,
    wrap: bool,
    keep_observed: bool = True,
    halo: int = 16,
    batch: int = 64,
    threads: int | None = None,
    device: str = "cpu",
    precision: str = "float32",
    noise: Noise | None = None,
) -> np.ndarray:
    """Filled fields (..., C, H, W) in ``a``'s dtype (``noise``: one member of an ensemble).

    ``mask`` (..., 1, H, W) is True where values are to be replaced in every
    channel; default: the NaNs of each channel (the network sees their union).
    All other values are ``a``'s bit for bit (NaN without ``keep_observed``);
    fields without holes skip the network.
    """
    m = load_model(model)
    net = m.module
    lead, (c, h, w) = a.shape[:-3], a.shape[-3:]
    flat = a.reshape((-1, c, h, w))
    if mask is None:  # the network sees the union; each variable keeps its own values
        replace = ~np.isfinite(flat)
        holes = replace.any(axis=1)
    else:
        holes = np.broadcast_to(mask, lead + (1, h, w)).reshape(-1, h, w).astype(bool)
        replace = holes[:, None]
    unmasked_bad = ~np.isfinite(flat) & ~holes[:, None]
    if unmasked_bad.any():
        i = int(np.nonzero(unmasked_bad.any(axis=(1, 2, 3)))[0][0])
        raise InputError(
            f"{int(unmasked_bad.sum())} NaN/inf values lie outside the mask (first in field "
            f"{i} of its chunk); the mask must cover every missing value. Pass "
            "mask=mask | data.isnull() (or leave mask=None to fill all NaNs)."
        )
    need = holes.any(axis=(1, 2))
    out = flat.copy() if keep_observed else np.full_like(flat, np.nan)
    if not need.any():
        return out.reshape(a.shape)
    idx = np.nonzero(need)[0]
    radius = hole_radius(holes[idx], wrap)
    limit = float(m.card.max_hole_radius)
    empty = np.isinf(radius)
    if empty.any():
        warn(
            f"{int(empty.sum())} field(s) have no observed values (everything masked or NaN) "
            "and are returned as NaN: there is nothing to fill them from.",
            UserWarning,
        )
        out[idx[empty]] = np.nan
        idx, radius = idx[~empty], radius[~empty]
        if not len(idx):
            return out.reshape(a.shape)
    if (radius > limit).any():
        j = int(np.argmax(radius))
        raise InputError(
            f"A hole in field {int(idx[j])} of its chunk reaches {radius[j]:.1f} grid cells from "
            f"the nearest observed value; model {m.name!r} fills holes up to {limit:g} cells "
            f"from observed values (trained on holes up to {2 * limit:g} cells across). "
            "Mask less, split the gap, or train a model on larger holes with "
            f"xatmodist.train.fit_inpainter(hole=(4, {int(np.ceil(2 * radius[j])) + 2}))."
        )
    mk = holes[idx, None]
    x = np.where(mk, 0.0, flat[idx]).astype(np.float32)
    check_range(x, net.mean, net.std, m.variables)
    hx = halo
    shift = 0
    if wrap:
        # the same columns for 0..360 and -180..180 grids (start at 0 deg E), and
        # context of at least a hole's width across the seam
        shift = tiling.cols[0] if tiling.cols else 0
        x, mk = np.roll(x, -shift, axis=-1), np.roll(mk, -shift, axis=-1)
        hx = max(halo, int(np.ceil(2 * limit)))
    xp = np.ascontiguousarray(pad_fields(x, halo, hx, net.multiple, wrap))
    mp = np.ascontiguousarray(pad_fields(mk, halo, hx, net.multiple, wrap), dtype=np.float32)
    inputs = [xp, mp]
    if noise is not None:
        inputs.append(noise.maps(net.noise_shape(1, *xp.shape[-2:])[1:], idx))
    pred = _run(_module(model, device), inputs, FIELDS_PER_PASS, threads, device, precision)
    pred = pred[:, :, halo : halo + h, hx : hx + w].astype(flat.dtype)
    if shift:
        pred = np.roll(pred, shift, axis=-1)
    out[idx] = np.where(replace[idx], pred, out[idx])
    return out.reshape(a.shape)
