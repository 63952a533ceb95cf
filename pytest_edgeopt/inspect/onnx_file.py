"""Reading ONNX files with errors a user can act on (a corrupt file is bad input, not a crash),
and the small facts of their signature the other stages need."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple

from pytest_edgeopt.errors import EdgeOptError, MissingDependency

Shape = Tuple[Optional[int], ...]


def require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise MissingDependency(package="onnx", extra="onnx", purpose="reading ONNX models") from None
    return onnx


def load_onnx(path: Path, *, load_external_data: bool = True) -> Any:
    onnx = require_onnx()
    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except Exception as error:  # protobuf raises DecodeError, onnx raises its own: all mean "bad file"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise EdgeOptError(f"{Path(path).name} is not a readable ONNX model ({reason})") from None


def real_inputs(graph: Any) -> List[Any]:
    """The real inputs: old exporters list initializers among the graph inputs too."""
    initializers = {init.name for init in graph.initializer}
    return [i for i in graph.input if i.name not in initializers]


def input_shape(path: Path) -> Shape:
    """The single input's shape, None where symbolic; what synthetic eval data is made to fit."""
    inputs = real_inputs(load_onnx(path, load_external_data=False).graph)
    if len(inputs) != 1:
        raise EdgeOptError(
            f"{path.name}: models with {len(inputs)} inputs are not supported yet; wrap them to one input"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def input_specs(path: Path) -> List[Tuple[str, Shape, str]]:
    """Every real input: name, shape (None where symbolic or -1) and numpy dtype name, as the
    calibration feeds must be made (feeds.placements takes exactly this)."""
    onnx = require_onnx()
    specs: List[Tuple[str, Shape, str]] = []
    for value in real_inputs(load_onnx(path, load_external_data=False).graph):
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "float32"
        specs.append((str(value.name), dims, dtype))
    return specs


def input_name(path: Path) -> str:
    return str(real_inputs(load_onnx(path, load_external_data=False).graph)[0].name)


def fixed_batch(model: Any) -> int:
    """The first input's fixed batch dimension; 1 when it is symbolic (counted as one sample)."""
    inputs = real_inputs(model.graph)
    dims = inputs[0].type.tensor_type.shape.dim if inputs else []
    return dims[0].dim_value if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else 1


def op_types(path: Path) -> Set[str]:
    return {node.op_type for node in load_onnx(path, load_external_data=False).graph.node}


def external_data_files(path: Path) -> List[Path]:
    """The side files an .onnx references (weights above 2 GB, or what an exporter split off):
    part of the model's content, so part of its cache key, and part of its storage size (both
    read them here, so they agree on which files a model has)."""
    model = load_onnx(path, load_external_data=False)
    return sorted(Path(path).parent / location for location in external_locations(model.graph))


def external_locations(graph: Any) -> Set[str]:
    """The `location` of every tensor stored outside the file, anywhere a tensor can be."""
    return {
        entry.value
        for tensor in tensor_protos(graph)
        if is_external(tensor)
        for entry in tensor.external_data
        if entry.key == "location"
    }


def tensor_protos(graph: Any) -> Iterator[Any]:
    """Every stored tensor, subgraphs included: initializers, sparse initializers (values and
    indices), and tensors held in node attributes (Constant's value, any TENSOR(S) attribute)."""
    for sub in all_graphs(graph):
        yield from sub.initializer
        for sparse in sub.sparse_initializer:
            yield from (sparse.values, sparse.indices)
        for node in sub.node:
            for attribute in node.attribute:
                yield from ([attribute.t] if attribute.HasField("t") else [])
                yield from attribute.tensors
                yield from (s for sparse in attribute.sparse_tensors for s in (sparse.values, sparse.indices))
                if attribute.HasField("sparse_tensor"):
                    yield from (attribute.sparse_tensor.values, attribute.sparse_tensor.indices)


def is_external(tensor: Any) -> bool:
    return bool(tensor.data_location == require_onnx().TensorProto.EXTERNAL)


def all_graphs(graph: Any) -> Iterator[Any]:
    """The graph and every subgraph of its nodes (If branches, Loop and Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for sub in subgraphs(node):
            yield from all_graphs(sub)


def subgraphs(node: Any) -> List[Any]:
    graphs = [attr.g for attr in node.attribute if attr.HasField("g")]
    return graphs + [g for attr in node.attribute for g in attr.graphs]


def default_opset(path: Path) -> Optional[int]:
    """The file's ai.onnx opset (None when it imports none), read without its weights."""
    model = load_onnx(path, load_external_data=False)
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return int(versions[0]) if versions else None


# ops that move or describe data: no arithmetic worth naming when they stay in float
_LAYOUT_OPS = frozenset(
    {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Shape", "Gather", "Concat", "Constant", "Identity"}
)


def float_ops(path: Path) -> Dict[str, int]:
    """Arithmetic ops of a QDQ graph that run in float: they read no dequantized tensor (no input
    comes from a DequantizeLinear, through layout ops) and their result is not re-quantized, op
    type -> count. Both QDQ styles count right: ONNX Runtime's quantizer wraps an op in DQ -> op ->
    Q, NNCF quantizes an op's inputs only (DQ -> Conv -> Relu -> Q), so "output re-quantized"
    alone would call every NNCF convolution float."""
    graph = load_onnx(path, load_external_data=False).graph
    produced_by = {output: node for node in graph.node for output in node.output if output}
    quantized_inputs = {name for node in graph.node if node.op_type == "QuantizeLinear" for name in node.input[:1]}
    counts: Dict[str, int] = {}
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") or node.op_type in _LAYOUT_OPS:
            continue
        if any(dequantized(name, produced_by) for name in node.input if name):
            continue
        if any(output not in quantized_inputs for output in node.output if output):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def dequantized(name: str, produced_by: Mapping[str, Any]) -> bool:
    """The tensor comes out of a DequantizeLinear, directly or through ops that only move data."""
    node = produced_by.get(name)
    while node is not None and node.op_type in _LAYOUT_OPS and node.input:
        node = produced_by.get(node.input[0])
    return node is not None and node.op_type == "DequantizeLinear"


def op_counts(path: Path) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for node in load_onnx(path, load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
