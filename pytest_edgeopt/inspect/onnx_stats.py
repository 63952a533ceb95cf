"""What an ONNX artifact costs: the Params, Size (MB), Storage (MB) and GFLOPs table columns.

Everything is read from the graph, never from a run, so an FP32 model and its FP16 / int8 versions
are described by the same rules and their rows compare: the parameter count stays put while the
weight bytes shrink with the precision, and FLOPs count the same convolutions and matrix products
whether they appear as Conv, as Conv fed by DequantizeLinear (QDQ) or as ConvInteger (dynamic).
FLOPs follow torch.utils.flop_counter: a multiply-add is 2 FLOPs, biases and element-wise ops are free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

import numpy as np

from pytest_edgeopt._isolate import ChildDied, run_isolated
from pytest_edgeopt.agent import feeds
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.facts import ArtifactStats
from pytest_edgeopt.inspect.onnx_file import (
    all_graphs,
    dequantized,
    external_locations,
    float_ops,
    is_external,
    load_onnx,
    real_inputs,
    require_onnx,
    subgraphs,
)

Shape = Tuple[Optional[int], ...]  # None marks a symbolic or unknown dimension
Shapes = Dict[str, Shape]
FlopCount = Tuple[int, bool]  # (flops, every dimension was known)
Sample = Union[np.ndarray, Mapping[str, np.ndarray]]  # one eval sample (no batch axis), by input name
OBSERVE_MAX_BYTES = 1 << 30  # files above this are not run to observe their shapes


def artifact_stats(path: Path, *, sample: Optional[Sample] = None, shown_as: str = "") -> ArtifactStats:
    """Describe an ONNX file without loading its weight data, so multi-GB models stay cheap.

    `sample` is one eval sample without its batch axis (a dict by input name for several
    inputs): a graph whose inputs have dynamic dims (PP-OCR's `[-1, 3, ?, ?]`) is counted at the
    shape it is measured on, not with each unknown dim taken as 1 (which once printed negative
    GFLOPs). `shown_as` names the user's file in messages (`path` is the cache's copy)."""
    path = Path(path)
    model = _load_graph(path)
    storage_bytes = _storage_bytes(model, path)  # before _model_flops inlines small external tensors
    params, weight_bytes, by_type = _weight_totals(_classified_tensors(model.graph))
    values = _batch_one(model.graph, sample) if sample is not None else None
    if values:
        _pin_inputs(model.graph, {name: tuple(v.shape) for name, v in values.items()})
    flops, exact = _model_flops(model, base_dir=path.parent)
    if not exact and values:
        flops, exact = _observed_flops(path, model, values, shown_as=shown_as or path.name) or (flops, exact)
    typed = _flops_by_type(model, _inferred_shapes(model, base_dir=path.parent))
    return ArtifactStats(
        params=params,
        weight_bytes=weight_bytes,
        storage_bytes=storage_bytes,
        flops=flops,
        weight_types=tuple(sorted(by_type)),
        flops_exact=exact,
        weight_bytes_by_type=tuple(sorted(by_type.items())),
        flops_by_type=tuple(sorted(typed.items())),
    )


def _load_graph(path: Path) -> Any:
    """Protobuf parses many non-ONNX byte strings without complaint; an empty graph means one did."""
    model = load_onnx(path, load_external_data=False)
    if model.ir_version <= 0 or not model.graph.node:
        raise EdgeOptError(f"{path.name} is not an ONNX model (no graph in it)")
    return model


# ---------------------------------------------------------------------------------------- tensors

_TYPE_BITS: Dict[str, int] = {
    "float64": 64,
    "float32": 32,
    "float16": 16,
    "bfloat16": 16,
    "float8e4m3fn": 8,
    "float8e4m3fnuz": 8,
    "float8e5m2": 8,
    "float8e5m2fnuz": 8,
    "float4e2m1": 4,
    "int64": 64,
    "uint64": 64,
    "int32": 32,
    "uint32": 32,
    "int16": 16,
    "uint16": 16,
    "int8": 8,
    "uint8": 8,
    "int4": 4,
    "uint4": 4,
    "bool": 8,
}
# Types a learned weight is stored in; int32/int64 tensors are shapes and indices...
_WEIGHT_TYPES = frozenset(_TYPE_BITS) - {"int64", "uint64", "int32", "uint32", "bool"}
# ...except int32 biases that quantizers store for DequantizeLinear, QLinearConv and QGemm.
_QUANTIZED_BIAS_INPUTS: Dict[str, Set[int]] = {"DequantizeLinear": {0}, "QLinearConv": {8}, "QGemm": {6}}

# Scale and zero-point operands: stored precision metadata, not weights.
_QUANT_PARAM_INPUTS: Dict[str, Set[int]] = {
    "QuantizeLinear": {1, 2},
    "DequantizeLinear": {1, 2},
    "ConvInteger": {2, 3},
    "MatMulInteger": {2, 3},
    "QLinearConv": {1, 2, 4, 5, 6, 7},
    "QLinearMatMul": {1, 2, 4, 5, 6, 7},
    "QLinearAdd": {1, 2, 4, 5, 6, 7},
    "QLinearMul": {1, 2, 4, 5, 6, 7},
    "QGemm": {1, 2, 4, 5, 7, 8},
    "DynamicQuantizeMatMul": {2, 3},
    "MatMulIntegerToFloat": {2, 3, 4, 5},
}
# Float operands that configure an op rather than weigh anything (Resize scales, Clip bounds).
_SETTING_INPUTS: Dict[str, Set[int]] = {"Resize": {1, 2, 3}, "Upsample": {1}, "Pad": {1, 2, 3}, "Clip": {1, 2}}

_WEIGHT, _QUANT_PARAM, _OTHER = "weight", "quant_param", "other"


@dataclass(frozen=True)
class _Tensor:
    name: str
    type_name: str
    elements: int

    @property
    def nbytes(self) -> int:
        return math.ceil(self.elements * _TYPE_BITS.get(self.type_name, 32) / 8)


@dataclass(frozen=True)
class _Use:
    op_type: str
    index: int
    node: Any


def _weight_totals(classified: Iterable[Tuple[_Tensor, str]]) -> Tuple[int, int, Dict[str, int]]:
    """Weight elements, weight bytes with quantization parameters, and the weights' bytes by type."""
    params, nbytes = 0, 0
    by_type: Dict[str, int] = {}
    for tensor, role in classified:
        if role == _WEIGHT:
            params += tensor.elements
            by_type[tensor.type_name] = by_type.get(tensor.type_name, 0) + tensor.nbytes
        if role in (_WEIGHT, _QUANT_PARAM):
            nbytes += tensor.nbytes
    return params, nbytes, by_type


