"""Runtimes behind one protocol, resolved by name so only the one a job names is imported.

This package runs inside the device agent: stdlib, numpy and the runtime itself, nothing else.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any, Dict, Tuple

# name -> (module, class, pip package, pytest-edgeopt extra)
RUNTIMES: Dict[str, Tuple[str, str, str, str]] = {
    "onnxruntime": ("pytest_edgeopt.runtimes.onnxruntime", "OnnxRuntime", "onnxruntime", "onnx"),
}


class RuntimeMissing(Exception):
    """The runtime's package cannot be imported where the agent runs."""


def install_hint(name: str) -> str:
    _, _, package, extra = RUNTIMES[name]
    return f"{package} is not installed: pip install \"pytest-edgeopt[{extra}]\" (or pip install {package})"


def create_runtime(name: str) -> Any:
    module_name, class_name, _, _ = RUNTIMES[name]
    try:
        module = import_module(module_name)
        return getattr(module, class_name)()
    except ImportError:
        raise RuntimeMissing(install_hint(name)) from None
