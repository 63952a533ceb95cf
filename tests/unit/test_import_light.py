"""`import pytest_edgeopt` and the agent must not pull in heavy runtimes (devices lack them)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "torch",
    "torchvision",
    "onnxruntime",
    "onnx",
    "ai_edge_litert",
    "tflite_runtime",
    "sklearn",
    "skimage",
    "matplotlib",
)


def imported_after(code: str) -> list:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return out.split()


def test_package_import_is_light() -> None:
    loaded = imported_after("import pytest_edgeopt")
    assert not set(HEAVY) & set(loaded)
    assert "pytest" not in loaded


def test_public_api_import_is_light() -> None:
    loaded = imported_after("from pytest_edgeopt import EdgeModel, Measurement, EdgeRunner")
    assert not set(HEAVY) & set(loaded)


def test_plugin_import_is_light() -> None:
    loaded = imported_after("import pytest_edgeopt.plugin")
    assert not set(HEAVY) & set(loaded)
