"""The Runtime protocol: what the agent needs from any inference engine, and what it says back.

Stdlib at import time (numpy only for annotations): the agent contract imports these types, and
the agent is pushed to devices that have nothing but Python, numpy and the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib import metadata
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

if TYPE_CHECKING:
    import numpy as np

Shape = Tuple[Optional[int], ...]  # None: a dynamic dimension


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as the file declares it; dtype is numpy's name (`float32`, `int64`)."""

    name: str
    shape: Shape
    dtype: str


@dataclass(frozen=True)
class RuntimeOptions:
    """What the platform profile asks of the runtime beyond threads."""

    providers: Tuple[str, ...] = ()  # ONNX Runtime execution providers, in preference order
    device: Optional[str] = None  # e.g. OpenVINO's CPU / GPU / NPU
    arena_bytes: Optional[int] = None  # a microcontroller runtime's first arena: the host's estimate
    # layers kept float in a QDQ file: ONNX Runtime (1.20+) must not re-quantize their float weights
    # at load (its WeightBiasQuantization pass did, and a kept layer lost 70 pp of top-1 again)
    keep_float_weights: bool = False

    def to_dict(self) -> Dict[str, object]:
        data: Dict[str, object] = {"providers": list(self.providers), "device": self.device}
        if self.arena_bytes is not None:
            data["arena_bytes"] = self.arena_bytes
        if self.keep_float_weights:
            data["keep_float_weights"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RuntimeOptions":
        providers = data.get("providers") or ()
        device = data.get("device")
        arena = data.get("arena_bytes")
        if arena is not None and (isinstance(arena, bool) or not isinstance(arena, int) or arena <= 0):
            raise ValueError(f"options.arena_bytes must be a whole number of bytes > 0, got {arena!r}")
        return cls(
            providers=tuple(str(p) for p in providers),
            device=None if device is None else str(device),
            arena_bytes=arena,
            keep_float_weights=bool(data.get("keep_float_weights", False)),
        )


@dataclass(frozen=True)
class ArenaUse:
    """A microcontroller runtime's tensor arena as it allocated it (TFLM's RecordingMicroAllocator):
    what the board's SRAM must hold for the model, in bytes."""

    total: int  # head + tail: the smallest arena that holds the model after allocation
    head: int  # planned activations (and kernel scratch buffers)
    tail: int  # persistent structs, kernel data, per-channel requantization arrays
    arena_size: int  # the arena the interpreter was given

    def to_dict(self) -> Dict[str, int]:
        return {"total": self.total, "head": self.head, "tail": self.tail, "arena_size": self.arena_size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ArenaUse":
        """Whole numbers >= 0 with head + tail = total; a ValueError names the key otherwise."""
        values = {}
        for key in ("total", "head", "tail", "arena_size"):
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"arena.{key} must be a whole number of bytes >= 0, got {value!r}")
            values[key] = value
        if values["head"] + values["tail"] != values["total"]:
            raise ValueError(f"arena.total {values['total']} is not head {values['head']} + tail {values['tail']}")
        return cls(**values)


@dataclass(frozen=True)
class RuntimeInfo:
    """What the runtime says about itself after loading: it goes into the device fingerprint and
    decides the Runtime and Compute cells (e.g. whether XNNPACK or a GPU provider took the graph)."""

    name: str
    version: str
    providers: Optional[Tuple[str, ...]] = None  # ONNX Runtime: the providers actually used
    xnnpack: Optional[bool] = None  # LiteRT: whether the delegate took (part of) the graph
    reference_kernels: Optional[bool] = None  # LiteRT: builtin reference kernels asked for
    io: Optional[str] = None  # e.g. "int8 in, int8 out"
    output_step: Optional[float] = None  # the output quantization step of an integer output
    warning: Optional[str] = None  # a caveat the row must carry (a legacy runtime)
    device: Optional[str] = None  # the device that ran it, as the runtime reports it
    extra: Dict[str, str] = field(default_factory=dict)  # a plugin runtime's own facts
    arena: Optional[ArenaUse] = None  # a microcontroller runtime's tensor arena (TFLM)

    def to_dict(self) -> Dict[str, object]:
        """None fields are left out, so each runtime's record holds only what it knows."""
        data: Dict[str, object] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None or (item.name == "extra" and not value):
                continue
            data[item.name] = list(value) if isinstance(value, tuple) else value
        if self.arena is not None:
            data["arena"] = self.arena.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RuntimeInfo":
        known = {item.name for item in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("providers") is not None:
            values["providers"] = tuple(str(p) for p in values["providers"])
        values["extra"] = {str(k): str(v) for k, v in dict(values.get("extra") or {}).items()}
        if values.get("arena") is not None:
            arena = values["arena"]
            if not isinstance(arena, Mapping):
                raise ValueError(f"arena must be an object, got {arena!r}")
            values["arena"] = ArenaUse.from_dict(arena)
        return cls(**values)


class Runtime(Protocol):
    """Load one artifact, run named inputs through it, describe itself.

    `run` takes one array per input (batch-first) and returns the outputs in `outputs()` order.
    Implementations raise ArtifactError from `load` and InputError from `run`; anything else is
    reported as an internal error of the agent.
    """

    name: str

    def load(self, artifact: str, *, threads: int, options: RuntimeOptions) -> None: ...

    def inputs(self) -> Sequence[TensorSpec]: ...

    def outputs(self) -> Sequence[TensorSpec]: ...

    def run(self, feeds: Mapping[str, "np.ndarray"]) -> List["np.ndarray"]: ...

    def info(self) -> RuntimeInfo: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class NodeKernel:
    """One node's kernel time summed over a profiled pass, as a runtime's profiler reports it."""

    name: str
    op_type: str
    provider: str  # the execution provider or delegate that ran it
    total_us: float


class Profiler(Protocol):
    """What a runtime that can profile per op adds to Runtime: a pass on a separate, profiling
    session of the loaded artifact (never the timed one). Raises ProfilerUnavailable, saying why."""

    def profile_nodes(self, feeds: Sequence[Mapping[str, "np.ndarray"]], *, runs: int) -> Sequence[NodeKernel]: ...


class ProfilerUnavailable(Exception):
    """This runtime, here, cannot give a per-op profile (e.g. the library lacks the symbols)."""


class ArtifactError(Exception):
    """The artifact cannot be loaded: corrupt, not a model, or an op the runtime lacks."""


class InputError(Exception):
    """The inputs do not fit the model (shape or type)."""


def package_version(distribution: str, *, missing: str = "unknown") -> str:
    """An installed distribution's version, `missing` when it is not installed. The one lookup
    for the runtimes' RuntimeInfo (where the agent runs) and the artifact cache's keys (host)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return missing