def _classified_tensors(graph: Any) -> Iterator[Tuple[_Tensor, str]]:
    uses = _uses(graph)
    scales = _dynamic_scales(graph)
    for tensor in _stored_tensors(graph):
        yield tensor, _role(tensor, uses.get(tensor.name, []), scales)


def _role(tensor: _Tensor, uses: List[_Use], scales: Set[str]) -> str:
    """Quantization metadata is told apart by where it is consumed, since its dtypes overlap weights'."""
    if not uses:
        return _OTHER  # dead initializers take no part in inference
    if all(_is_quant_param_use(use, scales) for use in uses):
        return _QUANT_PARAM
    if all(use.index in _SETTING_INPUTS.get(use.op_type, ()) for use in uses):
        return _OTHER
    if tensor.elements < 2:
        return _OTHER  # folded scalars (an epsilon, Hardswish's 3 and 6) are constants, not learned
    return _WEIGHT if _is_weight_type(tensor, uses) else _OTHER


def _is_weight_type(tensor: _Tensor, uses: List[_Use]) -> bool:
    if tensor.type_name in _WEIGHT_TYPES:
        return True
    return tensor.type_name == "int32" and any(use.index in _QUANTIZED_BIAS_INPUTS.get(use.op_type, ()) for use in uses)


def _is_quant_param_use(use: _Use, scales: Set[str]) -> bool:
    """Dynamic quantization multiplies the weight scale by the run-time input scale in a plain Mul."""
    if use.index in _QUANT_PARAM_INPUTS.get(use.op_type, ()):
        return True
    return use.op_type == "Mul" and any(name in scales for name in use.node.input)


def _dynamic_scales(graph: Any) -> Set[str]:
    return {
        node.output[1] for node in _all_nodes(graph) if node.op_type == "DynamicQuantizeLinear" and len(node.output) > 1
    }


def _uses(graph: Any) -> Dict[str, List[_Use]]:
    uses: Dict[str, List[_Use]] = {}
    for node in _all_nodes(graph):
        for index, name in enumerate(node.input):
            if name:
                uses.setdefault(name, []).append(_Use(node.op_type, index, node))
    return uses


