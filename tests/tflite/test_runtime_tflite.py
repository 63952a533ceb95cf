"""runtime="tflite": committed .tflite files measured by LiteRT, with only the runtime installed.

The files are the digits CNN as scripts/convert_digits_tflite.py converts and quantizes it (FP32,
FP16, INT8 with int8 input and output). Nothing here needs torch or a converter: CI runs this
file in a venv with `pytest-edgeopt[onnx,tflite]` only.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from tests.pytester_helpers import QUICK, assert_gate_failed, failures, notes, table

try:  # imported here, before any pytester run: a second import of onnx's C extension aborts the process
    import onnx
except ImportError:  # a tflite-only install: the ONNX-model-on-tflite case is left out
    onnx = None

DATA = Path(__file__).resolve().parent.parent / "data" / "tflite"


def row_notes(result: pytest.RunResult, row: Dict[str, str]) -> List[str]:
    """The notes a table row points at by number (its Notes cell, e.g. "2,3")."""
    numbers = {f"[{n.strip()}] " for n in row["Notes"].split(",") if n.strip()}
    return [line.split("] ", 1)[1] for line in notes(result) if line.split("] ", 1)[0] + "] " in numbers]


COMMITTED = """
import pytest

from pytest_edgeopt import EdgeModel
from pytest_edgeopt.models.digits import _load_split

X, Y, CALIB = _load_split()


@pytest.mark.parametrize("name", ["fp32", "fp16", "int8"])
def test_committed(edge_runner, name):
    model = EdgeModel.from_tflite(f"digits_{name}.tflite", name=f"digits-{name}", eval_data=(X, Y))
    m = edge_runner.measure(model, precision="fp32", runtime="tflite")
    assert m.top1 >= 0.95, m.top1
    assert m.runtime == "tflite" and m.fingerprint["runtime"]["xnnpack"] is True


def test_marker_path_without_eval_data(edge_runner):
    m = edge_runner.measure("digits_fp32.tflite", precision="fp32")  # a .tflite file means LiteRT
    assert m.top1 is None and m.eval_count == 32 and m.runtime == "tflite"


@pytest.mark.edge_models("digits_fp32.tflite")
def test_marker_file(edge_model, edge_runner, edge_runtime):
    assert edge_model.kind == "tflite" and edge_model.eval_labels is None
    m = edge_runner.measure(edge_model, precision="fp32")
    assert m.runtime == edge_runtime == "tflite" and m.eval_count == 32 and m.top1 is None
    assert "no eval data: seeded random inputs, agreement or fidelity only" in m.notes


def test_reference_kernels(edge_runner):
    model = EdgeModel.from_tflite("digits_int8.tflite", name="digits-ref", eval_data=(X, Y))
    m = edge_runner.measure(model, precision="fp32", runtime="tflite-reference")
    assert m.top1 >= 0.95 and m.fingerprint["runtime"]["xnnpack"] is False
"""


def copy_fixtures(pytester: pytest.Pytester) -> None:
    for path in DATA.glob("digits_*.tflite"):
        shutil.copyfile(path, pytester.path / path.name)


def test_committed_files_run_on_litert_and_the_row_shows_how(pytester: pytest.Pytester) -> None:
    copy_fixtures(pytester)
    pytester.makepyfile(test_x=COMMITTED)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=6)
    rows = {row["Model"] or "": row for row in table(result)}
    runtimes = [row["Runtime"] for row in table(result)]
    assert len([r for r in runtimes if r.startswith("tflite ") and r.endswith(" (XNNPACK)")]) == 4  # one row per case
    assert len([r for r in runtimes if r.startswith("tflite-reference ") and "XNNPACK" not in r]) == 1
    assert rows["digits-int8"]["Storage (MB)"] == "0.047"  # 47,264 bytes: int8 weights, int8 I/O
    # a full-integer file is labelled by what it holds, not by precision="fp32"; a float16-weight
    # file is widened to the exact FP32 file its precisions derive from, and the row says so
    assert [rows[f"digits-{n}"]["Bit-width (W/A)"] for n in ("fp32", "fp16", "int8")] == [
        "FP32/FP32",
        "FP32/FP32",
        "INT8/INT8",
    ]
    assert any("measured as given: the file is already quantized (INT8/INT8)" in line for line in notes(result))
    assert "4 float16 weight tensors widened to float32" in " ".join(row_notes(result, rows["digits-fp16"]))
    assert rows["digits-fp16"]["Storage (MB)"] == rows["digits-fp32"]["Storage (MB)"]
    assert float(rows["digits-fp32"]["Top-1 (%)"]) >= 95.0
    # each note belongs to the row it explains
    reference = rows["digits-ref"]["Runtime"]
    assert reference.startswith("tflite-reference ") and "XNNPACK" not in reference
    assert "reference kernels (XNNPACK off)" in row_notes(result, rows["digits-ref"])
    assert not any("reference kernels" in n for n in row_notes(result, rows["digits-int8"]))
    assert "no eval data: seeded random inputs, agreement or fidelity only" in row_notes(result, rows["digits_fp32"])
    assert rows["digits_fp32"]["Top-1 (%)"] == "n/a"
    assert not any("seeded random" in n for n in row_notes(result, rows["digits-fp32"]))


PRECISIONS = """
import pytest

