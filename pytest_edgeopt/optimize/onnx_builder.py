"""The ONNX format's builder: the FP32 .onnx (a torch export or the user's file) and ONNX Runtime's
precisions derived from it (FP16, static INT8 in QDQ, dynamic INT8).

One of the format builders artifacts.py keys and caches without knowing what they do; OpenVINO's
builder reuses this format's FP32 and FP16 files and makes only its INT8 itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.facts import ArtifactStats
from pytest_edgeopt.kinds import ModelKind
from pytest_edgeopt.models.base import EdgeModel, InputData, first_sample_shapes
from pytest_edgeopt.optimize import quantize
from pytest_edgeopt.optimize.formats import ArtifactRecord, BuildRequest
from pytest_edgeopt.optimize.precisions import REFERENCE, is_static_int8

DYNAMIC_CONV_NOTE = (
    "int8-dynamic quantizes Conv as ConvInteger, which runs slower than FP32 on "
    "CPUs (3.2x on ResNet-50 here): use int8 (static) for conv nets"
)
_EXPLICIT_ACTIVATION = {"int8-u8s8": "uint8", "int8-s8s8": "int8"}


class OnnxBuilder:
    """torch.onnx (dynamo) or the user's .onnx for FP32; ONNX Runtime's quantization tools for the rest."""

    name = "ONNX"
    suffix = ".onnx"
    companions: Tuple[str, ...] = ()
    packages: Tuple[str, ...] = ("torch", "onnx", "onnxruntime", "onnxscript", "pytest-edgeopt")
    owns: Tuple[str, ...] = ("fp32", "fp16", "int8", "int8-u8s8", "int8-s8s8", "int8-mixed", "int8-dynamic")

    def check(self, model: EdgeModel, precision: str) -> None:
        if model.kind == ModelKind.TFLITE:
            raise EdgeOptError(f"{model.name} is a .tflite model: measure it with runtime='tflite'")

    def root_parts(self, model: EdgeModel, batch: int) -> Dict[str, object]:
        """A user's ONNX file has its FLOPs counted at the eval shape (dynamic dims): part of its key."""
        return {"flops_at": shapes_json(model.eval_inputs)} if model.kind == ModelKind.ONNX else {}

    def derive_parts(self, model: EdgeModel, precision: str, *, source: Path, arch: str) -> Dict[str, object]:
        parts: Dict[str, object] = {}
        if is_static_int8(precision):
            parts["activation"] = activation_type(precision, arch)
        if precision.startswith("int8") and quantize.needs_opset_upgrade(source):
            parts["opset"] = quantize.PER_CHANNEL_OPSET  # quantized after an upgrade: not the old recipe
        return parts

    def root_what(self, model: EdgeModel, batch: int) -> str:
        return f"exporting {model.name} to ONNX" if model.kind == ModelKind.TORCH else f"copying {model.name} (ONNX)"

    def build(self, request: BuildRequest) -> ArtifactRecord:
        if request.precision == REFERENCE:
            return _root(request.model, request.dest, request.batch)
        if request.source is None:
            raise EdgeOptError(f"{request.precision} is derived from the FP32 .onnx file: no source file was given")
        return _derive(request, request.source)


BUILDER = OnnxBuilder()


def activation_type(precision: str, arch: str) -> str:
    """The activation type of a static INT8 file: asked for, or the one the target CPU runs fastest."""
    return _EXPLICIT_ACTIVATION.get(precision) or quantize.int8_activation_type(arch)


def _root(model: EdgeModel, dest: Path, batch: int) -> ArtifactRecord:
    if model.kind == ModelKind.TORCH:
        from pytest_edgeopt.optimize.export import export_torch

        exported = export_torch(model.torch_module(), model.examples(), batch=batch, dest=dest)
        return ArtifactRecord(
            stats=onnx_stats(dest),
            graph_batch=batch,
            params=exported.params,
            flops=exported.flops,
            converter="torch.onnx (dynamo)",
        )
    graph_batch = _copy_onnx(model.file(), dest)
    stats = onnx_stats(dest, sample=_first_sample(model.eval_inputs), shown_as=model.file().name)
    return ArtifactRecord(stats=stats, graph_batch=graph_batch, converter="user")