def _stored_tensors(graph: Any) -> Iterator[_Tensor]:
    """Initializers and Constant-node tensors, subgraphs included: both are where weights live."""
    for sub in all_graphs(graph):
        for init in sub.initializer:
            yield _tensor(init.name, init)
        for node in sub.node:
            value = _constant_value(node)
            if value is not None:
                yield _tensor(node.output[0], value)


def _constant_value(node: Any) -> Optional[Any]:
    if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
        return None
    return next((attr.t for attr in node.attribute if attr.name == "value"), None)


def _tensor(name: str, proto: Any) -> _Tensor:
    return _Tensor(name=name, type_name=_type_name(proto.data_type), elements=math.prod(proto.dims))


def _type_name(data_type: int) -> str:
    """numpy's names, so the table says float32 where ONNX says FLOAT."""
    name = str(require_onnx().TensorProto.DataType.Name(data_type)).lower()
    return {"float": "float32", "double": "float64"}.get(name, name)


def _all_nodes(graph: Any) -> Iterator[Any]:
    for sub in all_graphs(graph):
        yield from sub.node


# ---------------------------------------------------------------------------------------- storage


def _storage_bytes(model: Any, path: Path) -> int:
    """What copying the artifact to a device costs: weights above 2 GB live in side files."""
    files = {path.parent / location for location in external_locations(model.graph)}
    missing = sorted(str(f.name) for f in files if not f.is_file())
    if missing:
        raise EdgeOptError(f"{path.name} references external data that is missing: {', '.join(missing)}")
    return path.stat().st_size + sum(f.stat().st_size for f in files)


# ------------------------------------------------------------------------------------------ FLOPs


def _model_flops(model: Any, *, base_dir: Path) -> FlopCount:
    """Counts the top-level graph; ops inside If/Loop bodies run an unknown number of times."""
    return _counted(model, _inferred_shapes(model, base_dir=base_dir))


def _counted(model: Any, shapes: Shapes) -> FlopCount:
    total, exact = 0, not any(subgraphs(node) for node in model.graph.node)
    for node in model.graph.node:
        counter = _FLOP_COUNTERS.get(node.op_type)
        if counter is not None:
            flops, known = counter(node, shapes)
            total, exact = total + flops, exact and known
    return total, exact


def _batch_one(graph: Any, sample: Sample) -> Dict[str, np.ndarray]:
    """Each input at batch 1, its batch axis placed as the agent places it (feeds.py); an input
    the sample does not fit is left out (its FLOPs then stay inexact)."""
    inputs = real_inputs(graph)
    samples = dict(sample) if isinstance(sample, Mapping) else ({inputs[0].name: sample} if inputs else {})
    placed: Dict[str, np.ndarray] = {}
    for value in inputs:
        if value.name not in samples or not value.type.HasField("tensor_type"):
            continue
        declared = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in value.type.tensor_type.shape.dim
        )
        one = np.asarray(samples[value.name])
        try:
            axis = feeds.batch_axis(value.name, declared, tuple(int(d) for d in one.shape), batch=1)
        except feeds.FeedError:
            continue
        placed[value.name] = one if axis is None else np.expand_dims(one, axis)
    return placed


def _pin_inputs(graph: Any, shapes: Mapping[str, Tuple[int, ...]]) -> None:
    """Give the inputs' unknown dims the eval sample's (batch 1: FLOPs are per sample)."""
    for value in real_inputs(graph):
        if value.name not in shapes:
            continue
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(dims, shapes[value.name]):
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                dim.dim_value = size
    for value in (*graph.output, *graph.value_info):  # a declared -1 would contradict shape inference
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value < 0:
                dim.ClearField("dim_value")


def _observed_flops(path: Path, model: Any, values: Mapping[str, np.ndarray], *, shown_as: str) -> Optional[FlopCount]:
    """Where static inference stops (a Reshape to a computed shape, an If on the sample rate), one
    run of the file on the first eval sample shows every tensor's real shape and the branch taken;
    None without onnxruntime, with an input the sample does not fit, or when the run fails.
    The run is the user's graph: in a child process under the job's deadline (a Loop of 1e12
    iterations once hung the run holding both locks); past it the build fails naming `shown_as`."""
    if path.stat().st_size > OBSERVE_MAX_BYTES:  # one protobuf cannot hold it, and the run would cost minutes
        return None
    try:
        observed = run_isolated(f"the FLOPs probe of {shown_as}", observed_shapes, path, dict(values))
    except ChildDied:  # a crash in the runtime: FLOPs stay what static inference found
        return None
    if observed is None:
        return None
    declared: Shapes = {**_declared_shapes(model.graph), **observed}
    return _counted(model, declared)


