"""Build the artifact file for a model at a precision and format, through the content-addressed cache.

The FP32 file of a format (.onnx or .tflite) is the root of its precisions: int8 and fp16 files are
derived from it, so their cache keys name its hash, the calibration data and the tool versions.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

import numpy as np

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.facts import ArtifactStats, Quantization
from pytest_edgeopt.kinds import DataSplit, ModelKind, Note, NoteKind
from pytest_edgeopt.models.base import EdgeModel, InputData, count_of, first_sample_shapes
from pytest_edgeopt.optimize import quantize
from pytest_edgeopt.optimize.cache import ArtifactCache, Info
from pytest_edgeopt.optimize.formats import (
    ArtifactBuilder,
    ArtifactRecord,
    BuildRequest,
    builder_versions,
    distribution_version,
    load_builder,
)
from pytest_edgeopt.optimize.precisions import REFERENCE, Precision, get_precision

DYNAMIC_CONV_NOTE = (
    "int8-dynamic quantizes Conv as ConvInteger, which runs slower than FP32 on "
    "CPUs (3.2x on ResNet-50 here): use int8 (static) for conv nets"
)


@dataclass(frozen=True)
class Artifact:
    path: Path
    precision: Precision
    key: str
    quantization: Quantization
    stats: ArtifactStats
    params: int
    flops: Optional[int]  # per sample; None when the graph cannot be counted (shown as n/a)
    notes: Tuple[Note, ...] = ()

    @property
    def bitwidth(self) -> str:
        """A format may store a precision differently (a FP16 .tflite computes in FP32)."""
        return str(self.quantization.bitwidth or self.precision.bitwidth)


def build_artifact(
    model: EdgeModel,
    *,
    precision: Precision,
    batch: int,
    arch: str,
    cache: ArtifactCache,
    fmt: str = "onnx",
    builder: str = "",
) -> Artifact:
    """`builder` is a runtime's own ArtifactBuilder ("module:attribute"): the precisions it owns
    are built by it, the rest by the format's own path."""
    custom = load_builder(builder)
    if custom is not None:
        custom.check(model, precision.name)
    if not _owns(custom, precision.name):
        _check_format(model, precision, fmt)
    if custom is not None and _owns(custom, REFERENCE):
        root = _own_root(custom, builder, model, batch=batch, cache=cache)
    else:
        root = _fp32_artifact(model, batch=batch, cache=cache, fmt=fmt)
    if precision.name == REFERENCE:
        return root
    if root.quantization.as_given:
        raise EdgeOptError(
            f"{model.name}: the file is already quantized ({root.bitwidth}): measure it as given with "
            f"precision='fp32', or pass its FP32 file to derive {precision.name}"
        )
    parts = _derived_parts(model, precision.name, root=root, batch=batch, arch=arch, fmt=fmt, builder=builder)
    path, info = _derived_file(model, precision.name, root=root, parts=parts, cache=cache, fmt=fmt, custom=custom)
    record = ArtifactRecord.from_dict(info)
    notes = root.notes + _artifact_notes(record.notes) + _calibration_note(model, precision)
    return Artifact(
        path=path,
        precision=precision,
        key=path.stem,
        quantization=record.quantization,
        stats=record.stats,
        params=root.params,
        flops=root.flops,
        notes=notes,
    )


def _derived_file(
    model: EdgeModel,
    name: str,
    *,
    root: Artifact,
    parts: Dict[str, object],
    cache: ArtifactCache,
    fmt: str,
    custom: Optional[ArtifactBuilder],
) -> Tuple[Path, Info]:
    """Built by the runtime's own builder when it owns the precision, else by the format's path."""
    if custom is not None and _owns(custom, name):
        request = BuildRequest(model=model, precision=name, dest=Path(), batch=_int(parts["batch"]), source=root.path)
        return cache.get_or_build(
            parts,
            suffix=custom.suffix,
            build=lambda dest: custom.build(replace(request, dest=dest)).to_dict(),
            what=_derive_what(model, name, custom.suffix.lstrip(".")),
        )
    derive = partial(_derive, source_bytes=root.stats.weight_bytes) if fmt == "onnx" else _derive_tflite
    return cache.get_or_build(
        parts,
        suffix=SUFFIXES[fmt],
        build=lambda dest: derive(root.path, dest, name, model, parts).to_dict(),
        what=_derive_what(model, name, fmt),
    )


