"""Budgets: declared limits, checked one-sided (an improvement never fails), reported with numbers.

Three kinds: absolute (`max_storage_mb=5`), relative to the stored baseline
(`max_latency_regression="10%"`) and paired with the FP32 reference of the same session
(`max_latency_ratio_vs="fp32"`), which cancels the machine's speed. Latency is judged from
samples (measure/compare.py): pass, regressed or inconclusive; everything else is deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.measure.compare import (
    INCONCLUSIVE, PASS, REGRESSED, LatencyVerdict, choose_signal, judge_latency, parse_percent)
from pytest_edgeopt.measure.result import LatencyStats, Measurement
from pytest_edgeopt.optimize.precisions import PRECISIONS

# A stored baseline is one process from another time: unchanged models measured in separate
# processes here differed by up to 10%, so a regression must clear the limit by this much more
# before it counts (short of that it is inconclusive, never a silent pass).
STORED_MARGIN = 0.05
# Baseline files keep 6 decimals (baselines/entry.py): an unchanged top1 of 0.98055555 is stored
# as 0.980556, so comparisons with a stored value allow that rounding.
STORED_ROUNDING = 1e-6


@dataclass(frozen=True)
class Metric:
    attribute: str
    unit: str
    upper: bool  # True: the value must stay at or below the limit


ABSOLUTE: Dict[str, Metric] = {
    "max_accuracy_drop": Metric("accuracy_drop", "pp", True),
    "min_top1": Metric("top1", "", False),
    "min_agreement": Metric("agreement", "", False),
    "min_top5_agreement": Metric("top5_agreement", "", False),
    "max_size_mb": Metric("size_mb", "MB", True),
    "max_storage_mb": Metric("storage_mb", "MB", True),
    "max_params": Metric("params", "", True),
    "max_peak_rss_mb": Metric("peak_rss_mb", "MB", True),
    "max_latency_ms": Metric("latency_ms", "ms", True),
    "min_throughput": Metric("throughput", "inf/s", False),
    "max_energy_w": Metric("energy_w", "W", True),
    "max_energy_mj": Metric("energy_mj", "mJ/inf", True),
}
RELATIVE: Dict[str, Metric] = {  # limits are fractions of the baseline value ("10%")
    "max_latency_regression": Metric("latency_ms", "ms", True),
    "max_size_regression": Metric("size_mb", "MB", True),
    "max_storage_regression": Metric("storage_mb", "MB", True),
    "max_peak_rss_regression": Metric("peak_rss_mb", "MB", True),
}
POINT_REGRESSIONS: Dict[str, str] = {  # limits in percentage points below the baseline
    "max_top1_regression": "top1",
    "max_agreement_regression": "agreement",
}
PAIRED = ("max_latency_ratio_vs",)
BUDGET_NAMES: Tuple[str, ...] = tuple(ABSOLUTE) + tuple(RELATIVE) + tuple(POINT_REGRESSIONS) + PAIRED


class BudgetExceeded(EdgeOptError):
    """At least one budget is broken; the message lists every violation with its numbers."""


@dataclass(frozen=True)
class Violation:
    budget: str
    text: str

    def __str__(self) -> str:
        return f"{self.budget}: {self.text}"


@dataclass
class Judgement:
    """The outcome of the budgets on one measurement, as the table and reports show it."""

    verdict: str = "-"  # "-" (no budget), pass, regressed, inconclusive, fail
    violations: Tuple[str, ...] = ()
    latency: Optional[LatencyVerdict] = None
    baseline_latency_ms: Optional[float] = None
    baseline_note: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"verdict": self.verdict, "violations": list(self.violations),
                "latency": self.latency.to_dict() if self.latency else None,
                "baseline_latency_ms": self.baseline_latency_ms, "baseline_note": self.baseline_note}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Judgement":
        latency = LatencyVerdict.from_dict(data["latency"]) if data.get("latency") else None
        return cls(verdict=data["verdict"], violations=tuple(data["violations"]), latency=latency,
                   baseline_latency_ms=data.get("baseline_latency_ms"), baseline_note=data.get("baseline_note"))


@dataclass
class Row:
    """One measured case in the table: the measurement and what its budgets said (mutable: a
    test may call m.check(...) several times after measuring)."""

    measurement: Measurement
    judgement: Judgement = field(default_factory=Judgement)

    def merge(self, measurement: Measurement, judgement: Judgement) -> None:
        """Keep the worst verdict and every violation of all checks made on this row."""
        previous = self.judgement
        worst = max((previous, judgement), key=lambda j: _SEVERITY.get(j.verdict, 0))
        self.measurement = measurement
        self.judgement = Judgement(
            verdict=worst.verdict, violations=previous.violations + judgement.violations,
            latency=judgement.latency or previous.latency,
            baseline_latency_ms=judgement.baseline_latency_ms or previous.baseline_latency_ms,
            baseline_note=judgement.baseline_note or previous.baseline_note)

    def to_dict(self) -> Dict[str, Any]:
        return {"measurement": self.measurement.to_dict(), "judgement": self.judgement.to_dict()}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Row":
        return cls(measurement=Measurement.from_dict(data["measurement"]),
                   judgement=Judgement.from_dict(data["judgement"]))


_SEVERITY = {"-": 0, PASS: 1, INCONCLUSIVE: 2, REGRESSED: 3, "fail": 4}


@dataclass(frozen=True)
class Context:
    """What a check needs beyond the measurement itself."""

    baseline: Optional[Dict[str, Any]]  # the comparable stored entry, or None
    missing: Optional[str] = None  # "no baseline for ...": fails relative budgets
    note: Optional[str] = None  # why a stored entry is not compared (shown, never fails)
    reference: Optional[Callable[[str], Measurement]] = None  # precision -> same-session measurement
    remeasure: Optional[Callable[[], Measurement]] = None
    rerun_baseline: Optional[Callable[[], Optional[Measurement]]] = None  # the baseline's artifact, now
    attempts: int = 2


@dataclass
class Runs:
    """Agent processes behind one verdict: the current artifact's and, when the baseline's own
    artifact is still in the cache, that artifact measured now, interleaved (None: not tried)."""

    current: List[Measurement]
    baseline: Optional[List[Measurement]] = None

    @property
    def pooled(self) -> Measurement:
        return pooled(self.current)


def validate_budgets(budgets: Mapping[str, Any], *, where: str) -> Dict[str, Any]:
    """Reject unknown names and malformed values up front, naming where they came from."""
    unknown = sorted(set(budgets) - set(BUDGET_NAMES))
    if unknown:
        raise EdgeOptError(f"{where}: unknown budget {', '.join(unknown)}; known: {', '.join(BUDGET_NAMES)}")
    for name, value in budgets.items():
        try:
            _limit(name, value)
        except EdgeOptError as error:
            raise EdgeOptError(f"{where}: {error}") from None
    return dict(budgets)


def check(m: Measurement, budgets: Mapping[str, Any], context: Context) -> Tuple[Measurement, Judgement]:
    """Judge `m`; an inconclusive latency gets more processes (both sides) up to `attempts` times."""
    validate_budgets(budgets, where=f"{m.model} [{m.precision}]")
    runs = Runs(current=[m])
    judgement = _judge(runs, budgets, context)
    for _ in range(context.attempts):
        if judgement.verdict != INCONCLUSIVE or context.remeasure is None:
            break
        _measure_more(runs, context)
        judgement = _judge(runs, budgets, context)
    return runs.pooled, judgement


def raise_if_failed(m: Measurement, judgement: Judgement, *, inconclusive_fails: bool) -> None:
    failing = judgement.verdict in ("fail", REGRESSED) or (judgement.verdict == INCONCLUSIVE and inconclusive_fails)
    if failing:
        lines = "\n".join(f"  {v}" for v in judgement.violations)
        raise BudgetExceeded(f"{m.model} [{m.precision}, {m.runtime}] on {m.platform} broke "
                             f"{len(judgement.violations)} budget(s):\n{lines}")


def pooled(runs: Sequence[Measurement]) -> Measurement:
    """One measurement from several processes of the same artifact: all samples count."""
    first = runs[0]
    if len(runs) == 1:
        return first
    wall = tuple(s for r in runs for s in r.samples_ms)
    cpu = tuple(s for r in runs for s in r.cpu_samples_ms)
    return replace(first, samples_ms=wall, cpu_samples_ms=cpu, latency=LatencyStats.from_values(wall),
                   cpu_latency=LatencyStats.from_values(cpu),
                   reference_cpu_ms=tuple(s for r in runs for s in r.reference_cpu_ms),
                   reference_wall_ms=tuple(s for r in runs for s in r.reference_wall_ms))


def _measure_more(runs: Runs, context: Context) -> None:
    runs.current.append(context.remeasure())
    if runs.baseline:
        _append(runs.baseline, context.rerun_baseline())


def _append(measurements: List[Measurement], measured: Optional[Measurement]) -> None:
    """A baseline artifact re-run can fail (None); the runs that worked still count."""
    if measured is not None:
        measurements.append(measured)


def _judge(runs: Runs, budgets: Mapping[str, Any], context: Context) -> Judgement:
    m = runs.pooled
    violations: List[str] = []
    latency: Optional[LatencyVerdict] = None
    for name, value in budgets.items():
        found, verdict = _check_one(runs, m, name, value, context)
        violations += [f"{name}: {text}" for text in found]
        latency = verdict or latency
    violations += _parity_violations(m)
    if m.invalid:
        violations.append(f"invalid: {m.invalid}")
    base = context.baseline["latency"]["wall"]["median_ms"] if context.baseline else None
    return Judgement(verdict=_overall(violations, latency, bool(budgets) or bool(violations)),
                     violations=tuple(violations),
                     latency=latency, baseline_latency_ms=base, baseline_note=context.note)


def _parity_violations(m: Measurement) -> List[str]:
    """Not a budget a test opts into: a converted FP32 model that computes another function
    makes every number in its row meaningless."""
    if not m.parity or m.parity.get("ok", True):
        return []
    from pytest_edgeopt.measure.assemble import parity_text

    return [f"parity: {parity_text(m.parity)}"]


def _overall(violations: Sequence[str], latency: Optional[LatencyVerdict], any_budget: bool) -> str:
    if not any_budget:
        return "-"
    only_latency = latency is not None and all(v.startswith(("max_latency_regression", "max_latency_ratio_vs",
                                                             "max_latency_ms")) for v in violations)
    if violations and latency is not None and latency.verdict == INCONCLUSIVE and only_latency:
        return INCONCLUSIVE
    if violations:
        return REGRESSED if only_latency else "fail"
    return PASS


def _check_one(
    runs: Runs, m: Measurement, name: str, value: Any, context: Context
) -> Tuple[List[str], Optional[LatencyVerdict]]:
    """`m` is `runs` pooled: deterministic budgets read it, latency budgets read the processes."""
    if name == "max_latency_ms":
        return _absolute_latency(m, float(value))
    if name in ABSOLUTE:
        return _absolute(m, ABSOLUTE[name], float(value)), None
    if name == "max_latency_ratio_vs":
        return _versus_precision(runs, value, context)
    if context.baseline is None:
        return ([context.missing] if context.missing else []), None
    if name == "max_latency_regression":
        return _baseline_latency(runs, parse_percent(value, name=name), context)
    if name in RELATIVE:
        return _relative(m, RELATIVE[name], parse_percent(value, name=name), context.baseline), None
    return _points(m, POINT_REGRESSIONS[name], float(value), context.baseline), None


def _absolute(m: Measurement, metric: Metric, limit: float) -> List[str]:
    measured = getattr(m, metric.attribute)
    if measured is None and metric.attribute.startswith("energy"):
        return [f"{metric.attribute} is not available: the platform {m.platform} has no power meter "
                f"(set power = {{kind = ...}} in [tool.edgeopt.platforms.{m.platform}])"]
    if measured is None:
        return [f"{metric.attribute} is not available (the eval set has no labels): gate on agreement"]
    broken = measured > limit if metric.upper else measured < limit
    sign = "<=" if metric.upper else ">="
    unit = f" {metric.unit}" if metric.unit else ""
    return [f"measured {_fmt(measured)}{unit}, limit {sign} {_fmt(limit)}{unit}"] if broken else []


def _relative(m: Measurement, metric: Metric, fraction: float, baseline: Dict[str, Any]) -> List[str]:
    before, now = baseline["metrics"][metric.attribute], getattr(m, metric.attribute)
    if before is None or now is None:
        return []
    if now <= before * (1.0 + fraction) + STORED_ROUNDING:
        return []
    delta = (now / before - 1.0) * 100.0 if before else float("inf")
    return [f"measured {_fmt(now)} {metric.unit}, baseline {_fmt(before)} {metric.unit} ({delta:+.1f}%), "
            f"limit +{fraction * 100:g}%"]


def _points(m: Measurement, attribute: str, points: float, baseline: Dict[str, Any]) -> List[str]:
    before, now = baseline["metrics"].get(attribute), getattr(m, attribute)
    if before is None or now is None or before - now <= points / 100.0 + STORED_ROUNDING:
        return []
    return [f"measured {now * 100:.2f}%, baseline {before * 100:.2f}% ({(now - before) * 100:+.2f} pp), "
            f"limit -{points:g} pp"]


def _absolute_latency(m: Measurement, limit_ms: float) -> Tuple[List[str], Optional[LatencyVerdict]]:
    """Median wall latency against a fixed limit, with the median's bootstrap interval."""
    verdict = judge_latency([m.samples_ms], [[limit_ms]], limit=1.0, signal="wall")
    if verdict.verdict == PASS:
        return [], None
    return [f"median {m.latency.median_ms:.3f} ms (99% CI {verdict.low * limit_ms:.3f}..{verdict.high * limit_ms:.3f}), "
            f"limit <= {limit_ms:g} ms: {verdict.verdict}"], verdict


