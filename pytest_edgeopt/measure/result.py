"""Measurement results: what the judge compares and the report renders, units in the names.

Dataclasses with from_values / to_dict / from_dict (optimum-benchmark's trackers), so a result
crosses process boundaries (xdist workers, a device over SSH, a baseline file) unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Dict, Generic, Mapping, Optional, Sequence, Tuple, TypeVar, overload

import numpy as np

from pytest_edgeopt.agent.contract import DeviceFacts, OpProfile
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.kinds import Note
from pytest_edgeopt.measure.metric import Fidelity, metric_drop
from pytest_edgeopt.measure.parity import Parity
from pytest_edgeopt.runtimes.base import RuntimeInfo

Checker = Callable[["Measurement", Dict[str, object]], "Measurement"]


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-inference samples in milliseconds (pytest-benchmark's Stats + numpy)."""

    median_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    stddev_ms: float
    iqr_ms: float
    p90_ms: float
    p99_ms: float
    rounds: int

    @classmethod
    def from_values(cls, samples_ms: Sequence[float]) -> "LatencyStats":
        from pytest_benchmark.stats import Stats

        if not samples_ms:
            raise EdgeOptError("no latency samples were taken")
        stats = Stats()
        for value in samples_ms:
            stats.update(float(value))
        p90, p99 = np.percentile(np.asarray(samples_ms, dtype=np.float64), [90, 99])
        return cls(
            median_ms=stats.median,
            mean_ms=stats.mean,
            min_ms=stats.min,
            max_ms=stats.max,
            stddev_ms=stats.stddev,
            iqr_ms=stats.iqr,
            p90_ms=float(p90),
            p99_ms=float(p99),
            rounds=stats.rounds,
        )

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LatencyStats":
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class PairedComparison:
    """This artifact (B) timed against another (A) in one agent process, interleaved: what the
    latency verdict is made of when A is at hand (the baseline's artifact, or another precision)."""

    against: str  # "baseline", or the precision compared with ("fp32")
    artifact_sha: str  # A's cache key
    limit: float  # the largest allowed median ratio B / A the job sampled for
    signal: str  # "cpu" or "wall"
    ratios: Tuple[float, ...]  # B / A per A B B A quad
    looks: int
    stopped: str  # "regressed", "pass" or "cap"
    seconds: float
    other: LatencyStats  # A's per-inference latency in the same process (on the wall clock)
    invalid: Optional[str] = None  # the device throttled during the paired run
    op_profile: Optional[OpProfile] = None  # A's profiled pass (a regressed or --edge-profile job)
    current_op_profile: Optional[OpProfile] = None  # B's, from the same job

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["ratios"], data["other"] = list(self.ratios), self.other.to_dict()
        for name in ("op_profile", "current_op_profile"):
            profile = getattr(self, name)
            data[name] = profile.to_dict() if profile else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PairedComparison":
        values = dict(data)
        values["ratios"], values["other"] = tuple(data["ratios"]), LatencyStats.from_dict(data["other"])
        for name in ("op_profile", "current_op_profile"):
            values[name] = OpProfile.from_dict(data[name]) if data.get(name) else None
        return cls(**values)


T = TypeVar("T")


