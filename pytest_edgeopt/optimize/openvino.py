"""OpenVINO's artifacts: the ONNX files of ONNX Runtime for FP32 and FP16, NNCF's IR for INT8.

OpenVINO reads .onnx directly, so FP32 and FP16 are the very files the ONNX Runtime rows measure
(the same cache entries): any difference in a row is the runtime's, not the file's. INT8 is what an
OpenVINO user deploys: the FP32 .onnx read as an `ov.Model`, NNCF's post-training quantization of
that model, calibrated on the model's calibration data, saved as IR (`.xml` + `.bin`, int8 weights).
An earlier version saved NNCF's quantization of the .onnx as a QDQ .onnx: OpenVINO 2026.4 runs that
file of YOLOv8n with every class score gone (F1 0.0, ONNX Runtime 0.86 on the same file), while
NNCF's quantization of the ov.Model keeps them.

NNCF's preset follows its own advice: MIXED (asymmetric activations) when the graph has
activations that are not ReLU-like (SiLU, GELU, ELU, PReLU, HSwish, Mish...), PERFORMANCE
(symmetric) otherwise. On YOLOv8n (SiLU) the symmetric preset kept F1 0.76, the mixed one 0.98.

keep_float= and int8-mixed put the chosen nodes in NNCF's IgnoredScope: patterns resolve on the
.onnx node names (as on ONNX Runtime), mapped to the ov.Model's operations (OpenVINO names an op
after its ONNX node, a node it splits as `<node>/<part>`, and a node that makes a graph output after
that output). int8-mixed's layers come from the same greedy search as on ONNX Runtime
(session/mixed.py), ranked on OpenVINO's own execution of the IR (optimize/openvino_sensitivity.py),
not from nncf.quantize_with_accuracy_control: that ranks and reverts inside one quantizer call with
its own validation loop, outside the agent that measures every row, the run's time and layer caps
and the list stored with the baseline.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Sequence, Tuple

import numpy as np

from pytest_edgeopt._fs import COMPANIONS
from pytest_edgeopt._isolate import run_isolated
from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.inspect.facts import ArtifactStats, Quantization
from pytest_edgeopt.models.base import EdgeModel, InputData
from pytest_edgeopt.optimize.calibration import onnx_batches
from pytest_edgeopt.optimize.formats import ArtifactRecord, BuildRequest
from pytest_edgeopt.optimize.onnx_builder import shown_as
from pytest_edgeopt.optimize.sensitivity import graph_layers, node_sources, resolve_keep_float
from pytest_edgeopt.runtimes.causes import cause_line, own_warning_filters
from pytest_edgeopt.runtimes.openvino import import_openvino

ORT_ONLY = ("int8-u8s8", "int8-s8s8", "int8-dynamic")


class OpenVINOBuilder:
    """INT8 by NNCF as IR; every other precision is the ONNX format's own file."""

    suffix = ".xml"
    companions: Tuple[str, ...] = COMPANIONS[".xml"]  # the IR's weights, beside its .xml
    packages = ("nncf", "openvino", "onnx")
    owns = ("int8", "int8-mixed")  # int8-mixed: int8 with the search's layers in IgnoredScope

    def check(self, model: EdgeModel, precision: str) -> None:
        if precision in ORT_ONLY:
            raise EdgeOptError(
                f"{precision} is an ONNX Runtime precision: use int8 (NNCF's post-training quantization) "
                "with runtime='openvino'"
            )

    def build(self, request: BuildRequest) -> ArtifactRecord:
        if request.source is None:
            raise EdgeOptError("NNCF quantizes the FP32 .onnx file: no source file was given")
        built = quantize_int8(
            request.source,
            request.dest,
            calibration=request.model.calibration,
            batch=request.batch,
            keep_float=request.keep_float,
            shown_as=shown_as(request.model),
        )
        quantization = Quantization(
            weight_type="int8 per-channel",
            activation_type=built.activation_type,
            format=f"IR, NNCF preset {built.preset}",
            per_channel=True,
            calibration_samples=built.samples,
            tool="nncf",
        )
        if request.keep_float:
            kept = built.kept_float
            quantization = replace(quantization, kept_float=kept, bitwidth=f"INT8 mixed, {len(kept)} layers float")
        notes = (f"NNCF preset {built.preset}: {built.why_preset}",)
        return ArtifactRecord(stats=built.stats, quantization=quantization, notes=notes)


