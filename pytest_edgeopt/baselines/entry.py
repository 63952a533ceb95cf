"""A baseline entry: one measured case as stored in git, and what makes two comparable.

Samples are stored (thinned, rounded to 0.1 us) because the latency verdict is a statistical test
against them; the fingerprint is split into facts that must match for a comparison to mean
anything and facts that are only informative (a changed artifact is exactly what the gate judges).
"""
from __future__ import annotations

import datetime as _dt
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

import pytest_edgeopt
from pytest_edgeopt.measure.result import Measurement

MAX_STORED_SAMPLES = 400
MUST_MATCH = ("platform", "arch", "cpu_model", "runtime", "runtime_version", "threads", "precision")
DETERMINISTIC = ("params", "size_mb", "storage_mb", "gflops", "top1", "agreement", "top5_agreement", "eval_count")


def case_key(nodeid: str, m: Measurement) -> str:
    """`test_x[digits-cnn-int8]::digits-cnn/int8/onnxruntime/b1`: a test may measure many cases."""
    return f"{test_name(nodeid)}::{m.model}/{m.precision}/{m.runtime}/b{m.batch}"


def test_name(nodeid: str) -> str:
    return nodeid.split("::", 1)[1] if "::" in nodeid else nodeid


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def must_match(m: Measurement) -> Dict[str, Any]:
    runtime = m.fingerprint.get("runtime", {})
    return {"platform": m.platform, "arch": m.fingerprint.get("arch"), "cpu_model": m.fingerprint.get("cpu_model"),
            "runtime": m.runtime, "runtime_version": runtime.get("version", m.runtime_version),
            "threads": m.threads, "precision": m.precision}


def entry_from_measurement(m: Measurement, *, reason: Optional[str] = None) -> Dict[str, Any]:
    return {
        "metrics": _metrics(m),
        "latency": {"wall": _rounded(m.latency.to_dict()), "cpu": _rounded(m.cpu_latency.to_dict())},
        "samples": {"wall_ms": _stored(m.samples_ms), "cpu_ms": _stored(m.cpu_samples_ms),
                    "reference_ms": _stored(m.reference_cpu_ms)},
        "fingerprint": {"must_match": must_match(m), "info": _info(m)},
        "provenance": {"date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
                       "commit": git_commit(), "reason": reason},
    }


def mismatch_reason(entry: Dict[str, Any], m: Measurement) -> Optional[str]:
    """Why the stored entry cannot be compared with `m`, or None when it can."""
    stored, now = entry["fingerprint"]["must_match"], must_match(m)
    diffs = [f"{key} {stored.get(key)!r} -> {now.get(key)!r}" for key in MUST_MATCH if stored.get(key) != now.get(key)]
    return f"baseline measured under a different {', '.join(diffs)}" if diffs else None


def changed(old: Dict[str, Any], new: Dict[str, Any], *, latency_tolerance: float = 0.03) -> bool:
    """Worth rewriting: deterministic metrics, the fingerprint or the artifact moved, or latency
    moved by more than the tolerance (rewriting every entry on noise would bury real diffs)."""
    if any(old["metrics"].get(k) != new["metrics"].get(k) for k in DETERMINISTIC):
        return True
    if old["fingerprint"]["must_match"] != new["fingerprint"]["must_match"]:
        return True
    if old["fingerprint"]["info"].get("artifact_sha") != new["fingerprint"]["info"].get("artifact_sha"):
        return True
    ratio = new["latency"]["cpu"]["median_ms"] / max(old["latency"]["cpu"]["median_ms"], 1e-9)
    return abs(ratio - 1.0) > latency_tolerance


def _metrics(m: Measurement) -> Dict[str, Any]:
    return _rounded({
        "model": m.model, "precision": m.precision, "bitwidth": m.bitwidth, "runtime": m.runtime,
        "batch": m.batch, "params": m.params, "size_mb": m.size_mb, "storage_mb": m.storage_mb,
        "gflops": m.gflops, "top1": m.top1, "agreement": m.agreement, "top5_agreement": m.top5_agreement,
        "eval_count": m.eval_count, "peak_rss_mb": m.peak_rss_mb, "latency_ms": m.latency_ms,
        "throughput": m.throughput, "load_ms": m.load_ms, "first_inference_ms": m.first_inference_ms,
    })


def _info(m: Measurement) -> Dict[str, Any]:
    return {"artifact_sha": m.artifact_sha, "host": m.fingerprint.get("hostname"), "device": m.device,
            "python": m.fingerprint.get("python"), "plugin_version": pytest_edgeopt.__version__,
            "git_commit": git_commit(), "cpu_flags": m.fingerprint.get("cpu_flags")}


def _rounded(values: Dict[str, Any]) -> Dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}


def _stored(samples: Sequence[float]) -> List[float]:
    if len(samples) > MAX_STORED_SAMPLES:
        index = np.linspace(0, len(samples) - 1, MAX_STORED_SAMPLES).astype(int)
        samples = [samples[i] for i in index]
    return [round(float(s), 4) for s in samples]


@lru_cache(maxsize=1)
def git_commit() -> Optional[str]:
    try:
        done = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              timeout=5, cwd=Path.cwd())
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
