"""What an ensemble costs through the accessor: M members against M single passes.

Run from the repo root::

    python -m benchmarks.bench_ensemble [--members 8] [--repeat 3] [--json out.json]

For each sampling model in the zoo (``noise > 0``: the ``*-ens`` downscalers and
inpainters), ``downscale``/``inpaint`` with ``members=M`` against ``M`` calls
with ``members=None`` (the model's zero-noise pass, the same network), on 20
fields of the embedded sample (16 x 32 coarse fields for the downscalers; 64 x
128 fields with a 12 x 24 hole for the inpainters), numpy-backed.  Alternating
rounds; the ratio is the median over rounds of the ensemble's time over the M
passes' (target: <= 1.1, issue 24).
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings
from pathlib import Path

import numpy as np

import xatmodist

from ._timing import interleaved


def _inputs() -> dict:
    ds = xatmodist.datasets.sample().isel(run=0, time=slice(0, 20)).load()
    gappy = ds.copy(deep=True)
    for n in ("vo", "d"):
        gappy[n][dict(lat=slice(20, 32), lon=slice(40, 64))] = np.nan
    return {"downscaler": ds.coarsen(lat=4, lon=4).mean(), "inpainter": gappy}


def run(members: int = 8, repeat: int = 3) -> dict:
    """Seconds of the ensemble and of the single passes, and their ratio, per model."""
    warnings.simplefilter("ignore")
    inputs = _inputs()
    out: dict = {"members": members, "fields": 20, "models": {}}
    for task, fn in (("downscaler", xatmodist.downscale), ("inpainter", xatmodist.inpaint)):
        for name in xatmodist.model_names(task=task):
            if not xatmodist.load_model(name).card.noise_maps:
                continue
            x = inputs[task]

            def ensemble(x=x, fn=fn, name=name):
                return fn(x, model=name, members=members, seed=0)

            def singles(x=x, fn=fn, name=name):
                return [fn(x, model=name) for _ in range(members)]

            ensemble(), singles()  # load and warm up
            t = interleaved({"ensemble": ensemble, "singles": singles}, repeat)
            out["models"][name] = {
                "ensemble_seconds": min(t["ensemble"]),
                "singles_seconds": min(t["singles"]),
                "ratio": statistics.median(
                    e / s for e, s in zip(t["ensemble"], t["singles"], strict=True)
                ),
            }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    res = run(a.members, a.repeat)
    print(f"{a.members} members of 20 fields: ensemble time / {a.members} single passes")
    for name, r in res["models"].items():
        print(
            f"{name:32s} {r['ensemble_seconds']:.3f} s vs {r['singles_seconds']:.3f} s: "
            f"ratio {r['ratio']:.3f}"
        )
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
