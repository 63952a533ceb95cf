"""Runtimes behind one protocol, resolved by name so only the one a job names is imported.

This package runs inside the device agent: stdlib, numpy and the runtime itself, nothing else.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any, Dict, NamedTuple


class RuntimeSpec(NamedTuple):
    module: str
    cls: str
    package: str  # what to pip install where the agent runs
    extra: str  # the pytest-edgeopt extra that brings it
    format: str  # the artifact format it loads: "onnx" or "tflite"


RUNTIMES: Dict[str, RuntimeSpec] = {
    "onnxruntime": RuntimeSpec("pytest_edgeopt.runtimes.onnxruntime", "OnnxRuntime", "onnxruntime", "onnx", "onnx"),
    "tflite": RuntimeSpec("pytest_edgeopt.runtimes.tflite", "LiteRT", "ai-edge-litert", "tflite", "tflite"),
    "tflite-reference": RuntimeSpec("pytest_edgeopt.runtimes.tflite", "LiteRTReference", "ai-edge-litert", "tflite",
                                    "tflite"),
    "tflite-runtime": RuntimeSpec("pytest_edgeopt.runtimes.tflite", "LegacyTfliteRuntime", "tflite-runtime",
                                  "tflite-legacy", "tflite"),
}


class RuntimeMissing(Exception):
    """The runtime's package cannot be imported where the agent runs."""


def install_hint(name: str) -> str:
    spec = RUNTIMES[name]
    return f"{spec.package} is not installed: pip install \"pytest-edgeopt[{spec.extra}]\" (or pip install {spec.package})"


def artifact_format(name: str) -> str:
    return RUNTIMES[name].format


def create_runtime(name: str) -> Any:
    spec = RUNTIMES[name]
    try:
        module = import_module(spec.module)
        return getattr(module, spec.cls)()
    except ImportError:
        raise RuntimeMissing(install_hint(name)) from None
