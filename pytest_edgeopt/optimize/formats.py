"""What an artifact build looks like: the ArtifactBuilder protocol every file format implements.

Each built-in format ("onnx", "tflite") is a FormatBuilder (optimize/onnx_builder.py,
optimize/tflite_builder.py): it builds the FP32 root from the model and derives the precisions the
format has. A runtime whose artifact those cannot make (ExecuTorch's .pte) or that quantizes with
its own tool (OpenVINO's NNCF INT8) names a builder as "module:attribute" in its RuntimeSpec; the
builder makes the precisions it owns, and every other precision comes from the format's builder,
so an OpenVINO FP32 row measures the very file the ONNX Runtime FP32 row measured. artifacts.py
only keys and caches what the builders make.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import import_module
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Protocol, Tuple

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.facts import ArtifactStats, Quantization
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.optimize.cache import Info
from pytest_edgeopt.runtimes.base import package_version


@dataclass(frozen=True)
class ArtifactRecord:
    """What a builder reports about the file it made; stored as JSON next to it in the cache."""

    stats: ArtifactStats
    quantization: Quantization = field(default_factory=Quantization)
    notes: Tuple[str, ...] = ()
    graph_batch: int = 1  # the batch the graph was built for: FLOPs are counted for it
    params: Optional[int] = None  # a count the exporter made (torch's), preferred over the file's
    flops: Optional[int] = None
    converter: Optional[str] = None

    def to_dict(self) -> Info:
        return {
            "stats": self.stats.to_dict(),
            "quantization": self.quantization.to_dict(),
            "notes": list(self.notes),
            "graph_batch": self.graph_batch,
            "params": self.params,
            "flops": self.flops,
            "converter": self.converter,
        }

    @classmethod
    def from_dict(cls, info: Mapping[str, Any]) -> "ArtifactRecord":
        return cls(
            stats=ArtifactStats.from_dict(info["stats"]),
            quantization=Quantization.from_dict(info.get("quantization") or {}),
            notes=tuple(str(n) for n in info.get("notes") or ()),
            graph_batch=int(info.get("graph_batch") or 1),
            params=info.get("params"),
            flops=info.get("flops"),
            converter=info.get("converter"),
        )


@dataclass(frozen=True)
class BuildRequest:
    """One precision of one model for a builder: `source` is the FP32 file of the format when the
    builder derives from it (OpenVINO's NNCF reads the .onnx), None when it builds from the model."""

    model: EdgeModel
    precision: str
    dest: Path
    batch: int
    source: Optional[Path] = None
    source_weight_bytes: int = 0  # the FP32 root's weights: an INT8 file no smaller says what stayed float
    arch: str = ""  # the target's machine (x86_64, aarch64): ONNX Runtime's INT8 activation type follows it
    keep_float: Tuple[str, ...] = ()  # patterns of layers left in float (names, globs, op types)


class ArtifactBuilder(Protocol):
    """A runtime's own artifact build, named by `RuntimeSpec.builder`."""

    suffix: str  # of the files it writes: ".pte", ".onnx", ".xml"
    companions: Tuple[str, ...]  # suffixes of files written beside it (an OpenVINO IR's ".bin")
    packages: Tuple[str, ...]  # distributions whose versions shape its files: they key the cache
    owns: Tuple[str, ...]  # the precisions it builds itself; the others come from the format's own path

    def check(self, model: EdgeModel, precision: str) -> None:
        """Raise EdgeOptError naming the fix when it cannot build this (an ONNX-only model, a precision)."""

    def build(self, request: BuildRequest) -> ArtifactRecord:
        """Write request.dest and describe it."""


class FormatBuilder(ArtifactBuilder, Protocol):
    """A file format's own builder: it makes the FP32 root from the model and derives its precisions."""

    name: str  # as the progress lines say it: "ONNX", "TFLite"

    def root_parts(self, model: EdgeModel, batch: int) -> Dict[str, object]:
        """What the FP32 root's cache key needs beyond the model, batch and tool versions."""

    def derive_parts(self, model: EdgeModel, precision: str, *, source: Path, arch: str) -> Dict[str, object]:
        """What a derived precision's cache key needs beyond its source, batch, tools and calibration."""

    def root_what(self, model: EdgeModel, batch: int) -> str:
        """The progress line of the FP32 build (an export or a conversion takes up to minutes)."""


@lru_cache(maxsize=None)
def load_builder(reference: str) -> Optional[ArtifactBuilder]:
    """ "module:attribute" -> the builder object; "" -> None (the format's own path)."""
    if not reference:
        return None
    module, _, attribute = reference.partition(":")
    try:
        builder: ArtifactBuilder = getattr(import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        raise EdgeOptError(f"cannot load the artifact builder {reference!r}: {error}") from None
    return builder


def builder_versions(builder: ArtifactBuilder) -> Dict[str, str]:
    """The versions of what the builder uses: a new ExecuTorch or NNCF must not reuse old files."""
    return {name: distribution_version(name) for name in builder.packages}


@lru_cache(maxsize=None)
def distribution_version(distribution: str) -> str:
    """An installed distribution's version, "absent" when it is not installed (part of cache keys)."""
    return package_version(distribution, missing="absent")
