"""Batched shallow-water integration on the rotating sphere (torch-harmonics).

Private: :func:`xatmodist.datasets.shallow_water` is the public entry point.
The spectral transforms, grid, operators and hyperdiffusion come from
``torch_harmonics.examples.ShallowWaterSolver``; this module adds what the
solver lacks for data generation: a batch dimension (many runs integrated at
once), seeded random initial conditions with a controllable amplitude and
spectral slope, and a stochastic vorticity forcing with linear drag that keeps
the flow statistically stationary so decorrelation times do not drift as the
run ages.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SWEConfig", "integrate"]


@dataclass(frozen=True)
class SWEConfig:
    """Settings of one simulation (all times in seconds)."""

    nlat: int = 64
    nlon: int = 128
    dt: float = 300.0
    output_step: float = 3 * 3600.0
    spinup: float = 5 * 86400.0
    amplitude: float = 24.0
    ic_lmax: int = 32
    ic_slope: float = -1.0
    divergence_ratio: float = 0.1
    forcing: float = 1.0
    forcing_band: tuple[int, int] = (8, 20)
    forcing_tau: float = 2 * 86400.0
    drag_tau: float = 10 * 86400.0

    @property
    def steps_per_output(self) -> int:
        return max(1, round(self.output_step / self.dt))


def _solver(cfg: SWEConfig):
    try:
        from torch_harmonics.examples import ShallowWaterSolver
    except ImportError as err:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "The shallow-water simulator needs torch-harmonics: pip install 'xatmodist[sim]'"
        ) from err
    return ShallowWaterSolver(
        cfg.nlat, cfg.nlon, cfg.dt, lmax=(cfg.nlat + 1) // 2, grid="equiangular"
    ).double()


def _tendency(s, uspec: torch.Tensor) -> torch.Tensor:
    """Time derivative of ``uspec`` = (geopotential, vorticity, divergence).

    ``uspec`` has shape (batch, 3, lmax, mmax); the physics is the solver's
    (``ShallowWaterSolver.dudtspec``), written with a leading batch dim.
    """
    ugrid = s.spec2grid(uspec)  # (B, 3, nlat, nlon)
    uvgrid = s.getuv(uspec[:, 1:])  # (B, 2, nlat, nlon)
    out = torch.zeros_like(uspec)
    flux = s.vrtdivspec(uvgrid * (ugrid[:, 1:2] + s.coriolis))
    out[:, 2] = flux[:, 0]
    out[:, 1] = -flux[:, 1]
    mass = s.vrtdivspec(uvgrid * ugrid[:, 0:1])
    out[:, 0] = -mass[:, 1]
    energy = s.grid2spec(ugrid[:, 0] + 0.5 * (uvgrid[:, 0] ** 2 + uvgrid[:, 1] ** 2))
    out[:, 2] = out[:, 2] - s.lap * energy
    return out


def _random_spec(
    s, gens: list[torch.Generator], lmax: int, slope: float, lmin: int = 1
) -> torch.Tensor:
    """Random complex coefficients with power ~ l**slope for lmin <= l < lmax.

    One generator per run, so a run's numbers do not depend on the batching.
    """
    shape = (2, s.lmax, s.mmax)
    draws = torch.stack([torch.randn(shape, generator=g, dtype=torch.float64) for g in gens])
    coef = torch.complex(draws[:, 0], draws[:, 1])
    ell = torch.arange(s.lmax, dtype=torch.float64).reshape(-1, 1)
    amp = torch.where(
        (ell >= lmin) & (ell < lmax), ell.clamp(min=1) ** (slope / 2), torch.zeros(())
    )
    coef = coef * amp
    coef[:, :, 0] = coef[:, :, 0].real  # m = 0 coefficients are real
    return torch.tril(coef)


def _normalise_rms(s, spec: torch.Tensor) -> torch.Tensor:
    grid = s.spec2grid(spec)
    rms = grid.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt().clamp(min=1e-30)
    return spec / rms


def integrate(cfg: SWEConfig, *, seeds: list[int], n_outputs: int) -> Iterator[np.ndarray]:
    """Integrate one run per seed, all at once, yielding fields after the spin-up.

    Yields ``n_outputs`` arrays of shape (len(seeds), 3, nlat, nlon) holding
    geopotential height (m), relative vorticity (s-1) and divergence (s-1).
    """
    s = _solver(cfg)
    n_runs = len(seeds)
    gens = [torch.Generator().manual_seed(int(x)) for x in seeds]
    g, havg, radius = float(s.gravity), float(s.havg), float(s.radius)
    # vorticity scale: amplitude x (gravity-wave speed / radius), as the solver's mach
    vscale = cfg.amplitude * 0.05 * math.sqrt(g * havg) / radius
    uspec = torch.zeros(n_runs, 3, s.lmax, s.mmax, dtype=torch.complex128)
    vort = _normalise_rms(s, _random_spec(s, gens, cfg.ic_lmax, cfg.ic_slope))
    div = _normalise_rms(s, _random_spec(s, gens, cfg.ic_lmax, cfg.ic_slope))
    uspec[:, 1] = vscale * vort
    uspec[:, 2] = cfg.divergence_ratio * vscale * div
    uspec[:, 0, 0, 0] = math.sqrt(4 * math.pi) * havg * g
    # stochastic vorticity forcing: Ornstein-Uhlenbeck in a wavenumber band
    lo, hi = cfg.forcing_band
    fstate = torch.zeros(n_runs, s.lmax, s.mmax, dtype=torch.complex128)
    r = math.exp(-cfg.dt / cfg.forcing_tau)
    drag = math.exp(-cfg.dt / cfg.drag_tau) if cfg.drag_tau > 0 else 1.0
    famp = cfg.forcing * vscale / cfg.drag_tau if cfg.forcing > 0 else 0.0

    dudt = torch.zeros(3, n_runs, 3, s.lmax, s.mmax, dtype=torch.complex128)
    inew, inow, iold = 0, 1, 2
    n_spin = round(cfg.spinup / cfg.dt)
    per = cfg.steps_per_output
    total = n_spin + per * (n_outputs - 1) + 1
    emitted = 0
    with torch.inference_mode():
        for it in range(total):
            if it >= n_spin and (it - n_spin) % per == 0:
                grid = s.spec2grid(uspec).numpy()
                grid[:, 0] /= g  # geopotential -> geopotential height
                yield grid.astype(np.float32)
                emitted += 1
                if emitted == n_outputs:
                    return
            dudt[inew] = _tendency(s, uspec)
            if famp:
                noise = _normalise_rms(s, _random_spec(s, gens, hi, 0.0, lo))
                fstate = r * fstate + math.sqrt(1 - r * r) * noise
                dudt[inew, :, 1] += famp * fstate
            if it == 0:
                dudt[inow] = dudt[inew]
                dudt[iold] = dudt[inew]
            elif it == 1:
                dudt[iold] = dudt[inew]
            uspec = uspec + cfg.dt * (
                (23.0 / 12.0) * dudt[inew] - (16.0 / 12.0) * dudt[inow] + (5.0 / 12.0) * dudt[iold]
            )
            uspec[:, 1:] = s.hyperdiff * uspec[:, 1:] * drag
            inew, inow, iold = (inew - 1) % 3, (inow - 1) % 3, (iold - 1) % 3


def grid_coords(cfg: SWEConfig) -> tuple[np.ndarray, np.ndarray]:
    """Latitude (descending, degrees north) and longitude (degrees east)."""
    from torch_harmonics.quadrature import clenshaw_curtiss_weights

    cost, _ = clenshaw_curtiss_weights(cfg.nlat, -1, 1)
    lat = np.degrees(-np.arcsin(np.asarray(cost, dtype=np.float64)))
    lon = np.arange(cfg.nlon) * 360.0 / cfg.nlon
    return lat, lon