def _baseline_latency(runs: Runs, fraction: float, context: Context) -> Tuple[List[str], LatencyVerdict]:
    """Against the baseline's own artifact re-measured now when it is cached (machine drift
    cancels), else against the stored samples with a margin for between-process spread."""
    m = runs.current[0]
    signal = choose_signal(threads=m.threads, has_cpu_samples=bool(m.cpu_samples_ms))
    if runs.baseline is None:
        _start_pairing(runs, context)
    if runs.baseline:
        base_groups = [_signal(b, signal) for b in runs.baseline]
        label = f"{signal}, vs baseline artifact re-run"
        margin = 0.0
    else:
        base_groups = [context.baseline["samples"]["cpu_ms" if signal == "cpu" else "wall_ms"]]
        label, margin = f"{signal}, vs stored samples", STORED_MARGIN
    current = [_signal(r, signal) for r in runs.current]
    verdict = judge_latency(current, base_groups, limit=1.0 + fraction, signal=label, margin=margin)
    if not runs.baseline:
        verdict = _explained_by_machine(verdict, _machine_factor(runs, context.baseline), fraction)
    before, now = _median_of_medians(base_groups), _median_of_medians(current)
    texts = _latency_text(verdict, before, now, "baseline")
    if texts and not runs.baseline:
        texts = [texts[0] + _machine_speed(runs, context.baseline)]
    return texts, verdict


