"""Every number a measurement carries, under its registry id: the JUnit XML properties and
`python -m pytest_edgeopt compare` read the registry (measure/registry.py) through here, so a
metric added there reaches both."""

from __future__ import annotations

from typing import Dict

from pytest_edgeopt.measure.registry import BY_ID, METRICS, Direction
from pytest_edgeopt.measure.result import Measurement, measured_value


def measured_values(m: Measurement) -> Dict[str, float]:
    """id -> number, only what this measurement has (no energy without a meter)."""
    found = {spec.id: measured_value(m, spec.id) for spec in METRICS}
    return {name: number for name, number in found.items() if number is not None}


def higher_is_better(name: str, m: Measurement) -> bool:
    """A task metric's direction is the model's (an error rate falls); the rest are the registry's."""
    if name == "metric":
        return m.metric_higher_is_better
    return BY_ID[name].direction is Direction.HIGHER
