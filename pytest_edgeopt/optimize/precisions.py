"""The precisions a test can ask for, and the bit-width label each one puts in the table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class Precision:
    name: str
    weights: str  # bit-width label of the stored weights
    activations: str  # bit-width label of the activations at run time
    summary: str

    @property
    def bitwidth(self) -> str:
        return f"{self.weights}/{self.activations}"


PRECISIONS: Dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp32", "FP32", "FP32", "full precision reference"),
        Precision("fp16", "FP16", "FP16", "float16 weights and activations, float32 I/O"),
        Precision(
            "int8", "INT8", "INT8", "static QDQ, per-channel int8 weights, activation type chosen for the target CPU"
        ),
        Precision("int8-u8s8", "INT8", "INT8", "static QDQ, uint8 activations, int8 per-channel weights"),
        Precision("int8-s8s8", "INT8", "INT8", "static QDQ, int8 activations, int8 per-channel weights"),
        Precision(
            "int8-mixed",
            "INT8",
            "INT8",
            "static QDQ with the fewest most sensitive layers kept float that meet the case's accuracy budget",
        ),
        Precision(
            "int8-dynamic",
            "INT8",
            "FP32",
            "dynamic: int8 weights, activations quantized at run time (for Linear/MatMul models)",
        ),
    )
}

REFERENCE = "fp32"
MIXED = "int8-mixed"  # chosen per case by a search (session/mixed.py): keep_float is its result


def is_static_int8(name: str) -> bool:
    """A calibrated INT8 precision: int8 activations whose ranges come from calibration data,
    the files whose layers can be ranked and kept float (int8-dynamic quantizes at run time).
    measure/result.py's Measurement.float_layers repeats this rule: measure sits below optimize."""
    return name.startswith("int8") and name != "int8-dynamic"


def precision_names() -> Tuple[str, ...]:
    return tuple(PRECISIONS)


def unknown_precision(name: object) -> Optional[str]:
    """Why `name` is not a precision, listing the valid ones; None when it is one. The one check
    behind every place a user names a precision (markers, options, edge_runner.measure, budgets)."""
    if isinstance(name, str) and name in PRECISIONS:
        return None
    return f"unknown precision {name!r}; choose from {', '.join(PRECISIONS)}"


def get_precision(name: str) -> Precision:
    """Look a precision up; the KeyError text lists the valid names for the UsageError."""
    why = unknown_precision(name)
    if why is not None:
        raise KeyError(why)
    return PRECISIONS[name]
