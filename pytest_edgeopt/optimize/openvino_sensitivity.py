"""Which layers INT8 hurts on OpenVINO: the FP32 .onnx and NNCF's INT8 IR, both compiled by
OpenVINO's CPU plugin, run on the same eval samples with the output of every operation exposed.

Each ONNX node's output (OpenVINO names its operations after the ONNX nodes: optimize/openvino.py
op_names) is scored by its worst channel's SQNR against float, and ranked by the SQNR it loses
against its worst input, as the ONNX Runtime ranking does (optimize/sensitivity.py): the names are
the .onnx node names keep_float= and int8-mixed resolve. Both graphs are reshaped to the eval
batch's shapes and run with f32 inference precision, so the only difference left is INT8's.
Operations computed from constants alone (a bias reshaped, shapes) are not layers: NNCF's bias
correction changes some of those on purpose.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from pytest_edgeopt.measure.result import LayerError
from pytest_edgeopt.optimize.sensitivity import (
    EXACT_DB,
    Layer,
    channel_sums,
    graph_layers,
    layer_scores,
    node_sources,
    rank,
    sqnr_of_sums,
)

# operations that carry a value to the next layer without computing it: traced through
_CARRIERS = ("FakeQuantize", "Convert", "Subtract", "Multiply", "Reshape", "Transpose", "Unsqueeze", "Squeeze")
_NOT_LAYERS = ("Constant", "Parameter", "Result", "FakeQuantize", "Convert", "ShapeOf")


def ir_sensitivity(root: Path, ir: Path, batches: Sequence[Dict[str, np.ndarray]]) -> Tuple[LayerError, ...]:
    """The IR's per-layer SQNR against the FP32 .onnx `root`, on `batches` of real eval inputs
    (only per-channel sums are kept, as on ONNX Runtime)."""
    from pytest_edgeopt.inspect.openvino_ir import reshaped
    from pytest_edgeopt.optimize.openvino import onnx_names, onnx_outputs
    from pytest_edgeopt.runtimes.openvino import import_openvino

    ov = import_openvino()
    core = ov.Core()
    shapes = {name: value.shape for name, value in batches[0].items()}
    fp32, int8 = reshaped(core.read_model(str(root)), shapes), reshaped(core.read_model(str(ir)), shapes)
    node_of = onnx_names(fp32, onnx_outputs(root))
    layers = {layer.name: layer for layer in graph_layers(root, node_sources(root))}
    scored = _scored_ops(fp32, int8, node_of, layers)
    inputs, read = _inputs(int8, scored, node_of)
    pairs = {node: (name, name) for node, name in scored.items()}
    pairs.update({key: (scored.get(source, source), fq) for key, (source, fq) in read.items()})
    sums = _sums(core, fp32, int8, pairs, batches)
    sqnr = {key: min(sqnr_of_sums(*pair), EXACT_DB) for key, pair in sums.items()}
    producers = {node: layers[node] for node in scored if node in sqnr}
    weighted = _weighted(int8, node_of)
    return rank([_own(error, weighted) for error in layer_scores(sqnr, producers, inputs)])


def _weighted(int8: Any, node_of: Mapping[str, str]) -> Set[str]:
    """The ONNX nodes whose operations read a weight (a Constant, through its decompression)."""
    from pytest_edgeopt.inspect.openvino_ir import weight_constant

    found: Set[str] = set()
    for op in int8.get_ordered_ops():
        node = node_of.get(op.get_friendly_name())
        if node is None or op.get_type_name() == "Constant":
            continue
        sources = [op.input_value(i).get_node() for i in range(1, op.get_input_size())]
        if any(weight_constant(s) is not None and _is_tensor(s) for s in sources):
            found.add(node)
    return found


def _is_tensor(node: Any) -> bool:
    """More than a scalar: an Add of a bias, not of an epsilon."""
    shape = node.get_output_partial_shape(0)
    return shape.is_static and int(np.prod([int(d) for d in shape.to_shape()])) > 1


def _own(error: LayerError, weighted: Set[str]) -> LayerError:
    """A layer without weights computes in float on the values it reads (NNCF's FakeQuantizes sit
    on layers' inputs, and are counted there): it adds no INT8 error of its own. What its output
    seems to lose is a channel that it empties (a ReLU6 leaving a channel's rare small values, whose
    worst-channel SQNR then reads upstream noise as -20 dB: EfficientNet-Lite0's and PP-OCR's
    Clips ranked first), so it is not ranked as a cause."""
    return error if error.name in weighted else replace(error, loss_db=0.0)


def isolated_ir_sensitivity(root: Path, ir: Path, batches: Sequence[Dict[str, np.ndarray]]) -> Tuple[LayerError, ...]:
    """The body of the child process (_isolate.run_isolated) that runs the user's graph."""
    return ir_sensitivity(root, ir, batches)


def _scored_ops(fp32: Any, int8: Any, node_of: Mapping[str, str], layers: Mapping[str, Layer]) -> Dict[str, str]:
    """ONNX node -> the operation whose output is that node's output, in both graphs: the one
    named like the node (or after its graph output), computed from the inputs (not constants),
    float, present in the IR."""
    in_int8 = {op.get_friendly_name(): op for op in int8.get_ordered_ops()}
    live = _from_inputs(fp32)
    scored: Dict[str, str] = {}
    for op in fp32.get_ordered_ops():
        name = op.get_friendly_name()
        node = node_of.get(name)
        if node is None or node not in layers or op.get_type_name() in _NOT_LAYERS or name not in live:
            continue
        if name not in in_int8 or op.get_output_size() < 1 or op.get_output_element_type(0).get_type_name() != "f32":
            continue
        scored[node] = name  # the last op of a node in graph order makes its output
    return scored


def _from_inputs(model: Any) -> Set[str]:
    """The operations that depend on a graph input (the rest fold to constants)."""
    live: Set[str] = set()
    for op in model.get_ordered_ops():
        sources = [op.input_value(i).get_node() for i in range(op.get_input_size())]
        if op.get_type_name() == "Parameter" or any(s.get_friendly_name() in live for s in sources):
            live.add(op.get_friendly_name())
    return live


def _exposed(core: Any, model: Any, names: Sequence[str]) -> Tuple[Any, Dict[str, int]]:
    """`model` compiled with the outputs of `names` added; the index of each among its outputs
    (an op that already makes a graph output keeps that output's index)."""
    ops = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
    model.add_outputs([ops[name].output(0) for name in names])
    producers = [result.get_node().input_value(0).get_node().get_friendly_name() for result in model.outputs]
    at = {name: i for i, name in enumerate(producers)}
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": "1"})
    return compiled, {name: at[name] for name in names}


def _sums(
    core: Any,
    fp32: Any,
    int8: Any,
    pairs: Mapping[str, Tuple[str, str]],
    batches: Sequence[Dict[str, np.ndarray]],
) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Per key, the per-channel sums of (FP32 op output, INT8 op output) over every batch."""
    keys = list(pairs)
    exact, exact_at = _exposed(core, fp32, list(dict.fromkeys(pairs[k][0] for k in keys)))
    seen, seen_at = _exposed(core, int8, list(dict.fromkeys(pairs[k][1] for k in keys)))
    sums: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    dropped: Set[str] = set()
    for feed in batches:
        x_out, y_out = exact(dict(feed)), seen(dict(feed))
        for key in keys:
            x, y = np.asarray(x_out[exact_at[pairs[key][0]]]), np.asarray(y_out[seen_at[pairs[key][1]]])
            if key in dropped or x.shape != y.shape or x.ndim == 0 or not np.issubdtype(x.dtype, np.floating):
                dropped.add(key)
                continue
            signal, noise = channel_sums(x, y)
            before = sums.get(key)
            sums[key] = (signal, noise) if before is None else (before[0] + signal, before[1] + noise)
    return {key: pair for key, pair in sums.items() if key not in dropped}


def _inputs(
    int8: Any, scored: Mapping[str, str], node_of: Mapping[str, str]
) -> Tuple[Dict[str, List[str]], Dict[str, Tuple[str, str]]]:
    """ONNX node -> the values it reads in the IR: a scored node's output, or what a FakeQuantize
    made of it (or of a graph input), traced through decompression and the node's own other
    operations. The second map names those FakeQuantize values: key -> (the node or graph input
    quantized, the FakeQuantize). A quantizer's own rounding is the value's, as on ONNX Runtime
    where a layer reads the DequantizeLinear output: a layer is ranked by what it adds."""
    ops = {op.get_friendly_name(): op for op in int8.get_ordered_ops()}
    found: Dict[str, List[str]] = {}
    read: Dict[str, Tuple[str, str]] = {}
    for node, name in scored.items():
        found[node] = _sources(ops[name], node, node_of, set(scored), read, depth=0)
    return found, read


def _sources(
    op: Any, node: str, node_of: Mapping[str, str], scored: Set[str], read: Dict[str, Tuple[str, str]], *, depth: int
) -> List[str]:
    out: List[str] = []
    for i in range(op.get_input_size()):
        source = op.input_value(i).get_node()
        if source.get_type_name() == "FakeQuantize":
            quantized = _source_node(source.input_value(0).get_node(), node, node_of, scored)
            if quantized is not None:
                key = _FQ + source.get_friendly_name()
                read[key] = (quantized, source.get_friendly_name())
                out.append(key)
                continue
        found = _source_node(source, node, node_of, scored)
        if found is not None:
            out.append(found)
        elif depth < 16 and (source.get_type_name() in _CARRIERS or node_of.get(source.get_friendly_name()) == node):
            out += _sources(source, node, node_of, scored, read, depth=depth + 1)
    return list(dict.fromkeys(out))


_FQ = "\0fq:"  # the key of a value as a FakeQuantize hands it on


def _source_node(source: Any, node: str, node_of: Mapping[str, str], scored: Set[str]) -> Optional[str]:
    """The scored ONNX node (another than `node`) or the graph input (its op name) `source` is."""
    if source.get_type_name() == "Parameter":
        return str(source.get_friendly_name())
    owner = node_of.get(source.get_friendly_name())
    if owner is not None and owner != node and owner in scored and source.get_type_name() not in _CARRIERS[:2]:
        return owner
    return None
