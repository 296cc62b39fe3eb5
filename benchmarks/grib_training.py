"""Training pairs/s reading GRIB through cfgrib vs a netCDF copy of the same data.

Run from the repo root (``../shared/data`` beside it)::

    python -m benchmarks.grib_training

The ERA5 ensemble sample (10 members x 4 twelve-hourly steps, 2 levels, 61 x 120
at 3 deg, GRIB1) is copied to a temporary folder, opened lazily with
``open_data(..., chunks={})`` as GRIB and, after one ``to_netcdf``, as netCDF;
``fit_encoder`` trains one epoch of 512 pairs of temperature on each (a tiny
encoder, one torch thread) and its pairs/s are compared.  This is why
training from a lazily read GRIB file warns to write a chunked copy first.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

from xatmodist.cli import open_data
from xatmodist.train import fit_encoder

SRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "era5_ensemble_grib"


def run() -> dict:
    """pairs/s of one training epoch from GRIB and from netCDF."""
    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp())
    grib = tmp / "members.grib"
    shutil.copy(SRC / "era5-levels-members.grib", grib)
    open_data([str(grib)], chunks={}).load().to_netcdf(tmp / "members.nc")
    kw = {
        "variables": ["t"],
        "max_lag": "24h",
        "patch_size": 16,
        "widths": (8, 16),
        "epochs": 1,
        "pairs_per_epoch": 512,
        "batch_size": 32,
        "val_pairs": 32,
        "block_length": 4,
        "val_every": 3,
        "progress": False,
        "threads": 1,
    }
    out = {}
    for name, path in (("grib", grib), ("netcdf", tmp / "members.nc")):
        m = fit_encoder(open_data([str(path)], chunks={}), **kw)
        out[name] = m.card.training["history"][-1]["pairs_per_second"]
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    res = run()
    print(
        f"fit_encoder pairs/s: GRIB {res['grib']:.0f}, netCDF copy {res['netcdf']:.0f} "
        f"({res['netcdf'] / res['grib']:.1f}x)"
    )


if __name__ == "__main__":
    main()
