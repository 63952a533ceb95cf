"""Budgets: @pytest.mark.edge_budget, m.check(...), pyproject defaults, the paired fp32 gate.

Real runs of the zoo's digits-cnn and of a user torch model whose width a file decides, so a
change between runs is a real change of size and compute. No timing thresholds: latency verdicts
are asserted only where the margin is huge.
"""

from __future__ import annotations

import re
import textwrap
from typing import Dict

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from pytest_edgeopt.judge.budgets import BUDGET_NAMES
from pytest_edgeopt.optimize.precisions import PRECISIONS
from tests.pytester_helpers import QUICK, assert_gate_failed, failures, table

# latency verdicts that depend on this machine may be inconclusive: a warning, not an error here
WARNINGS_SHOWN = ("-W", "always::pytest.PytestWarning")

USER_MODEL = """
    from pathlib import Path

    import numpy as np
    import torch

    from pytest_edgeopt import EdgeModel


    class Net(torch.nn.Module):
        def __init__(self, width):
            super().__init__()
            self.a = torch.nn.Conv2d(3, width, 3, padding=1)
            self.b = torch.nn.Conv2d(width, width, 3, padding=1)
            self.fc = torch.nn.Linear(width, 10)

        def forward(self, x):
            x = torch.relu(self.b(torch.relu(self.a(x))))
            return self.fc(x.mean(dim=(2, 3)))


    def user_model():
        # channels from width.txt; the input's side from side.txt (32 when absent)
        here = Path(__file__).parent
        width = int((here / "width.txt").read_text())
        side = int((here / "side.txt").read_text()) if (here / "side.txt").exists() else 32
        torch.manual_seed(0)
        x = np.random.default_rng(0).standard_normal((16, 3, side, side)).astype(np.float32)
        return EdgeModel.from_torch(Net(width), name="net", example_input=x[:1], eval_data=x)
"""


# -- marker budgets and m.check -----------------------------------------------------------------------

BUDGETS_TEST = """
import pytest

@pytest.mark.edge_budget(max_storage_mb=0.001)
def test_storage(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")

@pytest.mark.edge_budget(max_size_mb=0.0001)
def test_size(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")

@pytest.mark.edge_budget(min_top1=0.9999)
def test_top1(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")

@pytest.mark.edge_budget(max_accuracy_drop=-50.0)
def test_drop(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")

@pytest.mark.edge_budget(min_agreement=1.5)
def test_agreement(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")

@pytest.mark.edge_budget(max_params=1000)
def test_params(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")

@pytest.mark.edge_budget(max_peak_rss_mb=1)
def test_rss(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")

@pytest.mark.edge_budget(max_storage_mb=5, max_size_mb=5, min_top1=0.9, max_accuracy_drop=1.0,
                         min_agreement=0.95, min_top5_agreement=0.95, max_params=100_000, max_peak_rss_mb=4000)
def test_within_every_budget(edge_runner):
    m = edge_runner.measure("digits-cnn", precision="int8")
    assert m.check(max_storage_mb=5, min_top1=0.9).model == "digits-cnn"

def test_check_lists_every_violation(edge_runner):
    m = edge_runner.measure("digits-cnn", precision="int8")
    m.check(max_storage_mb=0.001, min_top1=0.9999, max_params=10, max_latency_ms=1e6)

def test_check_unknown_budget(edge_runner):
    m = edge_runner.measure("digits-cnn", precision="int8")
    m.check(bogus=1)

def test_check_unknown_ratio_precision(edge_runner):
    m = edge_runner.measure("digits-cnn", precision="int8")
    m.check(max_latency_ratio_vs="fp64")
"""


_RUNS: Dict[str, pytest.RunResult] = {}


@pytest.fixture
def budget_run(pytester: pytest.Pytester) -> pytest.RunResult:
    """One run of BUDGETS_TEST, shared by the tests that only read its output."""
    if "budgets" not in _RUNS:
        pytester.makepyfile(test_budgets=BUDGETS_TEST)
        _RUNS["budgets"] = pytester.runpytest(*QUICK)
    return _RUNS["budgets"]


