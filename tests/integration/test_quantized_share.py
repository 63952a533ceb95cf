"""What a quantized row really is: `m.quantized` read from the artifact, the default floor that
fails a derivation which left the model in float, and `min_quantized_share`.

On real published models: the zoo's digits-cnn (every conv and gemm quantized) and Silero VAD as
its wheel ships it (suites/models), whose weights sit in If subgraphs ONNX Runtime's static
quantizer does not enter.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.pytester_helpers import QUICK, assert_gate_failed, failures, table

SILERO = Path(__file__).resolve().parents[2] / "suites" / "models" / "silero_vad.onnx"

SHARES = """
    import pytest

    @pytest.mark.edge_models("digits-cnn")
    @pytest.mark.edge_precisions("int8", "fp16")
    def test_digits(edge_model, edge_precision, edge_runner):
        m = edge_runner.measure(edge_model, precision=edge_precision)
        target = "int8" if edge_precision == "int8" else "float16"
        assert m.quantized.target == target
        assert m.quantized.weight_share > 0.98 and m.quantized.mac_share == 1.0
        assert m.quantized_share == min(m.quantized.weight_share, m.quantized.mac_share)

    def test_fp32_has_none(edge_runner):
        m = edge_runner.measure("digits-cnn", precision="fp32")
        assert m.quantized is None and m.quantized_share is None
"""


def test_a_fully_quantized_row_reports_its_shares_and_keeps_its_label(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=SHARES)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=3)
    cells = {row["Bit-width (W/A)"] for row in table(result)}
    assert "INT8/INT8 (U8S8)" in cells or "INT8/INT8 (S8S8)" in cells  # all of it: no share in the cell


VAD = f"""
    import numpy as np
    import pytest
    from pytest_edgeopt import EdgeModel

    MODEL = {str(SILERO)!r}


    def silero():
        rng = np.random.default_rng(0)
        inputs = {{
            "input": rng.normal(0, 0.1, (16, 576)).astype(np.float32),
            "state": np.zeros((16, 2, 128), np.float32),  # batch-first; the model batches it on axis 1
            "sr": np.array(16000, dtype=np.int64),
        }}
        return EdgeModel.from_onnx(MODEL, name="silero-vad", eval_data=inputs)


    def test_default_floor(edge_runner):
        m = edge_runner.measure(silero(), precision="int8")

    @pytest.mark.edge_budget(min_quantized_share=0)  # the user's own floor replaces the default
    def test_own_floor_accepts(edge_runner):
        m = edge_runner.measure(silero(), precision="int8")
        assert m.quantized.weight_share == 0.0 and m.quantized.mac_share is None

    @pytest.mark.edge_budget(min_quantized_share=0.5)
    def test_own_floor_fails(edge_runner):
        edge_runner.measure(silero(), precision="int8")
"""


def test_a_derivation_that_quantized_nothing_fails_by_default_saying_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=VAD)
    result = pytester.runpytest(*QUICK)
    assert_gate_failed(result, failed=2, passed=1)
    reasons = failures(result)
    default = reasons["test_default_floor"]
    assert "min_quantized_share: measured 0, default floor 0.1: int8 left 0% of the weights' bytes in int8" in default
    assert "sit in If/Loop subgraphs, which the quantizer does not enter" in default
    assert "set min_quantized_share=0 to accept" in default
    assert "min_quantized_share: measured 0, limit >= 0.5" in reasons["test_own_floor_fails"]
    row = next(r for r in table(result) if r["Bit-width (W/A)"].startswith("INT8"))
    assert row["Bit-width (W/A)"] == "INT8/INT8 (U8S8, 0% of weights) !"
