"""Every number a measurement carries, under one name: the JUnit XML properties and
`python -m pytest_edgeopt compare` read the same list, so a metric added here reaches both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

from pytest_edgeopt.measure.result import Measurement


@dataclass(frozen=True)
class Value:
    """One named number; `higher_is_better` None: the measurement says (a task metric)."""

    name: str
    read: Callable[[Measurement], Optional[float]]
    higher_is_better: Optional[bool] = False


def _labelled(m: Measurement) -> bool:
    return m.top1 is not None and m.reference_top1 is not None


VALUES = (
    Value("latency_ms", lambda m: m.latency_ms),
    Value("latency_mean_ms", lambda m: m.latency.mean_ms),
    Value("latency_stddev_ms", lambda m: m.latency.stddev_ms),
    Value("cpu_latency_ms", lambda m: m.cpu_latency.median_ms),
    Value("load_ms", lambda m: m.load_ms),
    Value("first_inference_ms", lambda m: m.first_inference_ms),
    Value("throughput", lambda m: m.throughput, True),
    Value("top1", lambda m: m.top1, True),
    Value("agreement", lambda m: m.agreement, True),
    Value("top5_agreement", lambda m: m.top5_agreement, True),
    Value("accuracy_drop", lambda m: m.accuracy_drop if _labelled(m) else None),
    Value("metric", lambda m: m.metric, None),
    Value("metric_drop", lambda m: m.metric_drop if m.metric is not None and m.reference_metric is not None else None),
    Value("min_sqnr_db", lambda m: m.min_sqnr_db, True),
    Value("min_cosine", lambda m: m.min_cosine, True),
    Value("size_mb", lambda m: m.size_mb),
    Value("storage_mb", lambda m: m.storage_mb),
    Value("params", lambda m: m.params),
    Value("peak_rss_mb", lambda m: m.peak_rss_mb),
    Value("gflops", lambda m: m.gflops),
    Value("gflops_per_s", lambda m: m.gflops_per_s, True),
    Value("energy_w", lambda m: m.energy_w),
    Value("energy_mj", lambda m: m.energy_mj),
    Value("arena_kb", lambda m: m.arena_kb),
    Value("flash_kb", lambda m: m.flash_kb),
    Value("latency_ratio", lambda m: m.latency_ratio),
    Value("size_ratio", lambda m: m.size_ratio),
)
BY_NAME = {value.name: value for value in VALUES}


def measured_values(m: Measurement) -> Dict[str, float]:
    """name -> number, only what this measurement has (no energy without a meter)."""
    found = {value.name: value.read(m) for value in VALUES}
    return {name: number for name, number in found.items() if number is not None}


def higher_is_better(name: str, m: Measurement) -> bool:
    flag = BY_NAME[name].higher_is_better
    return m.metric_higher_is_better if flag is None else flag
