"""ImageNet classifiers, the comparison table's headline rows: FP32 vs INT8 on the chosen platform.

No labelled ImageNet images ship offline, so these gate on agreement with FP32 on crops of the
photos scikit-learn and scikit-image ship. resnet50 and mobilenet_v2 use torchvision's pretrained
weights when they are in the local torch hub cache, else random weights (the row says so, and
agreement of a random network means little). EfficientNet-Lite0 runs on ONNX Runtime, on
LiteRT (converted by litert-torch when the tflite-torch extra is installed, else skipped with the
install command), on OpenVINO and on ExecuTorch. The ExecuTorch rows run outside --edge-quick only:
lowering EfficientNet-Lite0 to INT8 takes minutes on a 2-core machine, more than CI's smoke run
can spend on one row.
"""

import pytest


@pytest.mark.edge_models("efficientnet-lite0")
@pytest.mark.edge_precisions("fp32", "int8")
@pytest.mark.edge_runtimes("onnxruntime", "tflite", "openvino", "executorch")
@pytest.mark.edge_budget(
    min_top5_agreement=0.85, max_storage_mb=20, max_storage_regression="0%", max_latency_regression="25%"
)
def test_efficientnet_lite0(edge_model, edge_precision, edge_runtime, edge_runner, request):
    if edge_runtime == "executorch" and request.config.getoption("edge_quick"):
        pytest.skip("the ExecuTorch rows of EfficientNet-Lite0 run without --edge-quick (minutes of lowering)")
    m = edge_runner.measure(edge_model, precision=edge_precision)
    # INT8 is not faster on every CPU (on the 2-core AVX2 VM this was written on it ran at 1.1x the
    # FP32 time), but it must never fall into the 3x slowdown of a badly quantized graph
    m.check(max_latency_ratio_vs={"fp32": 1.5})


@pytest.mark.edge_models("resnet50", "mobilenet_v2")
@pytest.mark.edge_precisions("fp32", "int8")
@pytest.mark.edge_budget(max_storage_regression="0%", max_latency_regression="25%")
def test_torchvision(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    if edge_precision == "int8":
        fp32 = edge_runner.measure(edge_model, precision="fp32")
        assert m.storage_mb < fp32.storage_mb / 3
