"""Report files: the same cells as the terminal table, as Markdown, JSON or a static HTML page.

Markdown fits $GITHUB_STEP_SUMMARY; JSON carries every measurement and verdict and validates
against schemas/report.schema.json; HTML is one self-contained page.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any, Dict, Sequence

from tabulate import tabulate

import pytest_edgeopt
from pytest_edgeopt._fs import atomic_write_text
from pytest_edgeopt.judge.types import Row
from pytest_edgeopt.report.table import table_cells

REPORT_VERSION = 1


def write_report(path: Path, rows: Sequence[Row], *, platform: str) -> None:
    renderers = {".md": markdown, ".json": json_report, ".html": html_page}
    atomic_write_text(path, renderers[path.suffix.lower()](rows, platform=platform))


def markdown(rows: Sequence[Row], *, platform: str) -> str:
    headers, body, notes = table_cells(rows)
    lines = [f"## pytest-edgeopt on `{platform}`", ""]
    if not body:
        return "\n".join(lines + ["No model was measured.", ""])
    lines += tabulate(body, headers=headers, tablefmt="github", disable_numparse=True).splitlines()
    lines += [""] + [f"{number}. {note}" for note, number in notes.items()]
    failing = [f"- `{r.measurement.nodeid}`: {v}" for r in rows for v in r.judgement.violations]
    if failing:
        lines += ["", "### Broken budgets", ""] + failing
    return "\n".join(lines) + "\n"


def json_report(rows: Sequence[Row], *, platform: str) -> str:
    data = report_data(rows, platform=platform)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def report_data(rows: Sequence[Row], *, platform: str) -> Dict[str, Any]:
    return {
        "report_version": REPORT_VERSION,
        "plugin_version": pytest_edgeopt.__version__,
        "platform": platform,
        "created": _now(),
        "rows": [_json_row(r) for r in rows],
    }


def html_page(rows: Sequence[Row], *, platform: str) -> str:
    headers, body, notes = table_cells(rows)
    table = (
        tabulate(body, headers=headers, tablefmt="html", disable_numparse=True)
        if body
        else "<p>No model was measured.</p>"
    )
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    title = f"pytest-edgeopt on {html.escape(platform)}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body><h1>{title}</h1>{table}<ol>{items}</ol>"
        f"<p>{_now()}</p></body></html>\n"
    )


def _json_row(row: Row) -> Dict[str, Any]:
    measurement = row.measurement.to_dict()
    for bulky in ("samples_ms", "cpu_samples_ms", "reference_wall_ms", "reference_cpu_ms"):
        measurement.pop(bulky)
    return {"measurement": measurement, "judgement": row.judgement.to_dict()}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;font-size:.9em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f3f3}"
    "td:first-child,td:nth-child(2){text-align:left}"
)
