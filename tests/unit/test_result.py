"""Measurement and LatencyStats: the arithmetic the judge and the table rely on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_edgeopt.agent.contract import DeviceFacts
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.kinds import Note, NoteKind
from pytest_edgeopt.measure.result import LatencyStats, Measurement, agreement, top1_accuracy
from pytest_edgeopt.runtimes.base import RuntimeInfo


def make_measurement(**overrides: object) -> Measurement:
    stats = LatencyStats.from_values([2.0, 4.0, 4.0, 6.0])
    values = dict(
        model="m",
        precision="int8",
        bitwidth="INT8/INT8",
        quantization={"activation_type": "uint8", "format": "QDQ"},
        runtime="onnxruntime",
        runtime_version="1.0",
        platform="host",
        device="CPU (x86_64)",
        compute_unit="CPU",
        batch=2,
        threads=1,
        params=1000,
        size_mb=0.5,
        storage_mb=0.6,
        gflops=1.0,
        latency=stats,
        cpu_latency=stats,
        load_ms=1.0,
        first_inference_ms=2.0,
        peak_rss_mb=50.0,
        eval_count=4,
        top1=0.95,
        reference_top1=0.97,
        agreement=0.98,
        top5_agreement=1.0,
        artifact_sha="0123456789abcdef0123",
        facts=DeviceFacts(arch="x86_64", cpu_model="Test CPU"),
        runtime_info=RuntimeInfo(name="onnxruntime", version="1.0"),
        notes=(Note(NoteKind.MODEL, "n"),),
        samples_ms=(2.0, 4.0, 4.0, 6.0),
        cpu_samples_ms=(2.0, 4.0, 4.0, 6.0),
    )
    values.update(overrides)
    return Measurement.from_values(**values)


def test_latency_stats_match_numpy() -> None:
    samples = list(np.random.default_rng(1).gamma(4.0, 2.0, size=501))
    stats = LatencyStats.from_values(samples)
    assert stats.median_ms == pytest.approx(np.median(samples))
    assert stats.p90_ms == pytest.approx(np.percentile(samples, 90))
    assert stats.p99_ms == pytest.approx(np.percentile(samples, 99))
    assert stats.min_ms == min(samples) and stats.max_ms == max(samples)
    assert stats.rounds == 501
    assert stats.min_ms <= stats.median_ms <= stats.p90_ms <= stats.p99_ms <= stats.max_ms


def test_latency_stats_need_samples() -> None:
    with pytest.raises(EdgeOptError, match="no latency samples"):
        LatencyStats.from_values([])


def test_accuracy_drop_is_percentage_points() -> None:
    assert make_measurement().accuracy_drop == pytest.approx(2.0)


def test_accuracy_drop_without_labels_names_agreement() -> None:
    with pytest.raises(EdgeOptError, match="agreement"):
        _ = make_measurement(top1=None, reference_top1=None).accuracy_drop


def test_throughput_counts_the_batch() -> None:
    m = make_measurement()
    assert m.latency_ms == 4.0
    assert m.throughput == pytest.approx(2 * 1000 / 4.0)
    assert m.gflops_per_s == pytest.approx(1.0 * 1000 / 4.0)


def test_measurement_round_trips_through_json() -> None:
    m = make_measurement()
    again = Measurement.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again == m


def test_top1_and_agreement() -> None:
    predictions = [[1, 2], [3, 1], [0, 5], [2, 2]]
    reference = [[1, 0], [1, 3], [0, 1], [4, 0]]
    assert top1_accuracy(predictions, np.array([1, 3, 1, 2])) == 0.75
    assert top1_accuracy(predictions, None) is None
    assert agreement(predictions, reference) == (0.5, 0.75)
