"""Run one measurement job: load, evaluate every eval input, time the latency loop, report.

Everything the judge needs travels in the result (raw samples, top-k predictions, the device);
labels stay on the host, so the agent cannot be wrong about accuracy, only about outputs.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Tuple

import numpy as np

from pytest_edgeopt.agent import device, power
from pytest_edgeopt.agent.sampling import SamplingPlan, reference_workload, sample, warm_up
from pytest_edgeopt.runtimes import RUNTIMES, RuntimeMissing, create_runtime
from pytest_edgeopt.runtimes.base import ArtifactError, InputError

RESULT_VERSION = 1
HEAD_SAMPLES = 16
HEAD_VALUES = 4096
NEAR_TOP_CAP = 10
DEFAULT_IDLE_S = 1.0  # idle power sampled before the loop, subtracted from the loop's


class JobError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def run_job(job: Dict[str, Any]) -> Dict[str, Any]:
    try:
        return _run(job)
    except JobError as error:
        return {"ok": False, "kind": error.kind, "error": str(error), "version": RESULT_VERSION}
    except RuntimeMissing as error:
        return {"ok": False, "kind": "missing-runtime", "error": str(error), "version": RESULT_VERSION}
    except Exception as error:  # the host turns this into one line; the agent must always answer
        return {"ok": False, "kind": "internal", "version": RESULT_VERSION,
                "error": f"agent error: {type(error).__name__}: {' '.join(str(error).split())[:300]}"}


def _run(job: Dict[str, Any]) -> Dict[str, Any]:
    if job.get("runtime") not in RUNTIMES:
        raise JobError("bad-job", f"unknown runtime {job.get('runtime')!r}; known: {', '.join(RUNTIMES)}")
    runtime = create_runtime(job["runtime"])
    load_ms = _timed_load(runtime, job)
    batches, count = _eval_batches(runtime, job)
    first_ms, outputs = _evaluate(runtime, batches)
    top_k = _top_k(outputs, count, int(job.get("topk", 5)))
    info = runtime.info()
    evaluated = {"top_k": top_k, "eval_count": count, "output_shape": list(outputs[0].shape[1:]),
                 "outputs_head": _head(outputs, count) if job.get("keep_outputs") else None,
                 "near_top1": _near_top1(outputs, count, info)}
    if job.get("evaluate_only"):
        runtime.close()
        return {"ok": True, "version": RESULT_VERSION, "runtime": info, **evaluated}
    plan = SamplingPlan.from_dict(job.get("plan", {}))
    meter = _meter(job.get("power"))
    warmups = warm_up(runtime.run, batches, plan)
    throttled_before = device.throttled()
    busy0, own0 = device.busy_cpu_seconds(), time.process_time()
    reference = reference_workload() if job.get("reference_workload", True) else None
    samples, reading = _timed(meter, lambda: sample(runtime.run, batches, plan, reference), job.get("power"))
    foreign = _foreign_cores(busy0, own0, sum(samples.wall_ms) / 1e3)
    throttled_after = device.throttled()
    runtime.close()
    return {
        "ok": True, "version": RESULT_VERSION, "runtime": info, "threads": job.get("threads", 1),
        "batch": int(job.get("batch", 1)), "load_ms": load_ms, "first_inference_ms": first_ms,
        "warmup_runs": warmups, "wall_ms": samples.wall_ms, "cpu_ms": samples.cpu_ms,
        "capped": samples.capped, "reference_wall_ms": samples.reference_wall_ms,
        "reference_cpu_ms": samples.reference_cpu_ms, **evaluated, "peak_rss_mb": device.peak_rss_mb(),
        "foreign_cores": foreign, "fingerprint": device.fingerprint(),
        "throttled": {"before": throttled_before, "after": throttled_after},
        "power": reading.to_dict() if reading else None,
    }


def _meter(spec: Any) -> Any:
    """Made before timing, so a misconfigured meter fails the job before minutes of sampling."""
    try:
        return power.make_meter(spec)
    except power.PowerMeterError as error:
        raise JobError("power", str(error)) from None


def _timed(meter: Any, run: Any, spec: Any) -> Tuple[Any, Any]:
    """The latency loop, inside the power meter's tracking when there is one (idle measured first)."""
    if meter is None:
        return run(), None
    try:
        return power.measure(meter, run, idle_s=float((spec or {}).get("idle_s", DEFAULT_IDLE_S)))
    except power.PowerMeterError as error:
        raise JobError("power", str(error)) from None


def _timed_load(runtime: Any, job: Dict[str, Any]) -> float:
    start = time.perf_counter()
    try:
        runtime.load(job["artifact"], threads=int(job.get("threads", 1)), options=job.get("options", {}))
    except ArtifactError as error:
        raise JobError("bad-artifact", f"cannot load {_basename(job['artifact'])}: {error}") from None
    return (time.perf_counter() - start) * 1e3


