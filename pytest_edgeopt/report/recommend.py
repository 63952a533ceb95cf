"""What to deploy: per model and platform, the fastest and the smallest runtime x precision whose
case passed every budget, with its latency, size and accuracy against FP32.

Pure: rows in, recommendations out. Rows that failed, regressed or stayed inconclusive are never
chosen; rows with no budget count (nothing they were asked was broken), and the line says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pytest_edgeopt.judge.types import Row
from pytest_edgeopt.kinds import Verdict
from pytest_edgeopt.measure.result import Measurement, measured_value
from pytest_edgeopt.optimize.precisions import REFERENCE

_CHOSEN = (Verdict.PASS, Verdict.NONE)


@dataclass(frozen=True)
class Choice:
    """One configuration to ship, against the FP32 row of the same model and platform."""

    runtime: str
    precision: str
    bitwidth: str
    latency_ms: float
    size_mb: float
    latency_vs_fp32: Optional[float]  # this latency over FP32's (same runtime when measured)
    size_vs_fp32: Optional[float]
    accuracy: str  # "top-1 -0.3 pp", "metric -1.2 %", "agreement 99.1 %", or "" when nothing says
    judged: bool  # False: no budget applied to this row

    def describe(self) -> str:
        speed = f" ({self.latency_vs_fp32:.2f}x FP32)" if self.latency_vs_fp32 is not None else ""
        size = f" ({self.size_vs_fp32:.2f}x FP32)" if self.size_vs_fp32 is not None else ""
        parts = [f"{self.latency_ms:.3g} ms{speed}", f"{self.size_mb:.3g} MB{size}"]
        if self.accuracy:
            parts.append(self.accuracy)
        unjudged = "; no budget applied" if not self.judged else ""
        return f"{self.precision} on {self.runtime} [{self.bitwidth}]: {', '.join(parts)}{unjudged}"


@dataclass(frozen=True)
class Recommendation:
    model: str
    platform: str
    fastest: Choice
    smallest: Choice

    def line(self) -> str:
        same = self.smallest == self.fastest
        smallest = "the same" if same else self.smallest.describe()
        return f"{self.model} on {self.platform}: fastest {self.fastest.describe()}; smallest {smallest}"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def recommend(rows: Sequence[Row]) -> List[Recommendation]:
    """One recommendation per (model, platform) that has a row which passed; in the rows' order."""
    groups: Dict[Tuple[str, str], List[Row]] = {}
    for row in rows:
        m = row.measurement
        groups.setdefault((m.model, m.platform), []).append(row)
    out = []
    for (model, platform), group in groups.items():
        passed = [r for r in group if r.judgement.verdict in _CHOSEN and not r.measurement.invalid]
        if not passed:
            continue
        fp32 = [r.measurement for r in group if r.measurement.precision == REFERENCE]
        choices = [_choice(r, fp32) for r in passed]
        fastest = min(choices, key=lambda c: (c.latency_ms, c.size_mb))
        smallest = min(choices, key=lambda c: (c.size_mb, c.latency_ms))
        out.append(Recommendation(model, platform, fastest, smallest))
    return out


def recommendation_lines(rows: Sequence[Row]) -> List[str]:
    return [r.line() for r in recommend(rows)]


def _choice(row: Row, fp32: Sequence[Measurement]) -> Choice:
    m = row.measurement
    base = _reference(m, fp32)
    latency_ratio = m.latency_ms / base.latency_ms if base is not None and base.latency_ms else m.latency_ratio
    size_ratio = m.size_mb / base.size_mb if base is not None and base.size_mb else m.size_ratio
    return Choice(
        runtime=m.runtime,
        precision=m.precision,
        bitwidth=m.bitwidth,
        latency_ms=m.latency_ms,
        size_mb=m.size_mb,
        latency_vs_fp32=latency_ratio,
        size_vs_fp32=size_ratio,
        accuracy=_accuracy(m),
        judged=row.judgement.verdict == Verdict.PASS,
    )


def _reference(m: Measurement, fp32: Sequence[Measurement]) -> Optional[Measurement]:
    """The FP32 row on the same runtime, else any FP32 row of the model on this platform."""
    same = [f for f in fp32 if f.runtime == m.runtime]
    chosen = same or list(fp32)
    return chosen[0] if chosen else None


def _signed(change: float) -> str:
    """+1.25; no change is +0.00, never -0.00 (an F1 equal to FP32's printed as a loss)."""
    return f"{round(change, 2) + 0.0:+.2f}"


def _accuracy(m: Measurement) -> str:
    """Against FP32, by the strongest signal the row has."""
    if m.precision == REFERENCE:
        return "the FP32 reference"
    drop = measured_value(m, "accuracy_drop")
    if drop is not None:
        return f"top-1 {_signed(-drop)} pp vs FP32"
    metric = measured_value(m, "metric_drop")
    if metric is not None:
        return f"{m.metric_name or 'metric'} {_signed(-metric)} % vs FP32"
    if m.agreement is not None:
        return f"agreement {m.agreement * 100:.1f} % with FP32"
    sqnr = m.min_sqnr_db
    return f"SQNR {sqnr:.1f} dB vs FP32" if sqnr is not None else ""
