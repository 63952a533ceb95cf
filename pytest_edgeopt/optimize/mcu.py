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

from pytest_edgeopt.inspect.tflite_graph import read_graph
from pytest_edgeopt.inspect.tflite_memory import inline_buffers
from pytest_edgeopt.inspect.tflite_stats import artifact_stats
from pytest_edgeopt.kinds import Note, NoteKind
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.optimize.cache import ArtifactCache, Info

RECIPE = "1"  # bumped when the rewrite changes


def for_mcu(artifact: Artifact, cache: ArtifactCache) -> Artifact:
    external = read_graph(artifact.path.read_bytes(), name=artifact.path.name).external_buffers
    if not external:
        return artifact
    path, _ = cache.get_or_build(
        {"stage": "mcu-inline", "source": artifact.key, "recipe": RECIPE},
        suffix=".tflite",
        build=lambda dest: _inline(artifact.path, dest),
        what="moving the weights back into the flatbuffer for the microcontroller",
    )
    note = Note(
        NoteKind.ARTIFACT,
        f"{external} buffers stored after the flatbuffer (Buffer.offset) were moved into it: TFLite Micro "
        "ignores the offsets and would have computed with garbage",
    )
    return replace(artifact, path=path, key=path.stem, stats=artifact_stats(path), notes=artifact.notes + (note,))


def _inline(src: Path, dest: Path) -> Info:
    dest.write_bytes(inline_buffers(src.read_bytes()))
    return {"inlined_from": src.name}