def _explained_by_machine(verdict: LatencyVerdict, factor: Optional[float], fraction: float) -> LatencyVerdict:
    """Against stored samples only: when the fixed reference workload slowed down too, by more
    than half the allowed regression and enough to explain it, the machine (a busier VM, another
    CPU) is as likely a cause as the model, so the verdict is inconclusive, not a failure.
    Seen here: one 2-core VM ran every model, and the reference workload, 2x faster on one day."""
    if verdict.verdict != REGRESSED or factor is None or factor < 1.0 + fraction / 2:
        return verdict
    if verdict.low / factor > 1.0 + fraction:  # slower even after the machine's share is taken out
        return verdict
    return replace(verdict, verdict=INCONCLUSIVE)


def _machine_factor(runs: Runs, baseline: Dict[str, Any]) -> Optional[float]:
    stored = baseline["samples"].get("reference_ms") or []
    now = [s for r in runs.current for s in r.reference_cpu_ms]
    if not stored or not now:
        return None
    return float(np.median(now) / np.median(stored))


def _machine_speed(runs: Runs, baseline: Dict[str, Any]) -> str:
    """The fixed reference workload timed beside the model, now vs at baseline time: a hint
    whether the machine or the model changed when only stored samples could be compared."""
    factor = _machine_factor(runs, baseline)
    if factor is None:
        return ""
    return f"; the reference workload ran {(factor - 1) * 100:+.1f}% vs baseline time"


