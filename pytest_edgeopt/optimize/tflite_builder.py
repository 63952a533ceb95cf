"""The TFLite format's builder: the FP32 .tflite (the user's file, the zoo's shipped conversion or a
litert-torch conversion) and ai-edge-quantizer's FP16, dynamic and static INT8 files derived from it.

One of the format builders artifacts.py keys and caches without knowing what they do.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional, Tuple

from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.inspect.facts import ArtifactStats, Quantization
from pytest_edgeopt.kinds import ModelKind
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.optimize.formats import ArtifactRecord, BuildRequest
from pytest_edgeopt.optimize.precisions import REFERENCE

if TYPE_CHECKING:
    from pytest_edgeopt.optimize.tflite_sensitivity import TfliteOp

ONNX_ONLY_PRECISIONS = ("int8-u8s8", "int8-s8s8")


class TfliteBuilder:
    """LiteRT's files: converted or shipped FP32, quantized by ai-edge-quantizer."""

    name = "TFLite"
    suffix = ".tflite"
    companions: Tuple[str, ...] = ()
    packages: Tuple[str, ...] = ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "pytest-edgeopt")
    owns: Tuple[str, ...] = ("fp32", "fp16", "int8", "int8-mixed", "int8-dynamic")

    def check(self, model: EdgeModel, precision: str) -> None:
        if model.kind == ModelKind.ONNX:
            raise EdgeOptError(
                f"{model.name} is an ONNX model and there is no supported ONNX -> TFLite converter (onnx2tf "
                "pins TensorFlow, numpy and pytest): pass the torch.nn.Module (EdgeModel.from_torch) or a .tflite file"
            )
        if precision in ONNX_ONLY_PRECISIONS:
            raise EdgeOptError(f"{precision} is an ONNX Runtime precision: use int8 with runtime='tflite'")

    def root_parts(self, model: EdgeModel, batch: int) -> Dict[str, object]:
        """The format in the key; a zoo model's shipped conversion keys by that file's hash."""
        parts: Dict[str, object] = {"format": "tflite"}
        if model.kind == ModelKind.TORCH and model.tflite_path is not None and batch == 1:
            parts["shipped"] = model.shipped_tflite_hash()
        return parts

    def derive_parts(self, model: EdgeModel, precision: str, *, source: Path, arch: str) -> Dict[str, object]:
        return {}

    def root_what(self, model: EdgeModel, batch: int) -> str:
        """The progress line of the FP32 file: a conversion takes up to minutes."""
        if model.kind != ModelKind.TORCH:
            return f"copying {model.name} (TFLite)"
        if model.tflite_path is not None and batch == 1:
            return f"copying the shipped TFLite file of {model.name}"
        return f"converting {model.name} to TFLite (litert-torch)"

    def build(self, request: BuildRequest) -> ArtifactRecord:
        if request.precision == REFERENCE:
            return _root(request.model, request.dest, request.batch)
        if request.source is None:
            raise EdgeOptError(f"{request.precision} is derived from the FP32 .tflite file: no source file was given")
        return _derive(request, request.source)


BUILDER = TfliteBuilder()


def _root(model: EdgeModel, dest: Path, batch: int) -> ArtifactRecord:
    """The user's own file, the zoo's shipped conversion, or a litert-torch conversion."""
    shipped = model.tflite_path if model.kind == ModelKind.TFLITE or batch == 1 else None
    if shipped is not None:
        tflite_stats(shipped)  # a broken file is named as the user knows it, not as cached
        steps = _plain_fp32(model, shipped, dest) if model.kind == ModelKind.TFLITE else ()
        if not steps:
            shutil.copyfile(shipped, dest)
        params, flops = _torch_counts(model) if model.kind == ModelKind.TORCH else (None, None)
        quantization, notes = _as_given(dest)
        return ArtifactRecord(
            stats=tflite_stats(dest),
            graph_batch=_tflite_batch(dest),
            params=params,
            flops=flops,
            quantization=quantization,
            notes=steps + notes,
            converter="shipped" if model.kind == ModelKind.TORCH else "user",
        )
    from pytest_edgeopt.optimize.tflite import convert_torch

    converted = convert_torch(model.torch_module(), model.examples(), batch=batch, dest=dest)
    return ArtifactRecord(
        stats=tflite_stats(dest),
        graph_batch=batch,
        params=converted.params,
        flops=converted.flops,
        converter="litert-torch",
    )


