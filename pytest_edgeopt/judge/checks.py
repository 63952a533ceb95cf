"""Judge a measurement against its budgets: one-sided (an improvement never fails), reported with
numbers. Deterministic metrics are compared exactly; latency is judged from samples
(judge/latency.py) and an inconclusive latency gets more agent processes before the verdict."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from pytest_edgeopt.baselines.entry import BaselineEntry
from pytest_edgeopt.errors import BudgetExceeded
from pytest_edgeopt.judge import latency
from pytest_edgeopt.judge.budgets import (
    ABSOLUTE,
    LATENCY_BUDGETS,
    MACHINE_DEPENDENT,
    POINT_REGRESSIONS,
    RELATIVE,
    Budgets,
    Metric,
    validate_budgets,
)
from pytest_edgeopt.judge.fit import fit_problems
from pytest_edgeopt.judge.latency import Found, Runs, invalid_runs
from pytest_edgeopt.judge.types import Context, Judgement
from pytest_edgeopt.judge.validity import row_problems
from pytest_edgeopt.kinds import Verdict
from pytest_edgeopt.measure.compare import LatencyVerdict, parse_percent
from pytest_edgeopt.measure.diagnosis import diagnosis_lines, summary
from pytest_edgeopt.measure.registry import BY_ID
from pytest_edgeopt.measure.result import Measurement

# Baseline files keep 6 decimals (baselines/entry.py): an unchanged top1 of 0.98055555 is stored
# as 0.980556, so comparisons with a stored value allow that rounding.
STORED_ROUNDING = 1e-6
# below this share of its weights and compute at the precision's types, a derived row fails by default
DEFAULT_MIN_QUANTIZED_SHARE = 0.1


def check(m: Measurement, budgets: Budgets, context: Context) -> Tuple[Measurement, Judgement]:
    """Judge `m`; an inconclusive latency gets more processes (both sides) up to `attempts` times."""
    validate_budgets(budgets, where=f"{m.model} [{m.precision}]")
    runs = Runs(current=[m])
    judgement = _judge(runs, budgets, context)
    for _ in range(context.attempts):
        paired = judgement.latency is not None and judgement.latency.pairs > 0  # sequential: already sampled to its cap
        if judgement.verdict != Verdict.INCONCLUSIVE or context.remeasure is None or paired:
            break
        runs.measure_more(context)
        judgement = _judge(runs, budgets, context)
    return runs.pooled, judgement


def raise_if_failed(m: Measurement, judgement: Judgement, *, inconclusive_fails: bool) -> None:
    failing = judgement.verdict in (Verdict.FAIL, Verdict.REGRESSED) or (
        judgement.verdict == Verdict.INCONCLUSIVE and inconclusive_fails
    )
    if failing:
        lines = "\n".join(f"  {v}" for v in judgement.violations)
        where = "".join(f"\n  {line}" if i == 0 else f"\n    {line}" for i, line in enumerate(judgement.diagnosis))
        raise BudgetExceeded(
            f"{m.model} [{m.precision}, {m.runtime}] on {m.platform} broke "
            f"{len(judgement.violations)} budget(s):\n{lines}{where}"
        )


def _judge(runs: Runs, budgets: Budgets, context: Context) -> Judgement:
    m = runs.pooled
    violations: List[str] = []
    unchecked: List[str] = []
    verdict: Optional[LatencyVerdict] = None
    for name, value in budgets.items():
        if _not_comparable(name, context):
            (violations if context.mismatch_fails else unchecked).append(_not_compared(name, context))
            continue
        found, judged = _check_one(runs, m, name, value, context)
        violations += [f"{name}: {text}" for text in found]
        verdict = judged or verdict
    violations += row_problems(m) + fit_problems(m, context.fit) + invalid_runs(runs) + _unquantized(m, budgets)
    comparable = context.baseline is not None and not context.mismatch
    return Judgement(
        verdict=_overall(violations, verdict, bool(budgets) or bool(violations)),
        violations=tuple(dict.fromkeys(violations)),
        latency=verdict,
        baseline_latency_ms=context.baseline.wall.median_ms if context.baseline and comparable else None,
        baseline_note=context.note,
        unchecked=tuple(unchecked),
        limits=_limits(budgets),
        diagnosis=_diagnosis(runs, context) if verdict is not None and verdict.verdict == Verdict.REGRESSED else (),
    )


def _unquantized(m: Measurement, budgets: Budgets) -> List[str]:
    """A derivation that left (nearly) everything in float fails unless the test set its own floor:
    an INT8 row that is an FP32 file under another name is not a passing INT8 row. Layers kept
    float on purpose (keep_float=, int8-mixed) are the user's choice, not a derivation that failed."""
    share = m.quantized
    if "min_quantized_share" in budgets or share is None or share.share is None or m.kept_float:
        return []
    if share.share >= DEFAULT_MIN_QUANTIZED_SHARE:
        return []
    why = f" ({'; '.join(share.why)})" if share.why else ""
    return [
        f"min_quantized_share: measured {share.share:.2g}, default floor {DEFAULT_MIN_QUANTIZED_SHARE:g}: "
        f"{m.precision} left {share.describe()}{why}; quantize with another tool or runtime, or set "
        "min_quantized_share=0 to accept a float file under this precision's name"
    ]


