"""Is this latency slower than the budget allows, with statistical confidence?

Samples come in groups, one per agent process, because processes differ: on this 2-core VM the
medians of unchanged MobileNetV2 runs in separate processes moved by up to 10% on a quiet machine,
while samples inside one process agree to 1-2%. A two-level bootstrap (processes, then samples
within each) gives an interval for the ratio of medians (current / baseline): above the limit
with confidence -> regressed, at or below it -> pass, straddling it -> inconclusive, and the
caller measures more processes. Samples are compared on the signal the conditions leave
trustworthy: process CPU time with one thread (it held a 1-2% CV while other work oversubscribed
the cores, where wall time moved 35-110%), wall time otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np

from pytest_edgeopt.agent.contract import TimingSignal
from pytest_edgeopt.kinds import Verdict

PASS, REGRESSED, INCONCLUSIVE = Verdict.PASS, Verdict.REGRESSED, Verdict.INCONCLUSIVE
CONFIDENCE = 0.99
RESAMPLES = 2000
MAX_SAMPLES = 400  # per process: enough for the median's interval, bounds the bootstrap's cost

Groups = Sequence[Sequence[float]]


@dataclass(frozen=True)
class LatencyVerdict:
    verdict: Verdict
    signal: str  # "cpu" or "wall", plus how the baseline was obtained
    ratio: float  # median of process medians, current / baseline
    low: float
    high: float
    limit: float
    processes: int = 1  # current-side processes behind the verdict
    pairs: int = 0  # A B B A quads of an in-process paired comparison; 0: not paired

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(self.verdict))  # "regressed" by hand is an Enum too

    def to_dict(self) -> Dict[str, Union[str, float, int]]:
        data: Dict[str, Union[str, float, int]] = asdict(self)
        data["verdict"] = self.verdict.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Union[str, float, int]]) -> "LatencyVerdict":
        return cls(
            verdict=Verdict(str(data["verdict"])),
            signal=str(data["signal"]),
            ratio=float(data["ratio"]),
            low=float(data["low"]),
            high=float(data["high"]),
            limit=float(data["limit"]),
            processes=int(data.get("processes", 1)),
            pairs=int(data.get("pairs", 0)),
        )

    def as_inconclusive(self) -> "LatencyVerdict":
        return replace(self, verdict=Verdict.INCONCLUSIVE)


def choose_signal(*, threads: int, has_cpu_samples: bool) -> TimingSignal:
    """CPU time only means latency when one thread does all the work."""
    return TimingSignal.CPU if threads == 1 and has_cpu_samples else TimingSignal.WALL


def judge_latency(
    current: Groups,
    baseline: Groups,
    *,
    limit: float,
    signal: str,
    margin: float = 0.0,
    seed: int = 0,
) -> LatencyVerdict:
    """`limit` is the largest allowed ratio (1.10 for "10%"). `margin` widens the band a
    regression must clear when the baseline is a single stored process from another time."""
    cur, base = _groups(current), _groups(baseline)
    if _center(base) <= 0 or any(float(np.median(g)) <= 0 for g in base):
        raise ValueError("the compared samples have a median of 0 ms: they cannot be a latency yardstick")
    ratio = _center(cur) / _center(base)
    low, high = _interval(cur, base, seed=seed)
    if low > limit * (1.0 + margin):
        verdict = REGRESSED
    elif high <= limit:
        verdict = PASS
    else:
        verdict = INCONCLUSIVE
    return LatencyVerdict(
        verdict=verdict, signal=signal, ratio=ratio, low=low, high=high, limit=limit, processes=len(cur)
    )


def _groups(groups: Groups) -> List[np.ndarray]:
    arrays = [_thin(np.asarray(g, dtype=np.float64)) for g in groups if len(g)]
    if not arrays:
        raise ValueError("no latency samples to compare")
    return arrays


def _center(groups: List[np.ndarray]) -> float:
    return float(np.median([np.median(g) for g in groups]))


def _interval(cur: List[np.ndarray], base: List[np.ndarray], *, seed: int) -> Tuple[float, float]:
    rng = np.random.default_rng(seed)
    ratios = _resampled_centers(cur, rng) / _resampled_centers(base, rng)
    tail = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)


def _resampled_centers(groups: List[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Two-level bootstrap: pick processes with replacement, then resample inside each."""
    medians = np.stack([np.median(rng.choice(g, size=(RESAMPLES, g.size)), axis=1) for g in groups], axis=1)
    if len(groups) == 1:
        return np.asarray(medians[:, 0])
    picks = rng.integers(0, len(groups), size=(RESAMPLES, len(groups)))
    return np.asarray(np.median(np.take_along_axis(medians, picks, axis=1), axis=1))


def _thin(samples: np.ndarray) -> np.ndarray:
    """Keep at most MAX_SAMPLES, evenly spaced, so slow drifts inside a run stay represented."""
    if samples.size <= MAX_SAMPLES:
        return samples
    return np.asarray(samples[np.linspace(0, samples.size - 1, MAX_SAMPLES).astype(int)])


def parse_percent(value: object, *, name: str) -> float:
    """ "10%" or 0.10 -> 0.10; the error names the budget so the user finds the typo."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"{name}={value!r}: expected a percentage like '10%' or a fraction like 0.1") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{name}={value!r}: expected a percentage like '10%' or a fraction like 0.1")
