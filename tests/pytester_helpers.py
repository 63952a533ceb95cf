"""Reading what a pytester run printed: the comparison table, its notes, failure reasons.

Kept free of torch and onnxruntime so the runtime-only CI venv can use it too.
"""

from __future__ import annotations

import re
from typing import Dict, List

import pytest

QUICK = ("--edge-quick", "-p", "no:cacheprovider")
SECTION = "pytest-edgeopt: comparison table"


def failures(result: pytest.RunResult) -> Dict[str, str]:
    """test name -> the text of its failure report."""
    return {r.nodeid.split("::")[-1]: r.longreprtext.strip() for r in result.reprec.getfailures()}  # type: ignore[attr-defined]


def assert_gate_failed(result: pytest.RunResult, *, failed: int, passed: int) -> None:
    """Exit status 1 from failed tests, the summary line, and never a crash of the plugin."""
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    result.assert_outcomes(failed=failed, passed=passed)
    assert "INTERNALERROR" not in output and "Traceback" not in output
    summary = f"{failed} failed, {passed} passed" if passed else f"{failed} failed"
    result.stdout.fnmatch_lines([f"=* {summary} in *"])


def table(result: pytest.RunResult) -> List[Dict[str, str]]:
    """The comparison table's rows as {header: cell}, cut at the header's column positions."""
    lines = result.stdout.lines
    section = next(i for i, line in enumerate(lines) if SECTION in line)
    at = next(i for i in range(section, len(lines)) if lines[i].startswith("Model "))
    header, rule = lines[at], lines[at + 1]
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    rows = []
    for line in lines[at + 2 :]:
        if not line.strip() or line.startswith(("[", "=")):
            break
        rows.append({header[a:b].strip(): line[a:b].strip() for a, b in spans})
    return rows


def notes(result: pytest.RunResult) -> List[str]:
    return [line for line in result.stdout.lines if re.match(r"\[\d+\] ", line)]
