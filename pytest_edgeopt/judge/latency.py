"""Latency budgets: which samples are compared with which, and what a verdict must clear.

The statistics live in measure/compare.py; this is the policy around them. Against the
baseline, its own artifact re-measured now (A B A B) cancels host drift; without it the stored
samples are a single process from another time, so a regression must clear the limit by a
further margin, and a slowdown the machine's own reference workload explains is inconclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np

from pytest_edgeopt.baselines.entry import BaselineEntry
from pytest_edgeopt.judge.budgets import ratio_target
from pytest_edgeopt.judge.types import Context
from pytest_edgeopt.kinds import Verdict
from pytest_edgeopt.measure.compare import LatencyVerdict, choose_signal, judge_latency
from pytest_edgeopt.measure.result import LatencyStats, Measurement

# A stored baseline is one process from another time: unchanged models measured in separate
# processes here differed by up to 10%, so a regression must clear the limit by this much more
# before it counts (short of that it is inconclusive, never a silent pass).
STORED_MARGIN = 0.05
STORED_ROUNDING_MS = 1e-6  # baseline files keep metrics to 6 decimals

Found = Tuple[List[str], Optional[LatencyVerdict]]


@dataclass
class Runs:
    """Agent processes behind one verdict: the current artifact's and, when the baseline's own
    artifact is still in the cache, that artifact measured now, interleaved (None: not tried)."""

    current: List[Measurement]
    baseline: Optional[List[Measurement]] = None

    @property
    def pooled(self) -> Measurement:
        return pooled(self.current)

    def measure_more(self, context: Context) -> None:
        if context.remeasure is None:
            return
        self.current.append(context.remeasure())
        if self.baseline and context.rerun_baseline is not None:
            _append(self.baseline, context.rerun_baseline())


def pooled(runs: Sequence[Measurement]) -> Measurement:
    """One measurement from several processes of the same artifact: all samples count."""
    first = runs[0]
    if len(runs) == 1:
        return first
    wall = tuple(s for r in runs for s in r.samples_ms)
    cpu = tuple(s for r in runs for s in r.cpu_samples_ms)
    return replace(
        first,
        samples_ms=wall,
        cpu_samples_ms=cpu,
        latency=LatencyStats.from_values(wall),
        cpu_latency=LatencyStats.from_values(cpu),
        reference_cpu_ms=tuple(s for r in runs for s in r.reference_cpu_ms),
        reference_wall_ms=tuple(s for r in runs for s in r.reference_wall_ms),
    )


def absolute_latency(m: Measurement, limit_ms: float) -> Found:
    """Median wall latency against a fixed limit, with the median's bootstrap interval."""
    verdict = judge_latency([m.samples_ms], [[limit_ms]], limit=1.0, signal="wall")
    if verdict.verdict == Verdict.PASS:
        return [], None
    return [
        f"median {m.latency.median_ms:.3f} ms (99% CI {verdict.low * limit_ms:.3f}..{verdict.high * limit_ms:.3f}), "
        f"limit <= {limit_ms:g} ms: {verdict.verdict}"
    ], verdict


def baseline_latency(runs: Runs, fraction: float, context: Context, baseline: BaselineEntry) -> Found:
    """Against the baseline's own artifact re-measured now when it is cached (machine drift
    cancels), else against the stored samples with a margin for between-process spread."""
    m = runs.current[0]
    if "latency_ms" in m.estimates:
        return estimated_latency(m, fraction, baseline)
    signal = choose_signal(threads=m.threads, has_cpu_samples=bool(m.cpu_samples_ms))
    if runs.baseline is None:
        _start_pairing(runs, context)
    if runs.baseline:
        base_groups = [_signal(b, signal) for b in runs.baseline]
        label, margin = f"{signal}, vs baseline artifact re-run", 0.0
    else:
        base_groups = [baseline.samples.cpu_ms if signal == "cpu" else baseline.samples.wall_ms]
        label, margin = f"{signal}, vs stored samples", STORED_MARGIN
    current = [_signal(r, signal) for r in runs.current]
    verdict = judge_latency(current, base_groups, limit=1.0 + fraction, signal=label, margin=margin)
    if not runs.baseline:
        verdict = _explained_by_machine(verdict, _machine_factor(runs, baseline), fraction)
    texts = _latency_text(verdict, _median_of_medians(base_groups), _median_of_medians(current), "baseline")
    if texts and not runs.baseline:
        texts = [texts[0] + _machine_speed(runs, baseline)]
    return texts, verdict


