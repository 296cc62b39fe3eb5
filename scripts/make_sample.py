"""Write the embedded sample ``xatmodist/data/swe_sample.nc``.

Two held-out shallow-water runs (seeds 200000 and 200001, never used in
training) of 40 three-hourly fields at the simulator defaults, CF-packed as
int16 (scale_factor/add_offset, lossless to about 1e-4 of each variable's
range) and zlib-compressed so the file stays small::

    python scripts/make_sample.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import xatmodist.datasets as datasets

OUT = Path(__file__).resolve().parents[1] / "xatmodist" / "data" / "swe_sample.nc"


def main() -> None:
    """Simulate and write the sample."""
    ds = datasets.shallow_water(n_runs=2, n_steps=40, seed=200_000)
    enc = {}
    for name, da in ds.data_vars.items():
        lo, hi = float(da.min()), float(da.max())
        scale = (hi - lo) / 65000.0
        enc[name] = {
            "dtype": "int16",
            "scale_factor": scale,
            "add_offset": (hi + lo) / 2,
            "_FillValue": np.int16(-32768),
            "zlib": True,
            "complevel": 9,
        }
    ds.attrs["history"] = "python scripts/make_sample.py"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(OUT, encoding=enc)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