def test_marker_budgets_fail_with_their_numbers_and_units(budget_run: pytest.RunResult) -> None:
    found = failures(budget_run)
    expected = {
        "test_storage": r"max_storage_mb: measured [\d.]+ MB, limit <= 0\.001 MB",
        "test_size": r"max_size_mb: measured [\d.]+ MB, limit <= 0\.0001 MB",
        "test_top1": r"min_top1: measured 0\.9\d*, limit >= 0\.9999",
        "test_drop": r"max_accuracy_drop: measured -?[\d.]+ pp, limit <= -50 pp",
        "test_agreement": r"min_agreement: measured [\d.]+, limit >= 1\.5",
        "test_params": r"max_params: measured \d{2},\d{3}, limit <= 1000",
        "test_rss": r"max_peak_rss_mb: measured [\d.]+ MB, limit <= 1 MB",
    }
    for name, pattern in expected.items():
        text = found[name]
        assert text.startswith("BudgetExceeded: digits-cnn [int8, onnxruntime] on host broke 1 budget(s):"), text
        assert re.search(r"^  " + pattern + "$", text, re.MULTILINE), text
    assert "test_within_every_budget" not in found


def test_check_lists_every_violation_together(budget_run: pytest.RunResult) -> None:
    text = failures(budget_run)["test_check_lists_every_violation"]
    lines = text.splitlines()
    assert lines[0] == "BudgetExceeded: digits-cnn [int8, onnxruntime] on host broke 3 budget(s):"
    broken = lines[
        1 : next((i for i, line in enumerate(lines) if line.strip().startswith("the layers INT8")), len(lines))
    ]
    assert [line.split(":")[0].strip() for line in broken] == ["max_storage_mb", "min_top1", "max_params"]
    assert "max_latency_ms" not in text  # met: not listed


def test_check_with_an_unknown_budget_is_a_one_line_failure(budget_run: pytest.RunResult) -> None:
    text = failures(budget_run)["test_check_unknown_budget"]
    assert "\n" not in text
    assert text.startswith("EdgeOptError: digits-cnn [int8]: unknown budget bogus; known: ")
    for name in BUDGET_NAMES:
        assert name in text
    text = failures(budget_run)["test_check_unknown_ratio_precision"]
    assert text == (
        "EdgeOptError: digits-cnn [int8]: max_latency_ratio_vs: unknown precision 'fp64'; "
        f"choose from {', '.join(PRECISIONS)}"
    )


def test_a_budget_failure_is_a_failed_test_and_exit_status_1(budget_run: pytest.RunResult) -> None:
    assert_gate_failed(budget_run, failed=10, passed=1)
    budget_run.stdout.fnmatch_lines(["FAILED test_budgets.py::test_storage - BudgetExceeded: *"])


def test_failing_cells_are_marked_in_the_table(budget_run: pytest.RunResult) -> None:
    [row] = table(budget_run)  # every test measured the same case: one row, the worst verdict
    assert row["Verdict"] == "fail"
    for column in ("Size (MB)", "Params (M)", "Top-1 (%)", "Agreement (%)", "Storage (MB)", "Peak RSS (MB)"):
        assert row[column].endswith(" !"), (column, row)
    assert not row["Latency (ms, p50)"].endswith("!")


# -- improvement, pyproject ---------------------------------------------------------------------------


def test_an_improvement_never_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        usermodel=textwrap.dedent(USER_MODEL),
        test_net="""
        import pytest
        from usermodel import user_model

        @pytest.mark.edge_budget(max_size_regression="0%", max_storage_regression="0%",
                                 max_latency_regression="0%")
        def test_net(edge_runner):
            edge_runner.measure(user_model(), precision="fp32")
    """,
    )
    (pytester.path / "width.txt").write_text("64")
    pytester.runpytest(*QUICK, "--update-baselines").assert_outcomes(passed=1)
    (pytester.path / "width.txt").write_text("8")  # 8x fewer channels: smaller and far faster
    result = pytester.runpytest(*QUICK, *WARNINGS_SHOWN)
    result.assert_outcomes(passed=1)
    [row] = table(result)
    assert row["Verdict"] == "pass"
    assert row["Delta"].startswith("-")
    assert "!" not in "".join(row.values())


