"""The main graph of a .tflite file as plain dataclasses: tensors, operators, buffers.

The MCU estimators (arena, MACs, integer check) read the same few facts many times, so they are
read once here with the flatbuffer's read-only API and handed on as frozen values: no flatbuffers
object is kept, and no union is decoded through the generated object API (its call-time
`isinstance(table, Table)` check breaks after pytester restores sys.modules; see tflite_stats).
Only subgraph 0 is read: the one TFLite Micro runs unless control-flow ops call others.
"""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Iterator, Optional, Tuple

from pytest_edgeopt.errors import EdgeOptError, MissingDependency

ALIGNMENT = 16  # TFLM's MicroArenaBufferAlignment(), and the converter's buffer alignment
FILE_IDENTIFIER = b"TFL3"

# element bits by schema.TensorType value
TYPE_BITS: Dict[int, int] = {
    0: 32,  # float32
    1: 16,  # float16
    2: 32,  # int32
    3: 8,  # uint8
    4: 64,  # int64
    6: 8,  # bool
    7: 16,  # int16
    8: 64,  # complex64
    9: 8,  # int8
    10: 64,  # float64
    11: 128,  # complex128
    12: 64,  # uint64
    13: 32,  # resource: VAR_HANDLE's output, an int32 id in TFLM (the variable lives in the persistent arena)
    15: 32,  # uint32
    16: 16,  # uint16
    17: 4,  # int4
    18: 16,  # bfloat16
}
TYPE_NAMES: Dict[int, str] = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    6: "bool",
    7: "int16",
    9: "int8",
    10: "float64",
    13: "resource",
    17: "int4",
    18: "bfloat16",
}
FLOAT_TYPES = frozenset({0, 1, 10, 18})


@dataclass(frozen=True)
class Tensor:
    index: int
    shape: Tuple[int, ...]
    type: int  # schema.TensorType
    buffer: int
    variable: bool
    scales: int  # quantization scales stored (0: not quantized, >1: per channel)
    name: str = ""  # what the converter named it (litert-torch: the torch module path, ';'-joined)

    @property
    def elements(self) -> int:
        return int(math.prod(max(d, 1) for d in self.shape))

    @property
    def nbytes(self) -> int:
        bits = TYPE_BITS.get(self.type)
        if bits is None:
            raise EdgeOptError(f"tensor {self.index} has a type ({self.type}) with no known byte size")
        return (self.elements * bits + 7) // 8

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type{self.type}")


@dataclass(frozen=True)
class Operator:
    code: int  # schema.BuiltinOperator
    name: str  # CONV_2D, ..., or CUSTOM:<name>
    inputs: Tuple[int, ...]  # tensor indices; optional inputs (-1) dropped
    outputs: Tuple[int, ...]
    intermediates: Tuple[int, ...]
    window: Optional[Tuple[int, int]] = None  # pooling ops: filter height, width
    adj_x: bool = False  # BATCH_MATMUL: lhs transposed


@dataclass(frozen=True)
class Graph:
    """Subgraph 0 and the model-wide counts the persistent-memory estimate needs."""

    tensors: Tuple[Tensor, ...]
    operators: Tuple[Operator, ...]
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]
    constants: FrozenSet[int]  # tensors whose buffer holds data (inside the file or after it)
    external_buffers: int  # buffers whose data sits after the flatbuffer (Buffer.offset > 1)
    all_tensors: int  # over every subgraph
    all_operators: int
    file_bytes: int


def align_up(n: int, alignment: int = ALIGNMENT) -> int:
    return (n + alignment - 1) // alignment * alignment


def schema() -> Any:
    """The generated TFLite schema: LiteRT's public copy, else the one tflite-micro bundles."""
    try:
        from ai_edge_litert import schema_py_generated

        return schema_py_generated
    except ImportError:
        pass
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as bundled

        return bundled
    except ImportError:
        raise MissingDependency(package="ai-edge-litert", extra="tflite", purpose="reading .tflite models") from None


@contextlib.contextmanager
def object_api() -> Iterator[Any]:
    """The schema module, with `flatbuffers` and `flatbuffers.table` in sys.modules pinned to the
    copies it was imported with. Its object API imports Table at call time and asserts
    `type(t) is Table` against the class its tables were made with; once pytester has restored
    sys.modules after an in-process run, the call-time import can give a second copy, and every
    union (an operator's options) fails that assertion."""
    fb = schema()
    package = fb.flatbuffers
    names = ("flatbuffers", "flatbuffers.table")
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update({"flatbuffers": package, "flatbuffers.table": package.table})
    try:
        yield fb
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def read_graph(data: bytes, *, name: str = "model") -> Graph:
    """One pass over the flatbuffer; a damaged file is one line naming it."""
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise EdgeOptError(f"{name} is not a readable TFLite model (no TFL3 file identifier)")
    fb = schema()
    try:
        return _read(fb, fb.Model.GetRootAs(data, 0), len(data))
    except EdgeOptError:
        raise
    except Exception as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise EdgeOptError(f"{name} is not a readable TFLite model ({reason})") from None


