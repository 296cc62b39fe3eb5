"""Write the embedded real-data sample ``xatmodist/data/ncep_air_2014.nc``.

NCEP/NCAR Reanalysis 1 near-surface (sigma 0.995) air temperature over North
America, 6-hourly, the whole of 2014 (1460 fields of 25 x 53 at 2.5 deg): the
evaluation year of the real-data encoder ``atmodist-ncep-air``, which trains on
2013 only.  Read from ``../shared/data/ncep_air_6h_2013-2014/air.nc`` (the data
set behind xarray's ``air_temperature`` tutorial; NOAA PSL, public), CF-packed
as int16 (0.002 K steps) and zlib-compressed::

    python scripts/make_ncep_sample.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT.parent / "shared" / "data" / "ncep_air_6h_2013-2014" / "air.nc"
OUT = ROOT / "xatmodist" / "data" / "ncep_air_2014.nc"


def main() -> None:
    """Select 2014, pack and write the sample."""
    with xr.open_dataset(SRC) as src:
        ds = src.sel(time="2014").load()
    lo, hi = float(ds.air.min()), float(ds.air.max())
    ds.attrs = {
        "title": "NCEP/NCAR Reanalysis 1 near-surface air temperature, North America, 2014",
        "source": "NOAA PSL NCEP/NCAR Reanalysis 1, air.sig995 (the data set behind "
        "xarray's air_temperature tutorial)",
        "institution": "NOAA Physical Sciences Laboratory",
        "references": "Kalnay et al. (1996), The NCEP/NCAR 40-year reanalysis project, "
        "Bull. Amer. Meteor. Soc. 77, 437-471",
        "license": "NOAA PSL data: public domain",
        "Conventions": "CF-1.8",
        "history": "subset (2014) and int16-packed by python scripts/make_ncep_sample.py; "
        "the evaluation year of atmodist-ncep-air",
    }
    enc = {
        "air": {
            "dtype": "int16",
            "scale_factor": (hi - lo) / 65000.0,
            "add_offset": (hi + lo) / 2,
            "_FillValue": np.int16(-32768),
            "zlib": True,
            "complevel": 9,
        }
    }
    ds.to_netcdf(OUT, encoding=enc)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
