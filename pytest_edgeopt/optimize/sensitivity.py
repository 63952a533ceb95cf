"""Which layers INT8 hurts, and which layers a user keeps in float.

Sensitivity compares real intermediate activations: the FP32 graph and the runtime's own QDQ graph
(ONNX Runtime's quantizer's for runtime='onnxruntime', NNCF's for runtime='openvino') run on the
same eval samples with every node output exposed (as onnxruntime.quantization.qdq_loss_debug does,
keeping each tensor's shape), and each node's output is scored by its worst channel's SQNR against
float. A node's own harm is the SQNR it loses against its worst input: error from upstream is not
blamed on every layer below it. Both QDQ files are executed by ONNX Runtime's reference kernels with
graph optimizations off, i.e. with the Q/DQ numerics the file itself defines: OpenVINO fuses
NNCF's Q/DQ pairs into FakeQuantize and renames the tensors in between, so its own compiled graph
cannot expose them by the ONNX names the ranking and keep_float use.

keep_float patterns resolve here to node names of the graph the quantizers read: an exact name, an
fnmatch glob on a node's name or on its source (the torch module path the exporter recorded), or an
op type.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.measure.result import LayerError

SENSITIVITY_SAMPLES = 32  # eval samples whose activations are compared: enough to rank, cheap to run
_SCOPES = "pkg.torch.onnx.name_scopes"  # torch.onnx (dynamo) records the module path of each node


@dataclass(frozen=True)
class Layer:
    """A node of the graph: its name, op type and where it came from (a torch module path or the
    node name itself for a file exported elsewhere)."""

    name: str
    op_type: str
    source: str


def node_sources(path: Path) -> Dict[str, str]:
    """node name -> the torch module path it came from ("body.1"), read from the exporter's metadata."""
    from pytest_edgeopt.inspect.onnx_file import load_onnx

    sources: Dict[str, str] = {}
    for node in load_onnx(path).graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == _SCOPES), None)
        module = _module_path(scopes) if scopes else None
        if module:
            sources[node.name] = module
    return sources


def _module_path(scopes: str) -> Optional[str]:
    """['', 'body', 'body.0', 'conv2d'] -> 'body.0': the innermost module (the last entry is the op)."""
    try:
        names = [str(n) for n in json.loads(scopes.replace("'", '"'))]
    except ValueError:
        return None
    modules = [n for n in names[:-1] if n]
    return modules[-1] if modules else None


def graph_layers(path: Path, sources: Mapping[str, str]) -> List[Layer]:
    from pytest_edgeopt.inspect.onnx_file import load_onnx

    return [Layer(node.name, node.op_type, sources.get(node.name, node.name)) for node in load_onnx(path).graph.node]


def resolve_keep_float(patterns: Sequence[str], layers: Sequence[Layer], *, where: str) -> Tuple[str, ...]:
    """The node names `patterns` select, in graph order; a pattern that selects nothing is the
    user's typo and fails naming it (a silent no-op would quantize the layer they meant to keep)."""
    chosen: List[str] = []
    for pattern in patterns:
        hits = [layer.name for layer in layers if matches(pattern, layer)]
        if not hits:
            raise EdgeOptError(
                f"{where}: keep_float pattern {pattern!r} matches no node (by name, glob on name or "
                "torch module path, or op type)"
            )
        chosen += hits
    order = {layer.name: i for i, layer in enumerate(layers)}
    return tuple(sorted(set(chosen), key=order.__getitem__))


def matches(pattern: str, layer: Layer) -> bool:
    """An op type ("Sigmoid"), a node name, or a glob on the name or source ("/model.22/*")."""
    if pattern == layer.op_type or pattern == layer.name or pattern == layer.source:
        return True
    return fnmatch.fnmatchcase(layer.name, pattern) or fnmatch.fnmatchcase(layer.source, pattern)


def rank(scores: Sequence[LayerError]) -> Tuple[LayerError, ...]:
    """Worst first: the most SQNR a layer loses itself, then the lowest SQNR."""
    return tuple(sorted(scores, key=lambda e: (-e.loss_db, e.sqnr_db, e.name)))


