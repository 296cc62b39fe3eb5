"""A non-editable install carries the sample data and the pretrained weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_wheel_install_loads_models_offline(tmp_path):
    wheel_dir = tmp_path / "wheel"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheel_dir),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    if r.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{r.stderr[-2000:]}")
    target = tmp_path / "site"
    wheel = next(wheel_dir.glob("xatmodist-*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    code = (
        "import socket\n"
        "def _no_net(*a, **k): raise OSError('network disabled in this test')\n"
        "socket.socket.connect = _no_net\n"
        "import xatmodist\n"
        f"assert xatmodist.__file__.startswith({str(target)!r}), xatmodist.__file__\n"
        "m = xatmodist.load_model('atmodist-swe-vd')\n"
        f"assert str(m.path).startswith({str(target)!r}), m.path\n"
        "ds = xatmodist.datasets.sample()\n"
        "print(xatmodist.model_names(), ds.sizes['time'])\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "atmodist-swe-vd" in r.stdout
