"""PyTorch -> .tflite with litert-torch, then FP16/INT8 with ai-edge-quantizer, on a user's own model.

Real conversions of a small seeded CNN; the FP32 file is checked against ONNX Runtime (parity).
These need the tflite-torch extra (~1.2 GB); without it they skip, and the plugin's own skip
(asserted below by shadowing litert_torch) names that extra.
"""

from __future__ import annotations

import re
import sys
import textwrap

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_quantizer")

from tests.pytester_helpers import QUICK, notes, table

USER_MODEL = """
import numpy as np
import torch

from pytest_edgeopt import EdgeModel


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 4 * 4, 3)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def tiny_model():
    torch.manual_seed(0)
    net = TinyNet().eval()
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (32, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).argmax(1).numpy()  # labels: its own FP32 answers
    calibration = rng.uniform(0.0, 1.0, (64, 1, 8, 8)).astype(np.float32)
    return EdgeModel.from_torch(net, name="tinynet", example_input=x[:1], eval_data=(x, y),
                                calibration_data=calibration)
"""

CONVERT = """
import pytest

from usermodel import tiny_model

MODEL = tiny_model()


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8", "int8-dynamic"])
def test_tiny(edge_runner, precision):
    m = edge_runner.measure(MODEL, precision=precision, runtime="tflite")
    assert m.top1 == 1.0 if precision == "fp32" else m.top1 >= 0.8
    if precision == "fp32":
        assert m.parity["ok"] and m.parity["top1"] == 1.0 and m.parity["max_abs"] < 1e-4
    else:  # parity is a property of the FP32 conversion; precisions are judged by agreement
        assert m.parity is None and m.agreement >= 0.8
"""


def test_a_users_torch_model_converts_quantizes_and_matches_onnxruntime(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(usermodel=textwrap.dedent(USER_MODEL), test_convert=CONVERT)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=4)
    rows = table(result)
    assert [row["Bit-width (W/A)"] for row in rows] == ["FP32/FP32", "FP16/FP32", "INT8/INT8", "INT8/FP32 (dynamic)"]
    assert {row["Params (M)"] for row in rows} == {"0.001"}  # 80 + 584 + 387 = 1,051 weights
    assert rows[0]["Agreement (%)"] == "ref" and rows[2]["Agreement (%)"].endswith("(+-1 step)")
    assert any(re.match(r"\[\d+\] parity vs onnxruntime: top-1 100\.0%, max \|diff\| ", line) for line in notes(result))


MISSING = """
from usermodel import tiny_model

MODEL = tiny_model()


def test_tflite(edge_runner):
    edge_runner.measure(MODEL, precision="fp32", runtime="tflite")


def test_onnxruntime(edge_runner):
    edge_runner.measure(MODEL, precision="fp32", runtime="onnxruntime")
"""


def test_without_litert_torch_a_torch_model_skips_on_tflite_only(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "litert_torch", None)
    pytester.makepyfile(usermodel=textwrap.dedent(USER_MODEL), test_missing=MISSING)
    result = pytester.runpytest(*QUICK, "-rsp", "--edge-cache-dir", str(pytester.path / "cache"))
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["PASSED test_missing.py::test_onnxruntime"])
    assert [row["Runtime"].split()[0] for row in table(result)] == ["onnxruntime"]
    result.stdout.fnmatch_lines(
        [
            "*litert-torch is not installed (converting PyTorch models to .tflite): "
            'pip install "pytest-edgeopt[[]tflite-torch[]]"*'
        ]
    )
