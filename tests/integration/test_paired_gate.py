"""The latency gate, paired: the current artifact timed against the baseline's own artifact (or
another precision) in one agent process, A B B A, with sequential stopping; the stored samples
only when that artifact is gone, and the row says the comparison is the weaker one.

Real models throughout: a user's CNN whose width a file decides (wider = a real, slower model).
"""

from __future__ import annotations

import re
import textwrap

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.integration.test_budgets import USER_MODEL
from tests.pytester_helpers import QUICK, failures, table

GATED = """
import pytest
from usermodel import user_model

@pytest.mark.edge_budget(max_latency_regression="10%")
def test_gated(edge_runner):
    edge_runner.measure(user_model(), precision="fp32")

def test_checked(edge_runner):
    m = edge_runner.measure(user_model(), precision="int8")
    m.check(max_latency_regression="10%")
"""
PAIRED = re.compile(r"\((cpu|wall), paired A/B vs baseline, (\d+) pairs\)")
PAIRED_FP32 = re.compile(r"\((cpu|wall), paired A/B vs fp32, (\d+) pairs\)")


def _project(pytester: pytest.Pytester, width: int, seed: int = 0) -> None:
    model = textwrap.dedent(USER_MODEL).replace("torch.manual_seed(0)", f"torch.manual_seed({seed})")
    pytester.makepyfile(usermodel=model, test_x=GATED)
    (pytester.path / "width.txt").write_text(str(width))


def _baseline(pytester: pytest.Pytester, width: int, *args: str) -> None:
    _project(pytester, width)
    pytester.runpytest(*QUICK, "--update-baselines", *args).assert_outcomes(passed=2)


def test_a_slower_model_is_caught_paired_with_the_baselines_artifact_and_stops_at_the_first_look(
    pytester: pytest.Pytester,
) -> None:
    _baseline(pytester, 8)
    (pytester.path / "width.txt").write_text("64")  # ~50x the multiply-adds
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(failed=2)
    for name in ("test_gated", "test_checked"):  # folded into the measurement job / a paired job of m.check
        reason = failures(result)[name]
        assert "paired A/B vs baseline, 12 pairs): ratio" in reason
        assert any(line.endswith("limit 1.100: regressed") for line in reason.splitlines())  # then where: per op
    for row in table(result):
        found = PAIRED.search(row["Delta"])
        assert found and int(found.group(2)) == 12, row["Delta"]  # a clear case: the first look decides


def test_an_equally_fast_new_model_passes_paired(pytester: pytest.Pytester) -> None:
    _baseline(pytester, 16)
    _project(pytester, 16, seed=1)  # retrained: other weights, the same compute
    result = pytester.runpytest(*QUICK, "-W", "always::pytest.PytestWarning")
    assert result.ret == 0
    for row in table(result):
        assert PAIRED.search(row["Delta"]), row["Delta"]
        assert row["Verdict"] in ("pass", "inconclusive")


def test_without_the_baselines_artifact_the_stored_samples_are_compared_and_the_row_says_weaker(
    pytester: pytest.Pytester,
) -> None:
    _baseline(pytester, 8, "--edge-cache-dir=first-cache")
    (pytester.path / "width.txt").write_text("64")
    result = pytester.runpytest(*QUICK, "--edge-cache-dir=fresh-clone-cache")
    result.assert_outcomes(failed=2)
    for row in table(result):
        assert "vs stored samples (weaker: the baseline's artifact is not in the cache)" in row["Delta"], row
    assert "vs stored samples (weaker" in failures(result)["test_gated"]


def test_the_baselines_own_file_is_not_timed_again(pytester: pytest.Pytester) -> None:
    _baseline(pytester, 8)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=2)
    assert all(row["Delta"].endswith("(same artifact as the baseline)") for row in table(result)), table(result)


RATIO = """
from usermodel import user_model

def test_ratio(edge_runner):
    m = edge_runner.measure(user_model(), precision="int8")
    m.check(max_latency_ratio_vs={"fp32": 50.0})
"""


def test_a_precision_ratio_is_paired_in_one_process(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(usermodel=textwrap.dedent(USER_MODEL), test_r=RATIO)
    (pytester.path / "width.txt").write_text("16")
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1)
    int8 = next(row for row in table(result) if row["Bit-width (W/A)"].startswith("INT8"))
    assert PAIRED_FP32.search(int8["Delta"]), int8["Delta"]


def test_a_hard_case_samples_past_the_first_look(pytester: pytest.Pytester) -> None:
    """The same compute against a 0% limit: no look can call it, so sampling goes on to the cap."""
    pytester.makepyfile(
        usermodel=textwrap.dedent(USER_MODEL),
        test_x=GATED.replace('max_latency_regression="10%"', 'max_latency_regression="0%"'),
    )
    (pytester.path / "width.txt").write_text("16")
    pytester.runpytest(*QUICK, "--update-baselines", "-k", "test_gated").assert_outcomes(passed=1, deselected=1)
    _project(pytester, 16, seed=1)
    (pytester.path / "test_x.py").write_text(
        textwrap.dedent(GATED.replace('max_latency_regression="10%"', 'max_latency_regression="0%"'))
    )
    result = pytester.runpytest(*QUICK, "-k", "test_gated", "-W", "always::pytest.PytestWarning")
    gated = table(result)[0]
    found = PAIRED.search(gated["Delta"])
    assert found and int(found.group(2)) > 12, gated["Delta"]
