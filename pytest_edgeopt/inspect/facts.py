"""ArtifactStats: the static columns of a row (Params, Size, Storage, GFLOPs), format-neutral."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Mapping, Optional, Tuple, Union

Scalar = Union[int, bool, str]


@dataclass(frozen=True)
class ArtifactStats:
    """An ONNX and a TFLite row of one model describe the same things, so columns compare."""

    params: int  # weight elements, at any precision (scales and zero points excluded)
    weight_bytes: int  # weights at their stored type, plus quantization scales and zero points
    storage_bytes: int  # the file and every external-data file it references
    flops: int  # per inference of the graph as stored (its own batch), multiply-add = 2
    weight_types: Tuple[str, ...]  # sorted distinct element types of the weights
    flops_exact: bool  # False when a counted op had a symbolic or unknown dimension (taken as 1)
    # the weights' bytes by element type (scales and zero points excluded): what was really quantized
    weight_bytes_by_type: Tuple[Tuple[str, int], ...] = ()
    # the counted compute (FLOPs) by the element type its ops run in ("int8" for integer kernels)
    flops_by_type: Tuple[Tuple[str, int], ...] = ()

    @property
    def int8_weight_share(self) -> Optional[float]:
        """The share of the weights' bytes stored as 8-bit integers; None for a file not inventoried
        by type (a record from before the inventory) or without weights."""
        total = sum(size for _, size in self.weight_bytes_by_type)
        if not total:
            return None
        return sum(size for kind, size in self.weight_bytes_by_type if kind in ("int8", "uint8")) / total

    def to_dict(self) -> Dict[str, object]:
        data: Dict[str, object] = asdict(self)
        data["weight_types"] = list(self.weight_types)  # JSON has no tuples
        data["weight_bytes_by_type"] = {kind: size for kind, size in self.weight_bytes_by_type}
        data["flops_by_type"] = {kind: size for kind, size in self.flops_by_type}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "ArtifactStats":
        types = data["weight_types"]
        return cls(
            params=_int(data["params"]),
            weight_bytes=_int(data["weight_bytes"]),
            storage_bytes=_int(data["storage_bytes"]),
            flops=_int(data["flops"]),
            weight_types=tuple(str(t) for t in types) if isinstance(types, (list, tuple)) else (),
            flops_exact=bool(data["flops_exact"]),
            weight_bytes_by_type=_by_type(data.get("weight_bytes_by_type")),
            flops_by_type=_by_type(data.get("flops_by_type")),
        )


def _by_type(data: object) -> Tuple[Tuple[str, int], ...]:
    return tuple(sorted((str(k), _int(v)) for k, v in data.items())) if isinstance(data, Mapping) else ()


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Quantization:
    """How an artifact stores and computes its numbers, as the tool that made it reports: the
    table shows the exact types (S8S8 ran 1.65x slower than U8S8 on AVX2)."""

    weight_type: Optional[str] = None  # "int8 per-channel", "float16", ...
    activation_type: Optional[str] = None  # "uint8", "int8", "uint8 (dynamic, per batch)", "float16"
    format: Optional[str] = None  # "QDQ", "IntegerOps", ai-edge-quantizer's recipe name, ...
    per_channel: Optional[bool] = None
    calibration_samples: Optional[int] = None
    io_type: Optional[str] = None
    bitwidth: Optional[str] = None  # set when a format stores a precision differently (FP16/FP32)
    as_given: bool = False  # a user's file measured as it came, already quantized
    tool: Optional[str] = None  # what produced it
    kept_float: Optional[Tuple[str, ...]] = None  # node names keep_float= / int8-mixed left in float

    def to_dict(self) -> Dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None and v is not False}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "Quantization":
        names = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in names}
        kept = values.get("kept_float")
        if isinstance(kept, (list, tuple)):
            values["kept_float"] = tuple(str(n) for n in kept)
        return cls(**values)  # type: ignore[arg-type]
