"""Latency budgets: which samples are compared with which, and what a verdict must clear.

The best comparison is paired: this artifact (B) and the one it is compared with (A: the
baseline's own artifact, or another precision of the model) timed in one agent process, in
alternating A B B A blocks, with sequential stopping (agent/paired.py): drift that moves a VM's
speed by 10-30% between processes hits both sides of every quad alike. The same file as the
baseline cannot have become slower by itself: that passes without timing. Only when A is not at
hand (a fresh CI clone whose cache lacks the baseline's artifact) are the stored samples used: one
process from another time, so a regression must clear the limit by a further margin, a slowdown
the machine's own reference workload explains is inconclusive, and the row says this is the
weaker comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from pytest_edgeopt.agent import paired as pairing
from pytest_edgeopt.agent.contract import TimingSignal
from pytest_edgeopt.baselines.entry import BaselineEntry
from pytest_edgeopt.judge.budgets import ratio_target
from pytest_edgeopt.judge.types import Context
from pytest_edgeopt.kinds import Verdict
from pytest_edgeopt.measure.compare import CONFIDENCE, LatencyVerdict, choose_signal, judge_latency
from pytest_edgeopt.measure.result import LatencyStats, Measurement, PairedComparison

# A stored baseline is one process from another time: unchanged models measured in separate
# processes here differed by up to 10%, so a regression must clear the limit by this much more
# before it counts (short of that it is inconclusive, never a silent pass).
STORED_MARGIN = 0.05
WEAKER = "vs stored samples (weaker: the baseline's artifact is not in the cache)"
STORED_ROUNDING_MS = 1e-6  # baseline files keep metrics to 6 decimals

Found = Tuple[List[str], Optional[LatencyVerdict]]


@dataclass
class Runs:
    """The agent processes of the current artifact behind a verdict (more are made for an
    inconclusive stored-sample comparison), and the paired comparisons the verdict used."""

    current: List[Measurement]
    paired: Optional[PairedComparison] = None

    @property
    def pooled(self) -> Measurement:
        return pooled(self.current)

    def measure_more(self, context: Context) -> None:
        if context.remeasure is not None:
            self.current.append(context.remeasure())


def invalid_runs(runs: Runs) -> List[str]:
    """Every process behind a verdict must be valid: a re-measurement or a paired run on a
    device that throttled is as worthless as a first run that did."""
    found = [f"invalid: {m.invalid}" for m in runs.current[1:] if m.invalid]
    if runs.paired is not None and runs.paired.invalid:
        found.append(f"invalid: paired run: {runs.paired.invalid}")
    return found


def pooled(runs: Sequence[Measurement]) -> Measurement:
    """One measurement from several processes of the same artifact: all samples count, and the
    first invalid run makes the pooled one invalid (its numbers must not be stored)."""
    first = runs[0]
    if len(runs) == 1:
        return first
    invalid = next((r.invalid for r in runs if r.invalid), None)
    wall = tuple(s for r in runs for s in r.samples_ms)
    cpu = tuple(s for r in runs for s in r.cpu_samples_ms)
    return first.replace(
        invalid=invalid,
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
    """Paired against the baseline's own artifact when it is at hand; the same artifact passes;
    otherwise the stored samples, with a margin for between-process spread."""
    m, limit = runs.current[0], 1.0 + fraction
    if "latency_ms" in m.estimates:
        return estimated_latency(m, fraction, baseline)
    if baseline.artifact_sha and baseline.artifact_sha == m.artifact_sha:
        return [], _same_artifact(limit)
    comparison = _paired_with(m, "baseline", baseline.artifact_sha)
    if comparison is None and context.pair_baseline is not None:
        comparison = context.pair_baseline(limit)
    if comparison is not None:
        runs.paired = comparison
        return paired_verdict(comparison, limit=limit, against="baseline")
    return _stored_latency(runs, fraction, baseline)


def estimated_latency(m: Measurement, fraction: float, baseline: BaselineEntry) -> Found:
    """An estimate is a function of the graph and the profile (an MCU's), so it is compared
    exactly, like size: no samples, no re-runs, no margin; only the stored rounding is allowed."""
    before, now = baseline.metrics.value("latency_ms") or 0.0, m.latency_ms
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
    """The in-run gate: this precision against another one of the same model, paired in one
    process when it can be; two separate measurements otherwise."""
    m = runs.current[0]
    target, ratio = ratio_target(value)
    if context.reference is None or target == m.precision:
        return [], None
    comparison = _paired_with(m, target, None)
    if comparison is None and context.pair_reference is not None:
        comparison = context.pair_reference(target, ratio)
    if comparison is not None:
        runs.paired = runs.paired or comparison
        return paired_verdict(comparison, limit=ratio, against=target)
    other = context.reference(target)
    signal = choose_signal(threads=m.threads, has_cpu_samples=bool(m.cpu_samples_ms and other.cpu_samples_ms))
    current, theirs = [_signal(r, signal) for r in runs.current], [_signal(other, signal)]
    verdict = judge_latency(current, theirs, limit=ratio, signal=f"{signal}, vs {target}")
    return _latency_text(verdict, _median_of_medians(theirs), _median_of_medians(current), target), verdict


def paired_verdict(comparison: PairedComparison, *, limit: float, against: str) -> Found:
    """The verdict from the quad ratios, at the sequential schedule's error for the looks made
    (the agent stopped on the same rule; any limit may be judged on them: every look's interval
    holds at once, by the union bound)."""
    decision = pairing.decide(comparison.ratios, limit=limit, confidence=CONFIDENCE, looks=max(comparison.looks, 1))
    verdict = LatencyVerdict(
        verdict=Verdict(decision.verdict),
        signal=f"{comparison.signal}, paired A/B vs {against}, {len(comparison.ratios)} pairs",
        ratio=decision.ratio,
        low=decision.low,
        high=decision.high,
        limit=limit,
        pairs=len(comparison.ratios),
    )
    now = comparison.other.median_ms * decision.ratio
    return _latency_text(verdict, comparison.other.median_ms, now, against), verdict


def _paired_with(m: Measurement, against: str, sha: Optional[str]) -> Optional[PairedComparison]:
    """The measurement job's own pairing, when it paired against this very A."""
    paired = m.paired
    if paired is None or paired.against != against or (sha is not None and paired.artifact_sha != sha):
        return None
    return paired


def _same_artifact(limit: float) -> LatencyVerdict:
    return LatencyVerdict(
        verdict=Verdict.PASS, signal="same artifact as the baseline", ratio=1.0, low=1.0, high=1.0, limit=limit
    )


def _stored_latency(runs: Runs, fraction: float, baseline: BaselineEntry) -> Found:
    m = runs.current[0]
    signal = choose_signal(threads=m.threads, has_cpu_samples=bool(m.cpu_samples_ms))
    base_groups = [baseline.samples.cpu_ms if signal == TimingSignal.CPU else baseline.samples.wall_ms]
    current = [_signal(r, signal) for r in runs.current]
    try:
        verdict = judge_latency(
            current, base_groups, limit=1.0 + fraction, signal=f"{signal}, {WEAKER}", margin=STORED_MARGIN
        )
    except ValueError as error:  # stored samples of 0 ms (a damaged or hand-edited file)
        return [f"{error}; regenerate the baseline with --update-baselines"], None
    verdict = _explained_by_machine(verdict, _machine_factor(runs, baseline), fraction)
    texts = _latency_text(verdict, _median_of_medians(base_groups), _median_of_medians(current), "baseline")
    if texts:
        texts = [texts[0] + _machine_speed(runs, baseline)]
    return texts, verdict


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


def _signal(m: Measurement, signal: TimingSignal) -> Tuple[float, ...]:
    return m.cpu_samples_ms if signal == TimingSignal.CPU else m.samples_ms


def _median_of_medians(groups: Sequence[Sequence[float]]) -> float:
    return float(np.median([np.median(g) for g in groups]))


def _latency_text(verdict: LatencyVerdict, before: float, now: float, against: str) -> List[str]:
    if verdict.verdict == Verdict.PASS:
        return []
    where = verdict.signal if verdict.pairs else f"{verdict.signal}, {verdict.processes} process(es)"
    return [
        f"{now:.3f} ms vs {against} {before:.3f} ms ({where}): "
        f"ratio {verdict.ratio:.3f} (99% CI {verdict.low:.3f}..{verdict.high:.3f}), limit {verdict.limit:.3f}: "
        f"{verdict.verdict}"
    ]