def _start_pairing(runs: Runs, context: Context) -> None:
    """A B A B: the baseline artifact, the current one again, the baseline again."""
    first = context.rerun_baseline() if context.rerun_baseline else None
    if first is None:
        runs.baseline = []
        return
    runs.baseline = [first]
    if context.remeasure is not None:
        runs.current.append(context.remeasure())
        _append(runs.baseline, context.rerun_baseline())


def _versus_precision(runs: Runs, value: Any, context: Context) -> Tuple[List[str], Optional[LatencyVerdict]]:
    """The in-run paired gate: this precision against another one measured in this session."""
    m = runs.current[0]
    target, ratio = (value, 1.0) if isinstance(value, str) else next(iter(dict(value).items()))
    if context.reference is None or target == m.precision:
        return [], None
    other = context.reference(target)
    signal = choose_signal(threads=m.threads, has_cpu_samples=bool(m.cpu_samples_ms and other.cpu_samples_ms))
    current, theirs = [_signal(r, signal) for r in runs.current], [_signal(other, signal)]
    verdict = judge_latency(current, theirs, limit=float(ratio), signal=f"{signal}, vs {target}")
    return _latency_text(verdict, _median_of_medians(theirs), _median_of_medians(current), target), verdict


def _signal(m: Measurement, signal: str) -> Tuple[float, ...]:
    return m.cpu_samples_ms if signal == "cpu" else m.samples_ms


