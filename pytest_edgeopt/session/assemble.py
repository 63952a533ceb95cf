"""Turn the agent's Result and the artifact's facts into a Measurement.

This is where the stages meet (the model's labels, the artifact's static facts, the platform
profile and what the device reported), so it lives with the orchestration, not in `measure`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

from pytest_edgeopt.agent.contract import DeviceFacts, Success, Timing
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.judge.validity import timing_problem
from pytest_edgeopt.kinds import Note, NoteKind
from pytest_edgeopt.measure.result import (
    AccuracyPart,
    EnergyPart,
    LatencyStats,
    Measurement,
    MemoryPart,
    QuantizedShare,
    ReferencePart,
    SizePart,
    TimingPart,
    agreement,
    top1_accuracy,
)
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.optimize.precisions import REFERENCE
from pytest_edgeopt.platforms.profiles import GPU_PROVIDERS, Platform
from pytest_edgeopt.runtimes.base import RuntimeInfo
from pytest_edgeopt.session.scoring import class_scores, score
from pytest_edgeopt.session.slower import slower_note

MB = 1e6
BUSY_MACHINE_CORES = 0.5
AGREEMENT_WITHIN_STEP = "top-1 within 1 output step"
EXPLAINED_BELOW = 0.5  # a quantized share under this gets its cause read from the file and noted
Predictions = Tuple[Tuple[int, ...], ...]


@dataclass(frozen=True)
class Reference:
    """The FP32 measurement of a model and its predictions: the yardstick of every precision."""

    measurement: Measurement
    top_k: Predictions
    outputs_file: Optional[str] = None  # every output of the eval set, for fidelity and metrics


def assemble(
    result: Success,
    *,
    model: EdgeModel,
    artifact: Artifact,
    platform: Platform,
    reference: Optional[Reference],
    teacher: bool = False,
) -> Measurement:
    """`reference` None: this is the FP32 reference itself; `teacher`: the reference is another
    model's FP32 (reference=), named in the row."""
    timing, facts = result.timed(), result.device()
    evaluation = result.evaluation
    if len(evaluation.top_k) != model.eval_count or evaluation.eval_count != model.eval_count:
        raise EdgeOptError(
            f"model {model.name!r}: the agent answered {len(evaluation.top_k)} predictions "
            f"(eval_count {evaluation.eval_count}) for {model.eval_count} eval inputs"
        )
    ref = reference.measurement if reference else None
    size = _size(artifact, batch=result.batch)
    return Measurement(
        model=model.name,
        precision=artifact.precision.name,
        bitwidth=artifact.bitwidth,
        quantization=artifact.quantization.to_dict(),
        runtime=result.runtime.name,
        runtime_version=result.runtime.version,
        platform=platform.name,
        device=device_label(facts, address=result.device_address, on_host=platform.on_host),
        compute_unit=compute_unit(platform, result.runtime),
        batch=result.batch,
        threads=result.threads,
        artifact_sha=artifact.key,
        facts=facts,
        runtime_info=result.runtime,
        accuracy=_accuracy(result, model=model, reference=reference, teacher=teacher),
        timing=_timing(result),
        size=size,
        memory=MemoryPart(peak_rss_mb=timing.peak_rss_mb),
        energy=_energy(timing, result.batch),
        reference=ReferencePart(
            reference_model=ref.model if ref is not None and teacher else None,
            reference_latency_ms=ref.latency.median_ms if ref else _median(timing),
            reference_size_mb=ref.size_mb if ref else artifact.stats.weight_bytes / MB,
        ),
        foreign_cores=timing.foreign_cores,
        invalid=timing_problem(timing),
        notes=_notes(result, model, artifact, platform)
        + _slower(timing, artifact, facts, reference)
        + _quantized_note(size.quantized, artifact.precision.name),
    )


