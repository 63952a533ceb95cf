"""keep_float=, m.sensitivity and int8-mixed on LiteRT: ai-edge-quantizer's full-integer .tflite,
ranked from real activations of the eval set read with LiteRT's interpreter, float layers kept by
NO_QUANTIZE recipe entries.

The model is test_keep_float's "Sensitive" MLP (fc1 carries a weight of 1000 on an always-zero
input). Its LiteRT INT8 file keeps 9.4% top-1; keeping fc1 float brings it to 89.1%, not to
FP32's 100%: ai-edge-quantizer calibrates with a moving average of each sample's min/max, so the
int8 graph input clips at about 1.7 sigma, and the FP32 model fed those clipped inputs itself keeps
92.2%. The budgets here are therefore 15 pp, which plain INT8 breaks and fc1 in float meets.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
if find_spec("litert_torch") is None or find_spec("ai_edge_quantizer") is None or find_spec("ai_edge_litert") is None:
    pytest.skip("litert-torch, ai-edge-quantizer and ai-edge-litert are not installed", allow_module_level=True)

from tests.integration.test_keep_float import MODEL
from tests.pytester_helpers import QUICK, assert_gate_failed, failures, table

FC1 = "sens_model.Sensitive/torch.nn.modules.linear.Linear_fc1;;sens_model.Sensitive;"  # fc1 (+ its ReLU)
FC1_WEIGHT_BYTES = 32 * 17 * 4  # its float32 weight matrix


def _run(pytester: pytest.Pytester, tests: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(sens_model=MODEL, test_x=tests)
    return pytester.runpytest(*QUICK, "-p", "no:randomly", *args)


def test_litert_ranks_fc1_first_keeps_it_float_and_int8_mixed_finds_it(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        f"""
        from sens_model import sensitive

        FC1 = {FC1!r}

        def test_int8_breaks_its_budget(edge_runner):
            edge_runner.measure(sensitive(), precision="int8", runtime="tflite", max_accuracy_drop=15.0)

        def test_kept(edge_runner):
            plain = edge_runner.measure(sensitive(), precision="int8", runtime="tflite")
            kept = edge_runner.measure(sensitive(), precision="int8", runtime="tflite", keep_float=["fc1"])
            assert plain.kept_float == () and kept.kept_float == (FC1,)
            assert kept.bitwidth.startswith("INT8 mixed, 1 layers float")
            print("LITERT", plain.accuracy_drop, kept.accuracy_drop)
            assert plain.accuracy_drop > 50 and kept.accuracy_drop <= 15.0  # 90.6 -> 10.9 pp here
            # fc1's weights stay float32 in the written file, and the measured share says so
            assert "float32" not in plain.quantized.weight_bytes
            assert kept.quantized.weight_bytes["float32"] >= {FC1_WEIGHT_BYTES}
            assert kept.quantized.mac_share < plain.quantized.mac_share == 1.0

        def test_mixed(edge_runner):
            m = edge_runner.measure(sensitive(), precision="int8-mixed", runtime="tflite", max_accuracy_drop=15.0)
            assert m.kept_float == (FC1,) and m.accuracy_drop <= 15.0
            print("NOTE", [n for n in m.note_texts() if n.startswith("int8-mixed:")])

        def test_a_pattern_that_matches_nothing(edge_runner):
            edge_runner.measure(sensitive(), precision="int8", runtime="tflite", keep_float=["fc9"])
        """,
        "-s",
    )
    assert_gate_failed(result, failed=2, passed=2)
    texts = failures(result)
    lines = texts["test_int8_breaks_its_budget"].splitlines()
    first = lines.index(next(line for line in lines if "the layers INT8 hurts most" in line))
    assert f"{FC1} (fc1) FULLY_CONNECTED" in lines[first + 1]  # the worst op, with its torch module path
    assert f"keep them in float: keep_float=[{FC1!r}" in texts["test_int8_breaks_its_budget"]
    assert texts["test_a_pattern_that_matches_nothing"] == (
        "EdgeOptError: sensitive-mlp (int8): keep_float pattern 'fc9' matches no node "
        "(by name, glob on name or torch module path, or op type)"
    )
    result.stdout.fnmatch_lines(["*int8-mixed: 1 layers kept float after 2 candidate(s) in *met the goal*"])
    assert any(row["Bit-width (W/A)"].startswith("INT8 mixed, 1 layers float") for row in table(result))


def test_edge_explain_ranks_the_litert_int8_row(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        f"""
        from sens_model import sensitive

        def test_int8(edge_runner):
            m = edge_runner.measure(sensitive(), precision="int8", runtime="tflite")
            worst = m.sensitivity[0]
            assert (worst.name, worst.op_type, worst.source) == ({FC1!r}, "FULLY_CONNECTED", "fc1")
            assert worst.loss_db > 5  # 10.9 dB here; the next op loses 1.9 dB
            assert [e.source for e in m.sensitivity].count("fc1") == 1 and len(m.sensitivity) == 3

        def test_fp16_and_dynamic_are_not_ranked(edge_runner):
            for precision in ("fp16", "int8-dynamic"):
                assert edge_runner.measure(sensitive(), precision=precision, runtime="tflite").sensitivity is None
        """,
        "--edge-explain",
    )
    result.assert_outcomes(passed=2)


def test_a_users_own_tflite_file_keeps_layers_float_by_op_type_and_module_path(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
        import numpy as np
        import torch
        from pytest_edgeopt import EdgeModel
        from pytest_edgeopt.optimize.tflite import convert_torch, to_int8_static
        from sens_model import Sensitive

        def test_own_file(edge_runner, tmp_path):
            torch.manual_seed(0)
            module = Sensitive().eval()
            x = np.random.default_rng(0).normal(0, 1, (64, 17)).astype(np.float32)
            x[:, 16] = 0.0
            with torch.no_grad():
                labels = module(torch.from_numpy(x)).argmax(1).numpy()
            path = tmp_path / "mlp.tflite"
            convert_torch(module, x[:1], batch=1, dest=path)  # the user's FP32 file, from litert-torch
            model = EdgeModel.from_tflite(path, eval_data=(x, labels), classifier=True)
            m = edge_runner.measure(model, precision="int8", keep_float=["FULLY_CONNECTED"])
            assert len(m.kept_float) == 3 and m.bitwidth.startswith("INT8 mixed, 3 layers float")
            assert "int8" not in m.quantized.weight_bytes  # every weight stays float32
            assert m.accuracy_drop <= 15.0
            # a glob on the torch module paths litert-torch wrote into the file's tensor names; the
            # last op's output is renamed after the signature, its weights still name fc2
            two = edge_runner.measure(model, precision="int8", keep_float=["fc[12]"])
            assert two.kept_float == m.kept_float[1:]
            assert two.kept_float[1] == "serving_default_output_0_output"

        def test_a_file_already_quantized_has_no_float_layers_to_keep(edge_runner, tmp_path):
            module = Sensitive().eval()
            x = np.random.default_rng(0).normal(0, 1, (8, 17)).astype(np.float32)
            convert_torch(module, x[:1], batch=1, dest=tmp_path / "fp32.tflite")
            to_int8_static(tmp_path / "fp32.tflite", tmp_path / "int8.tflite", calibration=x, batch=1)
            model = EdgeModel.from_tflite(tmp_path / "int8.tflite", eval_data=x)
            edge_runner.measure(model, precision="int8", keep_float=["fc1"])
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    assert failures(result)["test_a_file_already_quantized_has_no_float_layers_to_keep"] == (
        "EdgeOptError: int8: the file is already quantized (INT8/INT8), so keep_float= cannot keep layers float "
        "in it: pass its FP32 file"
    )


def test_a_vendors_file_is_ranked_with_the_readers_of_a_clipping_output_quantization(
    pytester: pytest.Pytester,
) -> None:
    """MediaPipe's BlazeFace (TensorFlow's tensor names, no torch module path): its residual RELUs
    compute in int8 with an output scale that clips (13.9 dB lost by the worst), which no float RELU
    alone avoids: the ranking names the ops reading it, which int8-mixed keeps float with it."""
    models = Path(__file__).resolve().parents[2] / "suites" / "models"
    result = _run(
        pytester,
        f"""
        import numpy as np
        from pytest_edgeopt import EdgeModel

        def test_face(edge_runner):
            x = np.random.default_rng(0).uniform(-1, 1, (8, 128, 128, 3)).astype(np.float32)
            model = EdgeModel.from_tflite({str(models / "face_detection_short_range.tflite")!r}, eval_data=x)
            m = edge_runner.measure(model, precision="int8", runtime="tflite")
            names = {{e.name for e in m.sensitivity}}
            assert all(e.source == e.name for e in m.sensitivity)  # TensorFlow's names are not module paths
            clipped = [e for e in m.sensitivity if e.readers]
            assert clipped and all(e.op_type == "RELU" and e.loss_db > 3 for e in clipped[:3])
            assert all(set(e.readers) <= names for e in clipped)
            kept = edge_runner.measure(model, precision="int8", runtime="tflite", keep_float=list(clipped[0].float_set))
            assert set(kept.kept_float) == set(clipped[0].float_set)  # the RELU and its readers
        """,
        "--edge-explain",
    )
    result.assert_outcomes(passed=1)
