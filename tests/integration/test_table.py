"""The comparison table at the end of the run, --no-edge-table, xdist and JUnit XML properties."""

from __future__ import annotations

import platform
import xml.etree.ElementTree as ET
from typing import Dict, List

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("xdist")


QUICK = ("--edge-quick", "-p", "no:cacheprovider")
SECTION = "pytest-edgeopt: comparison table"
SEED_COLUMNS = (
    "Model",
    "Bit-width (W/A)",
    "Size (MB)",
    "Params (M)",
    "Top-1 (%)",
    "Storage (MB)",
    "Latency (ms, p50)",
    "Throughput (inf/s)",
    "Energy (W)",
    "Energy (mJ/inf)",
    "Compute",
    "Platform",
)
INT8_LABEL = "INT8/INT8 (U8S8)" if platform.machine().lower() in ("x86_64", "amd64") else "INT8/INT8 (S8S8)"

FP32_AND_INT8 = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
def test_x(edge_model, edge_precision, edge_runner):
    edge_runner.measure(edge_model, precision=edge_precision)
"""

FOUR_CASES = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "fp16", "int8", "int8-s8s8")
def test_x(edge_model, edge_precision, edge_runner):
    edge_runner.measure(edge_model, precision=edge_precision)
"""


def _table(result: pytest.RunResult) -> List[Dict[str, str]]:
    """The table's rows as {header: cell}, read by the column positions of the header line."""
    lines = result.stdout.lines
    assert sum(SECTION in line for line in lines) == 1, result.stdout.str()
    section = next(i for i, line in enumerate(lines) if SECTION in line)
    header_at = next(i for i in range(section, len(lines)) if lines[i].startswith("Model "))
    header, rule = lines[header_at], lines[header_at + 1]
    spans, start = [], 0
    for dashes in rule.split("  "):
        if dashes:
            begin = rule.index(dashes, start)
            spans.append((begin, begin + len(dashes)))
            start = begin + len(dashes)
    names = [header[a:b].strip() for a, b in spans]
    rows = []
    for line in lines[header_at + 2 :]:
        if not line.strip() or line.startswith(("[", "=")):
            break
        rows.append({name: line[a:b].strip() for name, (a, b) in zip(names, spans)})
    return rows


def test_table_has_the_seed_columns_and_one_row_per_case(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=FP32_AND_INT8)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*= {SECTION} =*"])
    rows = _table(result)
    for column in SEED_COLUMNS:
        assert any(name.startswith(column) for name in rows[0]), column
    assert [row["Bit-width (W/A)"] for row in rows] == ["FP32/FP32", INT8_LABEL]
    assert [row["Model"] for row in rows] == ["digits-cnn", ""]  # the model is named once
    for row in rows:
        assert row["Platform"].startswith("host: ")
        assert float(row["Latency (ms, p50)"]) > 0
        assert float(row["Top-1 (%)"]) > 90
    assert rows[0]["Agreement (%)"] == "ref"


def test_the_table_comes_after_the_test_outcomes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=FP32_AND_INT8)
    result = pytester.runpytest(*QUICK, "-v")
    result.stdout.fnmatch_lines(
        [
            "*test_x[[]digits-cnn-int8[]] PASSED*",
            f"*{SECTION}*",
            "Model *Platform*",
            "digits-cnn *FP32/FP32*",
            f"* {INT8_LABEL} *",
            "*2 passed*",
        ]
    )


def test_no_edge_table_hides_the_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=FP32_AND_INT8)
    result = pytester.runpytest(*QUICK, "--no-edge-table")
    result.assert_outcomes(passed=2)
    assert SECTION not in result.stdout.str()
    assert "Bit-width" not in result.stdout.str()


def test_no_table_when_nothing_was_measured(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.edge_models("digits-cnn")
        def test_model_only(edge_model, edge_precision):
            assert edge_model.name == "digits-cnn"

        def test_plain():
            pass
    """)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=3)
    assert SECTION not in result.stdout.str()


def test_a_failed_measurement_adds_no_row(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.edge_models("digits-cnn")
        @pytest.mark.edge_precisions("fp32")
        def test_x(edge_model, edge_precision, edge_runner):
            edge_runner.measure(edge_model, precision=edge_precision)

        def test_bad(edge_runner):
            edge_runner.measure("digits-cnn", precision="int3")
    """)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*EdgeOptError: unknown precision 'int3'; choose from *"])
    assert [row["Bit-width (W/A)"] for row in _table(result)] == ["FP32/FP32"]


def _properties(path) -> Dict[str, Dict[str, str]]:
    """testcase name -> {property name: value} from a JUnit XML file."""
    found: Dict[str, Dict[str, str]] = {}
    for case in ET.parse(str(path)).getroot().iter("testcase"):
        found[case.get("name")] = {p.get("name"): p.get("value") for p in case.iter("property")}
    return found


def test_junitxml_records_the_measurements_as_properties(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=FP32_AND_INT8)
    # record_property warns under the default junit_family (xunit2); edge_runner must not
    result = pytester.runpytest(*QUICK, "--junitxml=out.xml", "-W", "error::pytest.PytestWarning")
    result.assert_outcomes(passed=2, warnings=0)
    properties = _properties(pytester.path / "out.xml")
    int8 = properties["test_x[digits-cnn-int8]"]
    for name in ("latency_ms", "top1", "agreement", "size_mb", "storage_mb", "peak_rss_mb", "throughput"):
        assert float(int8[f"edgeopt.digits-cnn.int8.{name}"]) >= 0
    assert float(int8["edgeopt.digits-cnn.int8.latency_ms"]) > 0
    assert "edgeopt.digits-cnn.fp32.latency_ms" in properties["test_x[digits-cnn-fp32]"]


def test_xdist_controller_prints_one_table_with_every_row(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=FOUR_CASES)
    result = pytester.runpytest(*QUICK, "-n", "2", "--junitxml=out.xml")
    result.assert_outcomes(passed=4)
    rows = _table(result)
    assert sorted(row["Bit-width (W/A)"] for row in rows) == sorted(
        [
            "FP32/FP32",
            "FP16/FP16",
            "INT8/INT8 (U8S8)" if INT8_LABEL.endswith("(U8S8)") else INT8_LABEL,
            "INT8/INT8 (S8S8)",
        ]
    )
    assert rows[0]["Bit-width (W/A)"] == "FP32/FP32"  # ordered by precision, not by finishing time
    properties = _properties(pytester.path / "out.xml")
    assert len(properties) == 4
    for precision in ("fp32", "fp16", "int8", "int8-s8s8"):
        case = properties[f"test_x[digits-cnn-{precision}]"]
        assert float(case[f"edgeopt.digits-cnn.{precision}.latency_ms"]) > 0