def _derived_parts(
    model: EdgeModel, name: str, *, root: Artifact, batch: int, arch: str, fmt: str, builder: str
) -> Dict[str, object]:
    """The cache key of a precision derived from the FP32 root: a runtime's own builder and its
    packages' versions when it builds this precision, the format's tools otherwise."""
    custom = load_builder(builder)
    parts: Dict[str, object] = {"stage": name, "source": root.key, "batch": batch}
    if custom is not None and _owns(custom, name):
        parts.update(builder=builder, tools={**builder_versions(custom), "recipe": RECIPE})
    else:
        parts.update(tools=tool_versions(fmt))
    if name.startswith("int8") and name != "int8-dynamic":
        parts.update(calibration=model.data_hash(DataSplit.CALIBRATION))
        if fmt == "onnx" and "builder" not in parts:
            parts.update(activation=_activation(name, arch))
    if fmt == "onnx" and "builder" not in parts and name.startswith("int8") and quantize.needs_opset_upgrade(root.path):
        parts.update(opset=quantize.PER_CHANNEL_OPSET)  # quantized after an upgrade: not the old recipe
    return parts


def _owns(builder: Optional[ArtifactBuilder], precision: str) -> bool:
    return builder is not None and precision in builder.owns


def suffix_of(fmt: str, builder: str, precision: str) -> str:
    """The file suffix of a precision's artifact: the builder's when it builds that precision."""
    custom = load_builder(builder)
    return custom.suffix if custom is not None and _owns(custom, precision) else SUFFIXES[fmt]


def cached_artifact(
    key: str, *, precision: Precision, cache: ArtifactCache, fmt: str = "onnx", builder: str = ""
) -> Optional[Artifact]:
    """The artifact a baseline was measured on, if this cache still holds it (to re-measure it now)."""
    found = cache.lookup(key, suffix=suffix_of(fmt, builder, precision.name))
    if found is None:
        return None
    path, info = found
    record = ArtifactRecord.from_dict(info)
    return Artifact(
        path=path,
        precision=precision,
        key=key,
        quantization=record.quantization,
        stats=record.stats,
        params=record.stats.params,
        flops=record.stats.flops if record.stats.flops_exact else None,
    )


SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite"}
ONNX_ONLY_PRECISIONS = ("int8-u8s8", "int8-s8s8")


def _check_format(model: EdgeModel, precision: Precision, fmt: str) -> None:
    """Refuse the combinations no tool here can build, naming what to do instead."""
    if fmt == "onnx" and model.kind == ModelKind.TFLITE:
        raise EdgeOptError(f"{model.name} is a .tflite model: measure it with runtime='tflite'")
    if fmt == "tflite" and model.kind == ModelKind.ONNX:
        raise EdgeOptError(
            f"{model.name} is an ONNX model and there is no supported ONNX -> TFLite converter (onnx2tf "
            "pins TensorFlow, numpy and pytest): pass the torch.nn.Module (EdgeModel.from_torch) or a .tflite file"
        )
    if fmt == "tflite" and precision.name in ONNX_ONLY_PRECISIONS:
        raise EdgeOptError(f"{precision.name} is an ONNX Runtime precision: use int8 with runtime='tflite'")


def eval_inputs_file(model: EdgeModel, cache: ArtifactCache) -> Path:
    """The eval inputs as the `.npz` the agent reads; cached by content like any artifact."""
    path, _ = cache.get_or_build(
        {"stage": "eval-inputs", "data": model.data_hash(DataSplit.EVAL)},
        suffix=".npz",
        build=lambda dest: _save_inputs(model.eval_inputs, dest),
        what=f"preparing the eval inputs of {model.name}",
    )
    return path


# Bumped whenever the way artifacts are built changes without a tool version changing, so a
# cache filled by the old recipe is not reused (2: exporter stack traces stripped; 3: model code,
# external data and file integrity in the key and record).
RECIPE = "3"


TOOLS = {
    "onnx": ("torch", "onnx", "onnxruntime", "onnxscript", "pytest-edgeopt"),
    "tflite": ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "pytest-edgeopt"),
}


def tool_versions(fmt: str = "onnx") -> Dict[str, str]:
    versions = {name: distribution_version(name) for name in TOOLS[fmt]}
    return {**versions, "recipe": RECIPE}


def _fp32_artifact(model: EdgeModel, *, batch: int, cache: ArtifactCache, fmt: str) -> Artifact:
    parts: Dict[str, object] = {
        "stage": "fp32",
        "model": model.content_hash(),
        "kind": model.kind.value,
        "batch": batch,
        "tools": tool_versions(fmt),
    }
    if model.kind == ModelKind.ONNX and fmt == "onnx":
        parts["flops_at"] = _flops_at(model)  # dynamic dims are counted at this shape
    if fmt != "onnx":
        parts["format"] = fmt
        if model.kind == ModelKind.TORCH and model.tflite_path is not None and batch == 1:
            parts["shipped"] = model.shipped_tflite_hash()
    root = _root if fmt == "onnx" else _root_tflite
    path, info = cache.get_or_build(
        parts,
        suffix=SUFFIXES[fmt],
        build=lambda dest: root(model, dest, batch).to_dict(),
        what=_root_what(model, fmt, batch),
    )
    return _root_artifact(path, info)