from pytest_edgeopt import EdgeModel
from pytest_edgeopt.models.digits import _load_split

X, Y, CALIB = _load_split()
MODEL = EdgeModel.from_tflite("digits_fp32.tflite", name="user-digits", eval_data=(X, Y), calibration_data=CALIB)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8", "int8-dynamic"])
def test_derived(edge_runner, precision):
    m = edge_runner.measure(MODEL, precision=precision, runtime="tflite")
    m.check(max_accuracy_drop=1.0, min_agreement=0.98)
    assert m.top1 >= 0.95 and m.parity is None  # a user's .tflite has no ONNX twin to compare with
    # only int8 outputs are quantized: there ties within one output step count as agreement
    assert m.agreement_rule == ("top-1 within 1 output step" if precision == "int8" else "top-1")
"""


def test_a_users_fp32_file_is_quantized_with_its_calibration_data(pytester: pytest.Pytester) -> None:
    pytest.importorskip("ai_edge_quantizer")
    copy_fixtures(pytester)
    pytester.makepyfile(test_x=PRECISIONS)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=4)
    rows = table(result)
    assert [row["Bit-width (W/A)"] for row in rows] == ["FP32/FP32", "FP16/FP32", "INT8/INT8", "INT8/FP32 (dynamic)"]
    assert rows[2]["Agreement (%)"].endswith("(+-1 step)")  # int8 outputs: ties within one step
    assert not rows[1]["Agreement (%)"].endswith("step)")
    sizes = [float(row["Storage (MB)"]) for row in rows]
    assert sizes[0] > 1.8 * sizes[1] and sizes[0] > 3 * sizes[2]


BAD = """
import numpy as np

from pytest_edgeopt import EdgeModel
from pytest_edgeopt.models.digits import _load_split

X, Y, CALIB = _load_split()


def test_random_bytes(edge_runner):
    edge_runner.measure("garbage.tflite", precision="fp32", runtime="tflite")


def test_truncated(edge_runner):
    edge_runner.measure(EdgeModel.from_tflite("truncated.tflite", eval_data=X), precision="fp32", runtime="tflite")


def test_nhwc_data_for_an_nchw_file(edge_runner):
    model = EdgeModel.from_tflite("digits_fp32.tflite", eval_data=X.transpose(0, 2, 3, 1))
    edge_runner.measure(model, precision="fp32", runtime="tflite")


def test_tflite_on_onnxruntime(edge_runner):
    edge_runner.measure(EdgeModel.from_tflite("digits_fp32.tflite", eval_data=X), precision="fp32",
                        runtime="onnxruntime")


def test_onnx_only_precision(edge_runner):
    edge_runner.measure(EdgeModel.from_tflite("digits_fp32.tflite", eval_data=X), precision="int8-u8s8",
                        runtime="tflite")


def test_missing_file(edge_runner):
    EdgeModel.from_tflite("nope.tflite")


def test_requantizing_a_quantized_file(edge_runner):
    edge_runner.measure(EdgeModel.from_tflite("digits_int8.tflite", eval_data=X), precision="fp16",
                        runtime="tflite")
"""

BAD_ONNX = """

def test_onnx_model_on_tflite(edge_runner):
    edge_runner.measure(EdgeModel.from_onnx("linear.onnx", eval_data=(X, Y)), precision="fp32", runtime="tflite")