def observed_shapes(path: Path, values: Mapping[str, np.ndarray]) -> Optional[Shapes]:
    """Every tensor's shape in one run of the file (in the probe's child process); None without
    onnxruntime or when the run fails."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    onnx = require_onnx()
    probe = onnx.load(str(path))
    known = {value.name for value in probe.graph.output}
    for node in probe.graph.node:
        probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in node.output if name and name not in known)
    try:
        session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        probe_feeds = {i.name: _probe_input(i.type, values[i.name]) for i in session.get_inputs()}
        observed = session.run(None, probe_feeds)
    except Exception:  # an input without a shape, or a graph ORT refuses with extra outputs
        return None
    return {out.name: tuple(value.shape) for out, value in zip(session.get_outputs(), observed)}


def _probe_input(onnx_type: str, value: np.ndarray) -> np.ndarray:
    dtypes = {"tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
    return np.ascontiguousarray(value, dtype=dtypes.get(onnx_type, np.float32))


def _inferred_shapes(model: Any, *, base_dir: Path) -> Shapes:
    """A model that shape inference rejects still gets the shapes it declares (flagged inexact)."""
    onnx = require_onnx()
    _load_small_external(model, base_dir=base_dir)
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # inference errors on models ORT still runs (custom domains): degrade, don't fail
        pass
    return _declared_shapes(model.graph)


def _load_small_external(model: Any, *, base_dir: Path) -> None:
    """Reshape targets must be readable for inference to see past them; weights can stay on disk."""
    from onnx.external_data_helper import load_external_data_for_tensor

    onnx = require_onnx()
    for tensor in model.graph.initializer:
        if is_external(tensor) and tensor.data_type == onnx.TensorProto.INT64 and math.prod(tensor.dims) <= 64:
            load_external_data_for_tensor(tensor, str(base_dir))
            tensor.data_location = onnx.TensorProto.DEFAULT
            del tensor.external_data[:]


def _declared_shapes(graph: Any) -> Shapes:
    shapes: Shapes = {}
    for value in (*graph.input, *graph.value_info, *graph.output):
        shape = _value_shape(value)
        if shape is not None:
            shapes[value.name] = shape
    shapes.update(_stored_shapes(graph))  # stored dims are exact even where inference gave up
    return shapes


def _stored_shapes(graph: Any) -> Shapes:
    shapes: Shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    for node in graph.node:
        value = _constant_value(node)
        if value is not None:
            shapes[node.output[0]] = tuple(value.dims)
    return shapes


def _value_shape(value: Any) -> Optional[Shape]:
    tensor_type = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not tensor_type.HasField("shape"):
        return None  # rank unknown: nothing can be counted
    # some exporters (paddle2onnx) write a dynamic dim as dim_value -1: unknown, never a size
    return tuple(
        dim.dim_value if dim.HasField("dim_value") and dim.dim_value >= 0 else None for dim in tensor_type.shape.dim
    )


# ops that compute on integers whatever their inputs look like
_INTEGER_OPS = frozenset(
    {"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QGemm", "DynamicQuantizeMatMul",
     "MatMulIntegerToFloat"}
)  # fmt: skip


def _flops_by_type(model: Any, shapes: Shapes) -> Dict[str, int]:
    """The counted FLOPs of the top-level graph by the type each op computes in: "int8" for an
    integer kernel or a QDQ op that reads dequantized tensors (ONNX Runtime and OpenVINO fuse those
    into integer kernels), else its weights' float type. What share of the compute was quantized."""
    graph = model.graph
    produced_by = {output: node for node in graph.node for output in node.output if output}
    stored = {init.name: _type_name(init.data_type) for init in graph.initializer}
    typed: Dict[str, int] = {}
    for node in graph.node:
        counter = _FLOP_COUNTERS.get(node.op_type)
        if counter is None:
            continue
        flops, _ = counter(node, shapes)
        kind = _compute_type(node, produced_by, stored)
        typed[kind] = typed.get(kind, 0) + flops
    return typed


def _compute_type(node: Any, produced_by: Mapping[str, Any], stored: Mapping[str, str]) -> str:
    if node.op_type in _INTEGER_OPS or any(dequantized(name, produced_by) for name in node.input if name):
        return "int8"
    weight = node.input[1] if len(node.input) > 1 else ""
    return stored.get(weight) or ("float16" if _produced_as_float16(weight, produced_by) else "float32")


