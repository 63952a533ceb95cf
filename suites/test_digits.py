"""digits-cnn: a small CNN trained on scikit-learn's digits; labelled, so top-1 is real.

The budgets are the deployment decision written down: INT8 may lose at most one point of top-1,
must stay under 1 MB on disk, must not grow against the stored baseline and must not get more
than 25% slower than it. Each case runs on ONNX Runtime, on LiteRT (the shipped .tflite
conversion, quantized by ai-edge-quantizer), on OpenVINO (the same .onnx files, INT8 by NNCF) and
on ExecuTorch (XNNPACK .pte, INT8 by the PT2E XNNPACK quantizer). Refresh the baseline with
`pytest suites --update-baselines`.
"""

import pytest


@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
@pytest.mark.edge_runtimes("onnxruntime", "tflite", "openvino", "executorch")
@pytest.mark.edge_budget(
    max_accuracy_drop=1.0, min_top1=0.95, max_storage_mb=1.0, max_size_regression="0%", max_latency_regression="25%"
)
def test_digits_budgets(edge_model, edge_precision, edge_runner):
    edge_runner.measure(edge_model, precision=edge_precision)


@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_runtimes("onnxruntime", "tflite", "openvino", "executorch")
def test_int8_is_smaller(edge_model, edge_runner):
    fp32 = edge_runner.measure(edge_model, precision="fp32")
    int8 = edge_runner.measure(edge_model, precision="int8")
    assert int8.size_mb * 3 <= fp32.size_mb
    int8.check(min_agreement=0.98)
