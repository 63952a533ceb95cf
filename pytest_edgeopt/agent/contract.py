"""The agent's contract: one Job in, one Result out, as typed dataclasses with a version.

Stdlib only (and Python 3.9), because this file travels to devices inside the agent bundle and
the host parses what a device sends back with it. Parsing validates: a device that answers with
a missing field, a wrong type or a negative time is one line naming the field (ContractError),
never a KeyError three modules later.

Within a version, fields are only ever added as optional ones that both sides read as absent when
the other side predates them, so the version stays: `result.runtime.arena` (a microcontroller
runtime's tensor arena, validated as whole bytes with head + tail = total) joined version 2 with
the MCU platform, `job.profile` / `result.profile` / `result.paired.profile` (the per-op profiled
pass) joined it later, and so did `job.output` / `job.outputs_file` / `job.max_outputs_mb` and
`evaluation.outputs` / `.scored` / `.outputs_file` (models with several outputs, dense outputs and
host-side metrics). Removing or retyping a field bumps CONTRACT_VERSION.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type, TypeVar, Union

from pytest_edgeopt.agent.power import PowerMeterError, PowerReading
from pytest_edgeopt.runtimes.base import RuntimeInfo, RuntimeOptions
from pytest_edgeopt.runtimes.install import install_hint

CONTRACT_VERSION = 2
DEFAULT_MAX_OUTPUTS_MB = 512.0  # the eval set's outputs a job may bring back (edgeopt_max_outputs_mb)
JsonObject = Dict[str, object]
_E = TypeVar("_E", bound=Enum)


class FailureKind(str, Enum):
    """Why a job produced no measurement; the host maps each to fail, skip or a re-run."""

    BAD_JOB = "bad-job"  # the job itself is malformed or names an unknown runtime
    BAD_ARTIFACT = "bad-artifact"  # the runtime cannot load the file
    BAD_INPUT = "bad-input"  # the eval inputs do not fit the model
    BAD_OUTPUT = "bad-output"  # NaN or inf outputs
    MISSING_RUNTIME = "missing-runtime"  # the runtime's package is not installed where the agent runs
    MISSING_PACKAGE = "missing-package"  # numpy (the agent's own dependency) is not installed
    MISSING_PYTHON = "missing-python"  # the device has no such interpreter
    POWER = "power"  # the power meter is misconfigured or broke
    INTERNAL = "internal"  # a bug in the agent: the message carries the exception
    TIMEOUT = "timeout"  # the job outlived its deadline
    AGENT_DIED = "agent-died"  # the agent exited without answering (a crash, a kill)
    UNREACHABLE = "unreachable"  # the device could not be reached, or the link broke
    PUSH = "push"  # copying the job's files to the device failed
    STALE_FILE = "stale-file"  # a copy on the device does not match the hash the host sent: push it again
    MALFORMED = "malformed"  # the agent answered, but not in this contract

    def __str__(self) -> str:
        return self.value


class TimingSignal(str, Enum):
    """The clock a paired job compares on: process CPU time (one thread: other work on the cores
    leaves it nearly alone) or wall time."""

    CPU = "cpu"
    WALL = "wall"

    def __str__(self) -> str:
        return str(self.value)


class PairStop(str, Enum):
    """What ended a paired job's sampling: a look decided (REGRESSED, PASS), or time ran out (CAP)."""

    REGRESSED = "regressed"
    PASS = "pass"
    CAP = "cap"

    def __str__(self) -> str:
        return str(self.value)


class ContractError(ValueError):
    """A job or result that does not follow this contract; the message names the field."""


@dataclass(frozen=True)
class SamplingPlan:
    warmup_runs: int = 5
    warmup_s: float = 0.2
    min_runs: int = 30
    min_s: float = 1.0
    max_s: float = 10.0

    def to_dict(self) -> Dict[str, float]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "SamplingPlan":
        """Unknown keys are ignored; a value of the wrong type is a ValueError naming it."""
        values: Dict[str, Any] = {}
        for name, item in cls.__dataclass_fields__.items():
            if name in data:
                values[name] = _plan_number(name, data[name], int if item.type in ("int", int) else float)
        return cls(**values)