def _plain_fp32(model: EdgeModel, shipped: Path, dest: Path) -> Tuple[str, ...]:
    """A vendor's float file (MediaPipe's: float16 weights, no SignatureDef, the old opcode
    schema) rewritten into the exact FP32 file the precisions derive from; each step one note.
    A file already quantized to integers is kept as given. Empty: nothing needed rewriting."""
    from pytest_edgeopt.inspect.tflite_rewrite import plain_fp32
    from pytest_edgeopt.inspect.tflite_stats import stored_bitwidth

    if stored_bitwidth(shipped) not in ("FP32/FP32", "FP16/FP32"):
        return ()
    rewrite = plain_fp32(shipped, dest)
    if not rewrite.steps:
        return ()
    checked = _compare_outputs(shipped, dest) if rewrite.upcast_weights else ""
    return (f"{shipped.name} rewritten: " + "; ".join(rewrite.steps) + checked,)


def _compare_outputs(shipped: Path, rewritten: Path) -> str:
    """The widened file must compute what the shipped one does: both run once on one seeded
    input with TFLite's builtin kernels; a difference fails the build, naming the file. The runs
    are the user's graph: in a child process under the job's deadline (isolate.py)."""
    from pytest_edgeopt._isolate import run_isolated
    from pytest_edgeopt.optimize.tflite import same_outputs

    difference = run_isolated(f"the output check of {shipped.name}", same_outputs, shipped, rewritten)
    if difference is None:
        return " (outputs not compared: the interpreter cannot load the file)"
    if difference > 0:
        raise EdgeOptError(
            f"{shipped.name}: widening its float16 weights changed its outputs (max difference {difference:.3g}); "
            "pass an FP32 file"
        )
    return " (outputs equal to the shipped file's)"


def _derive(request: BuildRequest, src: Path) -> ArtifactRecord:
    """A failed quantization names the user's file and the precision, not the cache entry."""
    model = request.model
    source = model.path.name if model.path is not None else model.name
    kept = _kept_float(request, src, where=f"{source} ({request.precision})")
    try:
        quantization = _quantized(request, src, kept)
    except MissingDependency:
        raise
    except EdgeOptError as error:
        said = str(error).replace(str(src), source).replace(src.name, source)
        raise EdgeOptError(f"{source} ({request.precision}): {said}") from None
    return ArtifactRecord(stats=tflite_stats(request.dest), quantization=quantization)


def _kept_float(request: BuildRequest, src: Path, *, where: str) -> Tuple[TfliteOp, ...]:
    """keep_float='s patterns as the FP32 file's ops (read from the file, nothing run); a pattern
    that matches no op fails naming it."""
    if not request.keep_float:
        return ()
    from pytest_edgeopt.optimize.sensitivity import resolve_keep_float
    from pytest_edgeopt.optimize.tflite_sensitivity import read_ops

    ops = read_ops(src)
    names = set(resolve_keep_float(request.keep_float, [op.layer for op in ops], where=where))
    return tuple(op for op in ops if op.layer.name in names)


def _quantized(request: BuildRequest, src: Path, kept: Tuple[TfliteOp, ...]) -> Quantization:
    from pytest_edgeopt.optimize import tflite

    name, dest = request.precision, request.dest
    if name == "fp16":
        return tflite.to_fp16(src, dest)
    if name == "int8-dynamic":
        return tflite.to_int8_dynamic(src, dest)
    calibration = request.model.calibration
    if not request.keep_float:
        return tflite.to_int8_static(src, dest, calibration=calibration, batch=request.batch)
    from pytest_edgeopt.optimize.tflite_sensitivity import check_kept_float

    scopes = tuple(op.float_scope for op in kept)
    quantization = tflite.to_int8_static(src, dest, calibration=calibration, batch=request.batch, float_scopes=scopes)
    names = tuple(op.layer.name for op in kept)
    check_kept_float(dest, names)
    return replace(quantization, kept_float=names, bitwidth=f"INT8 mixed, {len(names)} layers float")


def _as_given(path: Path) -> Tuple[Quantization, Tuple[str, ...]]:
    """A user's .tflite may already be FP16 or INT8: its row says so instead of FP32/FP32."""
    from pytest_edgeopt.inspect.tflite_stats import stored_bitwidth

    bitwidth = stored_bitwidth(path)
    if bitwidth == "FP32/FP32":
        return Quantization(), ()
    return (
        Quantization(bitwidth=bitwidth, as_given=True),
        (f"measured as given: the file is already quantized ({bitwidth})",),
    )


def _torch_counts(model: EdgeModel) -> Tuple[int, Optional[int]]:
    from pytest_edgeopt.optimize.export import sample_args, torch_flops

    module = model.torch_module()
    _, args = sample_args(model.examples(), 1)
    return int(sum(p.numel() for p in module.parameters())), torch_flops(module, args)


def _tflite_batch(path: Path) -> int:
    from pytest_edgeopt.inspect.tflite_stats import input_batch

    return input_batch(path)


def tflite_stats(path: Path) -> ArtifactStats:
    from pytest_edgeopt.inspect.tflite_stats import artifact_stats

    return artifact_stats(path)
