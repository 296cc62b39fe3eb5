"""Helpers for tests (ours and users'): laziness checks, synthetic fields, tiny models."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "CountingScheduler",
    "TINY_ENCODER_TRAINING",
    "raise_if_dask_computes",
    "synthetic_fields",
    "tiny_encoder",
]

#: ``fit_encoder`` settings for a run of seconds on ``synthetic_fields(nlat=32, nlon=64)``:
#: a 2-stage encoder of widths 8/16 on 16 x 16 patches, 4 optimizer steps per epoch
TINY_ENCODER_TRAINING = {
    "max_lag": "9h",
    "patch_size": 16,
    "widths": (8, 16),
    "pairs_per_epoch": 128,
    "batch_size": 32,
    "val_pairs": 64,
    "block_length": 8,
    "val_every": 3,
    "progress": False,
}


class CountingScheduler:
    """A dask scheduler that counts computes and raises past ``max_computes``."""

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk, keys, **kwargs):
        import dask

        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(
                f"Too many dask computations were triggered: {self.total_computes} "
                f"(allowed {self.max_computes})."
            )
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0) -> Iterator[CountingScheduler]:
    """Context in which more than ``max_computes`` dask computes raise RuntimeError."""
    import dask

    sched = CountingScheduler(max_computes)
    with dask.config.set(scheduler=sched):
        yield sched


def synthetic_fields(
    *, n_time: int = 8, nlat: int = 64, nlon: int = 128, seed: int = 0, step: str = "3h"
) -> xr.Dataset:
    """Smooth random vorticity/divergence fields that drift in time, CF-annotated.

    A cheap stand-in for simulator output (no torch-harmonics needed).
    """
    rng = np.random.default_rng(seed)
    lat = np.linspace(90, -90, nlat)
    lon = np.arange(nlon) * 360.0 / nlon
    ky, kx = np.meshgrid(np.fft.fftfreq(nlat) * nlat, np.fft.fftfreq(nlon) * nlon, indexing="ij")
    k = np.hypot(ky, kx)
    filt = np.where(k > 0, (1 + k) ** -1.5, 0.0)
    out = {}
    for name, scale in (("vo", 2e-5), ("d", 5e-6)):
        spec = (rng.standard_normal((nlat, nlon)) + 1j * rng.standard_normal((nlat, nlon))) * filt
        drift = rng.standard_normal((n_time, nlat, nlon)) * 0.3
        fields = []
        for t in range(n_time):
            spec = spec * np.exp(1j * 0.3 * kx / max(nlon, 1) * 8) + 0.3 * filt * (
                drift[t] + 1j * rng.standard_normal((nlat, nlon)) * 0.3
            )
            fields.append(np.fft.ifft2(spec).real)
        arr = np.stack(fields)
        arr = arr / arr.std() * scale
        out[name] = arr.astype(np.float32)
    attrs = {
        "vo": {"standard_name": "atmosphere_relative_vorticity", "units": "s-1"},
        "d": {"standard_name": "divergence_of_wind", "units": "s-1"},
    }
    return xr.Dataset(
        {n: (("time", "lat", "lon"), out[n], attrs[n]) for n in out},
        coords={
            "time": pd.date_range("2001-01-01", periods=n_time, freq=step),
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )


_TINY_VARIABLES = {
    "vo": ({"name": "vo", "standard_name": "atmosphere_relative_vorticity", "units": "s-1"}, 2e-5),
    "d": ({"name": "d", "standard_name": "divergence_of_wind", "units": "s-1"}, 5e-6),
}


def tiny_encoder(
    path: str | Path,
    *,
    patch_size: int = 16,
    n_classes: int = 4,
    seed: int = 0,
    variables: Sequence[str] = ("vo", "d"),
    name: str = "tiny-test-encoder",
):
    """Write a small randomly initialised encoder (with a valid card) to ``path``.

    Goes through the same save/load path as the pretrained models.
    ``variables``: a selection of ``"vo"`` and ``"d"`` (in the card's order).
    """
    import torch

    from .nn import AtmoDistNet
    from .zoo import Model, load_model

    torch.manual_seed(seed)
    specs = [_TINY_VARIABLES[v] for v in variables]
    args = {"in_channels": len(specs), "n_classes": n_classes, "widths": [8, 16], "blocks": 1}
    net = AtmoDistNet(**args)
    net.normaliser.mean_in.zero_()
    net.normaliser.std_in.copy_(torch.tensor([s[1] for s in specs]))
    net.eval()
    card = {
        "name": name,
        "task": "encoder",
        "architecture": "AtmoDistNet",
        "args": args,
        "variables": [dict(s[0]) for s in specs],
        "grid": {"nlat": 64, "nlon": 128, "dlat": 180 / 63, "dlon": 2.8125},
        "patch_size": patch_size,
        "lag_step_seconds": 10800.0,
        "lag_classes": [10800.0 * (k + 1) for k in range(n_classes)],
        "training": {"data": "none: random weights for tests"},
        "metrics": {},
    }
    Model(card=card, module=net).save(path)
    return load_model(path)
