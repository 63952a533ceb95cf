"""Key and cache the artifact file of a model at a precision: the builders make the files.

The FP32 file of a format is the root of its precisions: int8 and fp16 files are derived from it,
so their cache keys name its hash, the calibration data and the builder's tool versions. Which
builder makes a file is the one decision here: the runtime's own builder for the precisions it
owns (OpenVINO's INT8, ExecuTorch's .pte), else the format's builder (onnx_builder, tflite_builder).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.facts import ArtifactStats, Quantization
from pytest_edgeopt.kinds import DataSplit, Note, NoteKind
from pytest_edgeopt.models.base import EdgeModel, InputData, count_of
from pytest_edgeopt.optimize.cache import ArtifactCache, Info
from pytest_edgeopt.optimize.formats import (
    ArtifactBuilder,
    ArtifactRecord,
    BuildRequest,
    FormatBuilder,
    builder_versions,
    load_builder,
)
from pytest_edgeopt.optimize.onnx_builder import BUILDER as ONNX_BUILDER
from pytest_edgeopt.optimize.onnx_builder import shapes_json
from pytest_edgeopt.optimize.precisions import REFERENCE, Precision, get_precision, is_static_int8
from pytest_edgeopt.optimize.tflite_builder import BUILDER as TFLITE_BUILDER

FORMAT_BUILDERS: Dict[str, FormatBuilder] = {"onnx": ONNX_BUILDER, "tflite": TFLITE_BUILDER}


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
    keep_float: Tuple[str, ...] = (),
) -> Artifact:
    """`builder` is a runtime's own ArtifactBuilder ("module:attribute"): the precisions it owns
    are built by it, the rest by the format's builder. `keep_float` keys the file: another list
    of float layers is another artifact."""
    custom, own = load_builder(builder), FORMAT_BUILDERS.get(fmt)
    if custom is not None:
        custom.check(model, precision.name)
    maker = _maker(custom, own, precision.name, fmt)
    if maker is own:
        maker.check(model, precision.name)
    root = _root_artifact(model, batch=batch, cache=cache, own=own, custom=custom, fmt=fmt, reference=builder)
    if precision.name == REFERENCE:
        return root
    if root.quantization.as_given:
        return _as_given(root, model, precision, keep_float)
    request = BuildRequest(
        model=model,
        precision=precision.name,
        dest=Path(),
        batch=batch,
        source=root.path,
        source_weight_bytes=root.stats.weight_bytes,
        arch=arch,
        keep_float=keep_float,
    )
    parts = _derived_parts(model, precision.name, root=root, batch=batch, arch=arch, fmt=fmt, builder=builder)
    if keep_float:
        parts["keep_float"] = list(keep_float)
    return _derived_artifact(request, parts, root=root, precision=precision, cache=cache, maker=maker, own=own)


# what a file already quantized holds -> the precision that names it (measured as given)
GIVEN_PRECISIONS = {"INT8/INT8": "int8", "INT8/FP32": "int8-dynamic"}


def _as_given(root: Artifact, model: EdgeModel, precision: Precision, keep_float: Tuple[str, ...] = ()) -> Artifact:
    """A user's file already quantized is measured as it came when the precision it holds is
    asked (a full-integer .tflite as int8); another precision cannot be derived from it, nor can
    its layers be put back in float."""
    if keep_float:
        raise EdgeOptError(
            f"{model.name}: the file is already quantized ({root.bitwidth}), so keep_float= cannot keep layers "
            "float in it: pass its FP32 file"
        )
    given = GIVEN_PRECISIONS.get(root.bitwidth, REFERENCE)
    if given != precision.name:
        raise EdgeOptError(
            f"{model.name}: the file is already quantized ({root.bitwidth}): measure it as given with "
            f"precision={given!r}, or pass its FP32 file to derive {precision.name}"
        )
    return replace(root, precision=precision)


def _derived_artifact(
    request: BuildRequest,
    parts: Dict[str, object],
    *,
    root: Artifact,
    precision: Precision,
    cache: ArtifactCache,
    maker: ArtifactBuilder,
    own: Optional[FormatBuilder],
) -> Artifact:
    """A precision derived from the FP32 root by its builder, through the cache."""
    model = request.model
    path, info = cache.get_or_build(
        parts,
        suffix=maker.suffix,
        build=lambda dest: maker.build(replace(request, dest=dest)).to_dict(),
        what=_derive_what(model, precision.name, _format_name(maker, own)),
        companions=maker.companions,
    )
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


def _maker(
    custom: Optional[ArtifactBuilder], own: Optional[FormatBuilder], precision: str, fmt: str
) -> ArtifactBuilder:
    """Who builds this precision: the runtime's own builder when it owns it, else the format's."""
    if custom is not None and precision in custom.owns:
        return custom
    if own is None:
        raise EdgeOptError(
            f"no builder makes {precision} files of the {fmt!r} format; known: {', '.join(FORMAT_BUILDERS)}"
        )
    return own


def _derived_parts(
    model: EdgeModel, name: str, *, root: Artifact, batch: int, arch: str, fmt: str, builder: str
) -> Dict[str, object]:
    """The cache key of a precision derived from the FP32 root: the builder that makes it and its
    packages' versions, the calibration data of a static INT8 file, and what the format adds."""
    own = FORMAT_BUILDERS.get(fmt)
    maker = _maker(load_builder(builder), own, name, fmt)
    parts: Dict[str, object] = {"stage": name, "source": root.key, "batch": batch, **_tools(maker, own, builder)}
    if is_static_int8(name):
        parts.update(calibration=model.data_hash(DataSplit.CALIBRATION))
    if own is not None and maker is own:
        parts.update(own.derive_parts(model, name, source=root.path, arch=arch))
    return parts