class _Flat(Generic[T]):
    """`m.top1`: a field of one of the measurement's parts, read by the flat name user tests have
    always written (the parts group 55 fields; the names stay)."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> "_Flat[T]": ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object, owner: type) -> object:
        return self if obj is None else getattr(getattr(obj, self.part), self.name)


@dataclass(frozen=True)
class AccuracyPart:
    """What the eval set says: top-1, agreement and fidelity against the reference, the task metric."""

    eval_count: int
    top1: Optional[float]
    reference_top1: Optional[float]
    agreement: Optional[float]  # None: the scored output has no class axis (a dense map, a score)
    top5_agreement: Optional[float]
    agreement_rule: str = "top-1"  # or "top-1 within 1 output step" for quantized outputs
    fidelity: Dict[str, Fidelity] = field(default_factory=dict)  # every output vs the reference's FP32
    metric_name: Optional[str] = None  # the model's task metric (Metric.name)
    metric: Optional[float] = None  # its value on this artifact's outputs
    reference_metric: Optional[float] = None  # on the reference's FP32 outputs
    metric_higher_is_better: bool = True
    parity: Optional[Parity] = None  # FP32 of another format vs ONNX Runtime, value by value
    scored_output: Optional[str] = None  # the output the test chose with output= (None: the default, the first)


@dataclass(frozen=True)
class TimingPart:
    """Latency: the per-inference samples, their statistics, and the paired and profiled passes."""

    latency: LatencyStats
    cpu_latency: LatencyStats
    load_ms: float
    first_inference_ms: float
    samples_ms: Tuple[float, ...] = field(default=(), repr=False)
    cpu_samples_ms: Tuple[float, ...] = field(default=(), repr=False)
    reference_wall_ms: Tuple[float, ...] = field(default=(), repr=False)
    reference_cpu_ms: Tuple[float, ...] = field(default=(), repr=False)
    paired: Optional[PairedComparison] = field(default=None, repr=False)  # B vs A in one process
    op_profile: Optional[OpProfile] = field(default=None, repr=False)  # the per-op profiled pass, when made


@dataclass(frozen=True)
class QuantizedShare:
    """What a precision really changed, read from the artifact, not from what was asked: the share
    of the weights' bytes stored at the precision's types, and of the counted compute (FLOPs of
    conv, matmul and gemm ops) run at them. None where the file says nothing (no weights, no
    counted op, a format not inventoried) or the precision computes in float by design."""

    target: str  # "int8" (integer types) or "float16"
    weight_share: Optional[float]
    mac_share: Optional[float]
    weight_bytes: Dict[str, int] = field(default_factory=dict)  # by element type
    flops: Dict[str, int] = field(default_factory=dict)  # by the type the op computes in
    why: Tuple[str, ...] = ()  # what the file says kept it in float, when little was quantized

    @property
    def share(self) -> Optional[float]:
        """The smaller known share: a file is as quantized as its least quantized side."""
        known = [s for s in (self.weight_share, self.mac_share) if s is not None]
        return min(known) if known else None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "QuantizedShare":
        return cls(
            target=str(data["target"]),
            weight_share=data.get("weight_share"),
            mac_share=data.get("mac_share"),
            weight_bytes={str(k): int(v) for k, v in (data.get("weight_bytes") or {}).items()},
            flops={str(k): int(v) for k, v in (data.get("flops") or {}).items()},
            why=tuple(str(w) for w in data.get("why") or ()),
        )

    def describe(self) -> str:
        """`0% of the weights' bytes and 0% of the compute in int8`."""
        parts = [f"{share:.0%} of {what}" for share, what in ((self.weight_share, "the weights' bytes"),
                 (self.mac_share, "the compute")) if share is not None]  # fmt: skip
        return f"{' and '.join(parts) or 'nothing counted'} in {self.target}"


@dataclass(frozen=True)
class LayerError:
    """One layer of a quantized graph against float, from real activations of the eval set:
    `source` is the torch module path (or the node name) it came from, `sqnr_db` its output's SQNR
    against the FP32 graph, `loss_db` the SQNR it loses itself against its worst input (the rank).
    `readers`: when the Q/DQ pair on its output (not its own computation) loses the SQNR, the nodes
    reading that pair: they stay float with it, or the pair stays (YOLOv8's class-score Sigmoid
    feeds a Concat whose quantizer shares one scale with boxes in pixels)."""

    name: str
    op_type: str
    source: str
    sqnr_db: float
    loss_db: float = 0.0
    readers: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["readers"] = list(self.readers)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LayerError":
        return cls(
            name=str(data["name"]),
            op_type=str(data["op_type"]),
            source=str(data["source"]),
            sqnr_db=float(data["sqnr_db"]),
            loss_db=float(data.get("loss_db", 0.0)),
            readers=tuple(str(n) for n in data.get("readers", ())),
        )

    @property
    def float_set(self) -> Tuple[str, ...]:
        """The nodes kept float to keep this layer's output float."""
        return (self.name, *self.readers)

    def describe(self) -> str:
        where = "" if self.source == self.name else f" ({self.source})"
        text = f"{self.name}{where} {self.op_type}: {self.sqnr_db:.1f} dB SQNR, loses {self.loss_db:.1f} dB itself"
        return text + (f" (in its output's Q/DQ, read by {', '.join(self.readers)})" if self.readers else "")


