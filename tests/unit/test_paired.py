"""The paired verdict's statistics (agent/paired.py) on deterministic ratios: the exact median
interval, the look schedule, and that sequential stopping keeps the false-alarm rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_edgeopt.agent import paired
from pytest_edgeopt.judge.latency import paired_verdict
from pytest_edgeopt.kinds import Verdict
from pytest_edgeopt.measure.result import LatencyStats, PairedComparison


def test_the_rank_is_the_exact_binomial_order_statistic() -> None:
    assert paired.order_statistic_rank(12, 0.001) == 1  # P(B<=0) = 2^-12 = 0.00024
    assert paired.order_statistic_rank(16, 0.001) == 2  # P(B<=1) = 17 / 2^16 = 0.00026
    assert paired.order_statistic_rank(8, 0.001) is None  # 2^-8 = 0.0039: no interval yet
    for n in (12, 32, 100, 256):
        rank = paired.order_statistic_rank(n, 0.001)
        assert rank is not None
        below = sum(math.comb(n, k) for k in range(rank)) / 2**n
        above = sum(math.comb(n, k) for k in range(rank + 1)) / 2**n
        assert below <= 0.001 < above


def test_quads_cancel_a_linear_drift() -> None:
    """A B B A under a drift of +1 ms per block: the ratio stays what the models are."""
    a, b = 10.0, 12.0
    assert paired.quad_ratio(a + 0, b + 1, b + 2, a + 3) == pytest.approx((2 * b + 3) / (2 * a + 3))
    assert paired.quad_ratio(a, b, b, a) == pytest.approx(1.2)


def test_clear_cases_are_decided_and_a_straddle_is_not() -> None:
    rng = np.random.default_rng(0)
    slower = list(1.25 * (1 + 0.01 * rng.standard_normal(12)))
    same = list(1.0 + 0.01 * rng.standard_normal(12))
    near = list(1.10 + 0.02 * rng.standard_normal(64))
    assert paired.decide(slower, limit=1.1, confidence=0.99, looks=1).verdict == paired.REGRESSED
    assert paired.decide(same, limit=1.1, confidence=0.99, looks=1).verdict == paired.PASS
    straddle = paired.decide(near, limit=1.1, confidence=0.99, looks=5)
    assert straddle.verdict == paired.INCONCLUSIVE and straddle.low < 1.1 < straddle.high
    assert paired.decide(same[:8], limit=1.1, confidence=0.99, looks=1).verdict == paired.INCONCLUSIVE


def _sequential(ratios: np.ndarray, limit: float) -> str:
    """What the agent does: look at the scheduled counts, stop at the first decision."""
    looks = 0
    for n in range(1, len(ratios) + 1):
        if paired.next_look(n, looks):
            looks += 1
            verdict = paired.decide(list(ratios[:n]), limit=limit, confidence=0.99, looks=looks).verdict
            if verdict != paired.INCONCLUSIVE:
                return verdict
    return paired.INCONCLUSIVE


def test_sequential_stopping_keeps_false_alarms_below_one_percent_at_the_limit_itself() -> None:
    """The worst case for a false alarm: the true median ratio is exactly the limit. Every look
    can be tempted; Bonferroni over the fixed schedule keeps the total at most 1%."""
    rng = np.random.default_rng(1)
    trials = 2000
    alarms = sum(
        _sequential(1.10 * np.exp(0.02 * rng.standard_normal(paired.MAX_QUADS)), 1.10) == paired.REGRESSED
        for _ in range(trials)
    )
    assert alarms / trials <= 0.01


def test_a_real_slowdown_is_found_at_the_first_look() -> None:
    rng = np.random.default_rng(2)
    found = [_sequential(1.25 * np.exp(0.02 * rng.standard_normal(paired.MAX_QUADS)), 1.10) for _ in range(200)]
    assert found.count(paired.REGRESSED) == 200


def test_the_host_verdict_names_what_was_paired() -> None:
    comparison = PairedComparison(
        against="baseline",
        artifact_sha="0" * 20,
        limit=1.1,
        signal="cpu",
        ratios=tuple([1.3] * 12),
        looks=1,
        stopped="regressed",
        seconds=0.4,
        other=LatencyStats.from_values([2.0, 2.0, 2.0]),
    )
    texts, verdict = paired_verdict(comparison, limit=1.1, against="baseline")
    assert verdict is not None and verdict.verdict == Verdict.REGRESSED and verdict.pairs == 12
    assert verdict.signal == "cpu, paired A/B vs baseline, 12 pairs"
    assert texts == [
        "2.600 ms vs baseline 2.000 ms (cpu, paired A/B vs baseline, 12 pairs): ratio 1.300 (99% CI 1.300..1.300), "
        "limit 1.100: regressed"
    ]
    _, looser = paired_verdict(comparison, limit=1.5, against="baseline")  # any limit, on the same looks
    assert looser is not None and looser.verdict == Verdict.PASS
