"""Peak memory of ``distance`` on one 721 x 1440 field (ERA5's 0.25 deg grid).

Run from the repo root::

    python -m benchmarks.big_field [--json out.json]

Each variant runs in a fresh process: it makes two synthetic 721 x 1440
fields (2 variables, float32: 7.9 MB each), loads the default encoder and
warms it up on a small field, then computes one field distance and reports
how far the process's peak resident memory (``ru_maxrss``) rose during that
call.  Variants: ``batch_size`` 16, 64 (default) and 256 with the patches
streamed (``TILE_BATCHES * batch_size`` at a time), and the default batch
size with the whole field tiled at once (the kernels before issue 22, as a
baseline: ``TILE_BATCHES`` set huge); then both at 1441 x 2880 (0.125 deg),
where a bounded stream must rise as much as at 721 x 1440.  The figures are
MB above the warm process (the inputs exist before it) and the ratio to the
inputs' size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = r"""
import json, resource, sys, warnings
import xatmodist
from xatmodist import _kernels
from xatmodist.testing import synthetic_fields
batch, whole, nlat, nlon = int(sys.argv[1]), sys.argv[2] == "1", *map(int, sys.argv[3:5])
if whole:
    _kernels.TILE_BATCHES = 10**9
warnings.simplefilter("ignore")
ds = synthetic_fields(n_time=2, nlat=nlat, nlon=nlon, seed=0)
a, b = ds.isel(time=[0]), ds.isel(time=[1]).assign_coords(time=ds.time[:1])
small = synthetic_fields(n_time=2, nlat=64, nlon=128, seed=0)
with xatmodist.set_options(batch_size=batch, progress=False):
    small.atmodist.distance(small.isel(time=0)).compute()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    a.atmodist.distance(b).compute()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
inputs = 2 * (a.vo.nbytes + a.d.nbytes) / 2**20
print(json.dumps({"peak_rise_mb": (after - before) / 1024, "input_mb": inputs}))
"""


def measure(batch: int, whole: bool, nlat: int = 721, nlon: int = 1440) -> dict:
    """One variant in a fresh process."""
    r = subprocess.run(
        [sys.executable, "-c", _CHILD, str(batch), "1" if whole else "0", str(nlat), str(nlon)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print and optionally save the variants."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=None)
    args = p.parse_args()
    out = {}
    for name, batch, whole, grid in [
        ("streamed, batch_size 16", 16, False, (721, 1440)),
        ("streamed, batch_size 64", 64, False, (721, 1440)),
        ("streamed, batch_size 256", 256, False, (721, 1440)),
        ("whole field tiled, batch_size 64", 64, True, (721, 1440)),
        ("1441 x 2880, streamed, batch_size 64", 64, False, (1441, 2880)),
        ("1441 x 2880, whole field tiled, batch_size 64", 64, True, (1441, 2880)),
    ]:
        r = measure(batch, whole, *grid)
        r["ratio_to_inputs"] = r["peak_rise_mb"] / r["input_mb"]
        out[name] = r
        print(  # noqa: T201
            f"{name:46s} peak +{r['peak_rise_mb']:6.1f} MB "
            f"({r['ratio_to_inputs']:.2f}x the {r['input_mb']:.1f} MB of inputs)"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
