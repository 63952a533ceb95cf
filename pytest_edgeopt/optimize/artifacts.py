"""Build the artifact file for a model at a precision and format, through the content-addressed cache.

The FP32 file of a format (.onnx or .tflite) is the root of its precisions: int8 and fp16 files are
derived from it, so their cache keys name its hash, the calibration data and the tool versions.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.optimize import quantize
from pytest_edgeopt.optimize.cache import ArtifactCache
from pytest_edgeopt.optimize.precisions import REFERENCE, Precision

DYNAMIC_CONV_NOTE = ("int8-dynamic quantizes Conv as ConvInteger, which runs slower than FP32 on "
                     "CPUs (3.2x on ResNet-50 here): use int8 (static) for conv nets")


@dataclass(frozen=True)
class Artifact:
    path: Path
    precision: Precision
    key: str
    quantization: Dict[str, Any]
    stats: Dict[str, Any]  # onnx_stats.ArtifactStats.to_dict()
    params: int
    flops: int
    notes: Tuple[str, ...] = ()

    @property
    def bitwidth(self) -> str:
        """A format may store a precision differently (a FP16 .tflite computes in FP32)."""
        return str(self.quantization.get("bitwidth") or self.precision.bitwidth)


def build_artifact(
    model: EdgeModel, *, precision: Precision, batch: int, arch: str, cache: ArtifactCache, fmt: str = "onnx"
) -> Artifact:
    _check_format(model, precision, fmt)
    root = _fp32_artifact(model, batch=batch, cache=cache, fmt=fmt)
    if precision.name == REFERENCE:
        return root
    if root.quantization.get("as_given"):
        raise EdgeOptError(
            f"{model.name}: the file is already quantized ({root.bitwidth}): measure it as given with "
            f"precision='fp32', or pass its FP32 file to derive {precision.name}")
    parts = {"stage": precision.name, "source": root.key, "batch": batch, "tools": tool_versions(fmt)}
    if precision.name.startswith("int8") and precision.name != "int8-dynamic":
        parts.update(calibration=model.data_hash("calibration"))
        if fmt == "onnx":
            parts.update(activation=_activation(precision.name, arch))
    derive = _derive if fmt == "onnx" else _derive_tflite
    path, info = cache.get_or_build(
        parts, suffix=SUFFIXES[fmt], build=lambda dest: derive(root.path, dest, precision.name, model, parts))
    notes = root.notes + tuple(info.get("notes", ())) + _calibration_note(model, precision)
    return Artifact(path=path, precision=precision, key=path.stem, quantization=info["quantization"],
                    stats=info["stats"], params=root.params, flops=root.flops, notes=notes)


def cached_artifact(key: str, *, precision: Precision, cache: ArtifactCache, fmt: str = "onnx") -> Optional[Artifact]:
    """The artifact a baseline was measured on, if this cache still holds it (to re-measure it now)."""
    found = cache.lookup(key, suffix=SUFFIXES[fmt])
    if found is None:
        return None
    path, info = found
    stats = info["stats"]
    return Artifact(path=path, precision=precision, key=key, quantization=info.get("quantization", {}),
                    stats=stats, params=stats["params"], flops=stats["flops"])


SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite"}
ONNX_ONLY_PRECISIONS = ("int8-u8s8", "int8-s8s8")


def _check_format(model: EdgeModel, precision: Precision, fmt: str) -> None:
    """Refuse the combinations no tool here can build, naming what to do instead."""
    if fmt == "onnx" and model.kind == "tflite":
        raise EdgeOptError(f"{model.name} is a .tflite model: measure it with runtime='tflite'")
    if fmt == "tflite" and model.kind == "onnx":
        raise EdgeOptError(
            f"{model.name} is an ONNX model and there is no supported ONNX -> TFLite converter (onnx2tf "
            "pins TensorFlow, numpy and pytest): pass the torch.nn.Module (EdgeModel.from_torch) or a .tflite file")
    if fmt == "tflite" and precision.name in ONNX_ONLY_PRECISIONS:
        raise EdgeOptError(f"{precision.name} is an ONNX Runtime precision: use int8 with runtime='tflite'")


def eval_inputs_file(model: EdgeModel, cache: ArtifactCache) -> Path:
    """The eval inputs as the `.npz` the agent reads; cached by content like any artifact."""
    path, _ = cache.get_or_build({"stage": "eval-inputs", "data": model.data_hash("eval")},
                                 suffix=".npz", build=lambda dest: _save_inputs(model.eval_inputs, dest))
    return path


# Bumped whenever the way artifacts are built changes without a tool version changing, so a
# cache filled by the old recipe is not reused (2: exporter stack traces stripped).
RECIPE = "2"


TOOLS = {"onnx": ("torch", "onnx", "onnxruntime", "onnxscript", "pytest-edgeopt"),
         "tflite": ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "pytest-edgeopt")}


def tool_versions(fmt: str = "onnx") -> Dict[str, str]:
    versions = {name: _version(name) for name in TOOLS[fmt]}
    return {**versions, "recipe": RECIPE}


def _fp32_artifact(model: EdgeModel, *, batch: int, cache: ArtifactCache, fmt: str) -> Artifact:
    parts = {"stage": "fp32", "model": model.content_hash(), "kind": model.kind, "batch": batch,
             "tools": tool_versions(fmt)}
    if fmt != "onnx":
        parts["format"] = fmt
        if model.kind == "torch" and model.tflite_path is not None and batch == 1:
            parts["shipped"] = model.shipped_tflite_hash()
    root = _root if fmt == "onnx" else _root_tflite
    path, info = cache.get_or_build(parts, suffix=SUFFIXES[fmt], build=lambda dest: root(model, dest, batch))
    stats = info["stats"]
    # counted on the graph at its own batch size; Artifact.flops is per sample
    graph_batch = info.get("graph_batch", batch if model.kind == "torch" else 1)
    flops = (info.get("flops") or stats["flops"]) // max(graph_batch, 1)
    return Artifact(path=path, precision=_fp32(), key=path.stem, quantization=info.get("quantization", {}),
                    stats=stats, params=info.get("params") or stats["params"], flops=flops,
                    notes=tuple(info.get("notes", ())))


def _root(model: EdgeModel, dest: Path, batch: int) -> Dict[str, Any]:
    if model.kind == "torch":
        from pytest_edgeopt.optimize.export import export_torch

        info = {**export_torch(model.module, model.example_input, batch=batch, dest=dest), "graph_batch": batch}
    else:
        info = _copy_onnx(model.path, dest)
    return {**info, "stats": _stats(dest)}


def _root_tflite(model: EdgeModel, dest: Path, batch: int) -> Dict[str, Any]:
    """The user's own file, the zoo's shipped conversion, or a litert-torch conversion."""
    shipped = model.tflite_path if model.kind == "tflite" or batch == 1 else None
    if shipped is not None:
        stats = _tflite_stats(shipped)  # a broken file is named as the user knows it, not as cached
        shutil.copyfile(shipped, dest)
        info = {"graph_batch": _tflite_batch(dest), "converter": "shipped" if model.kind == "torch" else "user"}
        if model.kind == "torch":  # the zoo ships the conversion; torch still counts what it computes
            info.update(_torch_counts(model))
        return {**info, **_as_given(dest), "stats": stats}
    from pytest_edgeopt.optimize.tflite import convert_torch

    info = {**convert_torch(model.module, model.example_input, batch=batch, dest=dest), "graph_batch": batch}
    return {**info, "stats": _tflite_stats(dest)}


def _as_given(path: Path) -> Dict[str, Any]:
    """A user's .tflite may already be FP16 or INT8: its row says so instead of FP32/FP32."""
    from pytest_edgeopt.measure.tflite_stats import stored_bitwidth

    bitwidth = stored_bitwidth(path)
    if bitwidth == "FP32/FP32":
        return {}
    return {"quantization": {"bitwidth": bitwidth, "as_given": True},
            "notes": [f"measured as given: the file is already quantized ({bitwidth})"]}


