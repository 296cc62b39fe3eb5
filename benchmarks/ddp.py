"""Data-parallel training: 2 CPU ranks x 1 thread against 1 process x 1 thread.

Run from the repo root::

    python -m benchmarks.ddp [--rounds 3] [--pairs 2048] [--json out.json]

Both variants train the same encoder (default architecture, 32 x 32 patches of
synthetic 64 x 128 fields written to a netCDF file) for 2 epochs of
``--pairs`` pairs with the same global batch of 64 pairs, through the
``xatmodist train encoder`` command: one process, or ``torchrun --standalone
--nproc_per_node=2`` (each rank 32 pairs of every batch, gradients averaged).
The figure is the second epoch's pairs/s from the run's ``metrics.jsonl``
(process start-up and the first epoch's warm-up are left out); the rounds
alternate the variants and the ratio is the median of the paired ratios.
Issue 22's target: at least 1.7x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from xatmodist.testing import synthetic_fields


def _pairs_per_second(data: Path, out: Path, ranks: int, pairs: int) -> float:
    args = ["train", "encoder", str(data), "--max-lag", "36h", "--epochs", "2",
            "--pairs-per-epoch", str(pairs), "--batch-size", "64", "--val-pairs", "256",
            "--val-every", "4", "--threads", "1", "--no-progress", "--out", str(out)]  # fmt: skip
    launch = [sys.executable, "-m", "xatmodist"]
    if ranks > 1:
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                  f"--nproc_per_node={ranks}", "-m", "xatmodist"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*launch, *args], check=True, env=env, capture_output=True)
    last = (out / "metrics.jsonl").read_text().splitlines()[-1]
    return json.loads(last)["pairs_per_second"]


def main() -> None:
    """Print and optionally save the paired rounds and their median ratio."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pairs", type=int, default=2048)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xatmodist-ddp-"))
    data = work / "fields.nc"
    synthetic_fields(n_time=480, nlat=64, nlon=128, seed=0).to_netcdf(data)
    rounds = []
    for i in range(args.rounds):
        one = _pairs_per_second(data, work / f"one{i}", 1, args.pairs)
        two = _pairs_per_second(data, work / f"two{i}", 2, args.pairs)
        rounds.append({"one_process": one, "two_ranks": two, "ratio": two / one})
        print(f"round {i + 1}: 1 x 1 thread {one:.0f} pairs/s, 2 ranks x 1 thread "  # noqa: T201
              f"{two:.0f} pairs/s, ratio {two / one:.2f}")  # fmt: skip
    ratio = statistics.median(r["ratio"] for r in rounds)
    print(f"median ratio {ratio:.2f} (target >= 1.7; {os.cpu_count()} cores)")  # noqa: T201
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": rounds, "median_ratio": ratio}))


if __name__ == "__main__":
    main()
