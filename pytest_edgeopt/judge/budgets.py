"""The budget registry: every name a test can write, what it limits, and how its value is read.

Three kinds: absolute (`max_storage_mb=5`), relative to the stored baseline
(`max_latency_regression="10%"`) and paired with another precision of the same session
(`max_latency_ratio_vs="fp32"`), which cancels the machine's speed. Names and values are checked
before anything is measured, so a typo is a usage error naming where it was written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Mapping, Tuple

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.measure.compare import parse_percent
from pytest_edgeopt.measure.registry import BudgetKind, budget_index, budgets_of
from pytest_edgeopt.optimize.precisions import unknown_precision

Budgets = Mapping[str, object]


@dataclass(frozen=True)
class Metric:
    """A budget resolved through the metric registry: which attribute it limits, and from which side."""

    attribute: str
    unit: str
    upper: bool  # True: the value must stay at or below the limit


def _resolved(kind: BudgetKind) -> Dict[str, Metric]:
    index = budget_index()
    return {name: Metric(spec.id, spec.unit, index[name][1].upper) for name, spec in budgets_of(kind).items()}


ABSOLUTE: Dict[str, Metric] = _resolved(BudgetKind.ABSOLUTE)
RELATIVE: Dict[str, Metric] = _resolved(BudgetKind.RELATIVE)  # limits are fractions of the baseline value ("10%")
POINT_REGRESSIONS: Dict[str, str] = {  # limits in percentage points below the baseline
    name: spec.id for name, spec in budgets_of(BudgetKind.POINTS).items()
}
PAIRED: Tuple[str, ...] = tuple(budgets_of(BudgetKind.PAIRED))
BUDGET_NAMES: Tuple[str, ...] = tuple(ABSOLUTE) + tuple(RELATIVE) + tuple(POINT_REGRESSIONS) + PAIRED
LATENCY_BUDGETS: Tuple[str, ...] = tuple(
    name for name, (spec, budget) in budget_index().items() if spec.id == "latency_ms" and budget.kind != BudgetKind.FIT
)
# relative budgets whose numbers depend on the machine: compared only against a baseline whose
# must-match fingerprint (CPU, runtime version, threads) equals this run's
MACHINE_DEPENDENT: Tuple[str, ...] = tuple(
    name for name, spec in budgets_of(BudgetKind.RELATIVE).items() if spec.machine_dependent
)

# budgets on what quantization changes (accuracy, task metric, fidelity): a broken one ranks the
# layers (m.sensitivity), and they are the goal an int8-mixed search meets
ACCURACY_BUDGETS: Tuple[str, ...] = tuple(
    name for name, (spec, budget) in budget_index().items() if spec.accuracy and budget.kind == BudgetKind.ABSOLUTE
)


def validate_budgets(budgets: Budgets, *, where: str) -> Dict[str, object]:
    """Reject unknown names and malformed values up front, naming where they came from."""
    unknown = sorted(set(budgets) - set(BUDGET_NAMES))
    if unknown:
        raise EdgeOptError(f"{where}: unknown budget {', '.join(unknown)}; known: {', '.join(BUDGET_NAMES)}")
    for name, value in budgets.items():
        try:
            limit_of(name, value)
        except EdgeOptError as error:
            raise EdgeOptError(f"{where}: {error}") from None
    return dict(budgets)


def limit_of(name: str, value: object) -> float:
    """The budget's number; NaN and inf are refused (a NaN limit passes every comparison's `not`)."""
    if name == "max_latency_ratio_vs":
        return ratio_target(value)[1]
    try:
        limit = parse_percent(value, name=name) if name in RELATIVE else _number(name, value)
    except (TypeError, ValueError) as error:
        raise EdgeOptError(str(error)) from None
    if not math.isfinite(limit):
        raise EdgeOptError(f"{name}={value!r}: expected a finite number")
    return limit


def ratio_target(value: object) -> Tuple[str, float]:
    """'fp32' or {'fp32': 0.8}: a precision this plugin knows and a ratio above zero."""
    usage = f"max_latency_ratio_vs={value!r}: expected a precision name like 'fp32' or {{'fp32': 0.8}}"
    target: object
    ratio: object
    if isinstance(value, str):
        target, ratio = value, 1.0
    elif isinstance(value, Mapping) and len(value) == 1:
        target, ratio = next(iter(value.items()))
    else:
        raise EdgeOptError(usage)
    why = unknown_precision(target)
    if why is not None:
        raise EdgeOptError(f"max_latency_ratio_vs: {why}")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < math.inf:
        raise EdgeOptError(f"{usage}; the ratio must be a number above 0, got {ratio!r}")
    return str(target), float(ratio)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{name}={value!r}: expected a number")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a number") from None