def _torch_counts(model: EdgeModel) -> Dict[str, Any]:
    from pytest_edgeopt.optimize.export import require_torch, torch_flops

    torch = require_torch()
    sample = torch.from_numpy(np.ascontiguousarray(model.example_input[:1]))
    return {"params": int(sum(p.numel() for p in model.module.parameters())),
            "flops": torch_flops(model.module, sample)}


def _tflite_batch(path: Path) -> int:
    from pytest_edgeopt.measure.tflite_stats import input_batch

    return input_batch(path)


def _derive_tflite(src: Path, dest: Path, name: str, model: EdgeModel, parts: Dict[str, Any]) -> Dict[str, Any]:
    from pytest_edgeopt.optimize import tflite

    if name == "fp16":
        info = {**tflite.to_fp16(src, dest), "bitwidth": "FP16/FP32"}
    elif name == "int8-dynamic":
        info = tflite.to_int8_dynamic(src, dest)
    else:
        info = tflite.to_int8_static(src, dest, calibration=model.calibration, batch=parts["batch"])
    return {"quantization": info, "notes": [], "stats": _tflite_stats(dest)}


def _copy_onnx(src: Path, dest: Path) -> Dict[str, Any]:
    """Save a self-contained copy (external data inlined) so storage and hashing see one file."""
    from pytest_edgeopt.optimize.onnx_io import load_onnx, require_onnx

    graph = load_onnx(src)
    require_onnx().save(graph, str(dest))
    return {"graph_batch": _fixed_batch(graph)}


