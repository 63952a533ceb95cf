"""What judging produces and needs: the Row (a measured case in the table), its Judgement, and
the Context a check is made in. Neutral types, so the report and the session share them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from pytest_edgeopt.baselines.entry import BaselineEntry
from pytest_edgeopt.errors import BudgetExceeded as BudgetExceeded  # defined in errors.py, importable here as before
from pytest_edgeopt.judge.fit import FitLimits
from pytest_edgeopt.kinds import Verdict
from pytest_edgeopt.measure.compare import LatencyVerdict
from pytest_edgeopt.measure.result import Measurement, PairedComparison


@dataclass
class Judgement:
    """The outcome of the budgets on one measurement, as the table and reports show it."""

    verdict: Verdict = Verdict.NONE
    violations: Tuple[str, ...] = ()
    latency: Optional[LatencyVerdict] = None
    baseline_latency_ms: Optional[float] = None
    baseline_note: Optional[str] = None
    unchecked: Tuple[str, ...] = ()  # budgets that could not be compared, with why (never a silent pass)
    limits: Dict[str, float] = field(default_factory=dict)  # the absolute budgets checked: the plot's limit lines
    diagnosis: Tuple[str, ...] = ()  # a regressed latency: the per-op profile's top changes

    def __post_init__(self) -> None:
        self.verdict = Verdict(self.verdict)  # "fail" written by hand is Verdict.FAIL

    def to_dict(self) -> Dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "violations": list(self.violations),
            "latency": self.latency.to_dict() if self.latency else None,
            "baseline_latency_ms": self.baseline_latency_ms,
            "baseline_note": self.baseline_note,
            "unchecked": list(self.unchecked),
            "limits": dict(self.limits),
            "diagnosis": list(self.diagnosis),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Judgement":
        latency = LatencyVerdict.from_dict(data["latency"]) if data.get("latency") else None
        return cls(
            verdict=Verdict(data["verdict"]),
            violations=tuple(data["violations"]),
            latency=latency,
            baseline_latency_ms=data.get("baseline_latency_ms"),
            baseline_note=data.get("baseline_note"),
            unchecked=tuple(data.get("unchecked", ())),
            limits={str(k): float(v) for k, v in data.get("limits", {}).items()},
            diagnosis=tuple(data.get("diagnosis", ())),
        )


@dataclass
class Row:
    """One measured case in the table: the measurement and what its budgets said (mutable: a
    test may call m.check(...) several times after measuring)."""

    measurement: Measurement
    judgement: Judgement = field(default_factory=Judgement)

    def merge(self, measurement: Measurement, judgement: Judgement) -> None:
        """Keep the worst verdict and every violation of all checks made on this row."""
        previous = self.judgement
        worst = max((previous, judgement), key=lambda j: j.verdict.severity)
        self.measurement = measurement
        self.judgement = Judgement(
            verdict=worst.verdict,
            violations=previous.violations + judgement.violations,
            latency=judgement.latency or previous.latency,
            baseline_latency_ms=judgement.baseline_latency_ms or previous.baseline_latency_ms,
            baseline_note=judgement.baseline_note or previous.baseline_note,
            unchecked=tuple(dict.fromkeys(previous.unchecked + judgement.unchecked)),
            limits={**previous.limits, **judgement.limits},
            diagnosis=judgement.diagnosis or previous.diagnosis,
        )

    @property
    def passed(self) -> bool:
        return self.judgement.verdict in (Verdict.NONE, Verdict.PASS, Verdict.INCONCLUSIVE)

    def to_dict(self) -> Dict[str, Any]:
        return {"measurement": self.measurement.to_dict(), "judgement": self.judgement.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Row":
        return cls(
            measurement=Measurement.from_dict(data["measurement"]), judgement=Judgement.from_dict(data["judgement"])
        )


@dataclass(frozen=True)
class Context:
    """What a check needs beyond the measurement itself."""

    baseline: Optional[BaselineEntry]  # the stored entry, or None
    missing: Optional[str] = None  # "no baseline for ...": fails relative budgets
    note: Optional[str] = None  # shown under the table (why an entry is not compared, or rewritten)
    mismatch: Optional[str] = None  # why machine-dependent budgets cannot be compared with `baseline`
    mismatch_fails: bool = False  # --edge-fingerprint-mismatch=fail: not comparing fails the test
    reference: Optional[Callable[[str], Measurement]] = None  # precision -> same-session measurement
    remeasure: Optional[Callable[[], Measurement]] = None
    pair_baseline: Optional[Callable[[float], Optional[PairedComparison]]] = None  # limit -> vs baseline artifact
    pair_reference: Optional[Callable[[str, float], Optional[PairedComparison]]] = None  # precision, ratio
    attempts: int = 2
    fit: Optional[FitLimits] = None  # a microcontroller's SRAM and flash, checked on every row
