"""The terminal table wraps at pytest's terminal width and keeps every value; -v and
--edge-table-columns=all show every column in one block."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

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


def markdown_rows(path: Path) -> List[Dict[str, str]]:
    """The full table of the same run, from its Markdown report."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return [dict(zip(split[0], cells)) for cells in split[2:]]


def test_the_table_wraps_at_the_terminal_width_and_keeps_every_value(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_x=GATED)
    for width in (80, 120):
        monkeypatch.setenv("COLUMNS", str(width))
        result = pytester.runpytest(*QUICK, f"--edge-report=seed{width}.md")
        assert_gate_failed(result, failed=1, passed=1)  # fp32 breaks the storage budget
        lines = section(result)
        assert max(len(line) for line in lines) <= width, "\n".join(lines)
        assert lines[0].startswith("all rows: ") and "Platform: host: " in " ".join(lines[:3])
        rows = table(result)
        assert rows == markdown_rows(pytester.path / f"seed{width}.md"), "\n".join(lines)
        assert rows[0]["Storage (MB)"].endswith(" !") and rows[0]["Verdict"] == "fail"
        first = next(line for line in lines if line.startswith("Model ")).split()
        assert first[:5] == ["Model", "Bit-width", "(W/A)", "Verdict", "Storage"]  # the failing column first
        assert not any(line.startswith("not shown") for line in lines)

    for args in (("-v",), ("--edge-table-columns=all",)):
        wide = pytester.runpytest(*QUICK, *args)
        assert_gate_failed(wide, failed=1, passed=1)
        assert "Compute (GFLOPs, GFLOP/s)" in table(wide)[0] and "Platform" in table(wide)[0]
        assert not any(line.startswith(("all rows: ", "- on every row")) for line in section(wide))
        assert sum(line.startswith("Model ") for line in section(wide)) == 1  # one block


def test_the_ini_option_and_a_bad_value(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    pytester.makeini("[pytest]\nedgeopt_table_columns = everything\n")
    result = pytester.runpytest(*QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-table-columns: expected one of fit, all, got 'everything'*"])
