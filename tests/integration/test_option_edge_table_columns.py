"""The terminal table fits pytest's terminal width; -v and --edge-table-columns=all show every column."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.pytester_helpers import QUICK, SECTION, assert_gate_failed, table

GATED = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
@pytest.mark.edge_budget(max_storage_mb=0.1)
def test_x(edge_model, edge_precision, edge_runner):
    edge_runner.measure(edge_model, precision=edge_precision)
"""


def section(result: pytest.RunResult) -> list:
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if SECTION in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("="))
    return lines[start + 1 : end]


def test_the_table_fits_the_terminal_and_all_shows_every_column(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_x=GATED)
    monkeypatch.setenv("COLUMNS", "120")
    result = pytester.runpytest(*QUICK)
    assert_gate_failed(result, failed=1, passed=1)  # fp32 breaks the storage budget
    lines = section(result)
    assert max(len(line) for line in lines) <= 120, "\n".join(lines)
    assert lines[0].startswith("all rows: ") and "Platform: host: " in lines[0]
    rows = table(result)
    assert list(rows[0])[:4] == ["Model", "Bit-width (W/A)", "Verdict", "Latency (ms, p50)"]
    assert rows[0]["Storage (MB)"].endswith(" !") and rows[0]["Verdict"] == "fail"  # the failing column stays
    assert "Notes" in rows[1]  # the column of the numbers that name the notes stays (a note is machine-dependent)
    assert any(line.startswith("not shown to fit 120 columns: ") for line in lines)

    for args in (("-v",), ("--edge-table-columns=all",)):
        wide = pytester.runpytest(*QUICK, *args)
        assert_gate_failed(wide, failed=1, passed=1)
        assert "Compute (GFLOPs, GFLOP/s)" in table(wide)[0] and "Platform" in table(wide)[0]
        assert not any(line.startswith(("all rows: ", "not shown")) for line in section(wide))


def test_the_ini_option_and_a_bad_value(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    pytester.makeini("[pytest]\nedgeopt_table_columns = everything\n")
    result = pytester.runpytest(*QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-table-columns: expected one of fit, all, got 'everything'*"])