def _derive(request: BuildRequest, src: Path) -> ArtifactRecord:
    name, dest, model = request.precision, request.dest, request.model
    notes: Tuple[str, ...] = ()
    if name == "fp16":
        quantization = quantize.to_fp16(src, dest)
    elif name == "int8-dynamic":
        quantization, notes = quantize.to_int8_dynamic(src, dest), _dynamic_notes(src)
    else:
        activation = activation_type(name, request.arch)
        quantization = quantize.to_int8_static(
            src,
            dest,
            calibration=model.calibration,
            batch=request.batch,
            activation=activation,
            keep_float=request.keep_float,
            shown_as=shown_as(model),
        )
    stats = onnx_stats(dest)
    if name.startswith("int8"):
        notes += _not_smaller_note(request.source_weight_bytes, dest, stats)
    return ArtifactRecord(stats=stats, quantization=quantization, notes=notes)


def _copy_onnx(src: Path, dest: Path) -> int:
    """Save a self-contained copy (external data inlined) so storage and hashing see one file;
    returns the graph's fixed batch."""
    from pytest_edgeopt.inspect.onnx_file import fixed_batch, load_onnx, require_onnx

    graph = load_onnx(src)
    require_onnx().save(graph, str(dest))
    return fixed_batch(graph)


def _not_smaller_note(source_bytes: int, dest: Path, stats: ArtifactStats) -> Tuple[str, ...]:
    """An INT8 file no smaller than its FP32 source is not really INT8: say which weights stayed float."""
    from pytest_edgeopt.inspect.onnx_stats import float_weights

    if stats.weight_bytes < source_bytes:
        return ()
    kept = float_weights(dest)
    share = sum(size for _, size in kept) / max(stats.weight_bytes, 1)
    largest = ", ".join(f"{name} ({size / 1e3:.1f} kB)" for name, size in kept[:3]) or "none"
    return (
        f"INT8 weights are not smaller than FP32 ({stats.weight_bytes / 1e3:.1f} vs "
        f"{source_bytes / 1e3:.1f} kB): "
        f"{len(kept)} weight tensors ({share:.0%} of the bytes) stayed float, largest {largest}; the quantizer left "
        "them unquantized (ops it has no INT8 kernel for, or weights it could not see as initializers)",
    )


def _dynamic_notes(src: Path) -> Tuple[str, ...]:
    from pytest_edgeopt.inspect.onnx_file import op_types

    return (DYNAMIC_CONV_NOTE,) if "Conv" in op_types(src) else ()


def _first_sample(inputs: InputData) -> Union[np.ndarray, Dict[str, np.ndarray]]:
    return {k: v[0] for k, v in inputs.items()} if isinstance(inputs, dict) else inputs[0]


def onnx_stats(
    path: Path, *, sample: Optional[Union[np.ndarray, Dict[str, np.ndarray]]] = None, shown_as: str = ""
) -> ArtifactStats:
    from pytest_edgeopt.inspect.onnx_stats import artifact_stats

    return artifact_stats(path, sample=sample, shown_as=shown_as)


def shown_as(model: EdgeModel) -> str:
    """The user's file a message names (a cached artifact's name is its key): the .onnx given,
    or the model's name for a torch module."""
    return model.file().name if model.kind == ModelKind.ONNX else model.name


def shapes_json(data: InputData) -> object:
    """The first sample's shape (per input name for several) as JSON: a cache key part, a record."""
    shapes = first_sample_shapes(data)
    return {k: list(v) for k, v in shapes.items()} if isinstance(shapes, dict) else list(shapes)