BUILDER = OpenVINOBuilder()


@dataclass(frozen=True)
class BuiltIR:
    """What the child process that quantized the model reports about the IR it wrote."""

    samples: int
    kept_float: Tuple[str, ...]  # the ONNX node names kept float
    activation_type: str  # "uint8", "int8" or "uint8+int8", from the activations' FakeQuantize ranges
    preset: str  # NNCF's preset: "mixed" or "performance"
    why_preset: str
    stats: ArtifactStats


def require_nncf() -> Any:
    with contextlib.suppress(ImportError):  # first, so NNCF's import of it sends no telemetry either
        import_openvino()
    try:
        import nncf
    except ImportError:
        raise MissingDependency(package="nncf", extra="openvino", purpose="OpenVINO INT8 quantization") from None
    return nncf


def quantize_int8(
    src: Path,
    dest: Path,
    *,
    calibration: InputData,
    batch: int,
    keep_float: Tuple[str, ...] = (),
    shown_as: str = "",
) -> BuiltIR:
    """NNCF's post-training quantization of `src` read as an ov.Model, on every calibration
    batch, written as IR at `dest` (its .bin at dest.with_suffix(".bin")). Calibration runs the
    user's graph: in a child process under the job's deadline (isolate.py), which fails the build
    naming `shown_as` when the graph does not finish."""
    require_nncf()
    batches = onnx_batches(src, calibration, batch=batch)
    where = shown_as or src.name
    return run_isolated(f"NNCF INT8 calibration of {where}", _nncf_int8, src, dest, batches, keep_float, where)


def _nncf_int8(
    src: Path, dest: Path, batches: List[Dict[str, np.ndarray]], keep_float: Tuple[str, ...], where: str
) -> BuiltIR:
    """nncf.quantize of the ov.Model and the save of its IR (in the child process). Its progress
    bars and log lines stay out of pytest's output."""
    nncf = require_nncf()
    ov = import_openvino()
    model = ov.Core().read_model(str(src))
    kept: Tuple[str, ...] = ()
    if keep_float:
        kept = resolve_keep_float(keep_float, graph_layers(src, node_sources(src)), where=where)
    made_of = op_names(model, onnx_outputs(src)) if kept else {}
    ignored = [name for node in kept for name in made_of.get(node, ())]
    scope = nncf.IgnoredScope(names=ignored, validate=False) if ignored else None
    preset, why = choose_preset(model)
    with _quiet():
        try:
            quantized = nncf.quantize(
                model,
                nncf.Dataset(batches),
                subset_size=len(batches),
                preset=getattr(nncf.QuantizationPreset, preset.upper()),
                ignored_scope=scope,
            )
        except Exception as error:
            raise EdgeOptError(f"NNCF quantization of {src.name} failed: {cause_line(error)}") from None
    activations = activation_types(quantized)
    _save_ir(ov, quantized, dest)
    from pytest_edgeopt.inspect.openvino_ir import ir_stats

    stats = ir_stats(dest, {name: value.shape for name, value in batches[0].items()})
    samples = sum(len(next(iter(b.values()))) for b in batches)
    return BuiltIR(samples, kept, activations, preset, why, stats)


def _save_ir(ov: Any, model: Any, dest: Path) -> None:
    """The IR with float weights kept float32 (OpenVINO's default would halve a kept layer to
    float16), its .bin beside `dest` under the same stem, as read_model looks for it."""
    with tempfile.TemporaryDirectory() as scratch:
        xml = Path(scratch) / "model.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        shutil.copyfile(xml, dest)
        shutil.copyfile(xml.with_suffix(".bin"), dest.with_suffix(".bin"))