@pytest.mark.edge_models("linear.onnx")
@pytest.mark.edge_runtimes("onnxruntime", "tflite")
def test_onnx_file_on_both(edge_model, edge_runner):
    edge_runner.measure(edge_model, precision="fp32")  # passes on onnxruntime, fails on tflite
"""

BAD_EXPECTED = {
    "test_random_bytes": "garbage.tflite is not a readable TFLite model (no TFL3 file identifier)",
    "test_truncated": "truncated.tflite is not a readable TFLite model",
    "test_nhwc_data_for_an_nchw_file": "the model takes input shape (1, 1, 8, 8) but the eval data gives "
    "(1, 8, 8, 1) at batch 1; the data looks NHWC and the model NCHW",
    "test_tflite_on_onnxruntime": "digits_fp32 is a .tflite model: measure it with runtime='tflite'",
    "test_onnx_only_precision": "int8-u8s8 is an ONNX Runtime precision: use int8 with runtime='tflite'",
    "test_missing_file": "TFLite file not found: nope.tflite",
    "test_requantizing_a_quantized_file": "digits_int8: the file is already quantized (INT8/INT8): measure it "
    "as given with precision='int8', or pass its FP32 file to derive fp16",
}

NO_CONVERTER = (
    "is an ONNX model and there is no supported ONNX -> TFLite converter (onnx2tf pins TensorFlow, "
    "numpy and pytest): pass the torch.nn.Module (EdgeModel.from_torch) or a .tflite file"
)
BAD_ONNX_EXPECTED = {
    "test_onnx_model_on_tflite": f"linear {NO_CONVERTER}",
    "test_onnx_file_on_both[linear-tflite]": f"linear {NO_CONVERTER}",
}


def write_linear_onnx(path: Path) -> None:
    """A real FP32 ONNX model with the digits input (1, 1, 8, 8) -> 10 scores: Flatten, Gemm."""
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"]), helper.make_node("Gemm", ["flat", "w"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_bad_tflite_input_fails_with_one_line(pytester: pytest.Pytester) -> None:
    copy_fixtures(pytester)
    (pytester.path / "garbage.tflite").write_bytes(bytes(range(256)) * 40)
    (pytester.path / "truncated.tflite").write_bytes((DATA / "digits_fp32.tflite").read_bytes()[:4000])
    source, expected_reasons, passed = "import pytest\n" + BAD, dict(BAD_EXPECTED), 0
    if onnx is not None and importlib.util.find_spec("onnxruntime") is not None:
        write_linear_onnx(pytester.path / "linear.onnx")
        source, passed = source + BAD_ONNX, 1  # test_onnx_file_on_both[linear-onnxruntime]
        expected_reasons.update(BAD_ONNX_EXPECTED)
    pytester.makepyfile(test_x=source)
    result = pytester.runpytest(*QUICK, "-rfp")
    assert_gate_failed(result, failed=len(expected_reasons), passed=passed)
    output = result.stdout.str() + result.stderr.str()
    assert "pytest_edgeopt/" not in output and "pytest_edgeopt\\" not in output  # no frame of the plugin
    reasons = failures(result)
    assert set(reasons) == set(expected_reasons)
    for name, expected in expected_reasons.items():
        assert reasons[name].startswith("EdgeOptError: "), (name, reasons[name])
        assert expected in reasons[name], (name, reasons[name])
        assert len(reasons[name].splitlines()) == 1, reasons[name]
    if passed:
        result.stdout.fnmatch_lines(["PASSED test_x.py::test_onnx_file_on_both[[]linear-onnxruntime[]]"])


def test_a_missing_litert_skips_with_the_install_command(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    shadow = pytester.mkdir("shadow") / "ai_edge_litert"
    shadow.mkdir()
    (shadow / "__init__.py").write_text('raise ImportError("ai_edge_litert is shadowed by the test")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")])))
    copy_fixtures(pytester)
    pytester.makepyfile(test_x=COMMITTED)
    result = pytester.runpytest_subprocess(*QUICK, "-rs")
    result.assert_outcomes(skipped=6)
    skips = [line for line in result.outlines if line.startswith("SKIPPED")]
    # the host reads the flatbuffer with LiteRT's schema before the agent runs: either one may say it
    assert skips and all(
        "ai-edge-litert is not installed" in line and 'pip install "pytest-edgeopt[tflite]"' in line for line in skips
    ), skips
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


RUNTIMES = """
import pytest


