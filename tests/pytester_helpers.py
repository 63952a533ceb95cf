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
    """The comparison table's rows as {header: cell}, every block of a wrapped table merged."""
    lines = result.stdout.lines
    section = next(i for i, line in enumerate(lines) if SECTION in line)
    end = next((i for i in range(section + 1, len(lines)) if lines[i].startswith("=")), len(lines))
    return read_table(lines[section + 1 : end])


TEXT = re.compile(r"^(all rows: |- on every row: |short headers: |\*\d+ |\[\d+\] )")


def read_table(lines: List[str]) -> List[Dict[str, str]]:
    """Rows as {full header: full cell}, read back from the lines a width gave: the blocks are
    cut at their rules' column positions and merged row by row, then the lines above and below
    the table put back what they hold (values every row shares, runtime versions, columns of `-`,
    shortened headers and cells)."""
    text = _unwrapped(lines)
    rows: List[Dict[str, str]] = []
    for at in [i for i in range(len(text) - 1) if text[i].startswith("Model ") and text[i + 1].startswith("---")]:
        block = _block(text, at)
        rows = block if not rows else [{**row, **more} for row, more in zip(rows, block)]
    legend = dict(re.findall(r"^(\*\d+) [^:]+: (.*)$", "\n".join(text), flags=re.M))
    renamed = _pairs(text, "short headers: ", " = ")
    shared = _pairs(text, "all rows: ", ": ")
    versions = dict(part.split(" ", 1) for part in shared.pop("versions", "").split(", ") if part)
    empty = [name for line in text if line.startswith("- on every row: ") for name in line[16:].split(", ")]
    out = []
    for row in rows:
        full = {renamed.get(k, k): legend.get(v.rsplit(" ", 1)[-1], v) for k, v in row.items()}
        if versions and "Runtime" in full:
            name, _, rest = full["Runtime"].partition(" ")
            full["Runtime"] = " ".join(part for part in (name, versions.get(name, ""), rest) if part)
        out.append({**full, **shared, **{name: "-" for name in empty}})
    return out


def _unwrapped(lines: List[str]) -> List[str]:
    """The lines around the table are wrapped at the width, continued under 4 spaces: joined back."""
    out: List[str] = []
    for line in lines:
        if out and TEXT.match(out[-1]) and line.startswith("    ") and line.strip():
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return out


def _block(text: List[str], at: int) -> List[Dict[str, str]]:
    header, rule = text[at], text[at + 1]
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    rows = []
    for line in text[at + 2 :]:
        if not line.strip() or TEXT.match(line) or line.startswith("="):
            break
        if not line.startswith("-- "):  # a platform's title
            rows.append({header[a:b].strip(): line[a:b].strip() for a, b in spans})
    return rows


def _pairs(text: List[str], prefix: str, sep: str) -> Dict[str, str]:
    parts = [part for line in text if line.startswith(prefix) for part in line[len(prefix) :].split("; ")]
    return dict(part.split(sep, 1) for part in parts)


def notes(result: pytest.RunResult) -> List[str]:
    return [line for line in result.stdout.lines if re.match(r"\[\d+\] ", line)]
