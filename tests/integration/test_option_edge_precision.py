"""--edge-precision: run only the cases of the named precisions, deselect the others."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from pytest_edgeopt.optimize.precisions import PRECISIONS

QUICK = ("--edge-quick", "-p", "no:cacheprovider")

TWO_PRECISIONS = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
def test_x(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.precision == edge_precision

def test_plain():
    pass
"""


def test_one_precision_runs_only_its_cases_and_deselects_the_rest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_PRECISIONS)
    result = pytester.runpytest(*QUICK, "--edge-precision=int8", "-v")
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.fnmatch_lines(["*test_x[[]digits-cnn-int8[]] PASSED*"])
    assert "digits-cnn-fp32] PASSED" not in result.stdout.str()
    # tests without edge_precision are not filtered
    result.stdout.fnmatch_lines(["*test_plain PASSED*"])


def test_collect_only_shows_the_filter(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_PRECISIONS)
    result = pytester.runpytest(*QUICK, "--edge-precision=fp32", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["test_x.py::test_x[[]digits-cnn-fp32[]]", "test_x.py::test_plain", "2/3 tests collected (1 deselected)*"]
    )


@pytest.mark.parametrize("value", ["int8,fp32", "int8 fp32"])
def test_a_list_runs_every_named_precision(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(test_x=TWO_PRECISIONS)
    result = pytester.runpytest(*QUICK, f"--edge-precision={value}", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["test_x.py::test_x[[]digits-cnn-fp32[]]", "test_x.py::test_x[[]digits-cnn-int8[]]", "3 tests collected*"]
    )


def test_a_list_measures_both(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_PRECISIONS)
    result = pytester.runpytest(*QUICK, "--edge-precision=int8,fp32")
    result.assert_outcomes(passed=3)
    assert "deselected" not in result.stdout.str()


def test_a_precision_no_test_asks_for_deselects_every_case(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_PRECISIONS)
    result = pytester.runpytest(*QUICK, "--edge-precision=fp16")
    result.assert_outcomes(passed=1, deselected=2)


def test_unknown_precision_is_a_usage_error_listing_valid_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_PRECISIONS)
    result = pytester.runpytest(*QUICK, "--edge-precision=int8,bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown precision 'bogus'; choose from *"])
    for name in PRECISIONS:
        assert name in result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("value", ["", ",", " "])
def test_empty_value_is_an_argparse_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(test_x=TWO_PRECISIONS)
    result = pytester.runpytest(*QUICK, f"--edge-precision={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-precision*expected one or more names*"])
