"""What a microcontroller's kernels have to compute for a .tflite model, and whether they can.

`kernel_work` counts the multiply-accumulates of each kernel class a CMSIS-NN or ESP-NN build
runs at its own speed (convolution, depthwise convolution, fully connected) and the element
operations of everything else; an MCU latency estimate is cycles-per-MAC per class times these.
`integer_check` says whether TFLite Micro can run the model as a microcontroller does: integer
weights and activations, no float compute (a float input or output converted at the boundary
is allowed). Hybrid (dynamic-range) and FP16 models are refused by TFLM itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Set

from pytest_edgeopt.inspect.tflite_graph import FLOAT_TYPES, TYPE_NAMES, Graph, Operator

KERNEL_CLASSES = ("conv", "depthwise", "fully_connected", "other")
_CLASS_OF = {
    "CONV_2D": "conv",
    "TRANSPOSE_CONV": "conv",
    "CONV_3D": "conv",
    "DEPTHWISE_CONV_2D": "depthwise",
    "FULLY_CONNECTED": "fully_connected",
    "BATCH_MATMUL": "fully_connected",
}
_REDUCE_OPS = ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD")
_WEIGHT_OPS = (*_CLASS_OF, "EMBEDDING_LOOKUP", "UNIDIRECTIONAL_SEQUENCE_LSTM", "SVDF")
_INT_WEIGHTS = {9: "int8", 17: "int4", 3: "uint8", 7: "int16"}


@dataclass(frozen=True)
class KernelWork:
    """MACs per kernel class (batch included) and the element operations of all other ops."""

    conv: int = 0
    depthwise: int = 0
    fully_connected: int = 0
    other: int = 0

    @property
    def macs(self) -> int:
        return self.conv + self.depthwise + self.fully_connected

    def to_dict(self) -> Dict[str, int]:
        return {name: getattr(self, name) for name in KERNEL_CLASSES}


def kernel_work(graph: Graph) -> KernelWork:
    totals = dict.fromkeys(KERNEL_CLASSES, 0)
    for op in graph.operators:
        totals[_CLASS_OF.get(op.name, "other")] += op_cost(graph, op)
    return KernelWork(**totals)


def op_cost(graph: Graph, op: Operator) -> int:
    """MACs of a convolution or matrix product from its shapes; element operations otherwise
    (output elements, times the window for pooling, input elements for reductions)."""
    ins = [graph.tensors[t] for t in op.inputs]
    out_elements = sum(graph.tensors[t].elements for t in op.outputs)
    if op.name in ("CONV_2D", "CONV_3D"):  # filter OHWI (2D) / DHWIO (3D)
        filt = ins[1].shape
        return out_elements * (math.prod(filt[1:]) if op.name == "CONV_2D" else math.prod(filt[:-1]))
    if op.name == "DEPTHWISE_CONV_2D":  # filter 1, H, W, C x multiplier
        return out_elements * ins[1].shape[1] * ins[1].shape[2]
    if op.name == "TRANSPOSE_CONV":  # inputs: output shape, filter OHWI, input
        return ins[2].elements * math.prod(ins[1].shape[:3])
    if op.name == "FULLY_CONNECTED":
        return out_elements * ins[1].shape[-1]
    if op.name == "BATCH_MATMUL":
        lhs = ins[0].shape
        return out_elements * (lhs[-2] if op.adj_x else lhs[-1])
    if op.window is not None:
        return out_elements * op.window[0] * op.window[1]
    if op.name in _REDUCE_OPS:
        return ins[0].elements
    return max([out_elements] + [t.elements for t in ins[:1]])


@dataclass(frozen=True)
class IntegerCheck:
    """Whether the model is full integer; the reason names what is not, or the types it uses."""

    ok: bool
    reason: str
    hybrid: bool = False  # int8 weights feeding float activations (dynamic-range quantization)
    float16: bool = False  # float16 weights dequantized to float32 at run time


def integer_check(graph: Graph) -> IntegerCheck:
    weights: Set[int] = set()
    float_ops: List[str] = []
    hybrid_ops: List[str] = []
    boundary: List[str] = []
    for op in graph.operators:
        weights |= _weight_types(graph, op)
        if _integer_result(graph, op):  # QUANTIZE to an integer type, DEQUANTIZE into a graph output
            boundary += [op.name] if _float_input(graph, op) or op.name == "DEQUANTIZE" else []
            continue
        if _computes_in_float(graph, op):
            float_ops.append(op.name)
            if _weight_types(graph, op) & set(_INT_WEIGHTS) - {7}:
                hybrid_ops.append(op.name)
    return _verdict(graph, weights, float_ops, hybrid_ops, boundary)


def _verdict(
    graph: Graph, weights: Set[int], float_ops: Sequence[str], hybrid_ops: Sequence[str], boundary: Sequence[str]
) -> IntegerCheck:
    if 1 in weights:
        return IntegerCheck(False, "float16 weights (dequantized to float32 at run time)", float16=True)
    if hybrid_ops:
        kind = _INT_WEIGHTS[min(weights & set(_INT_WEIGHTS))]
        why = f"hybrid (dynamic-range) quantization: {kind} weights feeding float activations in {_summary(hybrid_ops)}"
        return IntegerCheck(False, why, hybrid=True)
    if float_ops:
        return IntegerCheck(False, f"float compute in {_summary(float_ops)}")
    if weights & FLOAT_TYPES:
        return IntegerCheck(False, "float weights")
    activations = sorted({t.type_name for t in graph.tensors if t.index not in graph.constants})
    names = ", ".join(sorted(TYPE_NAMES.get(w, str(w)) for w in weights)) or "none"
    reason = f"integer weights ({names}) and activations ({', '.join(activations)})"
    return IntegerCheck(True, reason + (f"; float I/O converted by {_summary(boundary)}" if boundary else ""))


def _weight_types(graph: Graph, op: Operator) -> Set[int]:
    """The stored type of the op's constant weight (a DEQUANTIZE of a constant counts as one)."""
    if op.name in _WEIGHT_OPS and len(op.inputs) > 1 and op.inputs[1] in graph.constants:
        return {graph.tensors[op.inputs[1]].type}
    if op.name == "DEQUANTIZE" and op.inputs and op.inputs[0] in graph.constants:
        return {graph.tensors[op.inputs[0]].type}
    return set()


def _integer_result(graph: Graph, op: Operator) -> bool:
    """Conversions at the integer boundary, which TFLM runs: a QUANTIZE to an integer type (of a
    float input, or a requantization), a DEQUANTIZE of an activation into a graph output."""
    if op.name == "QUANTIZE":
        outs = [graph.tensors[t].type for t in op.outputs]
        return bool(outs) and not set(outs) & FLOAT_TYPES
    if op.name == "DEQUANTIZE" and op.inputs and op.inputs[0] not in graph.constants:
        return set(op.outputs) <= set(graph.outputs)
    return False


def _float_input(graph: Graph, op: Operator) -> bool:
    return any(graph.tensors[t].type in FLOAT_TYPES for t in op.inputs if t not in graph.constants)


def _computes_in_float(graph: Graph, op: Operator) -> bool:
    activations = [t for t in op.inputs if t not in graph.constants] + list(op.outputs)
    return any(graph.tensors[t].type in FLOAT_TYPES for t in activations)


def _summary(names: Sequence[str]) -> str:
    counts: Dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.items())
