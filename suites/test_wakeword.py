"""microWakeWord's "Okay Nabu" keyword spotter as the `pymicro-wakeword` wheel ships it.

A full-integer streaming model: `okay_nabu.tflite` takes one window of 3 frames x 40 log-mel
features (int8) per call and returns the wake word's probability (uint8); resource variables
(VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE, set up by CALL_ONCE) carry the stream's state from one
call to the next, as TFLite Micro runs it on ESP32 boards. It is measured as given (`int8`: the
row says so); the publisher's manifest (`okay_nabu.json`) asks for a 37,000-byte tensor arena and
detects when the mean probability over 5 windows exceeds 0.85.

No recording of the wake word ships with any package here, so the eval stream holds none by
construction (suites/synthetic.py: near silence, noise and hums, in stream order) and the metric
is the share of windows that do not falsely wake. On a microcontroller profile
(`--edge-platform=cortex-m4`, `esp32-s3`) TFLite Micro runs the stream in order on this machine,
and the row compares its outputs with LiteRT's on the same file.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_edgeopt import EdgeModel, Metric
from suites.synthetic import nonspeech_feature_stream
from suites.third_party import packaged_model

MODEL = str(packaged_model("pymicro_wakeword", "models/okay_nabu.tflite"))
MANIFEST = json.loads(packaged_model("pymicro_wakeword", "models/okay_nabu.json").read_text())["micro"]


def no_false_wake(outputs: dict, labels: np.ndarray) -> float:
    """Windows whose sliding mean probability stays under the publisher's cutoff (none holds the word)."""
    probability = next(iter(outputs.values())).reshape(-1)
    window = int(MANIFEST["sliding_window_size"])
    means = np.convolve(probability, np.ones(window) / window, mode="valid")
    return float(np.mean(means <= float(MANIFEST["probability_cutoff"])))


@pytest.fixture(scope="module")
def okay_nabu() -> EdgeModel:
    stream = nonspeech_feature_stream(windows=300, seed=1)
    return EdgeModel.from_tflite(
        MODEL,
        name="okay-nabu",
        eval_data=(stream, np.zeros(len(stream))),
        metric=Metric("no false wake", no_false_wake, higher_is_better=True),
    )


@pytest.mark.edge_precisions("int8")
@pytest.mark.edge_budget(min_metric=0.99, max_storage_regression="0%")
def test_okay_nabu(okay_nabu, edge_precision, edge_platform, edge_runner):
    m = edge_runner.measure(okay_nabu, precision=edge_precision)
    assert any("measured as given" in note for note in m.notes)
    if edge_platform.mcu is not None:
        assert m.arena_kb is not None and m.arena_kb * 1024 <= int(MANIFEST["tensor_arena_size"])  # the publisher's