def op_names(model: Any, nodes: Mapping[str, Sequence[str]]) -> Dict[str, Tuple[str, ...]]:
    """ONNX node name -> the ov.Model operations OpenVINO made of it (`nodes`: node name -> its
    output tensors): an op named after the node, or after one of its outputs (the node that makes
    a graph output is named "output0"), or `<node>/<part>` when OpenVINO split it (a Conv with a
    bias is `<node>/WithoutBiases` + an Add named `<node>`)."""
    by_output = {tensor: node for node, outputs in nodes.items() for tensor in outputs}
    found: Dict[str, List[str]] = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() in ("Constant", "Parameter", "Result"):
            continue
        name = op.get_friendly_name()
        named = [by_output[t] for port in op.outputs() for t in port.get_names() if t in by_output]
        prefix = name.rsplit("/", 1)[0]
        node = name if name in nodes else named[0] if named else prefix if prefix in nodes else None
        if node is not None:
            found.setdefault(node, []).append(name)
    return {node: tuple(names) for node, names in found.items()}


def onnx_names(model: Any, nodes: Mapping[str, Sequence[str]]) -> Dict[str, str]:
    """ov.Model operation -> the ONNX node it came from (op_names inverted)."""
    return {op: node for node, ops in op_names(model, nodes).items() for op in ops}


def _activation_type(low: np.ndarray, high: np.ndarray, levels: int) -> str:
    """int8 for a symmetric range around zero (low = -high * 128/127 at 256 levels); uint8 for
    one starting at 0 or an asymmetric one (a zero point: preset MIXED)."""
    half = levels // 2
    symmetric = np.allclose(low, -high * half / (half - 1), rtol=1e-3, atol=1e-6)
    return "int8" if symmetric and float(np.min(low)) < 0 else "uint8"


def onnx_outputs(path: Path) -> Dict[str, Tuple[str, ...]]:
    """The .onnx file's node names and the tensors each makes."""
    from pytest_edgeopt.inspect.onnx_file import load_onnx

    return {node.name: tuple(node.output) for node in load_onnx(path).graph.node}


_SMOOTH = ("Swish", "Gelu", "Elu", "PRelu", "HSwish", "Mish", "SoftPlus", "HSigmoid", "Selu")


def choose_preset(model: Any) -> Tuple[str, str]:
    """NNCF's advice: asymmetric activations (preset MIXED) for graphs with activations that are
    not ReLU-like, whose outputs go below zero by a little; symmetric (PERFORMANCE) otherwise."""
    ops = model.get_ordered_ops()
    kinds = sorted({op.get_type_name() for op in ops if op.get_type_name() in _SMOOTH})
    if any(_is_silu(op) for op in ops):
        kinds = sorted({*kinds, "SiLU"})
    if kinds:
        return "mixed", f"asymmetric activations for its {', '.join(kinds)} activations, as NNCF advises"
    return "performance", "symmetric activations: every activation is ReLU-like"


def _is_silu(op: Any) -> bool:
    """x * sigmoid(x), as exporters write SiLU/Swish."""
    if op.get_type_name() != "Multiply":
        return False
    sources = [op.input_value(i).get_node() for i in range(op.get_input_size())]
    return any(
        s.get_type_name() == "Sigmoid" and s.input_value(0).get_node() in [t for t in sources if t is not s]
        for s in sources
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with own_warning_filters(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        nncf_log.setLevel(level)


def activation_types(model: Any) -> str:
    """ "uint8", "int8" or "uint8+int8": the activations' FakeQuantize output ranges (a range
    that starts at 0 is unsigned); weights' FakeQuantizes read a Constant and are skipped."""
    from pytest_edgeopt.inspect.openvino_ir import weight_constant

    types = set()
    for op in model.get_ordered_ops():
        if op.get_type_name() != "FakeQuantize" or weight_constant(op.input_value(0).get_node()) is not None:
            continue
        low, high = op.input_value(3).get_node(), op.input_value(4).get_node()
        if low.get_type_name() == "Constant" and high.get_type_name() == "Constant":
            types.add(_activation_type(low.get_data(), high.get_data(), int(op.get_levels())))
    return "+".join(sorted(types, reverse=True)) or "uint8"
