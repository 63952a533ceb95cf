"""Turn the agent's raw result and the artifact's facts into a Measurement."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from pytest_edgeopt.measure.result import LatencyStats, Measurement, agreement, top1_accuracy
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.platforms.profiles import Platform

MB = 1e6
BUSY_MACHINE_CORES = 0.5

Reference = Tuple[Measurement, List[List[int]]]


def assemble(
    result: Dict[str, Any], *, model: EdgeModel, artifact: Artifact, platform: Platform,
    reference: Optional[Reference], nodeid: str,
) -> Measurement:
    top_k = result["top_k"]
    top1 = top1_accuracy(top_k, model.eval_labels)
    agree, agree5 = agreement(top_k, reference[1]) if reference else (1.0, 1.0)
    runtime = result["runtime"]
    return Measurement(
        model=model.name, precision=artifact.precision.name, bitwidth=artifact.precision.bitwidth,
        quantization=artifact.quantization, runtime=runtime["name"], runtime_version=runtime["version"],
        platform=platform.name, device=device_label(result["fingerprint"]),
        compute_unit=platform.compute_unit, batch=result["batch"], threads=result["threads"],
        params=artifact.params, size_mb=artifact.stats["weight_bytes"] / MB,
        storage_mb=artifact.stats["storage_bytes"] / MB, gflops=artifact.flops * result["batch"] / 1e9,
        latency=LatencyStats.from_values(result["wall_ms"]),
        cpu_latency=LatencyStats.from_values(result["cpu_ms"]),
        load_ms=result["load_ms"], first_inference_ms=result["first_inference_ms"],
        peak_rss_mb=result["peak_rss_mb"], eval_count=result["eval_count"], top1=top1,
        reference_top1=reference[0].top1 if reference else top1, agreement=agree, top5_agreement=agree5,
        artifact_sha=artifact.key, fingerprint={**result["fingerprint"], "runtime": runtime},
        foreign_cores=result.get("foreign_cores"), notes=_notes(result, model, artifact),
        samples_ms=tuple(result["wall_ms"]), cpu_samples_ms=tuple(result["cpu_ms"]),
        reference_wall_ms=tuple(result.get("reference_wall_ms", ())),
        reference_cpu_ms=tuple(result.get("reference_cpu_ms", ())), nodeid=nodeid,
    )


def device_label(fingerprint: Dict[str, Any]) -> str:
    name = fingerprint.get("device_model") or fingerprint.get("cpu_model") or "unknown CPU"
    return f"{name} ({fingerprint.get('arch', '?')})"


def _notes(result: Dict[str, Any], model: EdgeModel, artifact: Artifact) -> Tuple[str, ...]:
    notes = list(model.notes) + list(artifact.notes)
    if not model.has_pretrained_weights and not any("random weights" in n for n in notes):
        notes.append("accuracy n/a (random weights)")
    if result.get("capped"):
        notes.append(f"timing stopped at the time cap after {len(result['wall_ms'])} runs")
    foreign = result.get("foreign_cores")
    if foreign is not None and foreign > BUSY_MACHINE_CORES:
        notes.append("other processes used the CPU while timing: wall time is inflated, CPU time is not")
    return tuple(dict.fromkeys(notes))
