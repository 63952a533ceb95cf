"""Is this latency slower than the budget allows, with statistical confidence?

A bootstrap interval of the ratio of medians (current / baseline) against the budget's limit:
above the limit with confidence -> regressed, below it with confidence -> pass, straddling it ->
inconclusive (the caller re-measures). Samples are compared on the signal the conditions leave
trustworthy: process CPU time with one thread (1-2% CV while other work oversubscribed the cores,
where wall time moved 35-110%), wall time otherwise.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Sequence

import numpy as np

PASS, REGRESSED, INCONCLUSIVE = "pass", "regressed", "inconclusive"
CONFIDENCE = 0.99
RESAMPLES = 2000
MAX_SAMPLES = 400  # enough for the median's interval; bounds the bootstrap's cost


@dataclass(frozen=True)
class LatencyVerdict:
    verdict: str
    signal: str  # "cpu" or "wall"
    ratio: float  # median(current) / median(baseline), normalized when a reference workload ran
    low: float
    high: float
    limit: float

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "LatencyVerdict":
        return cls(**data)


def choose_signal(*, threads: int, has_cpu_samples: bool) -> str:
    """CPU time only means latency when one thread does all the work and nothing waits on I/O."""
    return "cpu" if threads == 1 and has_cpu_samples else "wall"


def judge_latency(
    current: Sequence[float], baseline: Sequence[float], *, limit: float, signal: str,
    current_scale: float = 1.0, baseline_scale: float = 1.0, seed: int = 0,
) -> LatencyVerdict:
    """`limit` is the largest allowed ratio (1.10 for "10%"); the scales normalize machine speed."""
    cur = _thin(np.asarray(current, dtype=np.float64)) / current_scale
    base = _thin(np.asarray(baseline, dtype=np.float64)) / baseline_scale
    ratio = float(np.median(cur) / np.median(base))
    low, high = _bootstrap_ratio(cur, base, seed=seed)
    verdict = REGRESSED if low > limit else PASS if high <= limit else INCONCLUSIVE
    return LatencyVerdict(verdict=verdict, signal=signal, ratio=ratio, low=low, high=high, limit=limit)


def _bootstrap_ratio(cur: np.ndarray, base: np.ndarray, *, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    cur_medians = np.median(rng.choice(cur, size=(RESAMPLES, cur.size)), axis=1)
    base_medians = np.median(rng.choice(base, size=(RESAMPLES, base.size)), axis=1)
    ratios = cur_medians / base_medians
    tail = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)


def _thin(samples: np.ndarray) -> np.ndarray:
    """Keep at most MAX_SAMPLES, evenly spaced, so slow drifts inside a run stay represented."""
    if samples.size <= MAX_SAMPLES:
        return samples
    return samples[np.linspace(0, samples.size - 1, MAX_SAMPLES).astype(int)]


def parse_percent(value: Any, *, name: str) -> float:
    """"10%" or 0.10 -> 0.10; the error names the budget so the user finds the typo."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"{name}={value!r}: expected a percentage like '10%' or a fraction like 0.1") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{name}={value!r}: expected a percentage like '10%' or a fraction like 0.1")


def optional_scale(samples: Optional[Sequence[float]]) -> float:
    return float(np.median(samples)) if samples else 1.0
