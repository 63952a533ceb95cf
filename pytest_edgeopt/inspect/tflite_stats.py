"""Static facts of a .tflite file (params, weight bytes, storage, FLOPs), read from its flatbuffer.

The same ArtifactStats as for ONNX, so a LiteRT row and an ONNX Runtime row of one model are
compared column by column. Read with the schema LiteRT ships, without building an interpreter.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.inspect.facts import ArtifactStats

# element sizes by schema.TensorType value, named as numpy names them
_TYPES: Dict[int, Tuple[str, float]] = {
    0: ("float32", 4),
    1: ("float16", 2),
    2: ("int32", 4),
    3: ("uint8", 1),
    4: ("int64", 8),
    6: ("bool", 1),
    7: ("int16", 2),
    9: ("int8", 1),
    10: ("float64", 8),
    12: ("uint64", 8),
    15: ("uint32", 4),
    16: ("uint16", 2),
    17: ("int4", 0.5),
    18: ("bfloat16", 2),
}
_COUNTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV")
_T = TypeVar("_T")


def _one_line(read: Callable[[Path], _T]) -> Callable[[Path], _T]:
    """Flatbuffers reads lazily, so a corrupt offset surfaces wherever a field is first touched,
    not only in _parse: every public reader turns it into the same one-line error."""

    @functools.wraps(read)
    def wrapper(path: Path) -> _T:
        try:
            return read(path)
        except (EdgeOptError, OSError):
            raise  # already one line, or a missing file the caller reports as such
        except Exception as error:
            raise _unreadable(Path(path), error) from None

    return wrapper


def _unreadable(path: Path, error: Exception) -> EdgeOptError:
    reason = " ".join(str(error).split())[:200] or type(error).__name__
    return EdgeOptError(f"{path.name} is not a readable TFLite model ({reason})")


@_one_line
def artifact_stats(path: Path) -> ArtifactStats:
    path = Path(path)
    model, schema = _parse(path)
    params, weight_bytes = 0, 0.0
    by_type: Dict[str, float] = {}
    flops, exact = 0, True
    typed: Dict[str, int] = {}
    names = _op_names(model, schema)
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            if not _constant(model, tensor):
                continue
            count = _elements(_shape(tensor))
            name, size = _TYPES.get(tensor.Type(), (f"type{tensor.Type()}", 1))
            params += count
            weight_bytes += count * size + _quantization_bytes(tensor)
            by_type[name] = by_type.get(name, 0) + count * size
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            if names[op.OpcodeIndex()] in _COUNTED:
                counted, known = _op_flops(names[op.OpcodeIndex()], graph, op)
                flops, exact = flops + counted, exact and known
                kind = _compute_type(graph, op)
                typed[kind] = typed.get(kind, 0) + counted
    return ArtifactStats(
        params=params,
        weight_bytes=int(weight_bytes),
        storage_bytes=path.stat().st_size,
        flops=flops,
        weight_types=tuple(sorted(by_type)),
        flops_exact=exact,
        weight_bytes_by_type=tuple(sorted((kind, int(size)) for kind, size in by_type.items())),
        flops_by_type=tuple(sorted(typed.items())),
    )


def _compute_type(graph: Any, op: Any) -> str:
    """The type an op computes in: its activation input's (an int8 kernel reads int8). A float16
    weight is dequantized to float32 at load, so such an op computes in float32; with dynamic range
    quantization (int8 weights, float activations) the kernel quantizes on the fly: "int8"."""
    activation = _TYPES.get(graph.Tensors(op.Inputs(0)).Type(), ("?", 1))[0] if op.InputsLength() else "?"
    weight = graph.Tensors(op.Inputs(1)) if op.InputsLength() > 1 and op.Inputs(1) >= 0 else None
    weight_type = _TYPES.get(weight.Type(), ("?", 1))[0] if weight is not None else "?"
    if activation in _INTEGER_TYPES or weight_type in _INTEGER_TYPES:
        return "int8" if "16" not in activation else activation
    return "float32" if activation in ("float16", "float32") else activation


_INTEGER_TYPES = ("int8", "uint8", "int16", "int4")


@_one_line
def input_shape(path: Path) -> Tuple[Optional[int], ...]:
    """The single input's shape, None where dynamic; what eval data must match (layout included)."""
    model, _ = _parse(Path(path))
    graph = model.Subgraphs(0)
    if graph.InputsLength() != 1:
        raise EdgeOptError(
            f"{Path(path).name}: models with {graph.InputsLength()} inputs are not "
            "supported yet; wrap them to one input"
        )
    tensor = graph.Tensors(graph.Inputs(0))
    signature = _signature(tensor)
    return tuple(None if d < 0 else d for d in signature)


