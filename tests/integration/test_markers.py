"""@pytest.mark.edge_models / edge_precisions and the edge_model / edge_precision fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from pytest_edgeopt.models.zoo import ZOO
from pytest_edgeopt.optimize.precisions import PRECISIONS

QUICK = ("--edge-quick", "-p", "no:cacheprovider")


MEASURING_TEST = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
def test_x(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.model == "digits-cnn"
    assert m.precision == edge_precision
"""


def test_markers_make_one_case_per_model_and_precision(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=MEASURING_TEST)
    result = pytester.runpytest(*QUICK, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "test_x.py::test_x[[]digits-cnn-fp32[]]",
            "test_x.py::test_x[[]digits-cnn-int8[]]",
            "2 tests collected*",
        ]
    )


def test_marked_cases_measure_the_model_at_their_precision(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=MEASURING_TEST)
    result = pytester.runpytest(*QUICK, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_x[[]digits-cnn-fp32[]] PASSED*", "*test_x[[]digits-cnn-int8[]] PASSED*"])


def test_unknown_model_in_marker_is_a_usage_error_listing_the_zoo(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.edge_models("digits-cnm")
        def test_x(edge_model):
            pass
    """)
    result = pytester.runpytest(*QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_x*edge_models*unknown model 'digits-cnm'*"])
    for name in ZOO:
        assert name in result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_unknown_precision_in_marker_is_a_usage_error_listing_precisions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.edge_models("digits-cnn")
        @pytest.mark.edge_precisions("int4")
        def test_x(edge_model, edge_precision):
            pass
    """)
    result = pytester.runpytest(*QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*edge_precisions*unknown precision 'int4'; choose from *"])
    for name in PRECISIONS:
        assert name in result.stderr.str()


PRECISION_ONLY_TEST = """
def test_p(edge_precision):
    assert isinstance(edge_precision, str)
"""


def test_edge_precision_without_marker_uses_the_ini_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_p=PRECISION_ONLY_TEST)
    result = pytester.runpytest(*QUICK, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["test_p.py::test_p[[]fp32[]]", "test_p.py::test_p[[]int8[]]", "2 tests collected*"])


def test_edgeopt_precisions_ini_sets_the_default(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nedgeopt_precisions = fp16\n")
    pytester.makepyfile(test_p=PRECISION_ONLY_TEST)
    result = pytester.runpytest(*QUICK, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["test_p.py::test_p[[]fp16[]]", "1 test collected*"])


def test_edge_precision_marker_beats_the_ini_default(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nedgeopt_precisions = fp16\n")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.edge_precisions("int8-dynamic")
        def test_p(edge_precision):
            assert edge_precision == "int8-dynamic"
    """)
    result = pytester.runpytest(*QUICK, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_p[[]int8-dynamic[]] PASSED*"])


def test_edge_model_without_marker_fails_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_x(edge_model):
            pass
    """)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*edge_model needs @pytest.mark.edge_models(*) on the test*"])
    assert "Traceback" not in result.stdout.str()


def _export_tiny_onnx(dest: Path) -> None:
    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    torch.manual_seed(0)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            Tiny().eval(), (torch.randn(1, 16),), str(dest), dynamo=True, external_data=False, verbose=False
        )


def test_onnx_path_in_marker_is_relative_to_the_test_file(pytester: pytest.Pytester) -> None:
    _export_tiny_onnx(pytester.path / "sub" / "models" / "tiny.onnx")
    pytester.makepyfile(
        **{
            "sub/test_onnx": """
        import pytest

        @pytest.mark.edge_models("models/tiny.onnx")
        @pytest.mark.edge_precisions("fp32")
        def test_file(edge_model, edge_precision, edge_runner):
            assert edge_model.name == "tiny"
            m = edge_runner.measure(edge_model, precision=edge_precision)
            assert m.model == "tiny"
    """
        }
    )
    result = pytester.runpytest(*QUICK, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*sub/test_onnx.py::test_file[[]tiny-fp32[]] PASSED*"])


def test_missing_onnx_file_in_marker_fails_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.edge_models("models/absent.onnx")
        def test_file(edge_model):
            pass
    """)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*EdgeOptError: ONNX file not found: *absent.onnx*"])
    assert "Traceback" not in result.stdout.str()


def test_unknown_model_is_a_usage_error_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.edge_models("digits-cnm")
        def test_x(edge_model):
            pass
    """)
    result = pytester.runpytest(*QUICK, "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_x*edge_models*unknown model 'digits-cnm'; the zoo has digits-cnn*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
