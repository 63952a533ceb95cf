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
from pytest_edgeopt.optimize.precisions import PRECISIONS

Budgets = Mapping[str, object]


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
    "max_arena_kb": Metric("arena_kb", "KB", True),  # KiB, as MCU datasheets count
    "max_flash_kb": Metric("flash_kb", "KB", True),
    "max_metric_drop": Metric("metric_drop", "%", True),  # percent of the reference's metric value
    "min_metric": Metric("metric", "", False),
    "max_metric": Metric("metric", "", True),
    "min_sqnr_db": Metric("min_sqnr_db", "dB", False),  # the worst output's, vs the reference's FP32
    "min_cosine": Metric("min_cosine", "", False),
    "max_latency_ratio": Metric("latency_ratio", "", True),  # vs the reference's FP32 (a teacher's)
    "max_size_ratio": Metric("size_ratio", "", True),
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
LATENCY_BUDGETS = ("max_latency_regression", "max_latency_ratio_vs", "max_latency_ms")
# relative budgets whose numbers depend on the machine: compared only against a baseline whose
# must-match fingerprint (CPU, runtime version, threads) equals this run's
MACHINE_DEPENDENT = ("max_latency_regression", "max_peak_rss_regression")


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
    if target not in PRECISIONS:
        raise EdgeOptError(f"max_latency_ratio_vs: unknown precision {target!r}; choose from {', '.join(PRECISIONS)}")
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