@_one_line
def stored_bitwidth(path: Path) -> str:
    """`INT8/INT8`, `INT8/FP32` (dynamic range), `FP16/FP32` or `FP32/FP32`, from what the file
    holds: the weight type of its conv and matmul ops, and whether activations are quantized
    (integer input or a QUANTIZE op). A user's file may already be quantized."""
    model, schema = _parse(Path(path))
    names = _op_names(model, schema)
    graph = model.Subgraphs(0)
    weights, quantized = set(), graph.Tensors(graph.Inputs(0)).Type() in (3, 9)  # uint8, int8
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        name = names[op.OpcodeIndex()]
        quantized = quantized or name == "QUANTIZE"
        if name in _COUNTED and op.InputsLength() > 1 and op.Inputs(1) >= 0:
            weights.add(_weight_type(model, graph, op.Inputs(1), names))
    w = "INT8" if "int8" in weights else "FP16" if "float16" in weights else "FP32"
    return f"{w}/{'INT8' if quantized else 'FP32'}"


def _weight_type(model: Any, graph: Any, index: int, names: List[str]) -> str:
    """A weight's stored type; FP16 weights reach the op through a DEQUANTIZE of a constant."""
    tensor = graph.Tensors(index)
    if _constant(model, tensor):
        return _TYPES.get(tensor.Type(), ("other", 0))[0]
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        if names[op.OpcodeIndex()] == "DEQUANTIZE" and op.OutputsLength() and op.Outputs(0) == index:
            return _TYPES.get(graph.Tensors(op.Inputs(0)).Type(), ("other", 0))[0]
    return "float32"


def input_batch(path: Path) -> int:
    """The fixed batch of the input, 1 when dynamic (FLOPs are per sample of that batch)."""
    first = input_shape(path)[:1]
    return first[0] if first and first[0] else 1


def _parse(path: Path) -> Tuple[Any, Any]:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        raise MissingDependency(package="ai-edge-litert", extra="tflite", purpose="reading .tflite models") from None
    data = path.read_bytes()
    try:
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ValueError("no TFL3 file identifier")
        model = schema.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
        _op_names(model, schema)
        for g in range(model.SubgraphsLength()):  # touch every table once: truncation shows here
            graph = model.Subgraphs(g)
            for t in range(graph.TensorsLength()):
                _shape(graph.Tensors(t))
    except Exception as error:
        raise _unreadable(path, error) from None
    return model, schema


def _op_names(model: Any, schema: Any) -> List[str]:
    by_code = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # the schema's rule
        names.append(by_code.get(builtin, f"CUSTOM:{code.CustomCode()!r}"))
    return names


def _constant(model: Any, tensor: Any) -> bool:
    index = tensor.Buffer()
    if index <= 0 or index >= model.BuffersLength():  # buffer 0 is the empty sentinel
        return False
    buffer = model.Buffers(index)
    return bool(buffer.DataLength() > 0 or buffer.Size() > 0)  # Size/Offset: data stored after the flatbuffer


def _quantization_bytes(tensor: Any) -> int:
    q = tensor.Quantization()
    return 0 if q is None else q.ScaleLength() * 4 + q.ZeroPointLength() * 8


def _shape(tensor: Any) -> Tuple[int, ...]:
    return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()


def _signature(tensor: Any) -> Tuple[int, ...]:
    if tensor.ShapeSignatureLength():
        return tuple(int(d) for d in tensor.ShapeSignatureAsNumpy())
    return _shape(tensor)


def _elements(shape: Sequence[int]) -> int:
    count = 1
    for d in shape:
        count *= max(int(d), 1)
    return count