def _plan_number(name: str, value: object, kind: Type[Union[int, float]]) -> Union[int, float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"plan.{name} must be a number >= 0, got {value!r}")
    return kind(value)


@dataclass(frozen=True)
class RuntimeRef:
    """The runtime a job runs on, with what the agent needs to import it and to say what is missing."""

    name: str
    module: str
    cls: str
    package: str = ""
    extra: str = ""

    def install_hint(self) -> str:
        return install_hint(self.package or self.module, self.extra)


@dataclass(frozen=True)
class Pairing:
    """Time the job's artifact (B) against another one (A) in the same process, interleaved:
    the baseline's own artifact, or another precision of the same model."""

    artifact: str  # A, where the agent runs
    limit: float  # the largest allowed median ratio B / A (1.10 for "10%")
    signal: TimingSignal = TimingSignal.CPU
    block: int = 2  # inferences per block; a quad is A B B A blocks
    max_s: float = 10.0  # sampling stops here even when no look decided
    confidence: float = 0.99
    artifact_sha256: Optional[str] = None

    def to_dict(self) -> JsonObject:
        return {
            "artifact": self.artifact,
            "limit": self.limit,
            "signal": self.signal,
            "block": self.block,
            "max_s": self.max_s,
            "confidence": self.confidence,
            "artifact_sha256": self.artifact_sha256,
        }

    @classmethod
    def from_dict(cls, data: object) -> "Pairing":
        read = _Reader(data, "job.pairing")
        signal = read.choice("signal", TimingSignal)
        confidence = read.number("confidence", minimum=0.5)
        if confidence >= 1.0:
            raise ContractError(f"job.pairing.confidence must be below 1, got {confidence!r}")
        return cls(
            artifact=read.text("artifact"),
            limit=read.number("limit", minimum=0.0),
            signal=signal,
            block=read.integer("block", minimum=1),
            max_s=read.number("max_s", minimum=0.0),
            confidence=confidence,
            artifact_sha256=read.optional_text("artifact_sha256"),
        )


class ProfileWhen(str, Enum):
    """When the agent makes its profiled pass (never inside the timed samples: profiling cost ONNX
    Runtime +22% on a QDQ MobileNetV2)."""

    REGRESSED = "regressed"  # after a paired job whose sampling stopped on "regressed": both sides
    ALWAYS = "always"  # --edge-profile: every timed job (both sides when paired)


@dataclass(frozen=True)
class ProfileRequest:
    when: ProfileWhen = ProfileWhen.REGRESSED
    runs: int = 10  # profiled inferences after one unprofiled warm-up

    def to_dict(self) -> JsonObject:
        return {"when": self.when.value, "runs": self.runs}

    @classmethod
    def from_dict(cls, data: object) -> "ProfileRequest":
        read = _Reader(data, "job.profile")
        return cls(when=read.choice("when", ProfileWhen), runs=read.integer("runs", minimum=1))


@dataclass(frozen=True)
class OpTime:
    """One op type in a profile: its kernel time per inference summed over its nodes."""

    op_type: str
    ms: float
    nodes: int


@dataclass(frozen=True)
class NodeTime:
    """One node: its kernel time per inference and the execution provider (or delegate) that ran it."""

    name: str
    op_type: str
    provider: str
    ms: float