def _read(fb: Any, model: Any, size: int) -> Graph:
    if model.SubgraphsLength() < 1:
        raise EdgeOptError("the model has no subgraph")
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    codes = [_opcode(model.OperatorCodes(i), names) for i in range(model.OperatorCodesLength())]
    buffers = [model.Buffers(i) for i in range(model.BuffersLength())]
    graph = model.Subgraphs(0)
    tensors = tuple(_tensor(graph.Tensors(t), t) for t in range(graph.TensorsLength()))
    with_data = {i for i, b in enumerate(buffers) if i > 0 and (b.DataLength() > 0 or b.Size() > 0 or b.Offset() > 1)}
    subgraphs = [model.Subgraphs(g) for g in range(model.SubgraphsLength())]
    return Graph(
        tensors=tensors,
        operators=tuple(_operator(fb, graph.Operators(o), codes) for o in range(graph.OperatorsLength())),
        inputs=_ids(graph.InputsAsNumpy() if graph.InputsLength() else ()),
        outputs=_ids(graph.OutputsAsNumpy() if graph.OutputsLength() else ()),
        constants=frozenset(t.index for t in tensors if t.buffer in with_data),
        external_buffers=sum(1 for b in buffers if b.Offset() > 1),
        all_tensors=sum(s.TensorsLength() for s in subgraphs),
        all_operators=sum(s.OperatorsLength() for s in subgraphs),
        file_bytes=size,
    )


def _opcode(code: Any, names: Dict[int, str]) -> Tuple[int, str]:
    builtin = int(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))  # the schema's rule
    if names.get(builtin) == "CUSTOM":
        return builtin, f"CUSTOM:{(code.CustomCode() or b'').decode(errors='replace')}"
    return builtin, names.get(builtin, str(builtin))


def _tensor(tensor: Any, index: int) -> Tensor:
    q = tensor.Quantization()
    return Tensor(
        index=index,
        shape=tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else (),
        type=int(tensor.Type()),
        buffer=int(tensor.Buffer()),
        variable=bool(tensor.IsVariable()),
        scales=int(q.ScaleLength()) if q is not None else 0,
        name=(tensor.Name() or b"").decode(errors="replace"),
    )


def _operator(fb: Any, op: Any, codes: Any) -> Operator:
    code, name = codes[op.OpcodeIndex()]
    return Operator(
        code=code,
        name=name,
        inputs=_ids(op.InputsAsNumpy() if op.InputsLength() else ()),
        outputs=_ids(op.OutputsAsNumpy() if op.OutputsLength() else ()),
        intermediates=_ids(op.IntermediatesAsNumpy() if op.IntermediatesLength() else ()),
        window=_window(fb, op),
        adj_x=_adj_x(fb, op),
    )


def _ids(values: Any) -> Tuple[int, ...]:
    return tuple(int(v) for v in values if int(v) >= 0)


def _window(fb: Any, op: Any) -> Optional[Tuple[int, int]]:
    table = _options(op, fb.BuiltinOptions.Pool2DOptions)
    if table is None:
        return None
    options = fb.Pool2DOptions()
    options.Init(table.Bytes, table.Pos)
    return int(options.FilterHeight()), int(options.FilterWidth())


def _adj_x(fb: Any, op: Any) -> bool:
    table = _options(op, fb.BuiltinOptions.BatchMatMulOptions)
    if table is None:
        return False
    options = fb.BatchMatMulOptions()
    options.Init(table.Bytes, table.Pos)
    return bool(options.AdjX())


def _options(op: Any, kind: int) -> Any:
    """The operator's builtin-options table when it is of `kind`, read without the generated
    `BuiltinOptions()` (its call-time Table import; see the module docstring)."""
    if op.BuiltinOptionsType() != kind:
        return None
    offset = op._tab.Offset(12)  # the Operator table's builtin_options slot (schema field 4)
    if not offset:
        return None
    table = type(op._tab)(bytearray(), 0)
    op._tab.Union(table, offset)
    return table