def _accuracy(result: Success, *, model: EdgeModel, reference: Optional[Reference], teacher: bool) -> AccuracyPart:
    """Top-1 where the labels are class ids of the scored output, agreement and fidelity against
    the reference, and the model's own task metric."""
    evaluation = result.evaluation
    classes = class_scores(evaluation, model=model, is_reference=reference is None)
    labelled = classes and model.metric is None
    top1 = top1_accuracy(evaluation.top_k, model.eval_labels) if labelled else None
    agree, agree5 = _agreements(result, reference, evaluation.classes if classes else None)
    scores = score(
        evaluation,
        model=model,
        reference_file=reference.outputs_file if reference else None,
        reference_metric=None if reference is None or teacher else reference.measurement.metric,
        is_reference=reference is None,
    )
    return AccuracyPart(
        eval_count=evaluation.eval_count,
        top1=top1,
        reference_top1=reference.measurement.top1 if reference else top1,
        agreement=agree,
        top5_agreement=agree5,
        agreement_rule=AGREEMENT_WITHIN_STEP if evaluation.near_top1 is not None and reference else "top-1",
        fidelity=scores.fidelity,
        metric_name=model.metric.name if model.metric else None,
        metric=scores.metric,
        reference_metric=scores.reference_metric,
        metric_higher_is_better=model.metric.higher_is_better if model.metric else True,
        scored_output=evaluation.scored if model.output is not None else None,
    )


def _timing(result: Success) -> TimingPart:
    timing = result.timed()
    return TimingPart(
        latency=LatencyStats.from_values(timing.wall_ms),
        cpu_latency=LatencyStats.from_values(timing.cpu_ms),
        load_ms=result.load_ms,
        first_inference_ms=result.first_inference_ms,
        samples_ms=timing.wall_ms,
        cpu_samples_ms=timing.cpu_ms,
        reference_wall_ms=timing.reference_wall_ms,
        reference_cpu_ms=timing.reference_cpu_ms,
        op_profile=result.profile,
    )


def _size(artifact: Artifact, *, batch: int) -> SizePart:
    return SizePart(
        params=artifact.params,
        size_mb=artifact.stats.weight_bytes / MB,
        storage_mb=artifact.stats.storage_bytes / MB,
        gflops=artifact.flops * batch / 1e9 if artifact.flops is not None else None,
        int8_weight_share=artifact.stats.int8_weight_share,
        quantized=quantized_share(artifact),
    )


# the element types a precision stores and computes at: what counts as quantized
_QUANTIZED_TYPES = {
    "int8": ("int8", "uint8", "int16", "uint16", "int32", "int4"),  # int32: the biases of integer kernels
    "float16": ("float16",),
}


def quantized_share(artifact: Artifact) -> Optional[QuantizedShare]:
    """How much of the artifact really is at its precision (None for FP32): weights by stored
    type, compute by the type its ops run in. A precision whose activations stay float by design
    (a TFLite FP16 file computes in FP32) has no compute share."""
    name = artifact.precision.name
    if name == REFERENCE:
        return None
    target = "float16" if name == "fp16" else "int8"
    types = _QUANTIZED_TYPES[target]
    weights, flops = dict(artifact.stats.weight_bytes_by_type), dict(artifact.stats.flops_by_type)
    computes = not artifact.bitwidth.endswith("/FP32") or name == "int8-dynamic"
    share = QuantizedShare(
        target=target,
        weight_share=_share(weights, types),
        mac_share=_share(flops, types) if computes else None,
        weight_bytes=weights,
        flops=flops,
    )
    if share.share is not None and share.share < EXPLAINED_BELOW:
        return replace(share, why=tuple(_unquantized_reasons(artifact.path)))
    return share


def _unquantized_reasons(path: Path) -> List[str]:
    if path.suffix == ".onnx":
        from pytest_edgeopt.inspect.onnx_stats import unquantized_reasons

        return unquantized_reasons(path)
    if path.suffix == ".tflite":
        from pytest_edgeopt.inspect.tflite_stats import unquantized_reasons as tflite_reasons

        return tflite_reasons(path)
    return []


def _quantized_note(share: Optional[QuantizedShare], precision: str) -> Tuple[Note, ...]:
    """A row whose precision changed little says so, with what the file shows as the cause."""
    if share is None or share.share is None or share.share >= EXPLAINED_BELOW:
        return ()
    why = f": {'; '.join(share.why)}" if share.why else ""
    return (Note(NoteKind.ARTIFACT, f"{precision} left most of the model in float: {share.describe()}{why}"),)


def _share(amounts: Mapping[str, int], types: Sequence[str]) -> Optional[float]:
    total = sum(amounts.values())
    return sum(v for k, v in amounts.items() if k in types) / total if total else None


def _median(timing: Timing) -> float:
    return float(np.median(timing.wall_ms))


def _agreements(
    result: Success, reference: Optional[Reference], classes: Optional[int]
) -> Tuple[Optional[float], Optional[float]]:
    """Argmax agreement only where the scored output has a class axis; 1.0 for the reference."""
    if classes is None:
        return None, None
    if reference is None:
        return 1.0, 1.0
    return agreement(result.evaluation.top_k, reference.top_k, result.evaluation.near_top1)