@dataclass(frozen=True)
class OpProfile:
    """A profiled pass of one artifact, by op type and by node, slowest first; or why there is none."""

    runs: int = 0
    ops: Tuple[OpTime, ...] = ()
    nodes: Tuple[NodeTime, ...] = ()
    source: str = ""  # "onnxruntime profiling JSON"
    skipped: Optional[str] = None  # the runtime cannot profile here, and why

    @property
    def total_ms(self) -> float:
        return sum(op.ms for op in self.ops)

    def to_dict(self) -> JsonObject:
        return {
            "runs": self.runs,
            "ops": [{"op_type": o.op_type, "ms": o.ms, "nodes": o.nodes} for o in self.ops],
            "nodes": [{"name": n.name, "op_type": n.op_type, "provider": n.provider, "ms": n.ms} for n in self.nodes],
            "source": self.source,
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: object, *, path: str = "profile") -> "OpProfile":
        read = _Reader(data, path)
        ops = [_Reader(o, f"{path}.ops[]") for o in read.objects("ops")]
        nodes = [_Reader(n, f"{path}.nodes[]") for n in read.objects("nodes")]
        return cls(
            runs=read.integer("runs", minimum=0),
            ops=tuple(
                OpTime(op_type=o.text("op_type"), ms=o.number("ms", minimum=0.0), nodes=o.integer("nodes", minimum=0))
                for o in ops
            ),
            nodes=tuple(
                NodeTime(
                    name=n.text("name"),
                    op_type=n.text("op_type"),
                    provider=n.text("provider"),
                    ms=n.number("ms", minimum=0.0),
                )
                for n in nodes
            ),
            source=read.text("source", default=""),
            skipped=read.optional_text("skipped"),
        )


@dataclass(frozen=True)
class Job:
    artifact: str  # path of the model file where the agent runs
    inputs: str  # path of the `.npz` of eval inputs
    runtime: RuntimeRef
    batch: int = 1
    threads: int = 1
    options: RuntimeOptions = field(default_factory=RuntimeOptions)
    plan: SamplingPlan = field(default_factory=SamplingPlan)
    topk: int = 5
    power: Optional[JsonObject] = None  # the power meter's spec, as the platform profile gives it
    evaluate_only: bool = False  # outputs only: no warm-up, no latency loop (parity twins)
    keep_outputs: bool = False  # send back the first outputs value by value (parity)
    reference_workload: bool = True  # time the fixed matmul between inferences (machine speed)
    deadline_s: Optional[float] = None  # the agent ends itself after this long
    artifact_sha256: Optional[str] = None  # set by a transport that copies files: checked before use
    inputs_sha256: Optional[str] = None
    pairing: Optional[Pairing] = None  # time against another artifact, interleaved, in this process
    profile: Optional[ProfileRequest] = None  # a per-op profiled pass after the timed samples
    output: Optional[str] = None  # the scored output: a name, or an index as text; None: the first
    outputs_file: Optional[str] = None  # write every output of the eval set here (compressed .npz)
    max_outputs_mb: float = DEFAULT_MAX_OUTPUTS_MB  # the outputs file's uncompressed size past which the job fails
    version: int = CONTRACT_VERSION

    def to_dict(self) -> JsonObject:
        return {
            "version": self.version,
            "artifact": self.artifact,
            "inputs": self.inputs,
            "runtime": {
                "name": self.runtime.name,
                "module": self.runtime.module,
                "cls": self.runtime.cls,
                "package": self.runtime.package,
                "extra": self.runtime.extra,
            },
            "batch": self.batch,
            "threads": self.threads,
            "options": self.options.to_dict(),
            "plan": self.plan.to_dict(),
            "topk": self.topk,
            "power": self.power,
            "evaluate_only": self.evaluate_only,
            "keep_outputs": self.keep_outputs,
            "reference_workload": self.reference_workload,
            "deadline_s": self.deadline_s,
            "artifact_sha256": self.artifact_sha256,
            "inputs_sha256": self.inputs_sha256,
            "pairing": self.pairing.to_dict() if self.pairing is not None else None,
            "profile": self.profile.to_dict() if self.profile is not None else None,
            "output": self.output,
            "outputs_file": self.outputs_file,
            "max_outputs_mb": self.max_outputs_mb,
        }

    @classmethod
    def from_dict(cls, data: object) -> "Job":
        read = _Reader(data, "job")
        version = read.integer("version", minimum=1)
        if version != CONTRACT_VERSION:
            raise ContractError(f"job version {version} is not this agent's {CONTRACT_VERSION}: push the agent again")
        runtime = read.child("runtime")
        power = read.optional_object("power")
        return cls(
            artifact=read.text("artifact"),
            inputs=read.text("inputs"),
            runtime=RuntimeRef(
                name=runtime.text("name"),
                module=runtime.text("module"),
                cls=runtime.text("cls"),
                package=runtime.text("package", default=""),
                extra=runtime.text("extra", default=""),
            ),
            batch=read.integer("batch", minimum=1),
            threads=read.integer("threads", minimum=1),
            options=RuntimeOptions.from_dict(read.optional_object("options") or {}),
            plan=SamplingPlan.from_dict(read.optional_object("plan") or {}),
            topk=read.integer("topk", minimum=1),
            power=power,
            evaluate_only=read.flag("evaluate_only"),
            keep_outputs=read.flag("keep_outputs"),
            reference_workload=read.flag("reference_workload", default=True),
            deadline_s=read.optional_number("deadline_s"),
            artifact_sha256=read.optional_text("artifact_sha256"),
            inputs_sha256=read.optional_text("inputs_sha256"),
            pairing=Pairing.from_dict(pairing) if (pairing := read.optional_object("pairing")) is not None else None,
            profile=ProfileRequest.from_dict(profile) if (profile := read.optional_object("profile")) else None,
            output=read.optional_text("output"),
            outputs_file=read.optional_text("outputs_file"),
            max_outputs_mb=read.optional_number("max_outputs_mb") or DEFAULT_MAX_OUTPUTS_MB,
        )


