"""Build the artifact file for a model at a precision, through the content-addressed cache.

The FP32 ONNX file is the root of every precision: int8 and fp16 files are derived from it, so
their cache keys name its hash, the calibration data and the versions of the tools that made them.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

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


def build_artifact(
    model: EdgeModel, *, precision: Precision, batch: int, arch: str, cache: ArtifactCache
) -> Artifact:
    root = _fp32_artifact(model, batch=batch, cache=cache)
    if precision.name == REFERENCE:
        return root
    parts = {"stage": precision.name, "source": root.key, "batch": batch, "tools": tool_versions()}
    if precision.name.startswith("int8") and precision.name != "int8-dynamic":
        parts.update(activation=_activation(precision.name, arch), calibration=model.data_hash("calibration"))
    path, info = cache.get_or_build(
        parts, suffix=".onnx", build=lambda dest: _derive(root.path, dest, precision.name, model, parts))
    notes = root.notes + tuple(info.get("notes", ())) + _calibration_note(model, precision)
    return Artifact(path=path, precision=precision, key=path.stem, quantization=info["quantization"],
                    stats=info["stats"], params=root.params, flops=root.flops, notes=notes)


def cached_artifact(key: str, *, precision: Precision, cache: ArtifactCache) -> Optional[Artifact]:
    """The artifact a baseline was measured on, if this cache still holds it (to re-measure it now)."""
    found = cache.lookup(key, suffix=".onnx")
    if found is None:
        return None
    path, info = found
    stats = info["stats"]
    return Artifact(path=path, precision=precision, key=key, quantization=info.get("quantization", {}),
                    stats=stats, params=stats["params"], flops=stats["flops"])


def eval_inputs_file(model: EdgeModel, cache: ArtifactCache) -> Path:
    """The eval inputs as the `.npz` the agent reads; cached by content like any artifact."""
    path, _ = cache.get_or_build({"stage": "eval-inputs", "data": model.data_hash("eval")},
                                 suffix=".npz", build=lambda dest: _save_inputs(model.eval_inputs, dest))
    return path


# Bumped whenever the way artifacts are built changes without a tool version changing, so a
# cache filled by the old recipe is not reused (2: exporter stack traces stripped).
RECIPE = "2"


def tool_versions() -> Dict[str, str]:
    versions = {name: _version(name) for name in ("torch", "onnx", "onnxruntime", "onnxscript", "pytest-edgeopt")}
    return {**versions, "recipe": RECIPE}


def _fp32_artifact(model: EdgeModel, *, batch: int, cache: ArtifactCache) -> Artifact:
    parts = {"stage": "fp32", "model": model.content_hash(), "kind": model.kind, "batch": batch,
             "tools": tool_versions()}
    path, info = cache.get_or_build(parts, suffix=".onnx", build=lambda dest: _root(model, dest, batch))
    stats = info["stats"]
    # counted on the graph at its own batch size; Artifact.flops is per sample
    graph_batch = info.get("graph_batch", batch if model.kind == "torch" else 1)
    flops = (info.get("flops") or stats["flops"]) // max(graph_batch, 1)
    return Artifact(path=path, precision=_fp32(), key=path.stem, quantization={}, stats=stats,
                    params=info.get("params") or stats["params"], flops=flops,
                    notes=tuple(info.get("notes", ())))


def _root(model: EdgeModel, dest: Path, batch: int) -> Dict[str, Any]:
    if model.kind == "torch":
        from pytest_edgeopt.optimize.export import export_torch

        info = {**export_torch(model.module, model.example_input, batch=batch, dest=dest), "graph_batch": batch}
    else:
        info = _copy_onnx(model.path, dest)
    return {**info, "stats": _stats(dest)}


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