def _own_root(
    builder: ArtifactBuilder, reference: str, model: EdgeModel, *, batch: int, cache: ArtifactCache
) -> Artifact:
    """The FP32 file of a builder that makes it itself (ExecuTorch's .pte from the torch module)."""
    parts: Dict[str, object] = {
        "stage": "fp32",
        "model": model.content_hash(),
        "kind": model.kind.value,
        "batch": batch,
        "builder": reference,
        "tools": {**builder_versions(builder), "recipe": RECIPE},
    }
    request = BuildRequest(model=model, precision=REFERENCE, dest=Path(), batch=batch)
    path, info = cache.get_or_build(
        parts,
        suffix=builder.suffix,
        build=lambda dest: builder.build(replace(request, dest=dest)).to_dict(),
        what=f"exporting {model.name} to {builder.suffix}",
    )
    return _root_artifact(path, info)


def _root_artifact(path: Path, info: Info) -> Artifact:
    record = ArtifactRecord.from_dict(info)
    # counted on the graph at its own batch size; Artifact.flops is per sample
    counted = record.flops if record.flops is not None else record.stats.flops if record.stats.flops_exact else None
    flops = counted // max(record.graph_batch, 1) if counted is not None else None
    return Artifact(
        path=path,
        precision=get_precision(REFERENCE),
        key=path.stem,
        quantization=record.quantization,
        stats=record.stats,
        params=record.params or record.stats.params,
        flops=flops,
        notes=_artifact_notes(record.notes),
    )


def _root_what(model: EdgeModel, fmt: str, batch: int) -> str:
    """The progress line of the FP32 file: an export or a conversion takes up to minutes."""
    if model.kind != ModelKind.TORCH:
        return f"copying {model.name} ({FORMATS[fmt]})"
    if fmt == "onnx":
        return f"exporting {model.name} to ONNX"
    if model.tflite_path is not None and batch == 1:
        return f"copying the shipped TFLite file of {model.name}"
    return f"converting {model.name} to TFLite (litert-torch)"


def _derive_what(model: EdgeModel, precision: str, fmt: str) -> str:
    calibrated = precision.startswith("int8") and precision != "int8-dynamic"
    verb = (
        "calibrating and quantizing" if calibrated else "quantizing" if precision.startswith("int8") else "converting"
    )
    return f"{verb} {model.name} to {precision} ({FORMATS.get(fmt, fmt)})"


FORMATS = {"onnx": "ONNX", "tflite": "TFLite"}


def _root(model: EdgeModel, dest: Path, batch: int) -> ArtifactRecord:
    if model.kind == ModelKind.TORCH:
        from pytest_edgeopt.optimize.export import export_torch

        exported = export_torch(model.torch_module(), model.examples(), batch=batch, dest=dest)
        return ArtifactRecord(
            stats=_stats(dest),
            graph_batch=batch,
            params=exported.params,
            flops=exported.flops,
            converter="torch.onnx (dynamo)",
        )
    graph_batch = _copy_onnx(model.file(), dest)
    stats = _stats(dest, sample=_first_sample(model.eval_inputs))
    return ArtifactRecord(stats=stats, graph_batch=graph_batch, converter="user")


def _root_tflite(model: EdgeModel, dest: Path, batch: int) -> ArtifactRecord:
    """The user's own file, the zoo's shipped conversion, or a litert-torch conversion."""
    shipped = model.tflite_path if model.kind == ModelKind.TFLITE or batch == 1 else None
    if shipped is not None:
        stats = _tflite_stats(shipped)  # a broken file is named as the user knows it, not as cached
        shutil.copyfile(shipped, dest)
        params, flops = _torch_counts(model) if model.kind == ModelKind.TORCH else (None, None)
        quantization, notes = _as_given(dest)
        return ArtifactRecord(
            stats=stats,
            graph_batch=_tflite_batch(dest),
            params=params,
            flops=flops,
            quantization=quantization,
            notes=notes,
            converter="shipped" if model.kind == ModelKind.TORCH else "user",
        )
    from pytest_edgeopt.optimize.tflite import convert_torch

    converted = convert_torch(model.torch_module(), model.examples(), batch=batch, dest=dest)
    return ArtifactRecord(
        stats=_tflite_stats(dest),
        graph_batch=batch,
        params=converted.params,
        flops=converted.flops,
        converter="litert-torch",
    )


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