@dataclass(frozen=True)
class DeviceFacts:
    """What the agent reports about the machine it ran on; the host judges it against profiles."""

    arch: str
    cpu_model: str
    cpu_count: Optional[int] = None
    cpu_flags: Tuple[str, ...] = ()
    device_model: Optional[str] = None
    os: str = ""
    hostname: str = ""
    python: str = ""
    numpy: str = ""
    loadavg_1m: Optional[float] = None
    os_bits: Optional[int] = None
    governor: Optional[str] = None
    soc_temp_c: Optional[float] = None

    def to_dict(self) -> JsonObject:
        return {
            "arch": self.arch,
            "cpu_model": self.cpu_model,
            "cpu_count": self.cpu_count,
            "cpu_flags": list(self.cpu_flags),
            "device_model": self.device_model,
            "os": self.os,
            "hostname": self.hostname,
            "python": self.python,
            "numpy": self.numpy,
            "loadavg_1m": self.loadavg_1m,
            "os_bits": self.os_bits,
            "governor": self.governor,
            "soc_temp_c": self.soc_temp_c,
        }

    @classmethod
    def from_dict(cls, data: object, *, path: str = "fingerprint") -> "DeviceFacts":
        read = _Reader(data, path)
        return cls(
            arch=read.text("arch"),
            cpu_model=read.text("cpu_model"),
            cpu_count=read.optional_integer("cpu_count"),
            cpu_flags=tuple(read.texts("cpu_flags")),
            device_model=read.optional_text("device_model"),
            os=read.text("os", default=""),
            hostname=read.text("hostname", default=""),
            python=read.text("python", default=""),
            numpy=read.text("numpy", default=""),
            loadavg_1m=read.optional_number("loadavg_1m"),
            os_bits=read.optional_integer("os_bits"),
            governor=read.optional_text("governor"),
            soc_temp_c=read.optional_number("soc_temp_c"),
        )


@dataclass(frozen=True)
class OutputInfo:
    """One model output as the eval set produced it: per-sample shape and dtype."""

    name: str
    shape: Tuple[int, ...]  # of one sample
    dtype: str

    def to_dict(self) -> JsonObject:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: object, *, path: str) -> "OutputInfo":
        read = _Reader(data, path)
        return cls(name=read.text("name"), shape=tuple(read.integers("shape")), dtype=read.text("dtype"))