def _eval_batches(runtime: Any, job: Dict[str, Any]) -> Tuple[List[np.ndarray], int]:
    """Split the eval inputs into batches, padding the last one by repetition (outputs dropped)."""
    shape, dtype = runtime.input_spec()
    with np.load(job["inputs"]) as data:
        inputs = np.asarray(data["inputs"])
    count, batch = len(inputs), int(job.get("batch", 1))
    _check_shape(inputs.shape, shape, batch)
    if count % batch:
        inputs = np.concatenate([inputs, np.repeat(inputs[-1:], batch - count % batch, axis=0)])
    cast = inputs.astype(dtype, copy=False)
    return [np.ascontiguousarray(cast[i:i + batch]) for i in range(0, len(cast), batch)], count


def _check_shape(given: Tuple[int, ...], expected: Tuple[Any, ...], batch: int) -> None:
    want = (batch,) + tuple(given[1:])
    fits = len(want) == len(expected) and all(e is None or e == w for e, w in zip(expected, want))
    if not fits and expected and expected[0] not in (None, batch) and tuple(expected[1:]) == tuple(given[1:]):
        raise JobError("bad-input", f"the model file has a fixed batch of {expected[0]}: measure it with "
                                    f"batch={expected[0]}, or export it with that batch")
    if not fits:
        shown = tuple("?" if e is None else e for e in expected)
        raise JobError("bad-input", f"the model takes input shape {shown} but the eval data gives "
                                    f"{want} at batch {batch}{_layout_hint(want, expected)}")


def _layout_hint(given: Tuple[int, ...], expected: Tuple[Any, ...]) -> str:
    """NCHW data for an NHWC file (or the reverse) is the usual cause with .tflite models."""
    if len(given) != 4 or len(expected) != 4 or None in expected[1:]:
        return ""
    for order, hint in (((2, 3, 1), "NCHW and the model NHWC: pass x.transpose(0, 2, 3, 1)"),
                        ((3, 1, 2), "NHWC and the model NCHW: pass x.transpose(0, 3, 1, 2)")):
        if tuple(given[i] for i in order) == tuple(expected[1:]):
            return f"; the data looks {hint}"
    return ""


def _evaluate(runtime: Any, batches: List[np.ndarray]) -> Tuple[float, List[np.ndarray]]:
    start = time.perf_counter()
    try:
        outputs = [_checked(runtime.run(batches[0]))]
        first_ms = (time.perf_counter() - start) * 1e3
        outputs += [_checked(runtime.run(b)) for b in batches[1:]]
    except InputError as error:
        raise JobError("bad-input", f"inference failed: {error}") from None
    return first_ms, outputs


def _checked(output: np.ndarray) -> np.ndarray:
    array = np.asarray(output)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise JobError("bad-output", f"the model produced {bad} NaN/inf output values")
    return array


def _top_k(outputs: List[np.ndarray], count: int, k: int) -> List[List[int]]:
    """Top-k class indices per sample along the last axis (flattened per sample)."""
    flat = np.concatenate([o.reshape(o.shape[0], -1) for o in outputs])[:count].astype(np.float64)
    k = min(k, flat.shape[1])
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    return order.tolist()


def _head(outputs: List[np.ndarray], count: int) -> List[List[float]]:
    """The first outputs, so the host can compare runtimes value by value (parity); capped per
    sample so a segmentation map does not turn the result into hundreds of MB of JSON."""
    flat = np.concatenate([o.reshape(o.shape[0], -1) for o in outputs[:HEAD_SAMPLES]])
    return flat[:min(count, HEAD_SAMPLES), :HEAD_VALUES].astype(np.float32).tolist()


def _near_top1(outputs: List[np.ndarray], count: int, info: Dict[str, Any]) -> Any:
    """With quantized outputs, classes within one output step of the maximum are indistinguishable
    to the model; the host counts the reference top-1 among them as agreement, and says so."""
    step = info.get("output_step")
    if not step:
        return None
    flat = np.concatenate([o.reshape(o.shape[0], -1) for o in outputs])[:count]
    order = np.argsort(-flat, axis=1, kind="stable")[:, :NEAR_TOP_CAP]  # closest to the maximum first
    best = np.take_along_axis(flat, order, axis=1)
    near = best >= best[:, :1] - step * 1.001
    return [row[keep].tolist() for row, keep in zip(order, near)]


def _foreign_cores(busy0: Any, own0: float, wall_s: float) -> Any:
    busy1 = device.busy_cpu_seconds()
    if busy0 is None or busy1 is None or wall_s <= 0:
        return None
    foreign = (busy1 - busy0) - (time.process_time() - own0)
    return round(max(foreign, 0.0) / wall_s, 3)


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]
