"""Shared set-up for the plugin's own tests.

Exports and quantizations are cached by content, so every pytester run shares one artifact cache
for the session (tests of the cache itself pass --edge-cache-dir to get their own).
"""
from __future__ import annotations

import platform
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


@pytest.fixture(scope="session", autouse=True)
def _heavy_modules_loaded(shared_cache: Path) -> None:
    """Export and quantize digits-cnn once, in this process, before any pytester run.

    pytester restores sys.modules after each in-process run; importing onnx's C extension or
    torch's exporter a second time in one process aborts it (SIGABRT, no message). Loading them
    here keeps them loaded, and fills the shared artifact cache as a side effect.
    """
    import onnxruntime.quantization  # noqa: F401
    import onnxruntime.transformers.float16  # noqa: F401

    from pytest_edgeopt.models.zoo import load_zoo_model
    from pytest_edgeopt.optimize.artifacts import build_artifact
    from pytest_edgeopt.optimize.cache import ArtifactCache
    from pytest_edgeopt.optimize.precisions import get_precision

    model = load_zoo_model("digits-cnn")
    for precision in ("fp32", "int8"):
        build_artifact(model, precision=get_precision(precision), batch=1, arch=platform.machine(),
                       cache=ArtifactCache(shared_cache))