def device_label(facts: DeviceFacts, *, address: Optional[str] = None, on_host: bool = False) -> str:
    """The real device: its model string (a Pi's device tree names the board), where it was reached."""
    name = facts.device_model or facts.cpu_model or "unknown CPU"
    label = f"{name} ({facts.arch or '?'})"
    if address:
        label += f" at {address}"
    return f"host running the profile: {label}" if on_host else label


COMPUTE_UNITS = ("CPU", "GPU", "NPU")


def compute_unit(platform: Platform, runtime: RuntimeInfo) -> str:
    """What ran the model, from the providers or the device the runtime actually used, not what
    was asked for (OpenVINO's `GPU.0` is a GPU; AUTO names the devices it chose)."""
    if runtime.device is not None:
        return device_unit(runtime.device, default=platform.compute_unit)
    if _gpu_missing(platform, runtime):
        return "CPU"
    used = runtime.providers or ()
    return "GPU" if any(p in GPU_PROVIDERS for p in used) else platform.compute_unit


def device_unit(device: str, *, default: str) -> str:
    units = [u for u in COMPUTE_UNITS if any(d.strip().upper().startswith(u) for d in device.split(","))]
    return "+".join(units) or default


def _gpu_missing(platform: Platform, runtime: RuntimeInfo) -> List[str]:
    """The GPU providers the profile asked for, when the runtime could use none of them."""
    asked = [p for p in platform.providers if p in GPU_PROVIDERS]
    used = runtime.providers
    if not asked or used is None or any(p in GPU_PROVIDERS for p in used):
        return []
    return asked


def _energy(timing: Timing, batch: int) -> EnergyPart:
    """Power above idle and energy per inference (W x ms = mJ), labelled with the meter."""
    power = timing.power
    if power is None:
        return EnergyPart()
    per_inference_ms = float(np.median(timing.wall_ms)) / max(batch, 1)
    source = f"{power.source} est." if power.estimated else power.source
    return EnergyPart(energy_w=power.active_w, energy_mj=power.active_w * per_inference_ms, energy_source=source)


def _slower(timing: Timing, artifact: Artifact, facts: DeviceFacts, reference: Optional[Reference]) -> Tuple[Note, ...]:
    """Against FP32 on the same signal: CPU time with one thread (drift-proof), else wall time."""
    if reference is None:
        return ()
    ref = reference.measurement
    cpu = timing.cpu_ms and ref.cpu_samples_ms and ref.threads == 1
    mine, theirs = (timing.cpu_ms, ref.cpu_samples_ms) if cpu else (timing.wall_ms, ref.samples_ms)
    note = slower_note(mine, theirs, artifact=artifact, facts=facts)
    return (note,) if note else ()


def _notes(result: Success, model: EdgeModel, artifact: Artifact, platform: Platform) -> Tuple[Note, ...]:
    notes = list(model.notes) + list(artifact.notes) + _runtime_notes(result.runtime, platform)
    if not model.has_pretrained_weights and not any("random weights" in n.text for n in notes):
        notes.append(Note(NoteKind.MODEL, "accuracy n/a (random weights)"))
    timing = result.timed()
    if timing.capped:
        notes.append(Note(NoteKind.TIMING, f"timing stopped at the time cap after {len(timing.wall_ms)} runs"))
    if timing.foreign_cores is not None and timing.foreign_cores > BUSY_MACHINE_CORES:
        notes.append(
            Note(NoteKind.TIMING, "other processes used the CPU while timing: wall time is inflated, CPU time is not")
        )
    return tuple(dict.fromkeys(notes))


def _runtime_notes(runtime: RuntimeInfo, platform: Platform) -> List[Note]:
    notes = [Note(NoteKind.RUNTIME, runtime.warning)] if runtime.warning else []
    missing = _gpu_missing(platform, runtime)
    if missing:
        notes.append(Note(NoteKind.RUNTIME, f"{' and '.join(missing)} not available on the device: ran on the CPU"))
    if runtime.reference_kernels:
        notes.append(Note(NoteKind.RUNTIME, "reference kernels (XNNPACK off)"))
    elif runtime.xnnpack is False:
        notes.append(Note(NoteKind.RUNTIME, "XNNPACK did not take the graph: reference kernels ran"))
    return notes