@dataclass(frozen=True)
class Evaluation:
    """Every eval input run once: the predictions the host scores (labels never leave the host)."""

    top_k: Tuple[Tuple[int, ...], ...]  # per eval input, class indices best first
    eval_count: int
    output_shape: Tuple[int, ...]  # of one sample
    outputs_head: Optional[Tuple[Tuple[float, ...], ...]] = None  # the first outputs (parity jobs)
    near_top1: Optional[Tuple[Tuple[int, ...], ...]] = None  # classes within one output step of the top
    outputs: Tuple[OutputInfo, ...] = ()  # every output, in the model's order
    scored: Optional[str] = None  # the output top_k was taken from
    outputs_file: Optional[str] = None  # where every output of the eval set was written (the host's path)
    outputs_mb: float = 0.0  # its uncompressed size

    def to_dict(self) -> JsonObject:
        return {
            "top_k": [list(row) for row in self.top_k],
            "eval_count": self.eval_count,
            "output_shape": list(self.output_shape),
            "outputs_head": None if self.outputs_head is None else [list(r) for r in self.outputs_head],
            "near_top1": None if self.near_top1 is None else [list(r) for r in self.near_top1],
            "outputs": [o.to_dict() for o in self.outputs],
            "scored": self.scored,
            "outputs_file": self.outputs_file,
            "outputs_mb": self.outputs_mb,
        }

    @property
    def classes(self) -> Optional[int]:
        """The size of the scored output's class axis: its one dim above 1 (logits `[N, C]`,
        `[N, 1, 1, C]`); None for a dense map, a scalar score or a sequence, where argmax
        agreement means nothing."""
        dims = [d for d in self.output_shape if d != 1]
        return dims[0] if len(dims) == 1 and dims[0] > 1 else None

    @classmethod
    def from_dict(cls, data: object, *, path: str = "evaluation") -> "Evaluation":
        read = _Reader(data, path)
        count = read.integer("eval_count", minimum=1)
        top_k = read.int_rows("top_k")
        if len(top_k) != count or not all(top_k):
            raise ContractError(f"{read.path}.top_k holds {len(top_k)} rows for {count} eval inputs")
        return cls(
            top_k=top_k,
            eval_count=count,
            output_shape=tuple(read.integers("output_shape")),
            outputs_head=read.optional_float_rows("outputs_head"),
            near_top1=read.optional_int_rows("near_top1"),
            outputs=tuple(
                OutputInfo.from_dict(o, path=f"{read.path}.outputs[{i}]") for i, o in enumerate(read.objects("outputs"))
            ),
            scored=read.optional_text("scored"),
            outputs_file=read.optional_text("outputs_file"),
            outputs_mb=read.optional_number("outputs_mb") or 0.0,
        )


@dataclass(frozen=True)
class Timing:
    """The latency loop's raw samples and what the machine did meanwhile."""

    wall_ms: Tuple[float, ...]
    cpu_ms: Tuple[float, ...]
    capped: bool = False  # stopped by the time cap before the minimum count and time were both met
    warmup_runs: int = 0
    reference_wall_ms: Tuple[float, ...] = ()  # the fixed reference workload, timed between inferences
    reference_cpu_ms: Tuple[float, ...] = ()
    peak_rss_mb: float = 0.0  # the agent's own VmHWM
    foreign_cores: Optional[float] = None  # cores other processes used while timing
    throttled_before: Optional[int] = None  # vcgencmd get_throttled, where the board has it
    throttled_after: Optional[int] = None
    power: Optional[PowerReading] = None

    def to_dict(self) -> JsonObject:
        return {
            "wall_ms": list(self.wall_ms),
            "cpu_ms": list(self.cpu_ms),
            "capped": self.capped,
            "warmup_runs": self.warmup_runs,
            "reference_wall_ms": list(self.reference_wall_ms),
            "reference_cpu_ms": list(self.reference_cpu_ms),
            "peak_rss_mb": self.peak_rss_mb,
            "foreign_cores": self.foreign_cores,
            "throttled_before": self.throttled_before,
            "throttled_after": self.throttled_after,
            "power": self.power.to_dict() if self.power is not None else None,
        }

    @classmethod
    def from_dict(cls, data: object, *, path: str = "timing") -> "Timing":
        read = _Reader(data, path)
        wall, cpu = read.times("wall_ms", positive=True), read.times("cpu_ms")
        if len(wall) != len(cpu):
            raise ContractError(f"{read.path}: {len(wall)} wall samples but {len(cpu)} CPU samples")
        return cls(
            wall_ms=wall,
            cpu_ms=cpu,
            capped=read.flag("capped"),
            warmup_runs=read.integer("warmup_runs", minimum=0),
            reference_wall_ms=read.times("reference_wall_ms", allow_empty=True),
            reference_cpu_ms=read.times("reference_cpu_ms", allow_empty=True),
            peak_rss_mb=read.number("peak_rss_mb", minimum=0.0),
            foreign_cores=read.optional_number("foreign_cores"),
            throttled_before=read.optional_integer("throttled_before"),
            throttled_after=read.optional_integer("throttled_after"),
            power=read.power("power"),
        )


