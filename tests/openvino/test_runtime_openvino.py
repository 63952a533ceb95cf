"""runtime="openvino": the ONNX files measured by OpenVINO, INT8 by NNCF, the profile's device.

The FP32 and FP16 rows measure the very .onnx files of the ONNX Runtime rows, and every FP32 row
is checked value by value against ONNX Runtime (parity); a device this machine lacks falls back
to the CPU with a note, and the Compute cell names what ran.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
try:
    from pytest_edgeopt.runtimes.openvino import import_openvino

    import_openvino()  # before anything else imports it: without its usage telemetry
except ImportError:
    pytest.skip('openvino is not installed: pip install "pytest-edgeopt[openvino]"', allow_module_level=True)
pytest.importorskip("nncf")  # imported before any pytester run: nncf and torch load C extensions once

from pytest_edgeopt.runtimes.openvino import choose_device, compile_config
from tests.agent.agent_helpers import make_job, run_agent
from tests.pytester_helpers import QUICK, failures, notes, table
from tests.runtime_helpers import build_in_process, shadow_package

DATA = Path(__file__).resolve().parent.parent / "data" / "onnx"


@pytest.fixture(scope="module", autouse=True)
def _built_here(shared_cache: Path) -> None:
    build_in_process(shared_cache, precisions=("int8",), fmt="onnx", builder="pytest_edgeopt.optimize.openvino:BUILDER")


DIGITS = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "fp16", "int8")
@pytest.mark.edge_runtimes("onnxruntime", "openvino")
def test_digits(edge_model, edge_precision, edge_runner, edge_runtime):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    m.check(max_accuracy_drop=1.0, min_agreement=0.98)
    if edge_runtime == "openvino" and edge_precision == "fp32":
        assert m.parity.ok and m.parity.runtime == "onnxruntime" and m.parity.max_abs < 1e-4, m.parity
        assert m.fingerprint["runtime"]["device"] == "CPU"
"""


def test_digits_measures_at_every_precision_beside_onnx_runtime_with_parity(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=DIGITS)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=6)
    rows = [row for row in table(result) if row["Runtime"].startswith("openvino ")]
    assert [row["Bit-width (W/A)"] for row in rows] == ["FP32/FP32", "FP16/FP16", "INT8/INT8 (U8S8)"]
    assert all(row["Compute (GFLOPs, GFLOP/s)"].endswith("(CPU)") for row in rows)
    ort = {row["Bit-width (W/A)"]: row for row in table(result) if row["Runtime"].startswith("onnxruntime ")}
    # FP32 and FP16 are the ONNX Runtime files; INT8 is NNCF's own IR (weights ~4x smaller than FP32's)
    assert rows[0]["Storage (MB)"] == ort["FP32/FP32"]["Storage (MB)"]
    assert rows[1]["Storage (MB)"] == ort["FP16/FP16"]["Storage (MB)"]
    assert float(rows[2]["Size (MB)"]) * 3 < float(rows[0]["Size (MB)"])
    assert any(line.split("] ", 1)[1].startswith("parity vs onnxruntime: top-1 100.0%") for line in notes(result))


def _profile(pytester: pytest.Pytester, device: str) -> None:
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.edgeopt.platforms.ov]\nextends = "host"\nruntime = "openvino"\nruntime_device = "{device}"\n',
    )


FP32 = """
import pytest

@pytest.mark.edge_models("digits-cnn")
def test_fp32(edge_model, edge_runner):
    m = edge_runner.measure(edge_model, precision="fp32")
    assert m.runtime == "openvino"
    print("DEVICE", m.fingerprint["runtime"]["device"], m.compute_unit)
"""