def _fixed_batch(model: Any) -> int:
    """The first input's fixed batch dimension; 1 when it is symbolic (counted as one sample)."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    dims = inputs[0].type.tensor_type.shape.dim if inputs else []
    return dims[0].dim_value if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else 1


def _derive(src: Path, dest: Path, name: str, model: EdgeModel, parts: Dict[str, Any]) -> Dict[str, Any]:
    if name == "fp16":
        info, notes = quantize.to_fp16(src, dest), []
    elif name == "int8-dynamic":
        info, notes = quantize.to_int8_dynamic(src, dest), _dynamic_notes(src)
    else:
        info = quantize.to_int8_static(src, dest, calibration=model.calibration,
                                       batch=parts["batch"], activation=parts["activation"])
        notes = []
    return {"quantization": info, "notes": notes, "stats": _stats(dest)}


def _activation(name: str, arch: str) -> str:
    explicit = {"int8-u8s8": "uint8", "int8-s8s8": "int8"}
    return explicit.get(name) or quantize.int8_activation_type(arch)


def _dynamic_notes(src: Path) -> list:
    from pytest_edgeopt.optimize.onnx_io import load_onnx

    ops = {node.op_type for node in load_onnx(src, load_external_data=False).graph.node}
    return [DYNAMIC_CONV_NOTE] if "Conv" in ops else []


def _calibration_note(model: EdgeModel, precision: Precision) -> Tuple[str, ...]:
    static = precision.name.startswith("int8") and precision.name != "int8-dynamic"
    if static and model.calibration_inputs is None:
        return ("calibrated on the eval inputs (no calibration_data given)",)
    return ()


def _stats(path: Path) -> Dict[str, Any]:
    from pytest_edgeopt.measure.onnx_stats import artifact_stats

    return artifact_stats(path).to_dict()


def _tflite_stats(path: Path) -> Dict[str, Any]:
    from pytest_edgeopt.measure.tflite_stats import artifact_stats

    return artifact_stats(path).to_dict()


def _save_inputs(inputs: np.ndarray, dest: Path) -> Dict[str, Any]:
    with open(dest, "wb") as handle:
        np.savez(handle, inputs=inputs)
    return {"count": int(len(inputs)), "shape": list(inputs.shape[1:])}


def _fp32() -> Precision:
    from pytest_edgeopt.optimize.precisions import get_precision

    return get_precision(REFERENCE)


@lru_cache(maxsize=None)
def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"
