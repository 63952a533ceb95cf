"""--edge-progress: lines for the long work (export, calibration, conversion, cache builds)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.pytester_helpers import QUICK

DATA = Path(__file__).resolve().parents[1] / "data" / "onnx"
DIGITS = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
def test_x(edge_model, edge_precision, edge_runner):
    edge_runner.measure(edge_model, precision=edge_precision)
"""
PROGRESS = re.compile(r"^edgeopt: ")


def test_a_cold_cache_shows_each_build_with_its_time(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_x=DIGITS)
    result = pytester.runpytest(*QUICK, "--edge-progress=on", "--edge-cache-dir", str(tmp_path / "cold"), "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "edgeopt: exporting digits-cnn to ONNX ...",
            "edgeopt: exporting digits-cnn to ONNX: done in * s",
            "*test_x[[]digits-cnn-fp32[]] PASSED*",  # the verdict lines are pytest's own, unchanged
            "edgeopt: calibrating and quantizing digits-cnn to int8 (ONNX) ...",
            "edgeopt: calibrating and quantizing digits-cnn to int8 (ONNX): done in * s",
            "*test_x[[]digits-cnn-int8[]] PASSED*",
        ]
    )
    again = pytester.runpytest(*QUICK, "--edge-progress=on", "--edge-cache-dir", str(tmp_path / "cold"))
    again.assert_outcomes(passed=2)
    assert not [line for line in again.stdout.lines if PROGRESS.match(line)]  # nothing built: nothing shown


@pytest.mark.parametrize("args", [(), ("-q",), ("--edge-progress=off",)])
def test_off_without_a_terminal_with_q_or_off(pytester: pytest.Pytester, tmp_path: Path, args: tuple) -> None:
    pytester.makepyfile(
        test_x=f"""
def test_file(edge_runner):
    edge_runner.measure({str(DATA / "digits_fp32.onnx")!r}, precision="fp32")
"""
    )
    result = pytester.runpytest(*QUICK, *args, "--edge-cache-dir", str(tmp_path / "cold"))
    result.assert_outcomes(passed=1)
    assert not [line for line in result.stdout.lines if PROGRESS.match(line)], result.stdout.str()