@dataclass(frozen=True)
class SizePart:
    params: int
    size_mb: float
    storage_mb: float
    gflops: Optional[float]  # None: the graph could not be counted (a dynamic or data-dependent shape)
    int8_weight_share: Optional[float] = None  # of the weights' bytes, stored as 8-bit integers
    quantized: Optional[QuantizedShare] = None  # None: an FP32 row


@dataclass(frozen=True)
class MemoryPart:
    peak_rss_mb: float


@dataclass(frozen=True)
class EnergyPart:
    energy_w: Optional[float] = None  # average power the inference added over idle
    energy_mj: Optional[float] = None  # energy per inference (per sample at the measured batch)
    energy_source: Optional[str] = None  # the meter: rapl, jetson (...), pi5-pmic, command, estimate


@dataclass(frozen=True)
class McuPart:
    arena_kb: Optional[float] = None  # a microcontroller's tensor arena (KiB): the SRAM the model needs
    flash_kb: Optional[float] = None  # the model plus the inference code (KiB): the flash it needs


@dataclass(frozen=True)
class ReferencePart:
    """What this row is judged against: the FP32 reference of the session (or a teacher's)."""

    reference_model: Optional[str] = None  # reference=: the model this one is judged against (a teacher)
    reference_latency_ms: Optional[float] = None  # the reference's FP32 median latency
    reference_size_mb: Optional[float] = None


# the part each grouped field lives in, by the flat name
_PARTS: Dict[str, type] = {
    "accuracy": AccuracyPart,
    "timing": TimingPart,
    "size": SizePart,
    "memory": MemoryPart,
    "energy": EnergyPart,
    "mcu": McuPart,
    "reference": ReferencePart,
}
_PART_OF: Dict[str, str] = {f.name: part for part, kind in _PARTS.items() for f in fields(kind)}
MEASURED_FIELDS = frozenset(_PART_OF)  # what a part holds; the registry's other ids are computed from them