PYPROJECT_TEST = """
import pytest

def test_default(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")

@pytest.mark.edge_budget(max_storage_mb=5)
def test_marker_beats_the_default(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")
"""


def test_pyproject_budgets_apply_and_the_platform_table_overrides_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=PYPROJECT_TEST)
    pytester.makepyprojecttoml("[tool.edgeopt.budgets]\nmax_storage_mb = 0.001\nmin_top1 = 0.5\n")
    result = pytester.runpytest(*QUICK)
    assert_gate_failed(result, failed=1, passed=1)
    assert re.search(r"max_storage_mb: measured [\d.]+ MB, limit <= 0\.001 MB", failures(result)["test_default"])

    pytester.makepyprojecttoml(
        "[tool.edgeopt.budgets]\nmax_storage_mb = 0.001\nmin_top1 = 0.5\n\n"
        "[tool.edgeopt.platforms.host.budgets]\nmax_storage_mb = 5\n"
    )
    pytester.runpytest(*QUICK).assert_outcomes(passed=2)

    pytester.makepyprojecttoml(
        "[tool.edgeopt.budgets]\nmax_storage_mb = 5\n\n[tool.edgeopt.platforms.host.budgets]\nmin_top1 = 0.9999\n"
    )
    result = pytester.runpytest(*QUICK)  # the platform's budgets add to the defaults
    assert_gate_failed(result, failed=2, passed=0)
    assert "min_top1: measured" in failures(result)["test_marker_beats_the_default"]


def test_another_platforms_budgets_do_not_apply(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=PYPROJECT_TEST)
    pytester.makepyprojecttoml("[tool.edgeopt.platforms.pi.budgets]\nmax_storage_mb = 0.001\n")
    pytester.runpytest(*QUICK).assert_outcomes(passed=2)


# -- unknown budget names: usage errors ---------------------------------------------------------------