@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32")
@pytest.mark.edge_runtimes("onnxruntime", "tflite")
def test_both(edge_model, edge_precision, edge_runner, edge_runtime):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.runtime == edge_runtime
    if edge_runtime == "tflite":  # the shipped conversion computes what the torch model does
        assert m.parity["runtime"] == "onnxruntime" and m.parity["ok"] and m.parity["top1"] == 1.0
    else:
        assert m.parity is None  # ONNX Runtime is the yardstick, not compared with itself


def test_default_runtime(edge_runtime, edge_platform):
    assert edge_runtime == edge_platform.runtime == "onnxruntime"
"""


def test_edge_runtimes_marker_expands_and_edge_runtime_narrows(pytester: pytest.Pytester) -> None:
    pytest.importorskip("torch")
    pytester.makepyfile(test_r=RUNTIMES)
    collected = pytester.runpytest(*QUICK, "--collect-only", "-q")
    collected.stdout.fnmatch_lines(
        [
            "test_r.py::test_both[[]digits-cnn-fp32-onnxruntime[]]",
            "test_r.py::test_both[[]digits-cnn-fp32-tflite[]]",
            "test_r.py::test_default_runtime",
        ]
    )
    result = pytester.runpytest(*QUICK, "--edge-runtime=tflite")
    result.assert_outcomes(passed=2, deselected=1)
    rows = table(result)
    assert [row["Runtime"].split()[0] for row in rows] == ["tflite"] and rows[0]["Runtime"].endswith("(XNNPACK)")
    assert any("parity vs onnxruntime: top-1 100.0%" in line for line in notes(result))


def test_unknown_runtimes_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_u="""
        import pytest

        @pytest.mark.edge_runtimes("tflite", "coreml")
        def test_u(edge_runner):
            pass
    """
    )
    marker = pytester.runpytest(*QUICK)
    assert marker.ret == pytest.ExitCode.USAGE_ERROR
    marker.stderr.fnmatch_lines(
        ["*@pytest.mark.edge_runtimes: unknown runtime 'coreml'; choose from executorch, onnxruntime, tflite*"]
    )
    option = pytester.runpytest(*QUICK, "--edge-runtime=tflite,tensorrt")
    assert option.ret == pytest.ExitCode.USAGE_ERROR
    option.stderr.fnmatch_lines(
        ["*--edge-runtime: unknown runtime 'tensorrt'; choose from executorch, onnxruntime, tflite*"]
    )


MISSING_EXTRAS = """
from pytest_edgeopt import EdgeModel
from pytest_edgeopt.models.digits import _load_split

X, Y, CALIB = _load_split()
MODEL = EdgeModel.from_tflite("digits_fp32.tflite", name="user-digits", eval_data=(X, Y), calibration_data=CALIB)


def test_fp32_needs_only_the_runtime(edge_runner):
    edge_runner.measure(MODEL, precision="fp32", runtime="tflite")


def test_fp16_needs_the_quantizer(edge_runner):
    edge_runner.measure(MODEL, precision="fp16", runtime="tflite")


def test_legacy_runtime(edge_runner):
    edge_runner.measure(MODEL, precision="fp32", runtime="tflite-runtime")
"""


def test_missing_quantizer_and_legacy_runtime_skip_with_their_extras(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ai-edge-quantizer (shadowed here; really absent in CI's runtime-only venv) the
    derived precisions skip naming the extra, and FP32 still runs."""
    monkeypatch.setitem(sys.modules, "ai_edge_quantizer", None)
    if importlib.util.find_spec("tflite_runtime") is not None:
        pytest.skip("tflite-runtime is installed here")
    copy_fixtures(pytester)
    pytester.makepyfile(test_x=MISSING_EXTRAS)
    # an own cache: a cached FP16 file from another test would (rightly) need no quantizer
    result = pytester.runpytest(*QUICK, "-rs", "--edge-cache-dir", str(pytester.path / "cache"))
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            '*ai-edge-quantizer*pip install "pytest-edgeopt[[]tflite-quant[]]"*',
            '*tflite-runtime*pip install "pytest-edgeopt[[]tflite-legacy[]]"*',
        ]
    )