def test_a_device_this_machine_lacks_falls_back_to_the_cpu_and_the_row_says_so(pytester: pytest.Pytester) -> None:
    import openvino

    if any(d.startswith("NPU") for d in openvino.Core().available_devices):
        pytest.skip("this machine has an NPU")
    _profile(pytester, "NPU")
    pytester.makepyfile(test_x=FP32)
    result = pytester.runpytest(*QUICK, "-s", "--edge-platform=ov")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*DEVICE CPU CPU"])
    assert table(result)[0]["Compute (GFLOPs, GFLOP/s)"].endswith("(CPU)")
    assert any("OpenVINO device NPU is not available here (found CPU" in line for line in notes(result))


def test_auto_names_the_device_it_chose(pytester: pytest.Pytester) -> None:
    _profile(pytester, "AUTO")
    pytester.makepyfile(test_x=FP32)
    result = pytester.runpytest(*QUICK, "-s", "--edge-platform=ov")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*DEVICE CPU CPU"])
    assert not any("not available here" in line for line in notes(result))


def test_an_unknown_device_is_a_usage_error_listing_the_devices(pytester: pytest.Pytester) -> None:
    _profile(pytester, "TPU")
    pytester.makepyfile(test_x=FP32)
    result = pytester.runpytest(*QUICK, "--edge-platform=ov")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "[tool.edgeopt.platforms.ov]: runtime_device: 'TPU' is not one of ['CPU', 'GPU', 'NPU', 'AUTO']" in (
        result.stderr.str()
    )


ORT_ONLY = """
import pytest

@pytest.mark.edge_models("digits-cnn")
def test_dynamic(edge_model, edge_runner):
    edge_runner.measure(edge_model, precision="int8-dynamic", runtime="openvino")
"""


def test_an_onnx_runtime_precision_on_openvino_is_a_one_line_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=ORT_ONLY)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(failed=1)
    assert failures(result)["test_dynamic[digits-cnn]"] == (
        "EdgeOptError: int8-dynamic is an ONNX Runtime precision: use int8 (NNCF's post-training "
        "quantization) with runtime='openvino'"
    )


MISSING = """
import pytest

@pytest.mark.edge_models("digits-cnn")
def test_fp32(edge_model, edge_runner):
    edge_runner.measure(edge_model, precision="fp32", runtime="openvino")
"""


