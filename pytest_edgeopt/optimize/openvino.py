"""OpenVINO's artifacts: the ONNX files of ONNX Runtime for FP32 and FP16, NNCF for INT8.

OpenVINO reads .onnx directly, so FP32 and FP16 are the very files the ONNX Runtime rows measure
(the same cache entries): any difference in a row is the runtime's, not the file's. INT8 is
NNCF's post-training quantization of the FP32 .onnx, calibrated on the model's calibration data
in the graph's batch (as the ONNX Runtime INT8 path is), saved as a QDQ .onnx: NNCF places
quantizers where OpenVINO's CPU plugin fuses them, which ONNX Runtime's quantizer does not know.

keep_float= and int8-mixed put the chosen nodes in NNCF's IgnoredScope. int8-mixed's layers come
from the same greedy search as on ONNX Runtime (session/mixed.py), ranked by each layer's SQNR on
NNCF's own QDQ graph (optimize/sensitivity.py), not from nncf.quantize_with_accuracy_control: that
ranks and reverts inside one quantizer call with its own validation loop, outside the agent that
measures every row, the run's time and layer caps and the list stored with the baseline.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np

from pytest_edgeopt._isolate import run_isolated
from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.inspect.facts import ArtifactStats, Quantization
from pytest_edgeopt.inspect.onnx_file import load_onnx, require_onnx
from pytest_edgeopt.models.base import EdgeModel, InputData
from pytest_edgeopt.optimize.calibration import onnx_batches
from pytest_edgeopt.optimize.formats import ArtifactRecord, BuildRequest
from pytest_edgeopt.optimize.onnx_builder import shown_as
from pytest_edgeopt.optimize.quantize import preprocessed
from pytest_edgeopt.optimize.sensitivity import graph_layers, node_sources, resolve_keep_float
from pytest_edgeopt.runtimes.causes import cause_line, own_warning_filters
from pytest_edgeopt.runtimes.openvino import import_openvino

ORT_ONLY = ("int8-u8s8", "int8-s8s8", "int8-dynamic")


class OpenVINOBuilder:
    """INT8 by NNCF; every other precision is the ONNX format's own file."""

    suffix = ".onnx"
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
        calibration = request.model.calibration
        samples, kept = quantize_int8(
            request.source,
            request.dest,
            calibration=calibration,
            batch=request.batch,
            keep_float=request.keep_float,
            shown_as=shown_as(request.model),
        )
        quantization = _quantization(request.dest, samples)
        if request.keep_float:
            quantization = replace(quantization, kept_float=kept, bitwidth=f"INT8 mixed, {len(kept)} layers float")
        return ArtifactRecord(stats=_stats(request.dest), quantization=quantization)


BUILDER = OpenVINOBuilder()


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
) -> Tuple[int, Tuple[str, ...]]:
    """NNCF's defaults (symmetric weights per channel, fast bias correction) on every calibration
    batch, on the file as ONNX Runtime's quantizer reads it (opset 13, pre-processed); returns the
    samples used and the nodes `keep_float` kept float (NNCF's IgnoredScope by node name).
    Calibration runs the user's graph: in a child process under the job's deadline (isolate.py),
    which fails the build naming `shown_as` when the graph does not finish."""
    require_nncf()
    batches = onnx_batches(src, calibration, batch=batch)
    where = shown_as or src.name
    kept = run_isolated(f"NNCF INT8 calibration of {where}", _nncf_int8, src, dest, batches, keep_float, where)
    return len(batches) * batch, kept


def _nncf_int8(
    src: Path, dest: Path, batches: List[Dict[str, np.ndarray]], keep_float: Tuple[str, ...], where: str
) -> Tuple[str, ...]:
    """nncf.quantize and the save of its result (in the child process), `keep_float` resolved on the
    pre-processed graph as on ONNX Runtime; returns the kept names. Its progress bars and log lines
    stay out of pytest's output."""
    nncf = require_nncf()
    kept: Tuple[str, ...] = ()
    with _quiet(), preprocessed(src) as pre:
        if keep_float:
            kept = resolve_keep_float(keep_float, graph_layers(pre, node_sources(src)), where=where)
        scope = nncf.IgnoredScope(names=list(kept)) if kept else None
        try:
            quantized = nncf.quantize(
                load_onnx(pre), nncf.Dataset(batches), subset_size=len(batches), ignored_scope=scope
            )
        except Exception as error:
            raise EdgeOptError(f"NNCF quantization of {src.name} failed: {cause_line(error)}") from None
    require_onnx().save(quantized, str(dest))
    return kept


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


def _quantization(path: Path, samples: int) -> Quantization:
    """The activation types as NNCF chose them (uint8 after a ReLU, int8 where values go negative)."""
    return Quantization(
        weight_type="int8 per-channel",
        activation_type=activation_types(path),
        format="QDQ",
        per_channel=True,
        calibration_samples=samples,
        tool="nncf",
    )


def activation_types(path: Path) -> str:
    """ "uint8", "int8" or "uint8+int8": the zero-point types of the QuantizeLinear nodes (weights
    are stored quantized, behind DequantizeLinear only)."""
    graph = load_onnx(path).graph
    initializers = {t.name: t for t in graph.initializer}
    types = sorted({_zero_point_type(node, initializers) for node in graph.node if node.op_type == "QuantizeLinear"})
    return "+".join(t for t in types if t) or "uint8"


def _zero_point_type(node: Any, initializers: Dict[str, Any]) -> str:
    if len(node.input) < 3 or node.input[2] not in initializers:
        return "uint8"  # ONNX's default zero point type
    onnx = require_onnx()
    return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(initializers[node.input[2]].data_type)).name)


def _stats(path: Path) -> ArtifactStats:
    from pytest_edgeopt.inspect.onnx_stats import artifact_stats

    return artifact_stats(path)