def assert_usage_error_listing_budgets(result: pytest.RunResult, first_line: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([first_line])
    known = result.stderr.str().split("known: ", 1)[1]
    for name in BUDGET_NAMES:
        assert name in known
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["", "xdist"])
def test_unknown_budget_in_a_marker_is_a_usage_error(pytester: pytest.Pytester, xdist: tuple) -> None:
    if xdist:
        pytest.importorskip("xdist")
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.edge_budget(max_storage_mbb=5)
        def test_x(edge_runner):
            edge_runner.measure("digits-cnn", precision="int8")
    """
    )
    result = pytester.runpytest(*QUICK, *xdist)
    assert_usage_error_listing_budgets(
        result, "*test_x.py::test_x: @pytest.mark.edge_budget: unknown budget max_storage_mbb; known: *"
    )


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ('max_latency_ratio_vs="fp64"', "max_latency_ratio_vs: unknown precision 'fp64'; choose from fp32, *"),
        ('max_storage_mb="five"', "max_storage_mb='five': expected a number"),
        ('max_size_regression="ten"', "max_size_regression='ten': expected a percentage like '10%' *"),
    ],
)
def test_a_malformed_budget_in_a_marker_is_a_usage_error_naming_the_test(
    pytester: pytest.Pytester, budget: str, message: str
) -> None:
    pytester.makepyfile(
        test_x=f"""
        import pytest

        @pytest.mark.edge_budget({budget})
        def test_x(edge_runner):
            edge_runner.measure("digits-cnn", precision="int8")
    """
    )
    result = pytester.runpytest(*QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*test_x.py::test_x: @pytest.mark.edge_budget: {message}"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_marker_budgets_must_be_keywords(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.edge_budget(5)
        def test_x():
            pass
    """
    )
    result = pytester.runpytest(*QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*edge_budget takes keyword budgets only*"])


@pytest.mark.parametrize(
    "toml",
    [
        "[tool.edgeopt.budgets]\nmax_storage_mb = 5\nmax_lateny_ms = 3\n",
        "[tool.edgeopt.platforms.host.budgets]\nmax_lateny_ms = 3\n",
    ],
    ids=["default", "platform"],
)
def test_unknown_budget_in_pyproject_is_a_usage_error(pytester: pytest.Pytester, toml: str) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    pytester.makepyprojecttoml(toml)
    result = pytester.runpytest(*QUICK)
    assert_usage_error_listing_budgets(
        result, "*pyproject.toml [[]tool.edgeopt[]]: unknown budget max_lateny_ms; known: *"
    )


# -- the paired gate against fp32 ----------------------------------------------------------------------


def test_latency_ratio_vs_fp32_gives_a_verdict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="""
        def test_ratio(edge_runner):
            m = edge_runner.measure("digits-cnn", precision="int8")
            m.check(max_latency_ratio_vs="fp32")

        def test_loose_ratio(edge_runner):
            m = edge_runner.measure("digits-cnn", precision="fp16")
            m.check(max_latency_ratio_vs={"fp32": 50.0})
    """
    )
    result = pytester.runpytest(*QUICK, *WARNINGS_SHOWN)
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 2
    assert "test_loose_ratio" not in failures(result)  # up to 50x the fp32 latency is allowed
    rows = {row["Bit-width (W/A)"].split("/")[0]: row for row in table(result)}
    assert set(rows) == {"FP16", "INT8"}  # the fp32 reference is measured, but is no row of its own
    for row in rows.values():
        assert re.fullmatch(r"[+-]\d+\.\d% \((cpu|wall), (vs fp32|paired A/B vs fp32, \d+ pairs)\)", row["Delta"]), row
    assert rows["FP16"]["Verdict"] == "pass"
    ratio_failure = failures(result).get("test_ratio")
    if ratio_failure is None:  # int8 at most as slow as fp32 here, or too close to tell (a warning)
        assert rows["INT8"]["Verdict"] in ("pass", "inconclusive")
    else:  # int8 slower than fp32 on this CPU: the message says by how much
        assert rows["INT8"]["Verdict"] == "regressed"
        assert re.search(
            r"max_latency_ratio_vs: [\d.]+ ms vs fp32 [\d.]+ ms \((cpu|wall), "
            r"(vs fp32, \d process\(es\)|paired A/B vs fp32, \d+ pairs)\): ratio [\d.]+ \(99% CI [\d.]+\.\.[\d.]+\), "
            r"limit 1\.000: regressed",
            ratio_failure,
        ), ratio_failure


INT8_SHARE = """
    import pytest

    @pytest.mark.edge_models("digits-cnn")
    @pytest.mark.edge_precisions("fp32", "fp16", "int8")
    def test_share(edge_model, edge_precision, edge_runner):
        m = edge_runner.measure(edge_model, precision=edge_precision)
        m.check(min_int8_weight_share=0.9)
"""


def test_the_int8_weight_share_is_read_from_the_artifact_and_gated(pytester: pytest.Pytester) -> None:
    """A metric added through the registry alone: its value, its budget, the column it marks."""
    import xml.etree.ElementTree as ET

    pytester.makepyfile(test_x=INT8_SHARE)
    result = pytester.runpytest(*QUICK, "--junitxml=out.xml")
    assert_gate_failed(result, failed=2, passed=1)
    shares = {
        p.get("name", "").split(".")[2]: float(p.get("value", "nan"))
        for p in ET.parse(pytester.path / "out.xml").iter("property")
        if p.get("name", "").endswith(".int8_weight_share")
    }
    assert shares["fp32"] == 0.0 and shares["fp16"] == 0.0 and shares["int8"] > 0.95, shares
    reasons = failures(result)
    assert "min_int8_weight_share: measured 0, limit >= 0.9" in reasons["test_share[digits-cnn-fp16]"]
    cells = [row["Bit-width (W/A)"] for row in table(result)]
    assert cells == ["FP32/FP32 !", "FP16/FP16 !", "INT8/INT8 (U8S8)"], cells