@dataclass(frozen=True)
class PairedTiming:
    """The A side's samples and the quad ratios of a paired job; the B side is the job's Timing."""

    wall_ms: Tuple[float, ...]  # A, per inference
    cpu_ms: Tuple[float, ...]
    ratios: Tuple[float, ...]  # per A B B A quad, on the pairing's signal: B / A
    signal: TimingSignal
    looks: int  # sequential looks made before sampling stopped
    stopped: PairStop  # what ended sampling
    seconds: float  # paired sampling time
    profile: Optional[OpProfile] = None  # A's profiled pass, when the job asked for one

    def to_dict(self) -> JsonObject:
        return {
            "wall_ms": list(self.wall_ms),
            "cpu_ms": list(self.cpu_ms),
            "ratios": list(self.ratios),
            "signal": self.signal,
            "looks": self.looks,
            "stopped": self.stopped,
            "seconds": self.seconds,
            "profile": self.profile.to_dict() if self.profile is not None else None,
        }

    @classmethod
    def from_dict(cls, data: object, *, path: str = "paired") -> "PairedTiming":
        read = _Reader(data, path)
        return cls(
            wall_ms=read.times("wall_ms", positive=True),
            cpu_ms=read.times("cpu_ms"),
            ratios=read.times("ratios", positive=True),
            signal=read.choice("signal", TimingSignal),
            looks=read.integer("looks", minimum=0),
            stopped=read.choice("stopped", PairStop),
            seconds=read.number("seconds", minimum=0.0),
            profile=OpProfile.from_dict(profile, path=f"{path}.profile")
            if (profile := read.optional_object("profile"))
            else None,
        )


@dataclass(frozen=True)
class Success:
    """A job that ran: always an evaluation; timing and the fingerprint unless evaluate_only."""

    runtime: RuntimeInfo
    evaluation: Evaluation
    batch: int
    threads: int
    load_ms: float
    first_inference_ms: float
    timing: Optional[Timing] = None
    fingerprint: Optional[DeviceFacts] = None
    device_address: Optional[str] = None  # the transport fills it in: where the job ran
    paired: Optional[PairedTiming] = None  # a job with a Pairing: the other side and the ratios
    profile: Optional[OpProfile] = None  # this artifact's profiled pass, when the job asked for one
    ok = True

    def to_dict(self) -> JsonObject:
        return {
            "ok": True,
            "version": CONTRACT_VERSION,
            "runtime": self.runtime.to_dict(),
            "evaluation": self.evaluation.to_dict(),
            "batch": self.batch,
            "threads": self.threads,
            "load_ms": self.load_ms,
            "first_inference_ms": self.first_inference_ms,
            "timing": self.timing.to_dict() if self.timing is not None else None,
            "fingerprint": self.fingerprint.to_dict() if self.fingerprint is not None else None,
            "device_address": self.device_address,
            "paired": self.paired.to_dict() if self.paired is not None else None,
            "profile": self.profile.to_dict() if self.profile is not None else None,
        }

    def timed(self) -> Timing:
        if self.timing is None:
            raise ContractError("this result has no latency samples (an evaluate-only job)")
        return self.timing

    def device(self) -> DeviceFacts:
        if self.fingerprint is None:
            raise ContractError("this result has no device fingerprint (an evaluate-only job)")
        return self.fingerprint


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    error: str  # one line that names the fix
    package: Optional[str] = None  # MISSING_PACKAGE: what to install
    device_address: Optional[str] = None
    ok = False

    def to_dict(self) -> JsonObject:
        return {
            "ok": False,
            "version": CONTRACT_VERSION,
            "kind": self.kind.value,
            "error": self.error,
            "package": self.package,
            "device_address": self.device_address,
        }