def _torch_counts(model: EdgeModel) -> Tuple[int, int]:
    from pytest_edgeopt.optimize.export import sample_args, torch_flops

    module = model.torch_module()
    _, args = sample_args(model.examples(), 1)
    return int(sum(p.numel() for p in module.parameters())), torch_flops(module, args)


def _tflite_batch(path: Path) -> int:
    from pytest_edgeopt.inspect.tflite_stats import input_batch

    return input_batch(path)


def _derive_tflite(src: Path, dest: Path, name: str, model: EdgeModel, parts: Mapping[str, object]) -> ArtifactRecord:
    from pytest_edgeopt.optimize import tflite

    if name == "fp16":
        quantization = tflite.to_fp16(src, dest)
    elif name == "int8-dynamic":
        quantization = tflite.to_int8_dynamic(src, dest)
    else:
        quantization = tflite.to_int8_static(src, dest, calibration=model.calibration, batch=_int(parts["batch"]))
    return ArtifactRecord(stats=_tflite_stats(dest), quantization=quantization)


def _copy_onnx(src: Path, dest: Path) -> int:
    """Save a self-contained copy (external data inlined) so storage and hashing see one file;
    returns the graph's fixed batch."""
    from pytest_edgeopt.inspect.onnx_file import fixed_batch, load_onnx, require_onnx

    graph = load_onnx(src)
    require_onnx().save(graph, str(dest))
    return fixed_batch(graph)


def _derive(
    src: Path, dest: Path, name: str, model: EdgeModel, parts: Mapping[str, object], *, source_bytes: int
) -> ArtifactRecord:
    notes: Tuple[str, ...] = ()
    if name == "fp16":
        quantization = quantize.to_fp16(src, dest)
    elif name == "int8-dynamic":
        quantization, notes = quantize.to_int8_dynamic(src, dest), _dynamic_notes(src)
    else:
        quantization = quantize.to_int8_static(
            src, dest, calibration=model.calibration, batch=_int(parts["batch"]), activation=str(parts["activation"])
        )
    stats = _stats(dest)
    if name.startswith("int8"):
        notes += _not_smaller_note(source_bytes, dest, stats)
    return ArtifactRecord(stats=stats, quantization=quantization, notes=notes)


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


def _activation(name: str, arch: str) -> str:
    explicit = {"int8-u8s8": "uint8", "int8-s8s8": "int8"}
    return explicit.get(name) or quantize.int8_activation_type(arch)


def _dynamic_notes(src: Path) -> Tuple[str, ...]:
    from pytest_edgeopt.inspect.onnx_file import op_types

    return (DYNAMIC_CONV_NOTE,) if "Conv" in op_types(src) else ()


def _calibration_note(model: EdgeModel, precision: Precision) -> Tuple[Note, ...]:
    static = precision.name.startswith("int8") and precision.name != "int8-dynamic"
    if static and model.calibration_inputs is None:
        return (Note(NoteKind.ARTIFACT, "calibrated on the eval inputs (no calibration_data given)"),)
    return ()


def _artifact_notes(texts: Tuple[str, ...]) -> Tuple[Note, ...]:
    return tuple(Note(NoteKind.ARTIFACT, text) for text in texts)


def _first_sample(inputs: InputData) -> Union[np.ndarray, Dict[str, np.ndarray]]:
    return {k: v[0] for k, v in inputs.items()} if isinstance(inputs, dict) else inputs[0]


def _stats(path: Path, *, sample: Optional[Union[np.ndarray, Dict[str, np.ndarray]]] = None) -> ArtifactStats:
    from pytest_edgeopt.inspect.onnx_stats import artifact_stats

    return artifact_stats(path, sample=sample)


def _flops_at(model: EdgeModel) -> object:
    return _shapes_json(model.eval_inputs)


def _shapes_json(data: InputData) -> object:
    """The first sample's shape (per input name for several) as JSON: a cache key part, a record."""
    shapes = first_sample_shapes(data)
    return {k: list(v) for k, v in shapes.items()} if isinstance(shapes, dict) else list(shapes)


def _tflite_stats(path: Path) -> ArtifactStats:
    from pytest_edgeopt.inspect.tflite_stats import artifact_stats

    return artifact_stats(path)


def _save_inputs(inputs: InputData, dest: Path) -> Info:
    """Several inputs by their names (the agent matches them to the model's), one as `inputs`."""
    arrays = inputs if isinstance(inputs, dict) else {"inputs": inputs}
    with open(dest, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return {"count": count_of(inputs), "shape": _shapes_json(inputs)}


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return value
