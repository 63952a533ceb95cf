"""An accuracy signal that fits the output: top-1 and agreement only where the scored output holds
class scores; fidelity of every output, the worst one named, everywhere else; labels that do not
fit the scored output refused in one line naming the outputs to choose from.

On MTCNN's O-Net as the facenet-pytorch wheel ships its weights (tests/data/third_party): a box
regression [N,4] first, landmarks [N,10], then the face probability [N,2].
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("skimage")

from tests.pytester_helpers import QUICK, assert_gate_failed, failures, table
from tests.third_party_data import MTCNN_ONET

HEADER = f"""
    import sys
    import numpy as np
    import pytest
    from pytest_edgeopt import EdgeModel, Metric

    sys.path.insert(0, {str(MTCNN_ONET.parents[3])!r})
    from tests.third_party_data import face_crops

    MODEL = {str(MTCNN_ONET)!r}
    CROPS, FACES = face_crops()
"""


def test_class_ids_on_a_box_regression_output_fail_in_one_line_naming_the_outputs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x=HEADER
        + """
    def test_first_output(edge_runner):
        edge_runner.measure(EdgeModel.from_onnx(MODEL, name="onet", eval_data=(CROPS, FACES)), precision="fp32")

    def test_prob_output(edge_runner):
        model = EdgeModel.from_onnx(MODEL, name="onet-prob", eval_data=(CROPS, FACES), output="prob")
        m = edge_runner.measure(model, precision="int8")
        assert m.top1 == 1.0 and m.reference_top1 == 1.0 and m.agreement is not None
"""
    )
    result = pytester.runpytest(*QUICK)
    assert_gate_failed(result, failed=1, passed=1)
    reason = failures(result)["test_first_output"]
    assert len(reason.splitlines()) == 1, reason
    assert "the eval labels are class ids, but the scored output 'box' [4] does not score the labels' classes" in reason
    assert "outputs: 'box' [4], 'landmarks' [10], 'prob' [2]" in reason and "output=" in reason


def test_a_label_free_regression_model_is_judged_by_its_worst_outputs_fidelity(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x=HEADER
        + """
    @pytest.mark.edge_precisions("fp32", "int8")
    def test_onet(edge_precision, edge_runner):
        m = edge_runner.measure(EdgeModel.from_onnx(MODEL, name="onet", eval_data=CROPS), precision=edge_precision)
        assert m.agreement is None and m.top1 is None  # [N,4] looks like 4 classes, and is not
        assert set(m.fidelity) == {"box", "landmarks", "prob"}
        if edge_precision == "int8":
            worst = min(m.fidelity, key=lambda name: m.fidelity[name].sqnr_db)
            print(f"WORST {worst} {m.fidelity[worst].sqnr_db:.1f}")
"""
    )
    result = pytester.runpytest(*QUICK, "-s")
    result.assert_outcomes(passed=2)
    worst = next(line for line in result.stdout.lines if "WORST " in line).split("WORST ", 1)[1].split()
    rows = {row["Bit-width (W/A)"].split()[0]: row for row in table(result)}
    assert rows["INT8/INT8"]["Agreement (%)"] == f"SQNR {worst[1]} dB ({worst[0]})"
    assert rows["FP32/FP32"]["Agreement (%)"] == "ref"


def test_labels_of_any_type_reach_the_users_metric(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x=HEADER
        + """
    def face_rate(outputs, labels):
        said = np.where(outputs["prob"][:, 1] > 0.5, "face", "background")
        return float(np.mean(said == labels))

    def test_words(edge_runner):
        words = np.where(FACES == 1, "face", "background")
        model = EdgeModel.from_onnx(MODEL, name="onet", eval_data=(CROPS, words), metric=Metric("face acc", face_rate))
        m = edge_runner.measure(model, precision="fp32")
        assert m.metric == 1.0
"""
    )
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1)
