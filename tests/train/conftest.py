"""Fixtures: small synthetic datasets generated once per session (see helpers.py for the run configs)."""

from __future__ import annotations

import pytest

from ean.data import generate_synthetic
from tests.train.helpers import FIXED_CLIPS, SYNTHETIC


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    """A synthetic dataset: 20 training and 4 validation videos of 4 classes, 32 x 42 pixels."""
    return generate_synthetic(str(tmp_path_factory.mktemp("train-synthetic") / "data"), **SYNTHETIC)


@pytest.fixture(scope="session")
def fixed_clips_root(tmp_path_factory) -> str:
    """A synthetic dataset of 18 training and 3 validation videos of 4 frames (3 classes)."""
    return generate_synthetic(str(tmp_path_factory.mktemp("train-fixed") / "data"), **FIXED_CLIPS)
