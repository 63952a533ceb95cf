"""--edge-report PATH (.md, .json, .html), JUnit XML properties and NO_COLOR."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from importlib import resources
from typing import Dict

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.pytester_helpers import QUICK, SECTION, assert_gate_failed, table

GATED = """
import pytest

def test_fp32(edge_runner):
    edge_runner.measure("digits-cnn", precision="fp32")

@pytest.mark.edge_budget(max_storage_mb=0.001, min_top1=0.5)
def test_int8(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")
"""
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def report_schema() -> dict:
    return json.loads(resources.files("pytest_edgeopt").joinpath("schemas/report.schema.json").read_text())


def run_with_report(pytester: pytest.Pytester, name: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_x=GATED)
    result = pytester.runpytest(*QUICK, "--edge-report", name, *args)
    assert_gate_failed(result, failed=1, passed=1)  # the report never changes the verdict
    path = pytester.path / name
    result.stdout.fnmatch_lines(["*= pytest-edgeopt: report =*", f"wrote {path}"])
    return result


def test_markdown_report_has_the_table_and_the_broken_budgets(pytester: pytest.Pytester) -> None:
    run_with_report(pytester, "out.md")
    text = (pytester.path / "out.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "## pytest-edgeopt on `host`"
    header = next(line for line in lines if line.startswith("| Model"))
    for column in (
        "Bit-width (W/A)",
        "Size (MB)",
        "Top-1 (%)",
        "Latency (ms, p50)",
        "Baseline (ms)",
        "Delta",
        "Verdict",
    ):
        assert f" {column} " in header
    rows = [line for line in lines if line.startswith("| digits-cnn") or line.startswith("|  ")]
    assert len(rows) == 2
    assert "FP32/FP32" in rows[0] and "INT8/INT8" in rows[1]
    assert re.search(r"\| 0\.0\d\d ! +\|", rows[1]) and " fail " in rows[1]  # the broken storage cell
    assert "### Broken budgets" in lines
    assert re.search(
        r"^- `test_x.py::test_int8`: max_storage_mb: measured [\d.]+ MB, limit <= 0\.001 MB$",
        text,
        re.MULTILINE,  # "<=" starts no HTML tag: it stays as it is
    )


def test_json_report_validates_against_its_schema(pytester: pytest.Pytester) -> None:
    import jsonschema

    run_with_report(pytester, "reports/out.json")  # a missing directory is created
    data = json.loads((pytester.path / "reports" / "out.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, report_schema())
    assert (data["report_version"], data["platform"]) == (1, "host")
    rows = {row["measurement"]["precision"]: row for row in data["rows"]}
    assert set(rows) == {"fp32", "int8"}
    assert rows["int8"]["judgement"]["verdict"] == "fail"
    assert rows["int8"]["judgement"]["violations"][0].startswith("max_storage_mb: measured ")
    assert rows["fp32"]["judgement"]["verdict"] == "-"
    assert rows["int8"]["measurement"]["nodeid"] == "test_x.py::test_int8"
    assert rows["int8"]["measurement"]["latency"]["median_ms"] > 0
    assert "samples_ms" not in rows["int8"]["measurement"]  # the bulky raw samples stay out


def test_html_report_is_one_page_with_the_table(pytester: pytest.Pytester) -> None:
    run_with_report(pytester, "out.HTML")
    text = (pytester.path / "out.HTML").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<title>pytest-edgeopt on host</title>" in text
    assert "<table>" in text and "digits-cnn" in text and "FP32/FP32" in text
    assert re.search(r"<th[^>]*>\s*Verdict\s*</th>", text)
    assert re.search(r"0\.0\d\d !", text)


def test_json_report_under_xdist_has_every_row(pytester: pytest.Pytester) -> None:
    import jsonschema

    pytest.importorskip("xdist")
    run_with_report(pytester, "out.json", "-n", "2")
    data = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, report_schema())
    assert sorted(row["measurement"]["nodeid"] for row in data["rows"]) == [
        "test_x.py::test_fp32",
        "test_x.py::test_int8",
    ]


@pytest.mark.parametrize("name", ["out.txt", "out", "report.md.bak"])
def test_report_with_another_suffix_is_a_usage_error(pytester: pytest.Pytester, name: str) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest(*QUICK, "--edge-report", name)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--edge-report {name}: the file name must end in .md, .json, .html*"])
    assert not (pytester.path / name).exists()


def properties(path) -> Dict[str, Dict[str, str]]:
    """testcase name -> {property name: value}."""
    return {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(str(path)).getroot().iter("testcase")
    }


def test_every_metric_goes_into_junit_xml_properties(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=GATED)
    result = pytester.runpytest(*QUICK, "--junitxml=out.xml")
    assert_gate_failed(result, failed=1, passed=1)
    found = properties(pytester.path / "out.xml")
    for case, precision in (("test_fp32", "fp32"), ("test_int8", "int8")):  # a failed test keeps them too
        values = found[case]
        for metric in (
            "latency_ms",
            "throughput",
            "size_mb",
            "storage_mb",
            "params",
            "gflops",
            "peak_rss_mb",
            "top1",
            "agreement",
            "top5_agreement",
            "accuracy_drop",
        ):
            assert float(values[f"edgeopt.digits-cnn.{precision}.{metric}"]) >= 0, (case, metric)
        assert float(values[f"edgeopt.digits-cnn.{precision}.latency_ms"]) > 0
        assert int(values[f"edgeopt.digits-cnn.{precision}.params"]) > 1000
        assert f"edgeopt.digits-cnn.{precision}.energy_w" not in values  # no power meter on host
    assert float(found["test_int8"]["edgeopt.digits-cnn.int8.storage_mb"]) > 0.001  # the number that failed


def test_no_color_prints_the_table_without_ansi_escapes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_x=GATED)
    monkeypatch.delenv("PY_COLORS", raising=False)  # pytester sets PY_COLORS=0, which beats both below
    monkeypatch.setenv("FORCE_COLOR", "1")  # colour is forced...
    monkeypatch.setenv("NO_COLOR", "1")  # ...and NO_COLOR still wins
    result = pytester.runpytest(*QUICK)
    assert_gate_failed(result, failed=1, passed=1)
    output = result.stdout.str()
    assert not ANSI.search(output)
    assert f"= {SECTION} =" in output
    rows = table(result)
    assert [row["Bit-width (W/A)"].split()[0] for row in rows] == ["FP32/FP32", "INT8/INT8"]
    assert rows[1]["Storage (MB)"].endswith(" !")

    monkeypatch.delenv("NO_COLOR")  # the same run with colour shows that the check above means something
    assert ANSI.search(pytester.runpytest(*QUICK, "--no-edge-table", "-k", "fp32").stdout.str())
