"""Report files: the same cells as the terminal table, as Markdown, JSON or a static HTML page.

Markdown fits $GITHUB_STEP_SUMMARY; JSON carries every measurement and verdict and validates
against schemas/report.schema.json; HTML is one self-contained page.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

from tabulate import tabulate

import pytest_edgeopt
from pytest_edgeopt._fs import atomic_write_text
from pytest_edgeopt.judge.types import Row
from pytest_edgeopt.report.html import html_page
from pytest_edgeopt.report.recommend import recommend, recommendation_lines
from pytest_edgeopt.report.table import platform_groups, table_cells

REPORT_VERSION = 1


def write_report(path: Path, rows: Sequence[Row], *, platform: str, by_platform: bool = False) -> None:
    """`by_platform`: the table of stored baselines, one row group per platform."""
    renderers = {".md": markdown, ".json": json_report, ".html": html_page}
    atomic_write_text(path, renderers[path.suffix.lower()](rows, platform=platform, by_platform=by_platform))


def markdown(rows: Sequence[Row], *, platform: str, by_platform: bool = False, findings: Sequence[str] = ()) -> str:
    """The table, its notes, the broken budgets and `findings` (what was not checked) as GitHub
    Markdown; every cell and line is escaped (`|`, newlines, HTML) so a note cannot break the table."""
    headers, body, notes = table_cells(rows, by_platform=by_platform)
    lines = [f"## pytest-edgeopt on `{_md(platform)}`", ""]
    if not body:
        return "\n".join(lines + ["No model was measured.", ""])
    if by_platform:
        body = _group_rows(body, platform_groups(rows), len(headers), title=lambda name: f"**{name}**")
    cells = [tuple(_md(cell) for cell in row) for row in body]
    lines += tabulate(cells, headers=[_md(h) for h in headers], tablefmt="github", disable_numparse=True).splitlines()
    lines += [""] + [f"{number}. {_md(note)}" for note, number in notes.items()]
    failing = [f"- `{_md(r.measurement.nodeid)}`: {_md(v)}" for r in rows for v in r.judgement.violations]
    if failing:
        lines += ["", "### Broken budgets", ""] + failing
    deploy = recommendation_lines(rows)
    if deploy:
        lines += ["", "### What to deploy", ""] + [f"- {_md(line)}" for line in deploy]
    if findings:
        lines += ["", "### Not checked", ""] + [f"- {_md(line)}" for line in findings]
    return "\n".join(lines) + "\n"


def append_step_summary(path: Path, rows: Sequence[Row], *, platform: str, findings: Sequence[str]) -> None:
    """GitHub Actions shows $GITHUB_STEP_SUMMARY on the run's page: the table goes there unasked;
    appended, since other steps and tools write to the same file."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(markdown(rows, platform=platform, findings=findings) + "\n")


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # what starts HTML; "limit <= 5" stays as it is


def _md(text: object) -> str:
    """A cell that stays one cell and shows as text: a model named `a|b` or with a newline or
    `<img ...>` must not split the row or reach the step summary as HTML."""
    flat = " ".join(str(text).split()).replace("|", "&#124;").replace("`", "'")
    return _TAG_START.sub("&lt;", flat)


def json_report(rows: Sequence[Row], *, platform: str, by_platform: bool = False) -> str:
    data = report_data(rows, platform=platform)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def report_data(rows: Sequence[Row], *, platform: str) -> Dict[str, Any]:
    return {
        "report_version": REPORT_VERSION,
        "plugin_version": pytest_edgeopt.__version__,
        "platform": platform,
        "created": _now(),
        "rows": [_json_row(r) for r in rows],
        "recommendations": [r.to_dict() for r in recommend(rows)],
    }


def _group_rows(
    body: Sequence[Tuple[str, ...]], groups: Sequence[Tuple[str, int]], columns: int, *, title: Callable[[str], str]
) -> List[Tuple[str, ...]]:
    """A title row before each platform's rows (Markdown tables have no row groups)."""
    out, starts, at = list(body), [], 0
    for platform, count in groups:
        starts.append((platform, at))
        at += count
    for platform, at in reversed(starts):
        out.insert(at, (title(platform),) + ("",) * (columns - 1))
    return out


def _json_row(row: Row) -> Dict[str, Any]:
    measurement = row.measurement.to_dict()
    for bulky in ("samples_ms", "cpu_samples_ms", "reference_wall_ms", "reference_cpu_ms"):
        measurement.pop(bulky)
    return {"measurement": measurement, "judgement": row.judgement.to_dict()}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