def layer_scores(
    sqnr: Mapping[str, float], producers: Mapping[str, Layer], inputs: Mapping[str, Sequence[str]]
) -> List[LayerError]:
    """Per node (by its first scored output tensor): its SQNR, and what it loses against its
    worst scored input (a graph input counts as exact)."""
    scores: List[LayerError] = []
    for tensor, value in sqnr.items():
        layer = producers.get(tensor)
        if layer is None:
            continue
        upstream = [sqnr[t] for t in inputs.get(layer.name, ()) if t in sqnr]
        worst_in = min([*upstream, CLEAN_DB])
        loss = value - worst_in
        own = abs(round(max(-loss, 0.0), 2))  # abs: no -0.0 in a report
        scores.append(LayerError(layer.name, layer.op_type, layer.source, round(value, 2), own))
    return scores


EXACT_DB = 100.0  # a graph input, or a tensor INT8 does not touch, as an SQNR
# INT8's own noise floor (an ideal 8-bit full-scale signal is ~50 dB): a layer above it loses
# nothing worth a float layer. Measured from exact (100 dB), YOLOv8n's float anchor Ranges at 54 dB
# ranked above its first Conv at 22 dB.
CLEAN_DB = 40.0


def onnx_sensitivity(
    root: Path, pre: Path, quantized: Path, batches: Sequence[Dict[str, np.ndarray]]
) -> Tuple[LayerError, ...]:
    """The QDQ file's per-layer SQNR against the FP32 file `root` as the quantizer read it (`pre`,
    quantize.preprocessed: the tensor names match), on `batches` of real eval inputs. Both graphs
    run batch by batch and only per-channel sums are kept: holding every activation of YOLOv8n at
    320x320 for 32 samples took 10 GB."""
    from pytest_edgeopt.inspect.onnx_file import load_onnx

    sources = node_sources(root)
    graph = load_onnx(quantized).graph
    dequantized = _dequantized(graph)
    first_output = {n.name: n.output[0] for n in graph.node if n.output}
    producers, inputs = _qdq_nodes(graph, sources, dequantized)
    exact_run, seen_run = _Exposed(pre), _Exposed(quantized)
    read = set(producers) | {name for names in inputs.values() for name in names}
    pairs: Dict[str, Tuple[Tuple[bool, str], str]] = {}
    for tensor in read:
        exact = (True, tensor) if tensor in exact_run.names else (False, tensor)
        if not exact[0] and (tensor in producers or tensor not in seen_run.names):
            continue
        read_as = dequantized.get(tensor, tensor + _DQ_OUT)  # what the next layer reads
        seen = read_as if read_as in seen_run.names else tensor
        if seen in seen_run.names:
            pairs[tensor] = (exact, seen)
            computed = first_output.get(producers[tensor].name) if tensor in producers else None  # before Q/DQ
            if computed and computed != seen and computed in seen_run.names:
                pairs[_PAIR + tensor] = ((False, computed), seen)
    sqnr = _sqnr(pairs, exact_run, seen_run, batches)
    pair = {t[len(_PAIR) :]: v for t, v in sqnr.items() if t.startswith(_PAIR)}
    scores = layer_scores({t: v for t, v in sqnr.items() if not t.startswith(_PAIR)}, producers, inputs)
    tensor_of = {layer.name: tensor for tensor, layer in producers.items()}
    weighted = _weighted(graph)
    return rank([_with_readers(e, tensor_of.get(e.name), pair, weighted, graph, dequantized) for e in scores])


_PAIR = "\0q/dq:"  # the key of the SQNR a tensor's own Q/DQ pair keeps (its value before vs after)
# A Q/DQ pair whose scale fits its tensor keeps 30-50 dB; below this its scale was set by another
# tensor (a Concat's shared scale: YOLOv8's class scores in 0..1 beside boxes in pixels)
PAIR_FLOOR_DB = 20.0


