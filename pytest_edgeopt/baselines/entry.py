"""A baseline entry: one measured case as stored in git, and what makes two comparable.

Samples are stored (thinned, rounded to 0.1 us) because the latency verdict is a statistical test
against them; the fingerprint is split into facts that must match for a comparison to mean
anything and facts that are only informative (a changed artifact is exactly what the gate judges).
The file format is the schema's (schemas/baseline.schema.json); these dataclasses read and write
exactly that, so files written before they existed load unchanged.
"""

from __future__ import annotations

import datetime as _dt
import subprocess
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

import pytest_edgeopt
from pytest_edgeopt.agent.contract import DeviceFacts
from pytest_edgeopt.kinds import Note, NoteKind
from pytest_edgeopt.measure.diagnosis import OpSummary, summary
from pytest_edgeopt.measure.registry import BY_ID, Noise, Stored, stored_ids
from pytest_edgeopt.measure.result import MEASURED_FIELDS, LatencyStats, Measurement
from pytest_edgeopt.runtimes.base import RuntimeInfo

MAX_STORED_SAMPLES = 400
MUST_MATCH = ("platform", "arch", "cpu_model", "runtime", "runtime_version", "threads", "precision")
# what a rewrite compares exactly: the registry's deterministic stored metrics, and which are estimates
DETERMINISTIC = tuple(m for m in stored_ids() if BY_ID[m].noise == Noise.DETERMINISTIC) + ("estimates",)
Fact = Union[str, int, None]
Number = Union[int, float, None]


@dataclass(frozen=True)
class StoredMetrics:
    """The case's identity and the registry's stored metrics (measure/registry.py) by id."""

    model: str
    precision: str
    bitwidth: str
    runtime: str
    batch: int
    values: Dict[str, Number]  # None: not measured (n/a), e.g. top1 without labels
    estimates: Tuple[str, ...] = ()  # the metrics that are estimates (latency_ms on an MCU)

    def value(self, name: str) -> Optional[float]:
        """A metric by the Measurement attribute of the same name (budgets are declared that way)."""
        value = self.values.get(name)
        return None if value is None else float(value)

    def __getattr__(self, name: str) -> Number:
        """`entry.metrics.top1`: a stored metric by name, as the file spells it."""
        if name in BY_ID and BY_ID[name].stored != Stored.NEVER:
            return self.__dict__["values"].get(name)  # type: ignore[no-any-return]
        raise AttributeError(name)

    def to_dict(self) -> Dict[str, Any]:
        """The file's `metrics`: the MCU-only metrics only where they exist, so other files do not change."""
        identity = {"model": self.model, "precision": self.precision, "bitwidth": self.bitwidth}
        values = {
            name: self.values.get(name)
            for name in stored_ids()
            if BY_ID[name].stored == Stored.ALWAYS or self.values.get(name) is not None
        }
        estimates = {"estimates": list(self.estimates)} if self.estimates else {}
        return {**_rounded({**identity, "runtime": self.runtime, "batch": self.batch, **values}), **estimates}

    @classmethod
    def from_dict(cls, metrics: Mapping[str, Any]) -> "StoredMetrics":
        return cls(
            model=metrics["model"],
            precision=metrics["precision"],
            bitwidth=metrics["bitwidth"],
            runtime=metrics["runtime"],
            batch=metrics["batch"],
            values={name: metrics.get(name) for name in stored_ids()},
            estimates=tuple(metrics.get("estimates", ())),
        )


@dataclass(frozen=True)
class StoredSamples:
    wall_ms: Tuple[float, ...]
    cpu_ms: Tuple[float, ...]
    reference_ms: Tuple[float, ...] = ()  # the reference workload's CPU time, beside the model


@dataclass(frozen=True)
class Provenance:
    date: str
    commit: Optional[str] = None
    reason: Optional[str] = None