def test_a_missing_openvino_skips_with_the_install_hint(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent (a child process) cannot import openvino: the test skips naming the extra."""
    shadow_package("openvino", tmp_path, monkeypatch)
    pytester.makepyfile(test_x=MISSING)
    result = pytester.runpytest(*QUICK, "-rs")
    result.assert_outcomes(skipped=1)
    hint = 'openvino is not installed (the openvino runtime): pip install "pytest-edgeopt[openvino]"'
    assert hint in result.stdout.str()


def test_the_agent_reads_the_committed_onnx_file_and_a_corrupt_one_is_one_line(tmp_path: Path) -> None:
    from pytest_edgeopt.models.digits import _load_split

    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, inputs=_load_split()[0][:16])
    result, code, _ = run_agent(json.dumps(make_job(DATA / "digits_fp32.onnx", inputs, runtime="openvino")))
    assert code == 0 and result["ok"] is True, result
    assert result["runtime"]["device"] == "CPU" and result["runtime"]["name"] == "openvino"
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00" * 64)
    result, _, _ = run_agent(json.dumps(make_job(corrupt, inputs, runtime="openvino")))
    assert result["ok"] is False and result["kind"] == "bad-artifact", result
    assert result["error"].startswith("cannot load corrupt.onnx: ") and "\n" not in result["error"]


def test_device_choice_and_the_properties_that_shape_a_timing() -> None:
    assert choose_device(None, ("CPU",)) == ("CPU", None)
    assert choose_device("gpu", ("CPU", "GPU.0")) == ("GPU", None)
    assert choose_device("AUTO", ("CPU",)) == ("AUTO", None)
    device, note = choose_device("GPU", ("CPU",))
    assert device == "CPU" and note == "OpenVINO device GPU is not available here (found CPU): ran on the CPU"
    assert compile_config("CPU", 2) == {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": 2,
        "NUM_STREAMS": 1,
        "INFERENCE_PRECISION_HINT": "f32",
    }
    assert compile_config("GPU", 2) == {"PERFORMANCE_HINT": "LATENCY"}
    assert compile_config("AUTO", 1) == {  # AUTO may pick the CPU, whose default is bf16 on bf16 CPUs
        "PERFORMANCE_HINT": "LATENCY",
        "DEVICE_PROPERTIES": {"CPU": {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32"}},
    }


PPOCR_CLS = f"""
import numpy as np
import pytest
from pytest_edgeopt import EdgeModel

CROPS = np.random.default_rng(0).uniform(-1, 1, (16, 3, 48, 192)).astype(np.float32)


@pytest.mark.edge_runtimes("openvino")
@pytest.mark.edge_precisions("fp32", "int8")
def test_cls(edge_runtime, edge_precision, edge_runner):
    path = {str(DATA.parent / "third_party" / "ch_ppocr_mobile_v2.0_cls_infer.onnx")!r}
    model = EdgeModel.from_onnx(path, name="ppocr-cls", eval_data=CROPS, calibration_data=CROPS)
    m = edge_runner.measure(model, precision=edge_precision)
    print(f"ROW {{edge_precision}} size={{m.size_mb}} share={{m.quantized_share}}")
    if m.quantized is not None:
        print(f"WEIGHTS {{m.quantized.weight_share}}")
"""


def test_nncf_quantizes_an_opset_11_file_as_onnx_runtime_reads_it(pytester: pytest.Pytester) -> None:
    """PP-OCR's classifier is opset 11 (paddle2onnx): NNCF's ONNX backend on the file as shipped
    kept every weight float32 behind Q/DQ pairs (INT8 storage 0.71 MB vs FP32 0.59 MB); NNCF on the
    ov.Model OpenVINO reads from it stores them int8. (The IR's storage, 0.99 MB, is mostly its
    .xml: 162 FakeQuantize ops with their ranges, in text; the weights are 4x smaller.)"""
    pytester.makepyfile(test_cls=PPOCR_CLS)
    result = pytester.runpytest_inprocess("-s", *QUICK)
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    size = {p: float(s) for p, s in re.findall(r"ROW (\w+) size=(\S+)", out)}
    assert size["int8"] * 2 < size["fp32"], size
    weights = float(out.split("WEIGHTS ", 1)[1].split()[0])
    assert weights > 0.2  # NNCF keeps its squeeze-excite convolutions float by design; the rest are int8


PPOCR_CLS_FILE = Path(__file__).resolve().parent.parent / "data" / "third_party" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
OUTPUT_NAMES = f"""
import numpy as np
import pytest
from pytest_edgeopt import EdgeModel, Metric

OUT = "save_infer_model/scale_0.tmp_1"

def upright(outputs, labels):
    return float(np.mean(outputs[OUT].argmax(axis=1) == labels))

@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_names_kept(edge_runner, precision):
    x = np.random.default_rng(0).uniform(-1, 1, (4, 3, 48, 192)).astype(np.float32)
    model = EdgeModel.from_onnx({str(PPOCR_CLS_FILE)!r}, name="ppocr-cls", eval_data=(x, np.zeros(4, int)),
                                metric=Metric("upright", upright))
    m = edge_runner.measure(model, precision=precision, runtime="openvino")
    assert set(m.fidelity) == {{OUT}} and m.metric is not None
"""


def test_openvino_keeps_the_files_output_names_at_fp16(pytester: pytest.Pytester) -> None:
    """PP-OCR's classifier as published: its FP16 file ends in a Cast that OpenVINO fuses, and the
    compiled port's first name became `graph_output_cast_0`, so a metric reading the model's own
    output name raised KeyError and fidelity had nothing to compare."""
    pytester.makepyfile(test_x=OUTPUT_NAMES)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=2)
