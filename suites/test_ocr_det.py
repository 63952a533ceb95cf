"""PP-OCRv4 text detection: a third-party model whose output is a dense probability map.

The weights are PaddleOCR's PP-OCRv4 mobile detector as the `rapidocr-onnxruntime` wheel ships
them (the installed package's copy, else suites/models/). It takes `x [N, 3, H, W]` (dynamic H
and W, normalized to [-1, 1]) and returns a text-probability map `[N, 1, H, W]`: argmax agreement
means nothing there (it printed 0.0% for an INT8 that was nearly unchanged), so the row is judged
by a task metric, the pixel IoU of the thresholded map with the rendered text lines' boxes
(labels by construction, suites/synthetic.py), and by the map's fidelity against FP32.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_edgeopt import EdgeModel, Metric
from suites.synthetic import text_images
from suites.third_party import packaged_model

MODEL = str(packaged_model("rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx"))
THRESHOLD = 0.3  # PP-OCR's own binarization threshold (rapidocr config.yaml: thresh 0.3)


def text_iou(outputs: dict, masks: np.ndarray) -> float:
    predicted = next(iter(outputs.values()))[:, 0] > THRESHOLD
    truth = masks > 0.5
    inter, union = (predicted & truth).sum(axis=(1, 2)), (predicted | truth).sum(axis=(1, 2))
    return float(np.mean(inter / np.maximum(union, 1)))


@pytest.fixture(scope="module")
def detector() -> EdgeModel:
    pytest.importorskip("PIL", reason="the rendered text pages (suites/synthetic.py) need pillow")
    pages, masks = text_images(count=12, seed=0)
    calibration, _ = text_images(count=8, seed=1)
    return EdgeModel.from_onnx(
        MODEL,
        name="ppocr-v4-det",
        eval_data=(pages, masks),
        calibration_data=calibration,
        metric=Metric("IoU", text_iou, higher_is_better=True),
    )


@pytest.mark.edge_precisions("fp32", "int8")
@pytest.mark.edge_budget(min_metric=0.7, max_metric_drop=5.0, min_cosine=0.95, max_storage_regression="0%")
def test_ppocr_text_detection(detector, edge_precision, edge_runner):
    m = edge_runner.measure(detector, precision=edge_precision)
    assert m.agreement is None  # a dense map: no class axis, no argmax agreement
