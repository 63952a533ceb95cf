"""Files as vendors publish them, measured on LiteRT: MediaPipe's face detector (float16 weights,
no SignatureDef, the old opcode schema), its selfie segmenter (a custom op) and microWakeWord's
full-integer `okay_nabu.tflite`, all as their PyPI wheels ship them (suites/models/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("ai_edge_quantizer")

from tests.pytester_helpers import QUICK, assert_gate_failed, failures, notes, table

try:  # imported here, before any pytester run: a second import of its C extension fails to register
    import tflite_micro
except ImportError:
    tflite_micro = None

MODELS = Path(__file__).resolve().parents[2] / "suites" / "models"

FACE = f"""
import numpy as np
import pytest
from pytest_edgeopt import EdgeModel

def faces():
    x = np.random.default_rng(0).uniform(-1, 1, (8, 128, 128, 3)).astype(np.float32)
    return EdgeModel.from_tflite({str(MODELS / "face_detection_short_range.tflite")!r}, name="face-det", eval_data=x)

@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_face(edge_runner, precision):
    m = edge_runner.measure(faces(), precision=precision, runtime="tflite")
    assert set(m.fidelity) == {{"regressors", "classificators"}}
    if precision == "fp32":
        assert m.quantized is None
    else:
        assert m.quantized.weight_share > 0.9
"""


def test_a_float16_mediapipe_file_is_widened_to_an_exact_fp32_root_every_precision_derives_from(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x=FACE)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=3)
    cells = [row["Bit-width (W/A)"] for row in table(result)]
    assert cells[0] == "FP32/FP32" and cells[1].startswith("FP16/FP32") and cells[2] == "INT8/INT8", cells
    rewritten = " ".join(" ".join(notes(result)).split())
    for step in (
        "face_detection_short_range.tflite rewritten: opcode table moved from the old schema",
        "74 float16 weight tensors widened to float32 (their DEQUANTIZE ops folded; exact)",
        "a SignatureDef 'serving_default' added (the file has none)",
        "(outputs equal to the shipped file's)",
    ):
        assert step in rewritten, rewritten
    assert "already quantized" not in rewritten


NABU = f"""
import pytest
from pytest_edgeopt import EdgeModel

MODEL = {str(MODELS / "okay_nabu.tflite")!r}

@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_nabu(edge_runner, precision):
    m = edge_runner.measure(EdgeModel.from_tflite(MODEL), precision=precision, runtime="tflite")
    assert m.precision == precision

def test_nabu_fp16(edge_runner):
    edge_runner.measure(EdgeModel.from_tflite(MODEL), precision="fp16", runtime="tflite")

def test_selfie_on_reference_kernels(edge_runner):
    model = EdgeModel.from_tflite({str(MODELS / "selfie_segmentation.tflite")!r})
    edge_runner.measure(model, precision="fp32", runtime="tflite-reference")
"""


def test_a_full_integer_file_is_measured_as_given_and_errors_name_the_users_file_and_op(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x=NABU)
    result = pytester.runpytest(*QUICK)
    assert_gate_failed(result, failed=2, passed=2)
    assert [row["Bit-width (W/A)"] for row in table(result)] == ["INT8/INT8", "INT8/INT8"]
    given = " ".join(" ".join(notes(result)).split())
    assert "measured as given: the file is already quantized (INT8/INT8)" in given
    reasons = failures(result)
    assert reasons["test_nabu_fp16"] == (
        "EdgeOptError: okay_nabu: the file is already quantized (INT8/INT8): measure it as given with "
        "precision='int8', or pass its FP32 file to derive fp16"
    )
    assert reasons["test_selfie_on_reference_kernels"] == (
        "EdgeOptError: selfie_segmentation [fp32, tflite-reference]: selfie_segmentation.tflite uses the custom "
        "op Convolution2DTransposeBias, which tflite-reference has no kernel for (runtime='tflite' runs it "
        "through XNNPACK)"
    )


MCU = f"""
import numpy as np
from pytest_edgeopt import EdgeModel, Metric

def best_logit(outputs, labels):
    return float(np.mean(outputs["classificators"].reshape(len(labels), -1).max(axis=1)))

def test_face_int8(edge_runner):
    x = np.random.default_rng(0).uniform(-1, 1, (6, 128, 128, 3)).astype(np.float32)
    model = EdgeModel.from_tflite(
        {str(MODELS / "face_detection_short_range.tflite")!r}, name="face-det", eval_data=(x, np.zeros(6)),
        metric=Metric("best logit", best_logit),
    )
    m = edge_runner.measure(model, precision="int8")
    assert m.runtime == "tflm" and m.metric is not None and m.reference_metric is not None
    assert set(m.fidelity) == {{"regressors", "classificators"}}
    assert all(f.sqnr_db > 0 for f in m.fidelity.values())

def woken(outputs, labels):
    return float(np.count_nonzero(outputs["StatefulPartitionedCall:0"]))

def test_streaming_keyword_spotter(edge_runner):
    stream = np.random.default_rng(0).uniform(0, 8, (120, 3, 40)).astype(np.float32)
    model = EdgeModel.from_tflite({str(MODELS / "okay_nabu.tflite")!r}, name="okay-nabu",
                                  eval_data=(stream, np.zeros(120)), metric=Metric("woken", woken))
    m = edge_runner.measure(model, precision="int8")
    assert m.runtime == "tflm" and 0 < m.arena_kb * 1024 <= 37_000  # the arena its publisher asks for
    assert set(m.fidelity) == {{"StatefulPartitionedCall:0"}}
    # window by window with no state carried, every output is 0 on this stream (a fresh LiteRT
    # interpreter per window, reference kernels); fed in order, 77 of the 120 are not
    assert m.metric > 60, m.metric

def test_selfie_int8(edge_runner):
    x = np.random.default_rng(0).uniform(0, 1, (4, 256, 256, 3)).astype(np.float32)
    model = EdgeModel.from_tflite({str(MODELS / "selfie_segmentation.tflite")!r}, name="selfie", eval_data=x)
    edge_runner.measure(model, precision="int8")
"""


def test_mcu_rows_of_vendor_files_have_their_metric_fidelity_and_resource_variables_in_stream_order(
    pytester: pytest.Pytester,
) -> None:
    if tflite_micro is None:
        pytest.skip("tflite-micro is not installed here")
    pytester.makepyfile(test_x=MCU)
    result = pytester.runpytest(*QUICK, "-rs", "--edge-platform=cortex-m4")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * int8 does not run on cortex-m4: float compute in DEQUANTIZE, CUSTOM:Convolution2DTransposeBias; "
            "TFLite Micro runs full-integer builtin ops only"
        ]
    )
    runtimes = {row["Model"]: row for row in table(result)}
    assert set(runtimes) == {"face-det", "okay-nabu"}
