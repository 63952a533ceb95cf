"""The artifact a microcontroller loads: the .tflite with every weight inside the flatbuffer.

ai-edge-quantizer writes the weights of large models after the flatbuffer (Buffer.offset/size).
TFLite Micro ignores those fields: it plans the weights as activations (EfficientNet-Lite0 INT8:
a 6.2 MB head instead of 1.5 MB) and computes with uninitialised arena memory, without an
error (top-1 class 0 on every photo). A board's firmware embeds the file as one array, so the
rewritten file is also what would be flashed. Files without external buffers pass unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Tuple

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.tflite_graph import read_graph
from pytest_edgeopt.inspect.tflite_memory import inline_buffers
from pytest_edgeopt.inspect.tflite_stats import artifact_stats
from pytest_edgeopt.kinds import Note, NoteKind
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.optimize.cache import ArtifactCache
from pytest_edgeopt.optimize.formats import ArtifactRecord, BuildRequest

RECIPE = "2"  # bumped when the rewrite changes (2: the record is an ArtifactRecord)


class McuBuilder:
    """The file a board flashes, derived from any precision's .tflite (request.source)."""

    suffix = ".tflite"
    companions: Tuple[str, ...] = ()
    packages: Tuple[str, ...] = ()  # a byte rewrite of our own: RECIPE versions it
    owns: Tuple[str, ...] = ()  # it derives from every precision's file rather than making one

    def check(self, model: EdgeModel, precision: str) -> None:
        """Any .tflite can be inlined; what TFLite Micro cannot run is said by the run itself."""

    def build(self, request: BuildRequest) -> ArtifactRecord:
        if request.source is None:
            raise EdgeOptError("the microcontroller's file is derived from a .tflite file: no source file was given")
        external = read_graph(request.source.read_bytes(), name=request.source.name).external_buffers
        request.dest.write_bytes(inline_buffers(request.source.read_bytes()))
        note = (
            f"{external} buffers stored after the flatbuffer (Buffer.offset) were moved into it: TFLite Micro "
            "ignores the offsets and would have computed with garbage"
        )
        return ArtifactRecord(stats=artifact_stats(request.dest), notes=(note,))


BUILDER = McuBuilder()


def for_mcu(artifact: Artifact, cache: ArtifactCache, model: EdgeModel) -> Artifact:
    """`artifact` as a board would flash it: unchanged unless weights lie after the flatbuffer."""
    if not read_graph(artifact.path.read_bytes(), name=artifact.path.name).external_buffers:
        return artifact
    request = BuildRequest(model=model, precision=artifact.precision.name, dest=Path(), batch=1, source=artifact.path)
    path, info = cache.get_or_build(
        {"stage": "mcu-inline", "source": artifact.key, "recipe": RECIPE},
        suffix=BUILDER.suffix,
        build=lambda dest: BUILDER.build(replace(request, dest=dest)).to_dict(),
        what="moving the weights back into the flatbuffer for the microcontroller",
    )
    record = ArtifactRecord.from_dict(info)
    notes = tuple(Note(NoteKind.ARTIFACT, text) for text in record.notes)
    return replace(artifact, path=path, key=path.stem, stats=record.stats, notes=artifact.notes + notes)