Result = Union[Success, Failure]


def failure(kind: FailureKind, message: str, *, package: Optional[str] = None) -> Failure:
    return Failure(kind=kind, error=" ".join(str(message).split())[:600], package=package)


def parse_result(data: object) -> Result:
    """The host's view of what an agent printed; ContractError names the first field that is wrong."""
    read = _Reader(data, "result")
    if not read.flag("ok"):
        kind = read.text("kind")
        try:
            failure_kind = FailureKind(kind)
        except ValueError:
            raise ContractError(
                f"result.kind {kind!r} is not one of {', '.join(k.value for k in FailureKind)}"
            ) from None
        return Failure(
            kind=failure_kind,
            error=read.text("error"),
            package=read.optional_text("package"),
            device_address=read.optional_text("device_address"),
        )
    version = read.integer("version", minimum=1)
    if version != CONTRACT_VERSION:
        raise ContractError(f"result version {version}, expected {CONTRACT_VERSION}")
    timing, facts = read.optional_object("timing"), read.optional_object("fingerprint")
    return Success(
        runtime=_runtime_info(read.child("runtime")),
        evaluation=Evaluation.from_dict(read.mapping("evaluation"), path="result.evaluation"),
        batch=read.integer("batch", minimum=1),
        threads=read.integer("threads", minimum=1),
        load_ms=read.number("load_ms", minimum=0.0),
        first_inference_ms=read.number("first_inference_ms", minimum=0.0),
        timing=Timing.from_dict(timing, path="result.timing") if timing is not None else None,
        fingerprint=DeviceFacts.from_dict(facts, path="result.fingerprint") if facts is not None else None,
        device_address=read.optional_text("device_address"),
        paired=PairedTiming.from_dict(paired, path="result.paired")
        if (paired := read.optional_object("paired"))
        else None,
        profile=OpProfile.from_dict(profile, path="result.profile")
        if (profile := read.optional_object("profile"))
        else None,
    )


def _runtime_info(read: "_Reader") -> RuntimeInfo:
    read.text("name")
    read.text("version")
    try:
        return RuntimeInfo.from_dict(read.data)
    except (TypeError, ValueError) as error:
        raise ContractError(f"result.runtime: {error}") from None


