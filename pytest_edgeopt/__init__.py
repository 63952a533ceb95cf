"""pytest-edgeopt: edge-AI optimization goals as pytest regression tests.

Public names are re-exported lazily: `python -m pytest_edgeopt.agent` runs on devices with only
numpy and a runtime installed, so importing this package must not import pytest, torch or a runtime.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "EdgeModel": "pytest_edgeopt.models.base",
    "Measurement": "pytest_edgeopt.measure.result",
    "Metric": "pytest_edgeopt.measure.metric",
    "Fidelity": "pytest_edgeopt.measure.metric",
    "LatencyStats": "pytest_edgeopt.measure.result",
    "LayerError": "pytest_edgeopt.measure.result",
    "EdgeRunner": "pytest_edgeopt.session.runner",
    "EdgeOptError": "pytest_edgeopt.errors",
    "BudgetExceeded": "pytest_edgeopt.errors",
    "EdgeOptWarning": "pytest_edgeopt.errors",
    "MissingDependency": "pytest_edgeopt.errors",
    "Platform": "pytest_edgeopt.platforms.profiles",
    "zoo_names": "pytest_edgeopt.models.zoo",
    "precision_names": "pytest_edgeopt.optimize.precisions",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pytest_edgeopt' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