def _median_of_medians(groups: Sequence[Sequence[float]]) -> float:
    return float(np.median([np.median(g) for g in groups]))


def _latency_text(verdict: LatencyVerdict, before: float, now: float, against: str) -> List[str]:
    if verdict.verdict == PASS:
        return []
    return [f"{now:.3f} ms vs {against} {before:.3f} ms ({verdict.signal}, {verdict.processes} process(es)): "
            f"ratio {verdict.ratio:.3f} (99% CI {verdict.low:.3f}..{verdict.high:.3f}), limit {verdict.limit:.3f}: "
            f"{verdict.verdict}"]


def _limit(name: str, value: Any) -> float:
    if name == "max_latency_ratio_vs":
        return _ratio_limit(value)
    try:
        return parse_percent(value, name=name) if name in RELATIVE else float(value)
    except (TypeError, ValueError) as error:
        raise EdgeOptError(str(error) if name in RELATIVE else f"{name}={value!r}: expected a number") from None


def _ratio_limit(value: Any) -> float:
    """'fp32' or {'fp32': 0.8}: a precision this plugin knows and a ratio above zero."""
    usage = f"max_latency_ratio_vs={value!r}: expected a precision name like 'fp32' or {{'fp32': 0.8}}"
    if isinstance(value, str):
        target, ratio = value, 1.0
    elif isinstance(value, Mapping) and len(value) == 1:
        target, ratio = next(iter(value.items()))
    else:
        raise EdgeOptError(usage)
    if target not in PRECISIONS:
        raise EdgeOptError(f"max_latency_ratio_vs: unknown precision {target!r}; choose from {', '.join(PRECISIONS)}")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
        raise EdgeOptError(f"{usage}; the ratio must be a number above 0, got {ratio!r}")
    return float(ratio)


def _fmt(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"
