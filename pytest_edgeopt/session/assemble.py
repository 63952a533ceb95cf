"""Turn the agent's Result and the artifact's facts into a Measurement.

This is where the stages meet (the model's labels, the artifact's static facts, the platform
profile and what the device reported), so it lives with the orchestration, not in `measure`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple, TypedDict

import numpy as np

from pytest_edgeopt.agent.contract import DeviceFacts, Success, Timing
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.judge.validity import timing_problem
from pytest_edgeopt.kinds import Note, NoteKind
from pytest_edgeopt.measure.result import LatencyStats, Measurement, agreement, top1_accuracy
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.platforms.profiles import GPU_PROVIDERS, Platform
from pytest_edgeopt.runtimes.base import RuntimeInfo
from pytest_edgeopt.session.scoring import score
from pytest_edgeopt.session.slower import slower_note

MB = 1e6
BUSY_MACHINE_CORES = 0.5
AGREEMENT_WITHIN_STEP = "top-1 within 1 output step"
Predictions = Tuple[Tuple[int, ...], ...]


@dataclass(frozen=True)
class Reference:
    """The FP32 measurement of a model and its predictions: the yardstick of every precision."""

    measurement: Measurement
    top_k: Predictions
    outputs_file: Optional[str] = None  # every output of the eval set, for fidelity and metrics


def _check_label_range(model: EdgeModel, classes: Optional[int]) -> None:
    """A label no output can predict would count as a miss the model never made."""
    labels = model.eval_labels
    if labels is None or classes is None or not len(labels) or int(labels.max()) < classes:
        return
    at = int(labels.argmax())
    raise EdgeOptError(
        f"model {model.name!r}: eval label {int(labels[at])} (index {at}) is out of range for an output of "
        f"{classes} classes; labels must be class ids 0..{classes - 1}"
    )


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
    timing, facts, evaluation = result.timed(), result.device(), result.evaluation
    classes = evaluation.classes
    scored_labels = model.metric is None and classes is not None
    if len(evaluation.top_k) != model.eval_count or evaluation.eval_count != model.eval_count:
        raise EdgeOptError(
            f"model {model.name!r}: the agent answered {len(evaluation.top_k)} predictions "
            f"(eval_count {evaluation.eval_count}) for {model.eval_count} eval inputs"
        )
    if scored_labels:
        _check_label_range(model, classes)
    top1 = top1_accuracy(evaluation.top_k, model.eval_labels) if scored_labels else None
    agree, agree5 = _agreements(result, reference, classes)
    scores = score(
        evaluation,
        model=model,
        reference_file=reference.outputs_file if reference else None,
        reference_metric=None if reference is None or teacher else reference.measurement.metric,
        is_reference=reference is None,
    )
    ref = reference.measurement if reference else None
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
        params=artifact.params,
        size_mb=artifact.stats.weight_bytes / MB,
        storage_mb=artifact.stats.storage_bytes / MB,
        gflops=artifact.flops * result.batch / 1e9 if artifact.flops is not None else None,
        latency=LatencyStats.from_values(timing.wall_ms),
        cpu_latency=LatencyStats.from_values(timing.cpu_ms),
        load_ms=result.load_ms,
        first_inference_ms=result.first_inference_ms,
        peak_rss_mb=timing.peak_rss_mb,
        eval_count=evaluation.eval_count,
        top1=top1,
        reference_top1=ref.top1 if ref else top1,
        agreement=agree,
        top5_agreement=agree5,
        artifact_sha=artifact.key,
        facts=facts,
        runtime_info=result.runtime,
        foreign_cores=timing.foreign_cores,
        notes=_notes(result, model, artifact, platform) + _slower(timing, artifact, facts, reference),
        agreement_rule=AGREEMENT_WITHIN_STEP if evaluation.near_top1 is not None and reference else "top-1",
        samples_ms=timing.wall_ms,
        cpu_samples_ms=timing.cpu_ms,
        reference_wall_ms=timing.reference_wall_ms,
        reference_cpu_ms=timing.reference_cpu_ms,
        invalid=timing_problem(timing),
        op_profile=result.profile,
        fidelity=scores.fidelity,
        metric_name=model.metric.name if model.metric else None,
        metric=scores.metric,
        reference_metric=scores.reference_metric,
        metric_higher_is_better=model.metric.higher_is_better if model.metric else True,
        reference_model=ref.model if ref is not None and teacher else None,
        reference_latency_ms=ref.latency.median_ms if ref else _median(timing),
        reference_size_mb=ref.size_mb if ref else artifact.stats.weight_bytes / MB,
        **_energy(timing, result.batch),
    )


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


def _energy(timing: Timing, batch: int) -> Energy:
    """Power above idle and energy per inference (W x ms = mJ), labelled with the meter."""
    power = timing.power
    if power is None:
        return {}
    per_inference_ms = float(np.median(timing.wall_ms)) / max(batch, 1)
    source = f"{power.source} est." if power.estimated else power.source
    return {"energy_w": power.active_w, "energy_mj": power.active_w * per_inference_ms, "energy_source": source}


class Energy(TypedDict, total=False):
    energy_w: float
    energy_mj: float
    energy_source: str


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
