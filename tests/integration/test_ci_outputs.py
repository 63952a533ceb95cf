"""CI-native outputs of one run: $GITHUB_STEP_SUMMARY appended, every measured number on the JUnit
XML test case, and `python -m pytest_edgeopt compare` over two JSON reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from pytest_edgeopt.cli import main
from pytest_edgeopt.judge.types import Row
from pytest_edgeopt.measure.values import measured_values
from tests.pytester_helpers import QUICK, assert_gate_failed

GATED = """
import pytest

def test_fp32(edge_runner):
    edge_runner.measure("digits-cnn", precision="fp32")

@pytest.mark.edge_budget(max_storage_mb=0.001)
def test_int8(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")
"""


def test_one_run_feeds_the_step_summary_junit_and_compare(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = pytester.path / "summary.md"
    summary.write_text("# an earlier step's summary\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_x=GATED)
    # the default junit_family, and a PytestWarning (record_property's) would be an error
    result = pytester.runpytest(
        *QUICK, "--junitxml=out.xml", "--edge-report=r.json", "-W", "error::pytest.PytestWarning"
    )
    assert_gate_failed(result, failed=1, passed=1)

    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# an earlier step's summary\n")  # appended, never replaced
    assert "## pytest-edgeopt on `host`" in text and "| digits-cnn " in text
    assert "### Broken budgets" in text and "max_storage_mb" in text

    rows = [Row.from_dict(row) for row in json.loads((pytester.path / "r.json").read_text())["rows"]]
    cases = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(str(pytester.path / "out.xml")).getroot().iter("testcase")
    }
    for row in rows:
        m = row.measurement
        properties = cases[m.nodeid.split("::")[-1]]
        expected = measured_values(m)
        assert {"latency_ms", "cpu_latency_ms", "load_ms", "top1", "agreement", "size_mb", "throughput"} <= set(
            expected
        )
        for name, value in expected.items():  # a failed test keeps them too
            assert float(properties[f"edgeopt.digits-cnn.{m.precision}.{name}"]) == pytest.approx(value), name

    report = pytester.path / "r.json"
    assert main(["compare", str(report), str(report), "--fail-on", "latency_ms:10%", "--fail-on", "top1:0.01"]) == 0
    slower = json.loads(report.read_text())
    for row in slower["rows"]:
        row["measurement"]["latency"]["median_ms"] *= 1.5
    later = pytester.path / "later.json"
    later.write_text(json.dumps(slower))
    capsys.readouterr()
    assert main(["compare", str(report), str(later), "--fail-on", "latency_ms:10%"]) == 1
    out = capsys.readouterr().out
    assert "FAIL (latency_ms:10%)" in out and "+50.0%" in out and "2 breaches of latency_ms:10%" in out
    assert main(["compare", str(report), str(later), "--fail-on", "latency_ms:60%", "--fail-on", "top1:0.01"]) == 0


def test_compare_says_what_is_wrong_with_a_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": [{"measurement": {}}]}')
    assert main(["compare", str(bad), str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"ERROR {bad}: not a pytest-edgeopt JSON report")
    with pytest.raises(SystemExit):
        main(["compare", str(bad), str(bad), "--fail-on", "latency:fast"])
    assert "expected METRIC:LIMIT" in capsys.readouterr().err
