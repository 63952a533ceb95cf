"""MediaPipe's short-range face detector (BlazeFace) as the `mediapipe` wheel ships it.

The file is MediaPipe's own: float16 weights feeding DEQUANTIZE ops, no SignatureDef, the old
opcode schema (suites/third_party.py takes the installed package's copy, else the one in
suites/models/). The TFLite builder widens it to the exact FP32 file (outputs equal to the
shipped file's) from which FP16 and INT8 derive, and each row's notes say so. Input: 128x128 RGB
in [-1, 1], NHWC; outputs `regressors [1, 896, 16]` (boxes and keypoints per anchor) and
`classificators [1, 896, 1]` (a logit per anchor). Eval data are scenes with and without a drawn
face, labelled by construction (suites/synthetic.py); the metric is the detection AUC: how often
a scene with a face outscores one without, by the best anchor's logit. A threshold-free metric on
purpose: ai-edge-quantizer's INT8 file stores `classificators` with a range that ends at logit 0
(scale 0.589, zero point 127), so at MediaPipe's default threshold (score 0.5) it finds no face at
all, while its ranking of scenes is kept; the fidelity column (SQNR) shows that loss.

Host: `pytest suites/test_mediapipe.py`; microcontroller: `--edge-platform=cortex-m7` (the INT8
row only: TFLite Micro runs full-integer models; FP32 and FP16 skip saying so).
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_edgeopt import EdgeModel, Metric
from suites.synthetic import cartoon_faces
from suites.third_party import packaged_model

MODEL = str(packaged_model("mediapipe", "modules/face_detection/face_detection_short_range.tflite"))


def face_auc(outputs: dict, labels: np.ndarray) -> float:
    """How often a scene with a face outscores one without (ties half): the best anchor's logit."""
    best = outputs["classificators"].reshape(len(labels), -1).max(axis=1)
    faces, empty = best[labels == 1][:, None], best[labels == 0][None, :]
    return float(np.mean((faces > empty) + 0.5 * (faces == empty)))


@pytest.fixture(scope="module")
def blazeface() -> EdgeModel:
    images, labels = cartoon_faces(count=40, seed=1)
    calibration, _ = cartoon_faces(count=32, seed=2)
    return EdgeModel.from_tflite(
        MODEL,
        name="mediapipe-face-det",
        eval_data=(images, labels),
        calibration_data=calibration,
        metric=Metric("face AUC", face_auc, higher_is_better=True),
    )


@pytest.mark.edge_precisions("fp32", "fp16", "int8")
@pytest.mark.edge_budget(min_metric=0.9, max_metric_drop=5.0, min_sqnr_db=5, max_storage_regression="0%")
def test_mediapipe_face_detection(blazeface, edge_precision, edge_runner):
    m = edge_runner.measure(blazeface, precision=edge_precision)
    assert set(m.fidelity) == {"regressors", "classificators"}
