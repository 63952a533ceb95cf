"""Silero VAD: a third-party speech detector with three inputs and a recurrent state.

The weights are Silero VAD v6 as the `silero-vad` wheel ships them (suites/third_party.py takes the
installed package's copy, else the one in suites/models/). Its ONNX graph takes `input [N, 576]`
(512 new samples plus 64 of context at 16 kHz), `state [2, N, 128]` (batched on axis 1) and `sr`,
a scalar sample rate fed once per call; it returns `output [N, 1]` (speech probability) and the
next state. Eval data are frames of synthesized speech-like audio and quiet noise, labelled by
construction (suites/synthetic.py), each with the state the FP32 model carries into it when
streaming; the metric is frame accuracy at p > 0.5. Its single-number output has no class axis,
so the row's accuracy signal is the metric and the fidelity of both outputs against FP32.
Most of Silero's weights sit inside If branches (8 kHz / 16 kHz), which ONNX Runtime's static
quantizer does not enter (its dynamic one fails on them: "Expected ... to be an initializer"): the
INT8 file is the FP32 model under another name (0% of its weights in int8), so its row fails the
default quantized-share floor, saying why. The case is an expected failure, kept to show that row.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_edgeopt import BudgetExceeded, EdgeModel, Metric
from suites.synthetic import vad_frames
from suites.third_party import packaged_model

MODEL = str(packaged_model("silero_vad", "data/silero_vad.onnx"))


def frame_accuracy(outputs: dict, labels: np.ndarray) -> float:
    return float(np.mean((outputs["output"][:, 0] > 0.5) == (labels > 0.5)))


@pytest.fixture(scope="module")
def silero() -> EdgeModel:
    pytest.importorskip("scipy.signal", reason="the synthetic speech (suites/synthetic.py) needs scipy")
    eval_inputs, labels = vad_frames(MODEL, seed=1)
    calibration, _ = vad_frames(MODEL, seed=2)
    return EdgeModel.from_onnx(
        MODEL,
        name="silero-vad",
        eval_data=(eval_inputs, labels),
        calibration_data=calibration,
        metric=Metric("frame acc", frame_accuracy, higher_is_better=True),
    )


@pytest.mark.edge_precisions("fp32", "int8")
@pytest.mark.edge_budget(min_metric=0.85, max_metric_drop=3.0, min_sqnr_db=20, max_storage_regression="0%")
def test_silero_vad(silero, edge_precision, edge_runner, request):
    if edge_precision == "int8":
        reason = "ONNX Runtime quantizes none of Silero's weights (they sit in If subgraphs)"
        request.applymarker(pytest.mark.xfail(raises=BudgetExceeded, strict=True, reason=reason))
    m = edge_runner.measure(silero, precision=edge_precision)
    assert set(m.fidelity) == {"output", "stateN"}
