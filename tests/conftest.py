"""Shared fixtures: a tiny saved encoder, synthetic fields, the real-data folder."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import xatmodist
from xatmodist.testing import synthetic_fields, tiny_encoder

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def add_namespace(doctest_namespace):
    doctest_namespace["xatmodist"] = xatmodist
    doctest_namespace["np"] = np


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A randomly initialised encoder (patch 16) saved and loaded like a real one."""
    return tiny_encoder(tmp_path_factory.mktemp("tiny") / "tiny-encoder")


@pytest.fixture(scope="session")
def fields():
    """Synthetic CF vorticity/divergence, (time=8, lat=64, lon=128), numpy-backed."""
    return synthetic_fields(n_time=8)


@pytest.fixture
def shared_data():
    if not SHARED.is_dir():
        pytest.skip(f"real-data samples not found at {SHARED} (a user's checkout)")
    return SHARED


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
