"""What the AtmoDist content loss costs a training step, per encoder (issue 23's second target).

Run from the repo root::

    python -m benchmarks.bench_content_step [--repeat 3] [--steps 16] [--json out.json]

For each encoder (the default, v4's architecture with random weights -- a
step's cost does not depend on the weights, and v4's are no longer kept -- and
every other encoder of the simulator's variables) and for each field trainer
(:func:`~xatmodist.train.fit_downscaler`, x4 on 64 x 64 patches, batch 16;
:func:`~xatmodist.train.fit_inpainter`, 64 x 64 patches, batch 16), one epoch
of ``--steps`` optimizer steps on synthetic 64 x 128 fields with the AtmoDist
loss of that encoder, and the same with the l2 loss as a floor.  The time is
batch over the training loop's own ``samples_per_second`` (``history[-1]``: batches,
forward, backward and optimizer, no set-up).  Every run of a round runs back to
back and rounds alternate; the ratio is the median over rounds of v4's time
over the encoder's (> 1: cheaper than v4).  Target: the default's ratio >= 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings
from pathlib import Path

import torch

import xatmodist
from xatmodist.testing import synthetic_fields

from ._superseded import architecture_twin


def _encoders() -> dict[str, str]:
    names = [  # the encoders of both simulator variables (the loss needs all of them)
        n
        for n in xatmodist.model_names(task="encoder")
        if xatmodist.load_model(n).card.variable_names == ["vo", "d"]
    ]
    return {"atmodist-swe-vd-v4": architecture_twin("atmodist-swe-vd-v4"), **{n: n for n in names}}


def run(repeat: int = 3, steps: int = 16) -> dict:
    """Seconds per step of each (trainer, loss) and the ratio to v4's; see the module doc."""
    from xatmodist.train import fit_downscaler, fit_inpainter

    warnings.simplefilter("ignore")
    ds = synthetic_fields(n_time=48, nlat=64, nlon=128, seed=0)
    batch = 16
    common = {"epochs": 1, "batch_size": batch, "samples_per_epoch": steps * batch, "seed": 0}
    common |= {"patch_size": 64, "progress": False, "threads": torch.get_num_threads()}
    trainers = {
        "downscaler": lambda **kw: fit_downscaler(ds, factor=4, **common, **kw),
        "inpainter": lambda **kw: fit_inpainter(ds, **common, **kw),
    }
    loss_arg = {"downscaler": "content_loss", "inpainter": "loss"}
    encoders = _encoders()
    out: dict = {"steps": steps, "batch": batch, "torch_threads": torch.get_num_threads()}
    for trainer, fit in trainers.items():
        runs = {"l2": lambda fit=fit, t=trainer: fit(**{loss_arg[t]: "l2"})}
        for name, enc in encoders.items():
            runs[name] = lambda fit=fit, enc=enc: fit(encoder=enc)
        for fn in runs.values():  # warm-up: loads, first-call costs
            fn()
        secs = {k: [] for k in runs}
        for _ in range(repeat):
            for k, fn in runs.items():
                rec = fn().card.training["history"][-1]
                secs[k].append(batch / rec["samples_per_second"])
        out[trainer] = {
            k: {
                "seconds_per_step": min(v),
                "v4_over_this": statistics.median(
                    a / b for a, b in zip(secs["atmodist-swe-vd-v4"], v, strict=True)
                ),
                "rounds": v,
            }
            for k, v in secs.items()
        }
    out["default"] = xatmodist.zoo.DEFAULT_ENCODER
    return out


def table(res: dict) -> str:
    """Markdown: per encoder, ms per step and the ratio to v4 for both trainers."""
    lines = [
        "| loss | downscaler ms/step | vs v4 | inpainter ms/step | vs v4 |",
        "|---|---|---|---|---|",
    ]
    for k in res["downscaler"]:
        d, i = res["downscaler"][k], res["inpainter"][k]
        tag = " (default)" if k == res["default"] else ""
        name = "l2 (no encoder)" if k == "l2" else f"AtmoDist, {k}{tag}"
        lines.append(
            f"| {name} | {1000 * d['seconds_per_step']:.0f} | {d['v4_over_this']:.2f}x "
            f"| {1000 * i['seconds_per_step']:.0f} | {i['v4_over_this']:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    res = run(a.repeat, a.steps)
    print(table(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