@dataclass(frozen=True)
class BaselineEntry:
    metrics: StoredMetrics
    wall: LatencyStats
    cpu: LatencyStats
    samples: StoredSamples
    must_match: Dict[str, Fact]
    info: Dict[str, object] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=lambda: Provenance(date=""))
    op_summary: Optional[OpSummary] = None  # per-op kernel ms and nodes, when a profiled pass was made

    @property
    def artifact_sha(self) -> Optional[str]:
        sha = self.info.get("artifact_sha")
        return sha if isinstance(sha, str) else None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "metrics": self.metrics.to_dict(),
            "latency": {"wall": _rounded(self.wall.to_dict()), "cpu": _rounded(self.cpu.to_dict())},
            "samples": {
                "wall_ms": list(self.samples.wall_ms),
                "cpu_ms": list(self.samples.cpu_ms),
                "reference_ms": list(self.samples.reference_ms),
            },
            "fingerprint": {"must_match": dict(self.must_match), "info": dict(self.info)},
            "provenance": asdict(self.provenance),
            **({"op_profile": _stored_ops(self.op_summary)} if self.op_summary else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BaselineEntry":
        """From a schema-valid entry (the store validates before it gets here)."""
        metrics = data["metrics"]
        samples, fingerprint, provenance = data["samples"], data["fingerprint"], data["provenance"]
        return cls(
            metrics=StoredMetrics.from_dict(metrics),
            wall=LatencyStats.from_dict(data["latency"]["wall"]),
            cpu=LatencyStats.from_dict(data["latency"]["cpu"]),
            samples=StoredSamples(
                wall_ms=tuple(samples["wall_ms"]),
                cpu_ms=tuple(samples["cpu_ms"]),
                reference_ms=tuple(samples.get("reference_ms", ())),
            ),
            must_match={key: fingerprint["must_match"].get(key) for key in MUST_MATCH},
            info=dict(fingerprint["info"]),
            provenance=Provenance(
                date=provenance["date"], commit=provenance.get("commit"), reason=provenance.get("reason")
            ),
            op_summary=_read_ops(data.get("op_profile")),
        )


def _stored_ops(ops: OpSummary) -> Dict[str, Any]:
    """`{"ops": {"Conv": [0.8123, 3]}}`: ms per inference and node count, slowest first (compact: no nodes)."""
    ordered = sorted(ops.items(), key=lambda item: -item[1][0])
    return {"ops": {op: [round(ms, 6), nodes] for op, (ms, nodes) in ordered}}


def _read_ops(data: Optional[Mapping[str, Any]]) -> Optional[OpSummary]:
    if not data:
        return None
    return {str(op): (float(pair[0]), int(pair[1])) for op, pair in data["ops"].items()}


def stored_measurement(entry: BaselineEntry, *, nodeid: str, note: str) -> Measurement:
    """The stored case as a Measurement the table renders (`python -m pytest_edgeopt table`): what
    the file keeps; what it does not (energy, the quantization's exact types) stays empty."""
    metrics, facts = entry.metrics, entry.must_match
    runtime_version = str(facts.get("runtime_version") or "")
    return Measurement.from_values(
        model=metrics.model,
        precision=metrics.precision,
        bitwidth=metrics.bitwidth,
        quantization={},
        runtime=metrics.runtime,
        runtime_version=runtime_version,
        platform=str(facts.get("platform") or ""),
        device=str(entry.info.get("device") or facts.get("cpu_model") or ""),
        compute_unit="",
        batch=metrics.batch,
        threads=int(facts.get("threads") or 1),
        latency=entry.wall,
        cpu_latency=entry.cpu,
        reference_top1=None,
        artifact_sha=entry.artifact_sha or "",
        facts=DeviceFacts(arch=str(facts.get("arch") or ""), cpu_model=str(facts.get("cpu_model") or "")),
        runtime_info=RuntimeInfo(name=metrics.runtime, version=runtime_version),
        estimates=metrics.estimates,
        **{name: value for name, value in metrics.values.items() if name in MEASURED_FIELDS},
        notes=(Note(NoteKind.BASELINE, note),),
        nodeid=nodeid,
    )


def case_key(nodeid: str, m: Measurement) -> str:
    """`test_x[digits-cnn-int8]::digits-cnn/int8/onnxruntime/b1`: a test may measure many cases."""
    return key_of(nodeid, model=m.model, precision=m.precision, runtime=m.runtime, batch=m.batch)


def key_of(nodeid: str, *, model: str, precision: str, runtime: str, batch: int) -> str:
    return f"{test_name(nodeid)}::{model}/{precision}/{runtime}/b{batch}"


def test_name(nodeid: str) -> str:
    return nodeid.split("::", 1)[1] if "::" in nodeid else nodeid


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def must_match(m: Measurement) -> Dict[str, Fact]:
    return {
        "platform": m.platform,
        "arch": m.facts.arch,
        "cpu_model": m.facts.cpu_model,
        "runtime": m.runtime,
        "runtime_version": m.runtime_info.version or m.runtime_version,
        "threads": m.threads,
        "precision": m.precision,
    }


def entry_from_measurement(m: Measurement, *, reason: Optional[str] = None) -> BaselineEntry:
    return BaselineEntry(
        metrics=_metrics(m),
        wall=m.latency,
        cpu=m.cpu_latency,
        samples=StoredSamples(
            wall_ms=_stored(m.samples_ms), cpu_ms=_stored(m.cpu_samples_ms), reference_ms=_stored(m.reference_cpu_ms)
        ),
        must_match=must_match(m),
        info=_info(m),
        provenance=Provenance(
            date=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            commit=git_commit(),
            reason=reason,
        ),
        op_summary=summary(m.op_profile),
    )


def mismatch_reason(entry: BaselineEntry, m: Measurement) -> Optional[str]:
    """Why the stored entry cannot be compared with `m`, or None when it can."""
    stored, now = entry.must_match, must_match(m)
    diffs = [f"{key} {stored.get(key)!r} -> {now.get(key)!r}" for key in MUST_MATCH if stored.get(key) != now.get(key)]
    isa = _isa_change(entry, m)
    if isa:
        diffs.append(isa)
    was, now_estimated = "latency_ms" in entry.metrics.estimates, "latency_ms" in m.estimates
    if was != now_estimated:  # a board runner timed it, or a simulation estimated it
        diffs.append(f"latency {_kind(was)} -> {_kind(now_estimated)}")
    return f"baseline measured under a different {', '.join(diffs)}" if diffs else None


def _isa_change(entry: BaselineEntry, m: Measurement) -> Optional[str]:
    """The vector ISA the kernels pick (AVX2 vs AVX-512/VNNI, NEON dot product) moves every latency,
    INT8's most, while the CPU model string may not: a VM says "AMD EPYC" for an AVX2 part and an
    AVX-512 one alike. Entries that recorded no flags are compared on the rest."""
    stored = entry.info.get("cpu_flags")
    if not isinstance(stored, list) or not stored or not m.facts.cpu_flags:
        return None
    before, after = sorted(str(f) for f in stored), sorted(m.facts.cpu_flags)
    if before == after:
        return None
    return f"CPU flags {' '.join(before)} -> {' '.join(after)}"


def _kind(estimated: bool) -> str:
    return "estimated" if estimated else "measured"


def changed(old: BaselineEntry, new: BaselineEntry, *, latency_tolerance: float = 0.03) -> bool:
    """Worth rewriting: deterministic metrics, the fingerprint or the artifact moved, or latency
    moved by more than the tolerance (rewriting every entry on noise would bury real diffs)."""
    before, after = old.metrics.to_dict(), new.metrics.to_dict()
    if any(before.get(k) != after.get(k) for k in DETERMINISTIC):
        return True
    if old.must_match != new.must_match or old.artifact_sha != new.artifact_sha:
        return True
    if new.op_summary and not old.op_summary:  # --update-baselines --edge-profile adds the per-op summary
        return True
    ratio = new.cpu.median_ms / max(old.cpu.median_ms, 1e-9)
    return abs(ratio - 1.0) > latency_tolerance


def _metrics(m: Measurement) -> StoredMetrics:
    return StoredMetrics(
        model=m.model,
        precision=m.precision,
        bitwidth=m.bitwidth,
        runtime=m.runtime,
        batch=m.batch,
        values={name: getattr(m, name) for name in stored_ids()},
        estimates=m.estimates,
    )


def _info(m: Measurement) -> Dict[str, object]:
    return {
        "artifact_sha": m.artifact_sha,
        "host": m.facts.hostname,
        "device": m.device,
        "python": m.facts.python,
        "plugin_version": pytest_edgeopt.__version__,
        "git_commit": git_commit(),
        "cpu_flags": list(m.facts.cpu_flags),
        **({"kept_float": list(m.kept_float), "search_key": m.search_key} if m.search_key else {}),
    }


def _rounded(values: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}


def _stored(samples: Sequence[float]) -> Tuple[float, ...]:
    if len(samples) > MAX_STORED_SAMPLES:
        index = np.linspace(0, len(samples) - 1, MAX_STORED_SAMPLES).astype(int)
        samples = [samples[i] for i in index]
    return tuple(round(float(s), 4) for s in samples)


@lru_cache(maxsize=1)
def git_commit() -> Optional[str]:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path.cwd()
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