class _Reader:
    """Typed access to one JSON object; every error names the dotted path of the field."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise ContractError(f"{path} must be a JSON object, got {type(data).__name__}")
        self.data: Dict[str, object] = data
        self.path = path

    def _field(self, key: str) -> str:
        return f"{self.path}.{key}"

    def _get(self, key: str, default: object = ...) -> object:
        if key in self.data:
            return self.data[key]
        if default is ...:
            raise ContractError(f"{self._field(key)} is missing")
        return default

    def mapping(self, key: str) -> Dict[str, object]:
        value = self._get(key)
        if not isinstance(value, dict):
            raise ContractError(f"{self._field(key)} must be an object")
        return value

    def child(self, key: str) -> "_Reader":
        return _Reader(self.mapping(key), self._field(key))

    def optional_object(self, key: str) -> Optional[Dict[str, object]]:
        value = self._get(key, None)
        if value is not None and not isinstance(value, dict):
            raise ContractError(f"{self._field(key)} must be an object or null")
        return value

    def text(self, key: str, default: object = ...) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise ContractError(f"{self._field(key)} must be a string")
        return value

    def choice(self, key: str, kind: Type[_E]) -> _E:
        """A string field that must name a member of `kind`: `x.signal must be cpu or wall, got 'gpu'`."""
        value = self.text(key)
        try:
            return kind(value)
        except ValueError:
            names = [member.value for member in kind]
            raise ContractError(
                f"{self._field(key)} must be {', '.join(names[:-1])} or {names[-1]}, got {value!r}"
            ) from None

    def optional_text(self, key: str) -> Optional[str]:
        value = self._get(key, None)
        if value is not None and not isinstance(value, str):
            raise ContractError(f"{self._field(key)} must be a string or null")
        return value

    def texts(self, key: str) -> List[str]:
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ContractError(f"{self._field(key)} must be a list of strings")
        return list(value)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ContractError(f"{self._field(key)} must be true or false")
        return value

    def integer(self, key: str, *, minimum: int) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ContractError(f"{self._field(key)} must be a whole number >= {minimum}, got {value!r}")
        return value

    def optional_integer(self, key: str) -> Optional[int]:
        value = self._get(key, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ContractError(f"{self._field(key)} must be a whole number or null")
        return value

    def number(self, key: str, *, minimum: float) -> float:
        value = _finite(self._get(key))
        if value is None or value < minimum:
            raise ContractError(f"{self._field(key)} must be a number >= {minimum:g}, got {self.data[key]!r}")
        return value

    def optional_number(self, key: str) -> Optional[float]:
        raw = self._get(key, None)
        value = _finite(raw)
        if raw is not None and value is None:
            raise ContractError(f"{self._field(key)} must be a number or null")
        return value

    def times(self, key: str, *, positive: bool = False, allow_empty: bool = False) -> Tuple[float, ...]:
        """Sample lists: finite, not negative (positive for wall time), not empty unless allowed."""
        value = self._get(key, [] if allow_empty else ...)
        if not isinstance(value, list) or (not value and not allow_empty):
            raise ContractError(f"{self._field(key)} must be a non-empty list of milliseconds")
        numbers = [_finite(v) for v in value]
        floor_ok = [n is not None and (n > 0 if positive else n >= 0) for n in numbers]
        if not all(floor_ok):
            raise ContractError(f"{self._field(key)} must hold finite numbers {'> 0' if positive else '>= 0'}")
        return tuple(n for n in numbers if n is not None)

    def objects(self, key: str) -> List[object]:
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ContractError(f"{self._field(key)} must be a list of objects")
        return list(value)

    def integers(self, key: str) -> List[int]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ContractError(f"{self._field(key)} must be a list of whole numbers")
        return list(value)

    def int_rows(self, key: str) -> Tuple[Tuple[int, ...], ...]:
        rows = self.optional_int_rows(key)
        if rows is None:
            raise ContractError(f"{self._field(key)} is missing")
        return rows

    def optional_int_rows(self, key: str) -> Optional[Tuple[Tuple[int, ...], ...]]:
        value = self._get(key, None)
        if value is None:
            return None
        if not isinstance(value, list) or not all(_int_row(row) for row in value):
            raise ContractError(f"{self._field(key)} must be a list of lists of whole numbers")
        return tuple(tuple(int(v) for v in row) for row in value)

    def optional_float_rows(self, key: str) -> Optional[Tuple[Tuple[float, ...], ...]]:
        value = self._get(key, None)
        if value is None:
            return None
        rows = (
            [[_finite(v) for v in row] if isinstance(row, list) else [None] for row in value]
            if isinstance(value, list)
            else [[None]]
        )
        if not all(v is not None for row in rows for v in row):
            raise ContractError(f"{self._field(key)} must be a list of lists of finite numbers")
        return tuple(tuple(v for v in row if v is not None) for row in rows)

    def power(self, key: str) -> Optional[PowerReading]:
        value = self.optional_object(key)
        if value is None:
            return None
        try:
            return PowerReading.from_dict(value)
        except PowerMeterError as error:
            raise ContractError(f"{self._field(key)}: {error}") from None


def _finite(value: object) -> Optional[float]:
    """The value as a float when it is a finite JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _int_row(row: object) -> bool:
    return isinstance(row, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in row)
