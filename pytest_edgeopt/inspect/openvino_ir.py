"""What an OpenVINO IR (`.xml` + `.bin`) holds: its weights by type and its compute by type.

NNCF's INT8 of an `ov.Model` is saved as IR: weights quantized per channel are stored as int8
Constants behind a Convert/Subtract/Multiply decompression, activations pass FakeQuantize ops,
and layers in NNCF's IgnoredScope keep float32 Constants. The row's quantized share (weights and
MACs in INT8) is read here from that graph, as onnx_stats reads a QDQ .onnx. FLOPs are counted on
the graph reshaped to the eval batch's shapes (the file itself keeps the user's dynamic dims).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from pytest_edgeopt._fs import companions_of
from pytest_edgeopt.inspect.facts import ArtifactStats

# ops that compute with a weight on their second input, and how many weight dims are per-output work
_WEIGHTED = ("Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData")
_DECOMPRESSION = ("Convert", "Subtract", "Multiply", "Reshape", "Transpose", "Unsqueeze")
_INTEGER_TYPES = ("i8", "u8")
_TYPE_NAMES = {"f32": "float32", "f16": "float16", "i8": "int8", "u8": "uint8", "bf16": "bfloat16"}


def ir_stats(path: Path, shapes: Mapping[str, Sequence[int]]) -> ArtifactStats:
    """Storage (the .xml and its .bin), weights and their bytes by type, FLOPs by compute type on
    the graph at `shapes` (input name -> the eval batch's shape)."""
    import openvino as ov

    model = ov.Core().read_model(str(path))
    weights = _weights(model.get_ordered_ops())
    by_type: Dict[str, int] = {}
    for kind, nbytes, _ in weights:
        by_type[kind] = by_type.get(kind, 0) + nbytes
    flops, exact = _flops_by_type(reshaped(model, shapes))
    return ArtifactStats(
        params=sum(elements for _, _, elements in weights),
        weight_bytes=sum(by_type.values()),
        storage_bytes=sum(p.stat().st_size for p in (path, *companions_of(path))),
        flops=sum(flops.values()),
        weight_types=tuple(sorted(by_type)),
        flops_exact=exact,
        weight_bytes_by_type=tuple(sorted(by_type.items())),
        flops_by_type=tuple(sorted(flops.items())),
    )


def _weights(ops: Iterable[Any]) -> List[Tuple[str, int, int]]:
    """(type, bytes, elements) of each Constant a weighted op or a bias Add reads, directly or
    through its decompression; FakeQuantize ranges and decompression scales are not weights."""
    found: Dict[str, Tuple[str, int, int]] = {}
    for op in ops:
        if op.get_type_name() not in (*_WEIGHTED, "Add"):
            continue
        for index in range(1, op.get_input_size()):
            constant = weight_constant(op.input_value(index).get_node())
            if constant is None:
                continue
            kind = type_name(constant.get_output_element_type(0))
            elements = math.prod(constant.get_output_shape(0))
            if elements >= 2:
                found[constant.get_friendly_name()] = (kind, int(constant.get_byte_size()), int(elements))
    return list(found.values())


def weight_constant(node: Any) -> Optional[Any]:
    """The Constant a weight input comes from, through FakeQuantize (on the weight) and the
    decompression chain; None for an activation."""
    seen = 0
    while node.get_type_name() in (*_DECOMPRESSION, "FakeQuantize") and seen < 8:
        node = node.input_value(0).get_node()
        seen += 1
    return node if node.get_type_name() == "Constant" else None


def type_name(element_type: Any) -> str:
    name = str(element_type.get_type_name())
    return _TYPE_NAMES.get(name, name)


def reshaped(model: Any, shapes: Mapping[str, Sequence[int]]) -> Any:
    """A copy at the eval batch's shapes (input name -> shape), so every output has one; the
    model as it is when they do not fit it (a shape computed from a constant)."""
    copy = model.clone()
    ports = {name: port for port in copy.inputs for name in port.get_names()}
    wanted = {ports[name]: list(shape) for name, shape in shapes.items() if name in ports}
    try:
        copy.reshape(wanted)
    except Exception:
        return model
    return copy


def _flops_by_type(model: Any) -> Tuple[Dict[str, int], bool]:
    """2 x MACs of each weighted op, by the type it computes in: "int8" when its weight is an
    integer Constant (NNCF's compressed weights), else its weight's float type."""
    typed: Dict[str, int] = {}
    exact = True
    for op in model.get_ordered_ops():
        if op.get_type_name() not in _WEIGHTED:
            continue
        flops = _op_flops(op)
        if flops is None:
            exact = False
            continue
        constant = weight_constant(op.input_value(1).get_node())
        kind = type_name(constant.get_output_element_type(0)) if constant is not None else "float32"
        kind = "int8" if kind in ("int8", "uint8") else kind
        typed[kind] = typed.get(kind, 0) + flops
    return typed, exact


def _op_flops(op: Any) -> Optional[int]:
    """None when a shape is dynamic."""
    out, weight = op.get_output_partial_shape(0), op.get_input_partial_shape(1)
    if out.is_dynamic or weight.is_dynamic:
        return None
    out_dims, w_dims = [int(d) for d in out.to_shape()], [int(d) for d in weight.to_shape()]
    kind = op.get_type_name()
    if kind == "MatMul":
        data = op.get_input_partial_shape(0)
        if data.is_dynamic:
            return None
        transposed = bool(op.get_attributes().get("transpose_a", False))
        dims = [int(d) for d in data.to_shape()]
        depth = dims[-2] if transposed and len(dims) > 1 else dims[-1]
        return 2 * math.prod(out_dims) * depth
    if kind == "GroupConvolution":  # weight [G, Cout/G, Cin/G, k...]
        return 2 * math.prod(out_dims) * math.prod(w_dims[2:])
    if kind == "ConvolutionBackpropData":  # weight [Cin, Cout, k...]: each input pixel spreads
        data = op.get_input_partial_shape(0)
        if data.is_dynamic:
            return None
        return 2 * math.prod(int(d) for d in data.to_shape()) * math.prod(w_dims[1:])
    return 2 * math.prod(out_dims) * math.prod(w_dims[1:])  # Convolution: weight [Cout, Cin, k...]
