"""Which layers INT8 hurts in a LiteRT file, and which layers a user keeps in float there.

The same ranking as ONNX's (sensitivity.py), on ai-edge-quantizer's own full-integer .tflite: the
FP32 and the INT8 file run on the same eval samples in LiteRT's interpreter with every tensor
preserved (as ai_edge_quantizer.model_validator compares them), int8 tensors are dequantized with
their own scale and zero point, tensors are matched by name (the quantizer keeps the float file's
names), and each op's output is scored by its worst channel's SQNR (the last axis: TFLite tensors
are NHWC, or [batch, features]). Both run TFLite's builtin kernels without XNNPACK, whose fused
subgraphs do not keep their intermediate tensors: the file's own integer numerics.

A layer is an op of the FP32 file: its name is its first output tensor's name (ai-edge-quantizer's
recipe selects ops by a regex on their output tensor names, its "op scope"), its op type the TFLite
builtin (FULLY_CONNECTED, CONV_2D, LOGISTIC...), its source the torch module path litert-torch
recorded in that name ("body.0"), else the name. keep_float= patterns resolve on these layers
(sensitivity.resolve_keep_float) and become recipe entries that keep exactly those ops float.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.tflite_graph import FLOAT_TYPES, Graph, read_graph
from pytest_edgeopt.measure.result import LayerError
from pytest_edgeopt.models.base import InputData
from pytest_edgeopt.optimize.sensitivity import (
    EXACT_DB,
    PAIR_FLOOR_DB,
    Layer,
    channel_sums,
    layer_scores,
    rank,
    sqnr_of_sums,
)

CHANNEL_AXIS = -1  # NHWC, [batch, features], [batch, tokens, features]
_CONVERSIONS = ("QUANTIZE", "DEQUANTIZE")  # what the quantizer inserts around float ops: not layers


@dataclass(frozen=True)
class TfliteOp:
    """An op of a .tflite graph as a layer, with its op scope (ai-edge-quantizer's
    tfl_flatbuffer_utils.get_op_scope: its output tensor names, each followed by ';')."""

    layer: Layer
    scope: str

    @property
    def float_scope(self) -> str:
        """The recipe regex that selects this op alone, to leave it float: anchored on its whole
        scope (a tensor name may contain ';' and be a prefix of another op's scope)."""
        return f"^{re.escape(self.scope)}$"


def read_ops(path: Path) -> List[TfliteOp]:
    """The ops of the file's main graph that produce a named tensor, in graph order."""
    graph = read_graph(Path(path).read_bytes(), name=Path(path).name)
    return [op for op in (_op(graph, index) for index in range(len(graph.operators))) if op is not None]


def _op(graph: Graph, index: int) -> Optional[TfliteOp]:
    op = graph.operators[index]
    names = [graph.tensors[t].name for t in op.outputs if graph.tensors[t].name]
    if not names:
        return None
    return TfliteOp(Layer(names[0], op.name, _source(graph, index, names[0])), "".join(f"{n};" for n in names))


def _source(graph: Graph, index: int, name: str) -> str:
    """The torch module path in the op's output name, else in its weights' names (a graph output
    is renamed after the signature: serving_default_output_0_output), else the name itself."""
    weights = [graph.tensors[t].name for t in graph.operators[index].inputs if t in graph.constants]
    paths = [module_path(n) for n in (name, *weights)]
    return next((path for path in paths if path), name)


def module_path(tensor: str) -> Optional[str]:
    """'__main__.Net/torch.nn.modules.container.Sequential_body/torch.nn.modules.conv.Conv2d_0;' ->
    'body.0': litert-torch names a tensor by its torch module stack, each level the module's class
    and '_' and its attribute name (the root has none). A fused op's name lists each fused op's
    stack, the op it was built on last (conv+batchnorm+relu: 'ReLU_2;;BatchNorm2d_1;;Conv2d_0;2'
    -> the conv's path). None for a name litert-torch did not make."""
    paths = [_stack_path(part) for part in tensor.split(";")]
    found = [path for path in paths if path]
    return found[-1] if found else None


def _stack_path(part: str) -> Optional[str]:
    """One module stack; every level names a class by its module ('__main__.Net'), which tells
    it from a TensorFlow scope ('conv2d/Kernel_dequantize')."""
    levels = part.split("/")
    if len(levels) < 2 or not all("." in level for level in levels):
        return None
    attributes = [_attribute(level) for level in levels[1:]]
    return ".".join(attributes) if all(attributes) else None  # type: ignore[arg-type]


def _attribute(level: str) -> Optional[str]:
    """'torch.nn.modules.conv.Conv2d_0' -> '0': after the class's own name (which follows the last
    dot of the class path), the attribute name (which may hold '_' itself)."""
    qualname = level.rsplit(".", 1)[-1]
    return qualname.split("_", 1)[1] if "_" in qualname else None


def check_kept_float(path: Path, kept: Sequence[str]) -> None:
    """The written file computes the kept ops in float (float outputs): a recipe entry that
    selected nothing would otherwise leave the layer the user meant to keep quantized."""
    graph = read_graph(Path(path).read_bytes(), name=Path(path).name)
    types = {t.name: t.type for t in graph.tensors}
    quantized = [name for name in kept if types.get(name) not in FLOAT_TYPES]
    if quantized:
        raise EdgeOptError(f"ai-edge-quantizer quantized {', '.join(quantized)} although keep_float= kept it float")


def isolated_ranking(
    what: str, root: Path, quantized: Path, eval_inputs: InputData, batch: int
) -> Tuple[LayerError, ...]:
    """tflite_sensitivity on whole batches of `eval_inputs`, in a child process under the job's
    deadline (the user's graph runs; _isolate.py)."""
    from pytest_edgeopt._isolate import run_isolated
    from pytest_edgeopt.optimize.tflite import calibration_batches

    return run_isolated(what, tflite_sensitivity, root, quantized, calibration_batches(eval_inputs, batch))


def tflite_sensitivity(root: Path, quantized: Path, batches: Sequence[Dict[str, np.ndarray]]) -> Tuple[LayerError, ...]:
    """The INT8 file's per-layer SQNR against the FP32 file `root`, on `batches` of real eval
    inputs (by eval array name); only per-channel sums are kept across batches. The body of the
    child process (_isolate.run_isolated) that runs the user's graph for the ranking."""
    ops = read_ops(quantized)
    graph = read_graph(Path(quantized).read_bytes(), name=Path(quantized).name)
    producers, inputs = _layers(graph, ops)
    wanted = set(producers) | {name for names in inputs.values() for name in names}
    read_as = _read_as(graph)
    exact_run = _Preserved(root, wanted)
    seen_run = _Preserved(quantized, {read_as.get(name, name) for name in wanted})
    weightless = _weightless(graph, producers)
    scored, pairs = _Sums(), _Sums()
    for feed in batches:
        exact, seen = exact_run.run(feed), seen_run.run(feed)
        for tensor in wanted:
            x, y = exact.get(tensor), seen.get(read_as.get(tensor, tensor))
            scored.add(tensor, x, y)
            if tensor in weightless and x is not None:
                pairs.add(tensor, x, seen_run.requantized(read_as.get(tensor, tensor), x))
    pair = pairs.sqnr()
    errors = layer_scores(scored.sqnr(), producers, inputs)
    return rank([_with_readers(e, pair, graph) for e in errors])


class _Sums:
    """Per tensor, the per-channel sums of squares of float and of its error, over all batches;
    a tensor once missing or not comparable (an index, a shape) is dropped."""

    def __init__(self) -> None:
        self._sums: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
        self._dropped: Set[str] = set()

    def add(self, tensor: str, exact: Optional[np.ndarray], seen: Optional[np.ndarray]) -> None:
        if tensor in self._dropped:
            return
        if exact is None or seen is None or not _comparable(exact, seen):
            self._dropped.add(tensor)
            return
        signal, noise = channel_sums(exact, seen, axis=CHANNEL_AXIS)
        before = self._sums.get(tensor)
        self._sums[tensor] = (signal, noise) if before is None else (before[0] + signal, before[1] + noise)

    def sqnr(self) -> Dict[str, float]:
        return {t: min(sqnr_of_sums(*v), EXACT_DB) for t, v in self._sums.items() if t not in self._dropped}


def _weightless(graph: Graph, producers: Mapping[str, Layer]) -> Set[str]:
    """The layers' output tensors whose op reads no weight (RELU, ADD, MEAN, LOGISTIC): what such a
    layer loses is its output's quantization, which its readers see whether it is float or not."""
    constant_readers = {
        graph.tensors[op.outputs[0]].name for op in graph.operators if op.outputs and set(op.inputs) & graph.constants
    }
    return {tensor for tensor in producers if tensor not in constant_readers}


def _with_readers(error: LayerError, pair: Mapping[str, float], graph: Graph) -> LayerError:
    """`error` with the ops reading its output when a weightless layer's output quantization keeps
    less than PAIR_FLOOR_DB of float's values on the eval samples (its scale clips them): keeping
    the layer alone float would leave that quantization in front of its readers."""
    if pair.get(error.name, EXACT_DB) >= PAIR_FLOOR_DB:
        return error
    base = _bases(graph)
    readers = []
    for op in graph.operators:
        names = [graph.tensors[t].name for t in op.inputs]
        if op.name not in _CONVERSIONS and op.outputs and error.name in (base.get(n, n) for n in names):
            readers.append(graph.tensors[op.outputs[0]].name)
    return replace(error, readers=tuple(dict.fromkeys(readers)))


def _layers(graph: Graph, ops: Sequence[TfliteOp]) -> Tuple[Dict[str, Layer], Dict[str, List[str]]]:
    """The INT8 graph's layers by the float tensor they produce, and their activation inputs, each
    named as in the FP32 file (through the QUANTIZE/DEQUANTIZE ops around a float layer)."""
    base = _bases(graph)
    by_name = {op.layer.name: op.layer for op in ops}
    producers: Dict[str, Layer] = {}
    inputs: Dict[str, List[str]] = {}
    for op in graph.operators:
        out = [graph.tensors[t].name for t in op.outputs]
        if op.name in _CONVERSIONS or not out or out[0] not in by_name:
            continue
        layer = by_name[out[0]]
        producers[out[0]] = layer
        activations = [t for t in op.inputs if t not in graph.constants]
        inputs[layer.name] = [base.get(graph.tensors[t].name, graph.tensors[t].name) for t in activations]
    return producers, inputs


def _bases(graph: Graph) -> Dict[str, str]:
    """A QUANTIZE/DEQUANTIZE output -> the tensor it converts, followed back to a layer's own."""
    source = {
        graph.tensors[op.outputs[0]].name: graph.tensors[op.inputs[0]].name
        for op in graph.operators
        if op.name in _CONVERSIONS and op.inputs and op.outputs
    }
    out: Dict[str, str] = {}
    for name in source:
        seen, current = {name}, source[name]
        while current in source and current not in seen:
            seen.add(current)
            current = source[current]
        out[name] = current
    return out


def _read_as(graph: Graph) -> Dict[str, str]:
    """A float layer's output -> the QUANTIZE output its readers take: its error as they see it."""
    return {
        graph.tensors[op.inputs[0]].name: graph.tensors[op.outputs[0]].name
        for op in graph.operators
        if op.name == "QUANTIZE" and op.inputs and op.outputs
    }


def _comparable(exact: np.ndarray, seen: np.ndarray) -> bool:
    """Float activations of one shape (an index or a shape tensor says nothing about INT8)."""
    return np.issubdtype(exact.dtype, np.floating) and exact.ndim > 0 and exact.shape == seen.shape


class _Preserved:
    """A LiteRT interpreter of `path` that keeps every tensor (builtin kernels, no XNNPACK), fed by
    the signature's inputs (quantized with their own scale when the file takes integers); `read`
    names the tensors each run returns (not the weights)."""

    def __init__(self, path: Path, read: Set[str]) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self._path = Path(path)
        self._it = Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=True,
        )
        self._it.allocate_tensors()
        self._inputs = self._it.get_signature_runner().get_input_details()
        self._tensors = [d for d in self._it.get_tensor_details() if d["name"] in read]
        self._details = {d["name"]: d for d in self._tensors}

    def requantized(self, tensor: str, values: np.ndarray) -> Optional[np.ndarray]:
        """`values` through `tensor`'s own quantization in this file (its scale and zero point):
        what that quantization alone keeps of float; None for a float tensor."""
        detail = self._details.get(tensor)
        if detail is None or not np.issubdtype(np.dtype(detail["dtype"]), np.integer):
            return None
        return dequantize(_quantize(values, detail), detail)

    def run(self, feed: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """The tensors it reads after one batch, integer ones dequantized."""
        from pytest_edgeopt.optimize.tflite import signature_keys

        keys = signature_keys(self._path, self._inputs, dict(feed))
        for signature, detail in self._inputs.items():
            self._it.set_tensor(detail["index"], _quantize(np.asarray(feed[keys[signature]]), detail))
        self._it.invoke()
        values: Dict[str, np.ndarray] = {}
        for detail in self._tensors:
            try:
                values[detail["name"]] = dequantize(self._it.get_tensor(detail["index"]), detail)
            except ValueError:  # a tensor the interpreter holds no data for
                continue
        return values


def _quantize(data: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    """Float eval data for an integer input, as the agent's LiteRT runtime quantizes it."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not np.issubdtype(dtype, np.integer) or not scale:
        return data.astype(dtype)
    info = np.iinfo(dtype)
    return np.asarray(np.clip(np.round(data / scale + zero_point), info.min, info.max).astype(dtype))


def dequantize(values: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    """An integer tensor as the float it stands for (per tensor, or per channel along its
    quantized dimension); any other tensor as it is."""
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", ()), dtype=np.float64)
    if not np.issubdtype(values.dtype, np.integer) or scales.size == 0:
        return np.asarray(values)
    zero_points = np.asarray(params.get("zero_points", ()), dtype=np.float64)
    if scales.size > 1:
        shape = [1] * values.ndim
        shape[int(params.get("quantized_dimension", 0))] = scales.size
        scales, zero_points = scales.reshape(shape), zero_points.reshape(shape)
    return ((values.astype(np.float64) - zero_points) * scales).astype(np.float32)