@dataclass(frozen=True)
class Measurement:
    """One model at one precision on one runtime and platform, measured by the agent: what names
    the case, then its parts (accuracy, timing, size, memory, energy, MCU, reference). Every part's
    field reads flat too (`m.top1`, `m.peak_rss_mb`); build one with `Measurement.from_values`."""

    model: str
    precision: str
    bitwidth: str
    quantization: Dict[str, object]  # the exact types the tool used (Quantization.to_dict())
    runtime: str
    runtime_version: str
    platform: str
    device: str
    compute_unit: str
    batch: int
    threads: int
    artifact_sha: str
    facts: DeviceFacts  # the device that answered
    runtime_info: RuntimeInfo  # the runtime as it described itself after loading
    accuracy: AccuracyPart
    timing: TimingPart
    size: SizePart
    memory: MemoryPart
    energy: EnergyPart = field(default_factory=EnergyPart)
    mcu: McuPart = field(default_factory=McuPart)
    reference: ReferencePart = field(default_factory=ReferencePart)
    foreign_cores: Optional[float] = None
    invalid: Optional[str] = None  # why the device's numbers cannot count (e.g. it throttled)
    estimates: Tuple[str, ...] = ()  # the fields that are estimates, not measurements (e.g. latency_ms)
    notes: Tuple[Note, ...] = ()
    nodeid: str = ""
    sensitivity: Optional[Tuple[LayerError, ...]] = None  # worst first; on a broken budget or --edge-explain
    search_key: str = ""  # int8-mixed: the key of what its search saw, stored with its kept_float list
    _checker: Optional[Checker] = field(default=None, repr=False, compare=False)

    eval_count = _Flat[int]("accuracy")
    top1 = _Flat[Optional[float]]("accuracy")
    reference_top1 = _Flat[Optional[float]]("accuracy")
    agreement = _Flat[Optional[float]]("accuracy")
    top5_agreement = _Flat[Optional[float]]("accuracy")
    agreement_rule = _Flat[str]("accuracy")
    fidelity = _Flat[Dict[str, Fidelity]]("accuracy")
    metric_name = _Flat[Optional[str]]("accuracy")
    metric = _Flat[Optional[float]]("accuracy")
    reference_metric = _Flat[Optional[float]]("accuracy")
    metric_higher_is_better = _Flat[bool]("accuracy")
    parity = _Flat[Optional[Parity]]("accuracy")
    scored_output = _Flat[Optional[str]]("accuracy")
    latency = _Flat[LatencyStats]("timing")
    cpu_latency = _Flat[LatencyStats]("timing")
    load_ms = _Flat[float]("timing")
    first_inference_ms = _Flat[float]("timing")
    samples_ms = _Flat[Tuple[float, ...]]("timing")
    cpu_samples_ms = _Flat[Tuple[float, ...]]("timing")
    reference_wall_ms = _Flat[Tuple[float, ...]]("timing")
    reference_cpu_ms = _Flat[Tuple[float, ...]]("timing")
    paired = _Flat[Optional[PairedComparison]]("timing")
    op_profile = _Flat[Optional[OpProfile]]("timing")
    params = _Flat[int]("size")
    size_mb = _Flat[float]("size")
    storage_mb = _Flat[float]("size")
    gflops = _Flat[Optional[float]]("size")
    int8_weight_share = _Flat[Optional[float]]("size")
    quantized = _Flat[Optional[QuantizedShare]]("size")
    peak_rss_mb = _Flat[float]("memory")
    energy_w = _Flat[Optional[float]]("energy")
    energy_mj = _Flat[Optional[float]]("energy")
    energy_source = _Flat[Optional[str]]("energy")
    arena_kb = _Flat[Optional[float]]("mcu")
    flash_kb = _Flat[Optional[float]]("mcu")
    reference_model = _Flat[Optional[str]]("reference")
    reference_latency_ms = _Flat[Optional[float]]("reference")
    reference_size_mb = _Flat[Optional[float]]("reference")

    @classmethod
    def from_values(cls, **values: Any) -> "Measurement":
        """From flat names (`top1=`, `peak_rss_mb=`), grouped into the parts they belong to."""
        parts: Dict[str, Dict[str, Any]] = {part: {} for part in _PARTS}
        own: Dict[str, Any] = {}
        for name, value in values.items():
            (parts[_PART_OF[name]] if name in _PART_OF else own)[name] = value
        return cls(**own, **{part: _PARTS[part](**given) for part, given in parts.items()})

    def replace(self, **changes: Any) -> "Measurement":
        """`dataclasses.replace` by flat names: a part's field changes inside its part."""
        parts: Dict[str, Dict[str, Any]] = {}
        own: Dict[str, Any] = {}
        for name, value in changes.items():
            (parts.setdefault(_PART_OF[name], {}) if name in _PART_OF else own)[name] = value
        grouped = {part: replace(getattr(self, part), **given) for part, given in parts.items()}
        return replace(self, **own, **grouped)

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", tuple(Note.of(n) for n in self.notes))

    @property
    def fingerprint(self) -> Dict[str, object]:
        """The device and runtime facts as one record, as the agent reports them."""
        return {**self.facts.to_dict(), "runtime": self.runtime_info.to_dict()}

    @property
    def latency_ms(self) -> float:
        """The median wall-clock latency of one inference at the measured batch size."""
        return self.latency.median_ms

    @property
    def throughput(self) -> float:
        """Inferences (samples) per second at the measured batch size."""
        return self.batch * 1000.0 / self.latency.median_ms if self.latency.median_ms else 0.0

    @property
    def latency_mean_ms(self) -> float:
        return self.latency.mean_ms

    @property
    def latency_stddev_ms(self) -> float:
        return self.latency.stddev_ms

    @property
    def cpu_latency_ms(self) -> float:
        """The median process CPU time of one inference (above the wall time: several threads)."""
        return self.cpu_latency.median_ms

    @property
    def gflops_per_s(self) -> Optional[float]:
        if self.gflops is None:
            return None
        return self.gflops * 1000.0 / self.latency.median_ms if self.latency.median_ms else 0.0

    @property
    def accuracy_drop(self) -> float:
        """Top-1 percentage points lost against the FP32 reference measured in this session."""
        if self.top1 is None or self.reference_top1 is None:
            raise EdgeOptError(
                f"accuracy_drop needs labelled eval data and model {self.model!r} has none: "
                "gate on m.agreement (top-1 agreement with FP32) instead"
            )
        return (self.reference_top1 - self.top1) * 100.0

    @property
    def metric_drop(self) -> float:
        """Percent of the reference's metric value lost (positive: worse), so one budget reads
        the same for an IoU of 0.7 and a PSNR of 32 dB."""
        if self.metric is None or self.reference_metric is None:
            raise EdgeOptError(
                f"metric_drop needs a task metric and model {self.model!r} has none: "
                "pass metric=Metric(name, fn) to the EdgeModel"
            )
        return metric_drop(self.metric, self.reference_metric, higher_is_better=self.metric_higher_is_better)

    @property
    def min_sqnr_db(self) -> Optional[float]:
        """The worst output's SQNR against the reference (None before any fidelity was taken)."""
        return min((f.sqnr_db for f in self.fidelity.values()), default=None)

    @property
    def min_cosine(self) -> Optional[float]:
        return min((f.cosine for f in self.fidelity.values()), default=None)

    @property
    def quantized_share(self) -> Optional[float]:
        """The smaller of `m.quantized`'s weight and compute shares (None for an FP32 row)."""
        return self.quantized.share if self.quantized is not None else None

    @property
    def kept_float(self) -> Tuple[str, ...]:
        """The node names keep_float= or int8-mixed left in float (resolved from the patterns)."""
        return tuple(str(n) for n in self.quantization.get("kept_float") or ())  # type: ignore[attr-defined]

    @property
    def float_layers(self) -> Optional[int]:
        """How many layers keep_float= or int8-mixed left float in a static INT8 file (0: none);
        None for a row that is not one. `max_float_layers=` caps what a search may keep."""
        static = self.precision.startswith("int8") and self.precision != "int8-dynamic"  # precisions.is_static_int8
        return len(self.kept_float) if static else None

    @property
    def latency_ratio(self) -> Optional[float]:
        """This median latency over the reference's FP32 one (the teacher's with reference=)."""
        if not self.reference_latency_ms:
            return None
        return self.latency.median_ms / self.reference_latency_ms

    @property
    def size_ratio(self) -> Optional[float]:
        if not self.reference_size_mb:
            return None
        return self.size_mb / self.reference_size_mb

    def check(self, **budgets: object) -> "Measurement":
        """Fail the test unless every budget holds, e.g. `m.check(max_storage_mb=5,
        max_latency_regression="10%")`; an inconclusive latency is re-measured first."""
        if self._checker is None:
            raise EdgeOptError(
                "this measurement was not made by the edge_runner fixture: "
                "use edge_runner.measure(...) to get budget checks"
            )
        return self._checker(self, budgets)

    def note_texts(self) -> Tuple[str, ...]:
        return tuple(note.text for note in self.notes)

    def to_dict(self) -> Dict[str, Any]:
        """JSON for xdist and the report, flat as it always was: the device and runtime facts as one
        `fingerprint`, as the agent reports them, and notes as text with their kinds alongside."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _TYPED and f.name not in _PARTS}
        for part in _PARTS:
            data.update({f.name: getattr(self, f.name) for f in fields(_PARTS[part]) if f.name not in _TYPED})
        data.update(
            latency=self.latency.to_dict(),
            cpu_latency=self.cpu_latency.to_dict(),
            quantization=dict(self.quantization),
            fingerprint=self.fingerprint,
            parity=self.parity.to_dict() if self.parity else None,
            paired=self.paired.to_dict() if self.paired else None,
            op_profile=self.op_profile.to_dict() if self.op_profile else None,
            fidelity={name: f.to_dict() for name, f in self.fidelity.items()},
            quantized=self.quantized.to_dict() if self.quantized else None,
            sensitivity=None if self.sensitivity is None else [e.to_dict() for e in self.sensitivity],
            notes=list(self.note_texts()),
            note_kinds=[n.kind.value for n in self.notes],
        )
        for name in _TUPLES:
            data[name] = list(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Measurement":
        names = {f.name for f in fields(cls)} | set(_PART_OF)
        values = {name: data[name] for name in names if name in data and name not in _TYPED and name not in _PARTS}
        fingerprint = dict(data["fingerprint"])
        values.update(
            latency=LatencyStats.from_dict(data["latency"]),
            cpu_latency=LatencyStats.from_dict(data["cpu_latency"]),
            quantization=dict(data.get("quantization") or {}),
            runtime_info=RuntimeInfo.from_dict(
                fingerprint.pop("runtime", {"name": data["runtime"], "version": data["runtime_version"]})
            ),
            facts=DeviceFacts.from_dict(fingerprint),
            parity=Parity.from_dict(data["parity"]) if data.get("parity") else None,
            paired=PairedComparison.from_dict(data["paired"]) if data.get("paired") else None,
            op_profile=OpProfile.from_dict(data["op_profile"]) if data.get("op_profile") else None,
            fidelity={name: Fidelity.from_dict(f) for name, f in (data.get("fidelity") or {}).items()},
            quantized=QuantizedShare.from_dict(data["quantized"]) if data.get("quantized") else None,
            sensitivity=None
            if data.get("sensitivity") is None
            else tuple(LayerError.from_dict(e) for e in data["sensitivity"]),
            notes=tuple(
                Note.from_dict({"kind": kind, "text": text})
                for text, kind in zip(data.get("notes", ()), data.get("note_kinds", ()))
            ),
        )
        for name in _TUPLES:
            values[name] = tuple(data.get(name, ()))
        return cls.from_values(**values)


_TUPLES = ("samples_ms", "cpu_samples_ms", "reference_wall_ms", "reference_cpu_ms", "estimates")
_TYPED = (
    "_checker",
    "latency",
    "cpu_latency",
    "quantization",
    "facts",
    "runtime_info",
    "parity",
    "notes",
    "paired",
    "op_profile",
    "fidelity",
    "quantized",
    "sensitivity",
) + _TUPLES


def measured_value(m: Measurement, name: str) -> Optional[float]:
    """A registry metric of `m` as a number, None where this row has none (no labels for
    accuracy_drop, no task metric for metric_drop): for reports, which show what exists."""
    try:
        value = getattr(m, name)
    except EdgeOptError:
        return None
    return value if value is None or isinstance(value, int) else float(value)  # a count stays whole


def top1_accuracy(predictions: Sequence[Sequence[int]], labels: Optional[np.ndarray]) -> Optional[float]:
    if labels is None:
        return None
    top1 = np.asarray([p[0] for p in predictions])
    return float(np.mean(top1 == np.asarray(labels)))


def agreement(
    predictions: Sequence[Sequence[int]],
    reference: Sequence[Sequence[int]],
    near_top1: Optional[Sequence[Sequence[int]]] = None,
) -> Tuple[float, float]:
    """(top-1 agreement, share of samples whose reference top-1 is in this top-5). With `near_top1`
    (classes within one output quantization step of the maximum) a tie the quantized model cannot
    break counts as agreement: strict argmax over tied int8 values picks by index, not by model."""
    if near_top1 is not None:
        same = [r[0] in near for near, r in zip(near_top1, reference)]
    else:
        same = [p[0] == r[0] for p, r in zip(predictions, reference)]
    within = [r[0] in p[:5] for p, r in zip(predictions, reference)]
    return float(np.mean(same)), float(np.mean(within))
