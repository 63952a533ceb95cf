"""digits-cnn: a small CNN trained on scikit-learn's digits; labelled, so top-1 is real.

The budgets are the deployment decision written down: INT8 may lose at most one point of top-1,
must stay under 1 MB on disk and must be at least 3x smaller than FP32.
"""
import pytest


@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
def test_digits_budgets(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.top1 >= 0.95
    assert m.accuracy_drop <= 1.0
    assert m.storage_mb < 1.0


@pytest.mark.edge_models("digits-cnn")
def test_int8_is_smaller(edge_model, edge_runner):
    fp32 = edge_runner.measure(edge_model, precision="fp32")
    int8 = edge_runner.measure(edge_model, precision="int8")
    assert int8.size_mb * 3 <= fp32.size_mb
    assert int8.agreement >= 0.98
