"""Throughput of the networks against the size of one forward pass.

Run from the repo root::

    python -m benchmarks.pass_size [--seconds 1.0]

For each zoo encoder in ``--encoders`` (the network the inference kernels run:
batch norms folded, trunk frozen by TorchScript), patches per second of
``features`` on random patches in passes of 8 to 256 patches; for the
downscaler and the inpainter, fields per second in passes of 1 to 16 whole
64 x 128 fields (the inpainter's padded input, 96 x 160).  Each size runs for
``--seconds`` after a warm-up pass; the thread count is torch's default (or
``--threads``).  These numbers chose the pass sizes of the kernels
(``set_options(batch_size=64)``, ``xatmodist._kernels.FIELDS_PER_PASS``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import xatmodist
from xatmodist._kernels import inference_encoder

from ._superseded import RECORD, architecture_twin


def _rate(fn, inputs, size: int, seconds: float) -> float:
    n_all = len(inputs[0])
    with torch.inference_mode():
        fn(*(x[:size] for x in inputs))
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            for i in range(0, n_all - size + 1, size):
                fn(*(x[i : i + size] for x in inputs))
                n += size
    return n / (time.perf_counter() - t0)


def run(encoders, seconds: float = 1.0) -> dict:
    rng = np.random.default_rng(0)
    out = {"torch_threads": torch.get_num_threads(), "encoders": {}, "fields": {}}
    superseded = json.loads(RECORD.read_text())
    for name in encoders:
        if name in superseded:  # no longer kept: its architecture, random weights
            name = architecture_twin(name)
        net = inference_encoder(name, True)
        p = int(xatmodist.load_model(name).card.patch_size)
        x = torch.from_numpy(rng.standard_normal((512, 2, p, p)).astype(np.float32) * 1e-5)
        out["encoders"][name] = {
            b: _rate(net.features, [x], b, seconds) for b in (8, 16, 32, 64, 128, 256)
        }
    inp = xatmodist.load_model("inpaint-swe-vd").module
    xi = torch.from_numpy(rng.standard_normal((32, 2, 96, 160)).astype(np.float32) * 1e-5)
    mi = torch.from_numpy((rng.random((32, 1, 96, 160)) > 0.9).astype(np.float32))
    out["fields"]["inpaint-swe-vd"] = {
        b: _rate(inp, [xi, mi], b, 2 * seconds) for b in (1, 2, 4, 8, 16)
    }
    ds = xatmodist.load_model("downscale-swe-vd-x4").module
    xd = torch.from_numpy(rng.standard_normal((32, 2, 32, 48)).astype(np.float32) * 1e-5)
    out["fields"]["downscale-swe-vd-x4"] = {
        b: _rate(ds, [xd], b, 2 * seconds) for b in (1, 2, 4, 8, 16)
    }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--encoders",
        nargs="+",
        default=[
            xatmodist.zoo.DEFAULT_ENCODER,
            "atmodist-swe-vd-v4",  # superseded: its architecture, random weights
            "atmodist-swe-vd-v6",
        ],
    )
    p.add_argument("--json", help="write the results as JSON")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    res = run(args.encoders, args.seconds)
    print(f"{res['torch_threads']} torch threads")
    for name, row in res["encoders"].items():
        cells = "  ".join(f"{b}: {r:.0f}" for b, r in row.items())
        print(f"  {name:<26} patches/s by patches per pass  {cells}")
    for name, row in res["fields"].items():
        cells = "  ".join(f"{b}: {r:.1f}" for b, r in row.items())
        print(f"  {name:<26} fields/s by fields per pass    {cells}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