def estimated_latency(m: Measurement, fraction: float, baseline: BaselineEntry) -> Found:
    """An estimate is a function of the graph and the profile (an MCU's), so it is compared
    exactly, like size: no samples, no re-runs, no margin; only the stored rounding is allowed."""
    before, now = baseline.metrics.latency_ms, m.latency_ms
    same = abs(now - before) <= STORED_ROUNDING_MS
    ratio = 1.0 if same else now / before if before else float("inf")
    regressed = not same and now > before * (1.0 + fraction) + STORED_ROUNDING_MS
    verdict = LatencyVerdict(
        verdict=Verdict.REGRESSED if regressed else Verdict.PASS,
        signal="est., vs stored estimate",
        ratio=ratio,
        low=ratio,
        high=ratio,
        limit=1.0 + fraction,
    )
    if not regressed:
        return [], verdict
    return [
        f"{now:.3f} ms est. vs baseline {before:.3f} ms est.: ratio {ratio:.3f}, limit {verdict.limit:.3f}: regressed"
    ], verdict


def versus_precision(runs: Runs, value: object, context: Context) -> Found:
    """The in-run paired gate: this precision against another one measured in this session."""
    m = runs.current[0]
    target, ratio = ratio_target(value)
    if context.reference is None or target == m.precision:
        return [], None
    other = context.reference(target)
    signal = choose_signal(threads=m.threads, has_cpu_samples=bool(m.cpu_samples_ms and other.cpu_samples_ms))
    current, theirs = [_signal(r, signal) for r in runs.current], [_signal(other, signal)]
    verdict = judge_latency(current, theirs, limit=ratio, signal=f"{signal}, vs {target}")
    return _latency_text(verdict, _median_of_medians(theirs), _median_of_medians(current), target), verdict


def _explained_by_machine(verdict: LatencyVerdict, factor: Optional[float], fraction: float) -> LatencyVerdict:
    """Against stored samples only: when the fixed reference workload slowed down too, by more
    than half the allowed regression and enough to explain it, the machine (a busier VM, another
    CPU) is as likely a cause as the model, so the verdict is inconclusive, not a failure.
    Seen here: one 2-core VM ran every model, and the reference workload, 2x faster on one day."""
    if verdict.verdict != Verdict.REGRESSED or factor is None or factor < 1.0 + fraction / 2:
        return verdict
    if verdict.low / factor > 1.0 + fraction:  # slower even after the machine's share is taken out
        return verdict
    return verdict.as_inconclusive()


def _machine_factor(runs: Runs, baseline: BaselineEntry) -> Optional[float]:
    stored = baseline.samples.reference_ms
    now = [s for r in runs.current for s in r.reference_cpu_ms]
    if not stored or not now or float(np.median(stored)) <= 0:
        return None
    return float(np.median(now) / np.median(stored))


def _machine_speed(runs: Runs, baseline: BaselineEntry) -> str:
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
    if context.remeasure is not None and context.rerun_baseline is not None:
        runs.current.append(context.remeasure())
        _append(runs.baseline, context.rerun_baseline())


def _append(measurements: List[Measurement], measured: Optional[Measurement]) -> None:
    """A baseline artifact re-run can fail (None); the runs that worked still count."""
    if measured is not None:
        measurements.append(measured)


def _signal(m: Measurement, signal: str) -> Tuple[float, ...]:
    return m.cpu_samples_ms if signal == "cpu" else m.samples_ms


def _median_of_medians(groups: Sequence[Sequence[float]]) -> float:
    return float(np.median([np.median(g) for g in groups]))


def _latency_text(verdict: LatencyVerdict, before: float, now: float, against: str) -> List[str]:
    if verdict.verdict == Verdict.PASS:
        return []
    return [
        f"{now:.3f} ms vs {against} {before:.3f} ms ({verdict.signal}, {verdict.processes} process(es)): "
        f"ratio {verdict.ratio:.3f} (99% CI {verdict.low:.3f}..{verdict.high:.3f}), limit {verdict.limit:.3f}: "
        f"{verdict.verdict}"
    ]