def _produced_as_float16(name: str, produced_by: Mapping[str, Any]) -> bool:
    """A float16 weight reached through a Cast or a Constant (ONNX Runtime's FP16 keeps I/O float32)."""
    node = produced_by.get(name)
    if node is None or node.op_type != "Constant":
        return False
    value = _constant_value(node)
    return value is not None and _type_name(value.data_type) == "float16"


def _doubled(dims: Sequence[Optional[int]]) -> FlopCount:
    """2 x the product of the dims; a symbolic dim (a dynamic batch, say) counts as 1."""
    return 2 * math.prod(d for d in dims if d is not None), all(d is not None for d in dims)


def _conv_flops(node: Any, shapes: Shapes, *, weight_at: int, transposed: bool) -> FlopCount:
    """2 * N * spatial * prod(W): W is [Cout, Cin/groups, k...], so groups need no special case.

    A transposed conv's W is [Cin, Cout/groups, k...] and runs once per input pixel (as torch counts).
    """
    spatial_from = shapes.get(node.input[0]) if transposed else shapes.get(node.output[0])
    weight = shapes.get(node.input[weight_at]) if len(node.input) > weight_at else None
    if not spatial_from or not weight:
        return 0, False
    return _doubled(spatial_from[:1] + spatial_from[2:] + weight)


def _gemm_flops(node: Any, shapes: Shapes, *, a_at: int) -> FlopCount:
    out, a = shapes.get(node.output[0]), shapes.get(node.input[a_at])
    if not out or not a or len(a) != 2:
        return 0, False
    k = a[0] if _int_attr(node, "transA") else a[1]
    return _doubled(out + (k,))


def _matmul_flops(node: Any, shapes: Shapes) -> FlopCount:
    """2 * every output element * K; broadcast batch dims are in the output already."""
    out, a = shapes.get(node.output[0]), shapes.get(node.input[0])
    if out is None or not a:
        return 0, False
    return _doubled(out + a[-1:])


def _int_attr(node: Any, name: str) -> int:
    return next((attr.i for attr in node.attribute if attr.name == name), 0)


_FLOP_COUNTERS: Dict[str, Callable[[Any, Shapes], FlopCount]] = {
    "Conv": partial(_conv_flops, weight_at=1, transposed=False),
    "ConvInteger": partial(_conv_flops, weight_at=1, transposed=False),
    "FusedConv": partial(_conv_flops, weight_at=1, transposed=False),
    "QLinearConv": partial(_conv_flops, weight_at=3, transposed=False),
    "ConvTranspose": partial(_conv_flops, weight_at=1, transposed=True),
    "Gemm": partial(_gemm_flops, a_at=0),
    "QGemm": partial(_gemm_flops, a_at=0),
    "MatMul": _matmul_flops,
    "MatMulInteger": _matmul_flops,
    "QLinearMatMul": _matmul_flops,
    "DynamicQuantizeMatMul": _matmul_flops,
    "MatMulIntegerToFloat": _matmul_flops,
}


def float_weights(path: Path) -> List[Tuple[str, int]]:
    """The weights still stored as float32/float16 (name, bytes), largest first: what an INT8 file
    that is not smaller than its FP32 source kept in float."""
    model = _load_graph(Path(path))
    kept = [
        (tensor.name, tensor.nbytes)
        for tensor, role in _classified_tensors(model.graph)
        if role == _WEIGHT and tensor.type_name in ("float32", "float16")
    ]
    return sorted(kept, key=lambda item: -item[1])


def unquantized_reasons(path: Path) -> List[str]:
    """Why a quantizer left an ONNX file in float, from the file: weights inside If/Loop bodies
    (ONNX Runtime's static quantizer does not enter subgraphs), or the arithmetic ops that read no
    dequantized tensor (ops it has no integer kernel for)."""
    model = _load_graph(Path(path))
    top = {init.name for init in model.graph.initializer}
    top |= {node.output[0] for node in model.graph.node if _constant_value(node) is not None}
    floats = [
        (t.name, t.nbytes)
        for t, role in _classified_tensors(model.graph)
        if role == _WEIGHT and t.type_name in ("float32", "float16")
    ]
    nested = sum(size for name, size in floats if name not in top)
    reasons = []
    if floats and nested >= sum(size for _, size in floats) / 2:
        share = nested / sum(size for _, size in floats)
        reasons.append(f"{share:.0%} of the float weights sit in If/Loop subgraphs, which the quantizer does not enter")
    ops = float_ops(path)
    if ops:
        reasons.append("ops left in float: " + ", ".join(f"{op} x{n}" for op, n in list(ops.items())[:5]))
    return reasons
