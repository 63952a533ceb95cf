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
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """anyio 4.14's pytest plugin (installed by litert-torch's dependencies) warns about pytest
    9.2's CallSpec2 in every inner run and xdist worker, adding "1 warning" to the summary lines
    tests assert on. Pytester clears PYTEST_ADDOPTS when it starts, so it is set after.
    The inner runs get a wide terminal: the tests read every column of the table; the tests of
    the fitted table set COLUMNS themselves."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:anyio")
    monkeypatch.setenv("COLUMNS", "1000")
    return pytester


@pytest.fixture
def digits_arrays() -> dict:
    """The labelled digits split the zoo ships, as plain numpy arrays a user would have (no torch
    needed: the runtime-only venv of CI uses them with the committed .tflite files)."""
    from pytest_edgeopt.models.digits import _load_split

    x_test, y_test, x_calib = _load_split()
    return {"x_test": x_test, "y_test": y_test, "x_calib": x_calib}


@pytest.fixture(scope="session", autouse=True)
def _heavy_modules_loaded(shared_cache: Path) -> None:
    """Export and quantize digits-cnn once, in this process, before any pytester run.

    pytester restores sys.modules after each in-process run; importing onnx's C extension or
    torch's exporter a second time in one process aborts it (SIGABRT, no message). Loading them
    here keeps them loaded, and fills the shared artifact cache as a side effect.
    The same holds for LiteRT, its quantizer and litert-torch (jax) where they are installed.
    Without torch (CI's runtime-only venv) there is nothing to export, so nothing is preloaded.
    """
    for module in ("ai_edge_litert.interpreter", "ai_edge_quantizer.quantizer", "litert_torch"):
        _import_if_installed(module)
    # the NNCF builder's child-process function is pickled by module name: a second pytester run
    # re-imported the module while load_builder's cache held the first one's (PicklingError)
    _import_if_installed("pytest_edgeopt.optimize.openvino")
    if not _import_if_installed("torch") or not _import_if_installed("onnxscript"):
        return
    import onnxruntime.quantization
    import onnxruntime.transformers.float16  # noqa: F401

    from pytest_edgeopt.models.zoo import load_zoo_model
    from pytest_edgeopt.optimize.artifacts import build_artifact
    from pytest_edgeopt.optimize.cache import ArtifactCache
    from pytest_edgeopt.optimize.precisions import get_precision

    model = load_zoo_model("digits-cnn")
    for precision in ("fp32", "int8"):
        build_artifact(
            model,
            precision=get_precision(precision),
            batch=1,
            arch=platform.machine(),
            cache=ArtifactCache(shared_cache),
        )


def _import_if_installed(module: str) -> bool:
    import importlib
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jax and transformers warn about their own internals
            importlib.import_module(module)
    except ImportError:
        return False
    return True