def _adj_x(op: Any) -> bool:
    """BATCH_MATMUL's adj_x transposes the lhs, moving K to its second-to-last dim."""
    from ai_edge_litert import schema_py_generated as schema

    if op.BuiltinOptionsType() != schema.BuiltinOptions.BatchMatMulOptions:
        return False
    table = _builtin_options(op)
    if table is None:
        return False
    options = schema.BatchMatMulOptions()
    options.Init(table.Bytes, table.Pos)
    return bool(options.AdjX())


def _builtin_options(op: Any) -> Any:
    """Operator.BuiltinOptions() without its `from flatbuffers.table import Table` at call time:
    once sys.modules has been restored (pytester does it after every in-process run) that import
    can return a second copy of the class and flatbuffers' `type(t) is Table` check fails."""
    offset = op._tab.Offset(12)  # the Operator table's builtin_options slot (schema field 4)
    if not offset:
        return None
    table = type(op._tab)(bytearray(), 0)
    op._tab.Union(table, offset)
    return table


def _op_flops(name: str, graph: Any, op: Any) -> Tuple[int, bool]:
    """Multiply-adds x 2 from the shapes; False when a dimension was dynamic (taken as 1)."""
    tensors = [graph.Tensors(op.Inputs(i)) if op.Inputs(i) >= 0 else None for i in range(op.InputsLength())]
    if len(tensors) < 2 or tensors[0] is None or tensors[1] is None or op.OutputsLength() < 1:
        return 0, False
    out = graph.Tensors(op.Outputs(0))
    shapes = [_signature(tensors[0]), _signature(tensors[1]), _signature(out)]
    # a dynamic batch (-1 first, as TFLite Micro's sine model declares it) is the graph's batch of 1:
    # the count per sample is exact; any other dynamic dimension is not
    batchless = [shapes[0][1:], shapes[1], shapes[2][1:]]
    known = all(d >= 0 for s in batchless for d in s) and all(shapes)
    x, w, y = (tuple(max(d, 1) for d in s) for s in shapes)
    if name == "CONV_2D" and len(w) == 4:  # weights O, H, W, I (I = input channels per group)
        return 2 * _elements(y) * w[1] * w[2] * w[3], known
    if name == "DEPTHWISE_CONV_2D" and len(w) == 4:  # weights 1, H, W, O
        return 2 * _elements(y) * w[1] * w[2], known
    if name == "FULLY_CONNECTED" and len(w) == 2:  # weights units, in_features
        return 2 * _elements(y) * w[1], known
    if name == "BATCH_MATMUL" and len(x) >= 2:  # y = (..., M, N); K = last dim of x, or x[-2] if adj_x
        return 2 * _elements(y) * x[-2 if _adj_x(op) else -1], known
    if name == "TRANSPOSE_CONV" and len(tensors) >= 3 and tensors[2] is not None:
        w = tuple(max(d, 1) for d in _signature(tensors[1]))  # inputs: output_shape, weights O,H,W,I, x
        x = tuple(max(d, 1) for d in _signature(tensors[2]))
        return (2 * _elements(x) * w[0] * w[1] * w[2], known) if len(w) == 4 else (0, False)
    return 0, False


@_one_line
def unquantized_reasons(path: Path) -> List[str]:
    """Why a quantizer left a .tflite file in float, from the file: an opcode table in the old
    schema (only `deprecated_builtin_code` set: ai-edge-quantizer reads every op as ADD), or the
    compute ops that still run in float."""
    model, schema = _parse(Path(path))
    reasons = []
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    if any(code.BuiltinCode() < code.DeprecatedBuiltinCode() for code in codes):
        reasons.append(
            "its opcode table uses the old schema (only deprecated_builtin_code), which the quantizer misreads"
        )
    names = _op_names(model, schema)
    graph = model.Subgraphs(0)
    floats: Dict[str, int] = {}
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        name = names[op.OpcodeIndex()]
        if name in _COUNTED and _compute_type(graph, op).startswith("float"):
            floats[name] = floats.get(name, 0) + 1
    if floats:
        reasons.append("ops left in float: " + ", ".join(f"{op} x{n}" for op, n in sorted(floats.items())))
    return reasons
