"""What to deploy: the fastest and the smallest row that passed, against FP32 of its model."""

from __future__ import annotations

from pytest_edgeopt.judge.types import Judgement, Row
from pytest_edgeopt.kinds import Verdict
from pytest_edgeopt.measure.result import LatencyStats
from pytest_edgeopt.report.recommend import recommend
from tests.unit.test_result import make_measurement


def row(precision: str, runtime: str, ms: float, mb: float, verdict: Verdict, model: str = "m") -> Row:
    stats = LatencyStats.from_values([ms, ms, ms])
    m = make_measurement(model=model, precision=precision, runtime=runtime, latency=stats, size_mb=mb)
    return Row(measurement=m, judgement=Judgement(verdict=verdict))


def test_a_failed_row_is_never_chosen_however_fast() -> None:
    rows = [
        row("fp32", "onnxruntime", 10.0, 4.0, Verdict.PASS),
        row("int8", "onnxruntime", 2.0, 1.0, Verdict.FAIL),
        row("int8-mixed", "onnxruntime", 4.0, 1.2, Verdict.PASS),
        row("int8", "openvino", 3.0, 1.1, Verdict.INCONCLUSIVE),
    ]
    (chosen,) = recommend(rows)
    assert (chosen.fastest.precision, chosen.fastest.runtime) == ("int8-mixed", "onnxruntime")
    assert chosen.fastest.latency_vs_fp32 == 0.4 and chosen.fastest.size_vs_fp32 == 0.3
    assert chosen.smallest == chosen.fastest
    assert "smallest the same" in chosen.line()


def test_fastest_and_smallest_can_differ_and_each_model_gets_its_own() -> None:
    rows = [
        row("fp32", "onnxruntime", 10.0, 4.0, Verdict.PASS),
        row("fp16", "openvino", 3.0, 2.0, Verdict.PASS),
        row("int8", "onnxruntime", 5.0, 1.0, Verdict.NONE),
        row("int8", "onnxruntime", 1.0, 1.0, Verdict.FAIL, model="other"),
    ]
    (chosen,) = recommend(rows)
    assert chosen.fastest.precision == "fp16" and chosen.smallest.precision == "int8"
    assert not chosen.smallest.judged and "no budget applied" in chosen.line()


def test_an_accuracy_equal_to_fp32s_is_no_change_never_a_negative_zero() -> None:
    """YOLOv8n's int8-mixed on OpenVINO kept F1 1.0, as FP32: it read "F1 -0.00 % vs FP32"."""
    stats = LatencyStats.from_values([3.0, 3.0, 3.0])
    same = {"top1": None, "reference_top1": None, "metric": 1.0, "reference_metric": 1.0, "metric_name": "F1"}
    rows = [
        Row(measurement=make_measurement(precision="fp32", latency=stats, **same), judgement=Judgement(Verdict.PASS)),
        Row(
            measurement=make_measurement(precision="int8-mixed", latency=LatencyStats.from_values([1.0]), **same),
            judgement=Judgement(verdict=Verdict.PASS),
        ),
    ]
    (chosen,) = recommend(rows)
    assert "F1 +0.00 % vs FP32" in chosen.line(), chosen.line()
