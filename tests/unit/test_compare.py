"""measure/compare.py: the latency verdict from groups of samples (one group per agent process).

Synthetic samples from seeded generators: the verdicts are exact functions of the numbers, so
these tests never depend on how fast the machine running them is.
"""

from __future__ import annotations

import json
from typing import List

import numpy as np
import pytest

from pytest_edgeopt.measure.compare import (
    INCONCLUSIVE,
    MAX_SAMPLES,
    PASS,
    REGRESSED,
    LatencyVerdict,
    choose_signal,
    judge_latency,
    parse_percent,
)


def group(center: float, *, noise: float, n: int = 200, seed: int = 0) -> List[float]:
    """`n` latencies around `center` ms with a relative spread of `noise` (0.01 = 1%)."""
    rng = np.random.default_rng(seed)
    return list(center * (1.0 + noise * rng.standard_normal(n)))


def width(verdict: LatencyVerdict) -> float:
    return verdict.high - verdict.low


def test_identical_groups_pass() -> None:
    samples = group(2.0, noise=0.01)
    verdict = judge_latency([samples], [samples], limit=1.10, signal="cpu")
    assert verdict.verdict == PASS
    assert verdict.ratio == pytest.approx(1.0)
    assert verdict.low <= 1.0 <= verdict.high <= 1.10
    assert (verdict.limit, verdict.signal, verdict.processes) == (1.10, "cpu", 1)


def test_same_distribution_from_two_processes_passes() -> None:
    verdict = judge_latency(
        [group(2.0, noise=0.02, seed=1)], [group(2.0, noise=0.02, seed=2)], limit=1.10, signal="wall"
    )
    assert verdict.verdict == PASS
    assert verdict.ratio == pytest.approx(1.0, abs=0.02)


def test_25_percent_slower_with_1_percent_noise_regresses_at_a_10_percent_limit() -> None:
    verdict = judge_latency(
        [group(2.5, noise=0.01, seed=1)], [group(2.0, noise=0.01, seed=2)], limit=1.10, signal="cpu"
    )
    assert verdict.verdict == REGRESSED
    assert verdict.ratio == pytest.approx(1.25, abs=0.01)
    assert 1.10 < verdict.low <= 1.25 <= verdict.high


def test_faster_never_regresses() -> None:
    verdict = judge_latency([group(1.0, noise=0.01, seed=1)], [group(2.0, noise=0.01, seed=2)], limit=1.0, signal="cpu")
    assert verdict.verdict == PASS
    assert verdict.ratio == pytest.approx(0.5, abs=0.01)


def test_10_percent_slower_with_huge_noise_is_inconclusive() -> None:
    verdict = judge_latency(
        [group(2.2, noise=0.5, n=30, seed=1)], [group(2.0, noise=0.5, n=30, seed=2)], limit=1.10, signal="wall"
    )
    assert verdict.verdict == INCONCLUSIVE
    assert verdict.low < 1.10 < verdict.high


def test_two_level_bootstrap_widens_the_interval_when_processes_disagree() -> None:
    """Three processes whose medians differ by +-10% say less than their samples pooled as one."""
    processes = [group(center, noise=0.01, n=100, seed=seed) for seed, center in enumerate((1.8, 2.0, 2.2))]
    pooled = [sample for samples in processes for sample in samples]
    base = [group(2.0, noise=0.01, seed=9)]
    several = judge_latency(processes, base, limit=1.10, signal="cpu")
    one = judge_latency([pooled], base, limit=1.10, signal="cpu")
    assert several.processes == 3 and one.processes == 1
    assert width(several) > 3 * width(one)
    assert several.low < one.low and several.high > one.high


def test_the_bootstrap_is_seeded_and_repeatable() -> None:
    current, base = [group(2.1, noise=0.05, seed=1)], [group(2.0, noise=0.05, seed=2)]
    first = judge_latency(current, base, limit=1.10, signal="cpu", seed=3)
    assert judge_latency(current, base, limit=1.10, signal="cpu", seed=3) == first


def test_margin_moves_a_borderline_regression_to_inconclusive() -> None:
    current, base = [group(2.26, noise=0.01, seed=1)], [group(2.0, noise=0.01, seed=2)]
    strict = judge_latency(current, base, limit=1.10, signal="cpu")
    lenient = judge_latency(current, base, limit=1.10, signal="cpu", margin=0.05)
    assert strict.verdict == REGRESSED
    assert 1.10 < lenient.low < 1.10 * 1.05  # above the limit, but not by the margin
    assert lenient.verdict == INCONCLUSIVE


def test_margin_does_not_excuse_a_clear_regression() -> None:
    verdict = judge_latency(
        [group(3.0, noise=0.01, seed=1)], [group(2.0, noise=0.01, seed=2)], limit=1.10, signal="cpu", margin=0.05
    )
    assert verdict.verdict == REGRESSED


def test_empty_groups_are_ignored_and_no_samples_at_all_is_an_error() -> None:
    samples = group(2.0, noise=0.01)
    assert judge_latency([samples, []], [samples], limit=1.1, signal="cpu").processes == 1
    with pytest.raises(ValueError, match="no latency samples"):
        judge_latency([[]], [samples], limit=1.1, signal="cpu")


def test_long_runs_are_thinned_but_keep_their_median() -> None:
    long_run = group(2.0, noise=0.01, n=20 * MAX_SAMPLES, seed=4)
    verdict = judge_latency([long_run], [group(2.0, noise=0.01, seed=5)], limit=1.10, signal="cpu")
    assert verdict.verdict == PASS
    assert verdict.ratio == pytest.approx(1.0, abs=0.01)


def test_absolute_limit_as_a_one_sample_baseline() -> None:
    """budgets.py judges max_latency_ms as the ratio against a one-sample group holding the limit."""
    samples = group(2.0, noise=0.01)
    assert judge_latency([samples], [[10.0]], limit=1.0, signal="wall").verdict == PASS
    assert judge_latency([samples], [[1.0]], limit=1.0, signal="wall").verdict == REGRESSED


def test_verdict_round_trips_through_json() -> None:
    verdict = judge_latency([group(2.5, noise=0.01)], [group(2.0, noise=0.01, seed=1)], limit=1.1, signal="cpu")
    assert LatencyVerdict.from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict


def test_cpu_time_only_with_one_thread_and_cpu_samples() -> None:
    assert choose_signal(threads=1, has_cpu_samples=True) == "cpu"
    assert choose_signal(threads=4, has_cpu_samples=True) == "wall"
    assert choose_signal(threads=1, has_cpu_samples=False) == "wall"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10%", 0.10),
        (" 2.5% ", 0.025),
        ("0%", 0.0),
        ("0.2", 0.2),
        (0.1, 0.1),
        (1, 1.0),
        ("300%", 3.0),
    ],
)
def test_parse_percent(value: object, expected: float) -> None:
    assert parse_percent(value, name="max_size_regression") == pytest.approx(expected)


@pytest.mark.parametrize("value", ["ten", "10%%", "", None, True, [10]])
def test_parse_percent_rejects_with_the_budget_name_and_the_fix(value: object) -> None:
    with pytest.raises(ValueError) as raised:
        parse_percent(value, name="max_latency_regression")
    message = str(raised.value)
    assert message.startswith("max_latency_regression=")
    assert "expected a percentage like '10%' or a fraction like 0.1" in message