def _diagnosis(runs: Runs, context: Context) -> Tuple[str, ...]:
    """Where the time went: both sides' profiled passes of the paired job, else this run's pass
    against the per-op summary the baseline file keeps."""
    m, paired = runs.pooled, runs.paired
    if paired is not None and paired.op_profile is not None:
        before, against = summary(paired.op_profile), paired.against
        after = summary(paired.current_op_profile or m.op_profile)
        skipped = paired.op_profile.skipped
    else:
        before, against = (context.baseline.op_summary if context.baseline else None), "stored baseline"
        after, skipped = summary(m.op_profile), m.op_profile.skipped if m.op_profile else None
    lines = diagnosis_lines(before, after, against=against)
    return tuple(lines) if lines else ((f"no per-op profile: {skipped}",) if skipped else ())


def _limits(budgets: Budgets) -> Dict[str, float]:
    """The absolute budgets as numbers: the report draws them as limit lines."""
    return {
        name: float(value)
        for name, value in budgets.items()
        if name in ABSOLUTE and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def _not_comparable(name: str, context: Context) -> bool:
    """Latency and memory depend on the machine: against a baseline from another CPU, runtime
    version or thread count they cannot be compared. Size and accuracy can, and are."""
    return name in MACHINE_DEPENDENT and context.baseline is not None and context.mismatch is not None


def _not_compared(name: str, context: Context) -> str:
    return f"{name}: not compared: {context.mismatch}; run --update-baselines on this machine"


def _overall(violations: Sequence[str], verdict: Optional[LatencyVerdict], any_budget: bool) -> Verdict:
    if not any_budget:
        return Verdict.NONE
    only_latency = verdict is not None and all(v.startswith(LATENCY_BUDGETS) for v in violations)
    if violations and verdict is not None and verdict.verdict == Verdict.INCONCLUSIVE and only_latency:
        return Verdict.INCONCLUSIVE
    if violations:
        return Verdict.REGRESSED if only_latency else Verdict.FAIL
    return Verdict.PASS


def _check_one(runs: Runs, m: Measurement, name: str, value: object, context: Context) -> Found:
    """`m` is `runs` pooled: deterministic budgets read it, latency budgets read the processes."""
    if name == "max_latency_ms":
        return latency.absolute_latency(m, _float(value))
    if name in ABSOLUTE:
        return _absolute(m, ABSOLUTE[name], _float(value)), None
    if name == "max_latency_ratio_vs":
        return latency.versus_precision(runs, value, context)
    if context.baseline is None:
        return ([context.missing] if context.missing else []), None
    if name == "max_latency_regression":
        return latency.baseline_latency(runs, parse_percent(value, name=name), context, context.baseline)
    if name in RELATIVE:
        return _relative(m, RELATIVE[name], parse_percent(value, name=name), context.baseline), None
    return _points(m, POINT_REGRESSIONS[name], _float(value), context.baseline), None


def _absolute(m: Measurement, metric: Metric, limit: float) -> List[str]:
    measured = _value(m, metric.attribute)
    if measured is None:
        return [f"{metric.attribute} {BY_ID[metric.attribute].absent.format(platform=m.platform)}"]
    broken = measured > limit if metric.upper else measured < limit
    sign = "<=" if metric.upper else ">="
    unit = f" {metric.unit}" if metric.unit else ""
    est = " (est.)" if metric.attribute in m.estimates else ""
    return [f"measured {_fmt(measured)}{unit}{est}, limit {sign} {_fmt(limit)}{unit}"] if broken else []


def _relative(m: Measurement, metric: Metric, fraction: float, baseline: BaselineEntry) -> List[str]:
    before, now = baseline.metrics.value(metric.attribute), _value(m, metric.attribute)
    if before is None or now is None:
        return []
    if now <= before * (1.0 + fraction) + STORED_ROUNDING:
        return []
    delta = (now / before - 1.0) * 100.0 if before else float("inf")
    return [
        f"measured {_fmt(now)} {metric.unit}, baseline {_fmt(before)} {metric.unit} ({delta:+.1f}%), "
        f"limit +{fraction * 100:g}%"
    ]


def _points(m: Measurement, attribute: str, points: float, baseline: BaselineEntry) -> List[str]:
    before, now = baseline.metrics.value(attribute), _value(m, attribute)
    if before is None or now is None or before - now <= points / 100.0 + STORED_ROUNDING:
        return []
    return [
        f"measured {now * 100:.2f}%, baseline {before * 100:.2f}% ({(now - before) * 100:+.2f} pp), "
        f"limit -{points:g} pp"
    ]


def _value(m: Measurement, attribute: str) -> Optional[float]:
    """A metric of the measurement by name (accuracy_drop without labels raises, saying why)."""
    value = getattr(m, attribute)
    if value is None or isinstance(value, (int, float)):
        return value
    raise TypeError(f"{attribute} is not a number: {value!r}")


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _fmt(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"