def _weighted(graph: Any) -> Set[str]:
    """The nodes that read a weight (an initializer, or one behind a DequantizeLinear): a
    weighted layer's loss can be its own rounded weights (kept float by keeping it float); a
    weightless one computes in float on dequantized inputs, so all it loses is its output's Q/DQ."""
    initializers = {t.name for t in graph.initializer}
    weights = initializers | {
        n.output[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in initializers
    }
    return {n.name for n in graph.node if any(i in weights for i in n.input)}


def _with_readers(
    error: LayerError,
    tensor: Optional[str],
    pair: Mapping[str, float],
    weighted: Set[str],
    graph: Any,
    dequantized: Mapping[str, str],
) -> LayerError:
    """`error` with the readers of its output's Q/DQ pair when that pair, not the layer, loses
    the SQNR (a weightless layer whose pair keeps less than PAIR_FLOOR_DB): keeping the layer
    alone float would leave the pair, as its readers are quantized. On YOLOv8n ORT keeping the
    Sigmoid alone float left F1 at 0.71; with the Concat reading it, 0.96."""
    if tensor is None or pair.get(tensor, EXACT_DB) >= PAIR_FLOOR_DB or error.name in weighted:
        return error
    carried = dequantized.get(tensor, tensor + _DQ_OUT)
    readers = [n.name for n in graph.node if n.op_type not in _QDQ_OPS and carried in n.input]
    return replace(error, readers=tuple(dict.fromkeys(readers)))


def _sqnr(
    pairs: Mapping[str, Tuple[Tuple[bool, str], str]],
    exact_run: "_Exposed",
    seen_run: "_Exposed",
    batches: Sequence[Dict[str, np.ndarray]],
) -> Dict[str, float]:
    """Each pair's worst-channel SQNR over all batches, from per-channel sums."""
    sums: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    dropped: Set[str] = set()
    for feed in batches:
        float_out, qdq_out = exact_run.run(feed), seen_run.run(feed)
        for key, ((from_float, exact_name), seen_name) in pairs.items():
            if key in dropped:
                continue
            x = (float_out if from_float else qdq_out)[exact_name]
            y = qdq_out[seen_name]
            if not _comparable([x], [y]):  # untouched shape arithmetic, or a scalar
                dropped.add(key)
                continue
            signal, noise = channel_sums(x, y)
            before = sums.get(key)
            sums[key] = (signal, noise) if before is None else (before[0] + signal, before[1] + noise)
    return {t: min(sqnr_of_sums(*v), EXACT_DB) for t, v in sums.items() if t not in dropped}


QUIET_CHANNEL = 1e-3  # a channel this much weaker than the strongest is not scored (near-dead: noise)


def worst_channel_sqnr(exact: np.ndarray, seen: np.ndarray, *, axis: int = 1) -> float:
    """The SQNR (dB) of the worst channel (axis 1) that carries signal: one tensor can hold values of
    very different ranges (YOLOv8's output concatenates boxes in pixels and class scores in 0..1),
    and a whole-tensor SQNR then looks fine (29.6 dB) while every class score is gone."""
    return sqnr_of_sums(*channel_sums(exact, seen, axis=axis))


def channel_sums(exact: np.ndarray, seen: np.ndarray, *, axis: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """Per channel: the sum of squares of `exact` and of `exact - seen` (summed over batches, then
    turned into an SQNR by sqnr_of_sums). The channel `axis` is 1 in ONNX's NCHW and the last one
    in TFLite's NHWC (and of its [batch, features] tensors)."""
    x = exact.astype(np.float64)
    y = seen.astype(np.float64)
    if x.ndim < 2:  # one channel
        x, y, axis = x.reshape(1, 1, -1), y.reshape(1, 1, -1), 1
    channels = x.shape[axis]
    signal = np.sum(np.moveaxis(x, axis, 0).reshape(channels, -1) ** 2, axis=1)
    noise = np.sum(np.moveaxis(x - y, axis, 0).reshape(channels, -1) ** 2, axis=1)
    return signal, noise


def sqnr_of_sums(signal2: np.ndarray, noise2: np.ndarray) -> float:
    signal, noise = np.sqrt(signal2), np.sqrt(noise2)
    strong = signal >= QUIET_CHANNEL * max(float(signal.max()), np.finfo(np.float64).tiny)
    eps = np.finfo(np.float32).eps
    ratios = np.maximum(signal[strong], eps) / np.maximum(noise[strong], eps)
    return float(20 * np.log10(ratios.min())) if ratios.size else EXACT_DB


def _comparable(exact: Sequence[np.ndarray], seen: Sequence[np.ndarray]) -> bool:
    """Float activations of the same shapes: shape arithmetic (int64 Range, ConstantOfShape) is
    never quantized and says nothing about INT8, nor does a scalar."""
    return len(exact) == len(seen) and all(
        np.issubdtype(a.dtype, np.floating) and a.ndim > 0 and a.shape == b.shape for a, b in zip(exact, seen)
    )


# ONNX Runtime's QDQ names: T -> QuantizeLinear -> DequantizeLinear -> T_DequantizeLinear_Output, or
# for a graph output T_QuantizeLinear_Input -> Q -> DQ -> T
_DQ_OUT, _Q_IN, _Q_OUT = "_DequantizeLinear_Output", "_QuantizeLinear_Input", "_QuantizeLinear_Output"
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def _base(tensor: str) -> str:
    for suffix in (_DQ_OUT, _Q_IN, _Q_OUT):
        if tensor.endswith(suffix):
            return tensor[: -len(suffix)]
    return tensor


def _dequantized(graph: Any) -> Dict[str, str]:
    """float tensor -> the DequantizeLinear output that carries it to the next layers, read from
    the graph's Q -> DQ pairs (NNCF names them q_output_T_1 / dq_output_T_1; ORT's names are
    also recognised by _base)."""
    quantized_from = {node.output[0]: _base(node.input[0]) for node in graph.node if node.op_type == "QuantizeLinear"}
    out: Dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in quantized_from:
            out.setdefault(quantized_from[node.input[0]], node.output[0])
    return out


def _qdq_nodes(
    graph: Any, sources: Mapping[str, str], dequantized: Mapping[str, str]
) -> Tuple[Dict[str, Layer], Dict[str, List[str]]]:
    """The QDQ graph's compute nodes by the float tensor they produce (the quantizer may fold a
    Relu into the Gemm before it, which then produces the Relu's tensor), and their float inputs."""
    float_of = {dq: tensor for tensor, dq in dequantized.items()}
    producers: Dict[str, Layer] = {}
    inputs: Dict[str, List[str]] = {}
    for node in graph.node:
        if node.op_type in _QDQ_OPS or not node.output:
            continue
        producers[_base(node.output[0])] = Layer(node.name, node.op_type, sources.get(node.name, node.name))
        inputs[node.name] = [float_of.get(name, _base(name)) for name in node.input]
    return producers, inputs


class _Exposed:
    """An ONNX Runtime session of `model` with every float node output exposed, in its own shape
    (qdq_loss_debug's augmentation flattens them, and the worst channel needs the channel axis);
    graph optimizations off, as qdq_loss_debug runs them: the file's own Q/DQ numerics."""

    def __init__(self, model: Path) -> None:
        import onnx
        import onnxruntime as ort

        graph_model = onnx.load(str(model))
        inferred = onnx.shape_inference.infer_shapes(graph_model).graph
        types = {v.name: v.type.tensor_type.elem_type for v in [*inferred.value_info, *inferred.output]}
        floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
        exposed = {o.name for o in graph_model.graph.output}
        for node in graph_model.graph.node:
            for name in node.output:
                if name and name not in exposed and types.get(name) in floats:
                    graph_model.graph.output.append(onnx.helper.make_tensor_value_info(name, types[name], None))
                    exposed.add(name)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            graph_model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.names = set(self._outputs) | {i.name for i in self._session.get_inputs()}

    def run(self, feed: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Every exposed tensor on one batch, graph inputs too."""
        values = dict(zip(self._outputs, self._session.run(None, dict(feed))))
        values.update(feed)
        return {k: np.asarray(v) for k, v in values.items()}
