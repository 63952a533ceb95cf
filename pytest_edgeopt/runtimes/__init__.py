"""Runtimes behind one protocol, resolved by module name so only the one a job names is imported.

This package runs inside the device agent: stdlib, numpy and the runtime itself, nothing else.
The host's registry (which names exist, what each loads) is the built-ins below plus what
plugins return from the `pytest_edgeopt_runtimes` hook; a job carries the module and class of its
runtime, so the agent needs no registry of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Dict, Iterable, Optional, Tuple

from pytest_edgeopt.runtimes.base import Runtime
from pytest_edgeopt.runtimes.install import install_hint


@dataclass(frozen=True)
class RuntimeSpec:
    """A runtime as the host knows it: where its class lives and what it needs."""

    name: str  # what tests write: runtime="onnxruntime", @pytest.mark.edge_runtimes("tflite")
    module: str  # importable where the agent runs (a plugin's module is pushed with the agent)
    cls: str
    package: str  # what to pip install where the agent runs
    extra: str  # the pytest-edgeopt extra that brings it ("" for a plugin's runtime)
    format: str  # the artifact format it loads: "onnx", "tflite", or a plugin's own
    # "module:attribute" of an ArtifactBuilder (pytest_edgeopt.optimize.formats) that builds the
    # precisions it owns itself (ExecuTorch's .pte, OpenVINO's NNCF INT8); "" = the format's own path
    builder: str = ""

    def install_hint(self) -> str:
        return install_hint(self.package, self.extra)


BUILTIN_RUNTIMES: Tuple[RuntimeSpec, ...] = (
    RuntimeSpec("onnxruntime", "pytest_edgeopt.runtimes.onnxruntime", "OnnxRuntime", "onnxruntime", "onnx", "onnx"),
    RuntimeSpec("tflite", "pytest_edgeopt.runtimes.tflite", "LiteRT", "ai-edge-litert", "tflite", "tflite"),
    RuntimeSpec(
        "tflite-reference", "pytest_edgeopt.runtimes.tflite", "LiteRTReference", "ai-edge-litert", "tflite", "tflite"
    ),
    RuntimeSpec(
        "openvino",
        "pytest_edgeopt.runtimes.openvino",
        "OpenVINO",
        "openvino",
        "openvino",
        "onnx",
        builder="pytest_edgeopt.optimize.openvino:BUILDER",
    ),
    RuntimeSpec("tflm", "pytest_edgeopt.runtimes.tflm", "TFLM", "tflite-micro", "mcu", "tflite"),
    RuntimeSpec(
        "tflite-runtime",
        "pytest_edgeopt.runtimes.tflite",
        "LegacyTfliteRuntime",
        "tflite-runtime",
        "tflite-legacy",
        "tflite",
    ),
)
RUNTIMES: Dict[str, RuntimeSpec] = {spec.name: spec for spec in BUILTIN_RUNTIMES}


def registry(specs: Iterable[Iterable[RuntimeSpec]]) -> Dict[str, RuntimeSpec]:
    """Merge the hook's lists; the first plugin to name a runtime wins (the built-ins come last)."""
    table: Dict[str, RuntimeSpec] = {}
    for group in specs:
        for spec in group:
            table.setdefault(spec.name, spec)
    return table


class RuntimeMissing(Exception):
    """The runtime's package cannot be imported where the agent runs; `module` is what was missing."""

    def __init__(self, message: str, *, module: Optional[str]) -> None:
        super().__init__(message)
        self.module = module


def create_runtime(module: str, cls: str) -> Runtime:
    """Import only the runtime the job names; an ImportError means its package is missing."""
    try:
        runtime: Runtime = getattr(import_module(module), cls)()
    except ImportError as error:
        raise RuntimeMissing(f"cannot import {module} ({error})", module=getattr(error, "name", None)) from None
    return runtime