def _tools(maker: ArtifactBuilder, own: Optional[FormatBuilder], reference: str) -> Dict[str, object]:
    """A runtime's own builder is named in the key; a format's builder is implied by its tools."""
    tools = {**builder_versions(maker), "recipe": RECIPE}
    return {"tools": tools} if maker is own else {"builder": reference, "tools": tools}


def _format_name(maker: ArtifactBuilder, own: Optional[FormatBuilder]) -> str:
    return own.name if own is not None and maker is own else maker.suffix.lstrip(".")


def suffix_of(fmt: str, builder: str, precision: str) -> str:
    """The file suffix of a precision's artifact: the builder's when it builds that precision."""
    return _maker(load_builder(builder), FORMAT_BUILDERS.get(fmt), precision, fmt).suffix


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
# external data and file integrity in the key and record; 4: weight bytes by type in the record;
# 5: FLOPs by type in the record, NNCF quantizes the pre-processed opset-13 file; 6: a vendor's
# float16-weight .tflite widened to FP32, with a signature and the current opcode schema).
RECIPE = "6"


def _root_artifact(
    model: EdgeModel,
    *,
    batch: int,
    cache: ArtifactCache,
    own: Optional[FormatBuilder],
    custom: Optional[ArtifactBuilder],
    fmt: str,
    reference: str,
) -> Artifact:
    """The FP32 file: made by the runtime's builder when it owns FP32 (ExecuTorch's .pte from the
    torch module), else by the format's builder."""
    maker = _maker(custom, own, REFERENCE, fmt)
    parts: Dict[str, object] = {"stage": "fp32", "model": model.content_hash(), "kind": model.kind.value}
    parts.update(batch=batch, **_tools(maker, own, reference))
    if own is not None and maker is own:
        parts.update(own.root_parts(model, batch))
        what = own.root_what(model, batch)
    else:
        what = f"exporting {model.name} to {maker.suffix}"
    request = BuildRequest(model=model, precision=REFERENCE, dest=Path(), batch=batch)
    path, info = cache.get_or_build(
        parts,
        suffix=maker.suffix,
        build=lambda dest: maker.build(replace(request, dest=dest)).to_dict(),
        what=what,
        companions=maker.companions,
    )
    return _record_artifact(path, info)


def _record_artifact(path: Path, info: Info) -> Artifact:
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


def _derive_what(model: EdgeModel, precision: str, fmt_name: str) -> str:
    verb = (
        "calibrating and quantizing"
        if is_static_int8(precision)
        else "quantizing"
        if precision.startswith("int8")
        else "converting"
    )
    return f"{verb} {model.name} to {precision} ({fmt_name})"


def _calibration_note(model: EdgeModel, precision: Precision) -> Tuple[Note, ...]:
    if is_static_int8(precision.name) and model.calibration_inputs is None:
        return (Note(NoteKind.ARTIFACT, "calibrated on the eval inputs (no calibration_data given)"),)
    return ()


def _artifact_notes(texts: Tuple[str, ...]) -> Tuple[Note, ...]:
    return tuple(Note(NoteKind.ARTIFACT, text) for text in texts)


def _save_inputs(inputs: InputData, dest: Path) -> Info:
    """Several inputs by their names (the agent matches them to the model's), one as `inputs`."""
    arrays = inputs if isinstance(inputs, dict) else {"inputs": inputs}
    with open(dest, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return {"count": count_of(inputs), "shape": shapes_json(inputs)}
