"""The agent's sampling loop honours count, time and the cap (driven by a real, cheap callable)."""

from __future__ import annotations

import time

import numpy as np

from pytest_edgeopt.agent.sampling import SamplingPlan, reference_workload, sample, warm_up

BATCHES = [np.zeros((1, 4), np.float32), np.ones((1, 4), np.float32)]


def test_minimum_count_reached_when_time_is_zero() -> None:
    samples = sample(lambda b: b.sum(), BATCHES, SamplingPlan(min_runs=40, min_s=0.0, max_s=60.0))
    assert len(samples.wall_ms) == len(samples.cpu_ms) == 40
    assert not samples.capped


def test_minimum_time_extends_past_the_count() -> None:
    samples = sample(lambda b: time.sleep(0.002), BATCHES, SamplingPlan(min_runs=1, min_s=0.05, max_s=60.0))
    assert sum(samples.wall_ms) >= 40  # ms: the loop ran for at least the minimum time
    assert len(samples.wall_ms) > 1


def test_cap_stops_and_says_so() -> None:
    samples = sample(lambda b: time.sleep(0.01), BATCHES, SamplingPlan(min_runs=10_000, min_s=0.0, max_s=0.05))
    assert samples.capped
    assert 1 <= len(samples.wall_ms) < 10_000


def test_inputs_are_cycled() -> None:
    seen = []
    sample(lambda b: seen.append(float(b[0, 0])), BATCHES, SamplingPlan(min_runs=4, min_s=0.0))
    assert seen == [0.0, 1.0, 0.0, 1.0]


def test_warm_up_by_count() -> None:
    calls = []
    assert warm_up(calls.append, BATCHES, SamplingPlan(warmup_runs=7, warmup_s=0.0)) == 7
    assert len(calls) == 7


def test_sleeping_run_costs_wall_not_cpu_time() -> None:
    samples = sample(lambda b: time.sleep(0.005), BATCHES, SamplingPlan(min_runs=5, min_s=0.0))
    assert np.median(samples.wall_ms) > 4 * np.median(samples.cpu_ms)


def test_reference_workload_is_timed_between_inferences() -> None:
    plan = SamplingPlan(min_runs=20, min_s=0.2, max_s=5.0)
    samples = sample(lambda b: time.sleep(0.001), BATCHES, plan, reference_workload())
    assert 2 <= len(samples.reference_cpu_ms) < len(samples.wall_ms)
    assert len(samples.reference_cpu_ms) == len(samples.reference_wall_ms)
    assert min(samples.reference_cpu_ms) > 0
