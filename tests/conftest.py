"""Shared set-up for the plugin's own tests.

Exports and quantizations are cached by content, so every pytester run shares one artifact cache
for the session (tests of the cache itself pass --edge-cache-dir to get their own).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

pytest_plugins = ["pytester"]

QUICK = ("--edge-quick", "-p", "no:cacheprovider")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("edgeopt-cache")


@pytest.fixture(autouse=True)
def _shared_cache_env(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("EDGEOPT_CACHE_DIR", str(shared_cache))
    yield


@pytest.fixture
def digits_arrays() -> dict:
    """The labelled digits split the zoo ships, as plain numpy arrays a user would have."""
    import numpy as np

    from pytest_edgeopt.models.digits import load_digits_cnn

    model = load_digits_cnn()
    return {"x_test": np.asarray(model.eval_inputs), "y_test": np.asarray(model.eval_labels),
            "x_calib": np.asarray(model.calibration_inputs)}
