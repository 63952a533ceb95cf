"""Turn the agent's raw result and the artifact's facts into a Measurement."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from pytest_edgeopt.measure.result import LatencyStats, Measurement, agreement, top1_accuracy
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.platforms.fingerprint import throttle_problem
from pytest_edgeopt.platforms.profiles import GPU_PROVIDERS, Platform

MB = 1e6
BUSY_MACHINE_CORES = 0.5

Reference = Tuple[Measurement, List[List[int]]]
AGREEMENT_WITHIN_STEP = "top-1 within 1 output step"
# FP32 -> FP32 across runtimes differs by float reassociation only (4.3e-6 measured on the CNN):
# beyond this the converter changed the function.
PARITY_ATOL, PARITY_RTOL = 1e-4, 1e-3
PARITY_MIN_TOP1 = 0.99


def assemble(
    result: Dict[str, Any], *, model: EdgeModel, artifact: Artifact, platform: Platform,
    reference: Optional[Reference], nodeid: str,
) -> Measurement:
    top_k = result["top_k"]
    top1 = top1_accuracy(top_k, model.eval_labels)
    near = result.get("near_top1")
    agree, agree5 = agreement(top_k, reference[1], near) if reference else (1.0, 1.0)
    runtime = result["runtime"]
    return Measurement(
        model=model.name, precision=artifact.precision.name, bitwidth=artifact.bitwidth,
        quantization=artifact.quantization, runtime=runtime["name"], runtime_version=runtime["version"],
        platform=platform.name, device=device_label(result["fingerprint"], address=result.get("device_address"),
                                                    on_host=platform.on_host),
        compute_unit=compute_unit(platform, runtime), batch=result["batch"], threads=result["threads"],
        params=artifact.params, size_mb=artifact.stats["weight_bytes"] / MB,
        storage_mb=artifact.stats["storage_bytes"] / MB, gflops=artifact.flops * result["batch"] / 1e9,
        latency=LatencyStats.from_values(result["wall_ms"]),
        cpu_latency=LatencyStats.from_values(result["cpu_ms"]),
        load_ms=result["load_ms"], first_inference_ms=result["first_inference_ms"],
        peak_rss_mb=result["peak_rss_mb"], eval_count=result["eval_count"], top1=top1,
        reference_top1=reference[0].top1 if reference else top1, agreement=agree, top5_agreement=agree5,
        artifact_sha=artifact.key, fingerprint={**result["fingerprint"], "runtime": runtime},
        foreign_cores=result.get("foreign_cores"), notes=_notes(result, model, artifact, platform),
        agreement_rule=AGREEMENT_WITHIN_STEP if near is not None and reference else "top-1",
        samples_ms=tuple(result["wall_ms"]), cpu_samples_ms=tuple(result["cpu_ms"]),
        reference_wall_ms=tuple(result.get("reference_wall_ms", ())),
        reference_cpu_ms=tuple(result.get("reference_cpu_ms", ())), nodeid=nodeid,
        invalid=throttle_problem(*_throttled(result)), **_energy(result),
    )


def device_label(fingerprint: Dict[str, Any], *, address: Optional[str] = None, on_host: bool = False) -> str:
    """The real device: its model string (a Pi's device tree names the board), where it was reached."""
    name = fingerprint.get("device_model") or fingerprint.get("cpu_model") or "unknown CPU"
    label = f"{name} ({fingerprint.get('arch', '?')})"
    if address:
        label += f" at {address}"
    return f"host running the profile: {label}" if on_host else label


def compute_unit(platform: Platform, runtime: Dict[str, Any]) -> str:
    """What ran the model, from the providers the runtime actually used, not what was asked for."""
    if _gpu_missing(platform, runtime):
        return "CPU"
    used = runtime.get("providers") or ()
    return "GPU" if any(p in GPU_PROVIDERS for p in used) else platform.compute_unit


def _gpu_missing(platform: Platform, runtime: Dict[str, Any]) -> List[str]:
    """The GPU providers the profile asked for, when the runtime could use none of them."""
    asked = [p for p in platform.providers if p in GPU_PROVIDERS]
    used = runtime.get("providers")
    if not asked or used is None or any(p in GPU_PROVIDERS for p in used):
        return []
    return asked


def _throttled(result: Dict[str, Any]) -> Tuple[Optional[int], Optional[int]]:
    throttled = result.get("throttled") or {}
    return throttled.get("before"), throttled.get("after")


def _energy(result: Dict[str, Any]) -> Dict[str, Any]:
    """Power above idle and energy per inference (W x ms = mJ), labelled with the meter."""
    power = result.get("power")
    if not power:
        return {}
    per_inference_ms = float(np.median(result["wall_ms"])) / max(int(result["batch"]), 1)
    source = f"{power['source']} est." if power.get("estimated") else power["source"]
    return {"energy_w": power["active_w"], "energy_mj": power["active_w"] * per_inference_ms,
            "energy_source": source}


def parity(result: Dict[str, Any], twin: Dict[str, Any], *, runtime: str) -> Dict[str, Any]:
    """Top-1 agreement over all eval inputs and the largest absolute output difference over the
    first ones; `ok` is False when either says the two files compute different functions."""
    ours, theirs = np.asarray(result["outputs_head"], np.float64), np.asarray(twin["outputs_head"], np.float64)
    if ours.shape != theirs.shape:
        return {"runtime": runtime, "ok": False, "top1": 0.0, "max_abs": None,
                "reason": f"output shapes differ: {list(ours.shape)} vs {list(theirs.shape)}"}
    top1 = float(np.mean([a[0] == b[0] for a, b in zip(result["top_k"], twin["top_k"])]))
    max_abs = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    tolerance = PARITY_ATOL + PARITY_RTOL * float(np.max(np.abs(theirs))) if theirs.size else PARITY_ATOL
    return {"runtime": runtime, "top1": top1, "max_abs": max_abs, "tolerance": tolerance,
            "ok": bool(max_abs <= tolerance and top1 >= PARITY_MIN_TOP1)}


def parity_text(p: Dict[str, Any]) -> str:
    if "skipped" in p:
        return f"parity vs {p['runtime']} not checked: {p['skipped']}"
    if p.get("reason"):
        return f"PARITY FAILED vs {p['runtime']}: {p['reason']}"
    head = "parity" if p["ok"] else "PARITY FAILED"
    return (f"{head} vs {p['runtime']}: top-1 {p['top1'] * 100:.1f}%, max |diff| {p['max_abs']:.2g} "
            f"(tolerance {p['tolerance']:.2g})")


def _notes(result: Dict[str, Any], model: EdgeModel, artifact: Artifact, platform: Platform) -> Tuple[str, ...]:
    notes = list(model.notes) + list(artifact.notes) + _runtime_notes(result["runtime"], platform)
    if not model.has_pretrained_weights and not any("random weights" in n for n in notes):
        notes.append("accuracy n/a (random weights)")
    if result.get("capped"):
        notes.append(f"timing stopped at the time cap after {len(result['wall_ms'])} runs")
    foreign = result.get("foreign_cores")
    if foreign is not None and foreign > BUSY_MACHINE_CORES:
        notes.append("other processes used the CPU while timing: wall time is inflated, CPU time is not")
    return tuple(dict.fromkeys(notes))


def _runtime_notes(runtime: Dict[str, Any], platform: Platform) -> List[str]:
    notes = [runtime["warning"]] if runtime.get("warning") else []
    missing = _gpu_missing(platform, runtime)
    if missing:
        notes.append(f"{' and '.join(missing)} not available on the device: ran on the CPU")
    if runtime.get("reference_kernels"):
        notes.append("reference kernels (XNNPACK off)")
    elif runtime.get("xnnpack") is False:
        notes.append("XNNPACK did not take the graph: reference kernels ran")
    return notes
