"""Rows that say what they are: a batch other than 1 in the row, every distinct case (another
output=, another batch) its own row, and a test that failed its own assert shown as `fail`."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("skimage")

from tests.pytester_helpers import QUICK, table
from tests.third_party_data import MTCNN_ONET, THIRD_PARTY

ROWS = f"""
    import sys
    import pytest
    from pytest_edgeopt import EdgeModel

    sys.path.insert(0, {str(MTCNN_ONET.parents[3])!r})
    from tests.third_party_data import face_crops

    CROPS, FACES = face_crops()


    @pytest.mark.parametrize("output", ["prob", "box"])
    def test_heads(edge_runner, output):
        model = EdgeModel.from_onnx({str(MTCNN_ONET)!r}, name="onet", eval_data=CROPS, output=output)
        edge_runner.measure(model, precision="fp32")

    def test_batches(edge_runner):
        edge_runner.measure("digits-cnn", precision="fp32")
        edge_runner.measure("digits-cnn", precision="fp32", batch=4)

    def test_own_assert(edge_runner):
        m = edge_runner.measure("digits-cnn", precision="int8")
        assert m.top1 > 1.0, "a goal no model meets"
"""


def test_each_case_its_own_row_with_its_batch_and_a_failed_assert_shown_as_fail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=ROWS)
    result = pytester.runpytest(*QUICK, "--edge-table-columns=all")
    result.assert_outcomes(passed=3, failed=1)
    rows = table(result)
    models = [row["Model"] for row in rows if row["Model"]]
    assert "onet -> prob" in models and "onet -> box" in models, models
    bitwidths = [row["Bit-width (W/A)"] for row in rows]
    assert "FP32/FP32, batch 4" in bitwidths and bitwidths.count("FP32/FP32") >= 3
    int8 = next(row for row in rows if row["Bit-width (W/A)"].startswith("INT8"))
    assert int8["Verdict"] == "fail"
    assert all(row["Verdict"] == "-" for row in rows if not row["Bit-width (W/A)"].startswith("INT8"))


SINE = f"""
    import numpy as np
    from pytest_edgeopt import EdgeModel


    def test_sine(edge_runner):
        x = np.linspace(0, 2 * np.pi, 64, dtype=np.float32).reshape(-1, 1)
        m = edge_runner.measure(EdgeModel.from_tflite({str(THIRD_PARTY / "tflm_sine_float.tflite")!r}, eval_data=x),
                                precision="fp32")
        assert m.params == 321 and m.gflops is not None and m.gflops > 0
"""


def test_a_tflite_signature_with_a_dynamic_batch_still_counts_its_params_and_flops(pytester: pytest.Pytester) -> None:
    """TFLite Micro's sine model declares its batch as -1: counted at the eval shape, not n/a or 0.000."""
    pytest.importorskip("ai_edge_litert")
    pytester.makepyfile(test_x=SINE)
    result = pytester.runpytest(*QUICK, "--edge-table-columns=all")
    result.assert_outcomes(passed=1)
    row = table(result)[0]
    assert row["Params (M)"] == "0.00032"
    assert not row["Compute (GFLOPs, GFLOP/s)"].startswith("n/a")
