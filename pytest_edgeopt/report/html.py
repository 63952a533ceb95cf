"""The HTML report: one self-contained page people look at, offline (no script, no CDN).

The seed table with every column, the broken budgets, an accuracy-vs-latency plot per model
(report/plots.py; inline SVG) and the notes. A pure function of the rows, like the other reports.
"""

from __future__ import annotations

import datetime as _dt
import html
from typing import List, Sequence, Tuple

from pytest_edgeopt.judge.types import Row
from pytest_edgeopt.kinds import Verdict
from pytest_edgeopt.report.plots import PLOT_INSTALL, ModelPlot, model_plots, pareto_front, svg
from pytest_edgeopt.report.table import FAIL_MARK, ordered_rows, platform_groups, table_cells


def html_page(rows: Sequence[Row], *, platform: str, by_platform: bool = False) -> str:
    headers, body, notes = table_cells(rows, by_platform=by_platform)
    title = f"pytest-edgeopt on {html.escape(platform)}"
    if not body:
        sections = ["<p>No model was measured.</p>"]
    else:
        groups = platform_groups(rows) if by_platform else []
        sections = [
            f"<p>{_summary(rows)}</p>",
            "<h2>Comparison table</h2>",
            html_table(headers, body, groups),
            "<ol class='notes'>" + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ol>",
            *_broken(rows),
            "<h2>Accuracy vs latency</h2>",
            *_plots(ordered_rows(rows, by_platform=by_platform)),
        ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body><h1>{title}</h1>{''.join(sections)}"
        f"<p class='created'>{_now()}</p></body></html>\n"
    )


def html_table(headers: Sequence[str], body: Sequence[Tuple[str, ...]], groups: Sequence[Tuple[str, int]]) -> str:
    """The seed table with every column; a broken budget's cell is marked, a platform's rows grouped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    lines = [
        "<tr>" + "".join(f"<td{_fail_class(cell)}>{html.escape(cell)}</td>" for cell in cells) + "</tr>"
        for cells in body
    ]
    for title, at in reversed(_starts(groups)):
        lines.insert(at, f'<tr class="group"><th colspan="{len(headers)}">{html.escape(title)}</th></tr>')
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table></div>"


def _summary(rows: Sequence[Row]) -> str:
    ordered = ordered_rows(rows)
    failed = sum(r.judgement.verdict in (Verdict.FAIL, Verdict.REGRESSED) for r in ordered)
    return f"{len(ordered)} case(s), {failed} failed their budgets."


def _broken(rows: Sequence[Row]) -> List[str]:
    items = [
        f"<li><code>{html.escape(r.measurement.nodeid)}</code>: {html.escape(v)}</li>"
        for r in rows
        for v in r.judgement.violations
    ]
    return ["<h2>Broken budgets</h2>", f"<ul class='broken'>{''.join(items)}</ul>"] if items else []


def _plots(rows: Sequence[Row]) -> List[str]:
    plots = model_plots(rows)
    try:
        return [_figure(plot) for plot in plots]
    except ImportError:
        return [f"<p class='missing'>The plots need matplotlib: {html.escape(PLOT_INSTALL)}</p>"]


def _figure(plot: ModelPlot) -> str:
    front = ", ".join(p.label for p in pareto_front(plot.points))
    caption = f"{html.escape(plot.model)}: {len(plot.points)} point(s); Pareto front: {html.escape(front)}"
    return (
        f'<figure class="plot" data-model="{html.escape(plot.model)}" data-points="{len(plot.points)}">'
        f"{svg(plot)}<figcaption>{caption}</figcaption></figure>"
    )


def _fail_class(cell: str) -> str:
    return ' class="fail"' if cell.endswith(FAIL_MARK) else ""


def _starts(groups: Sequence[Tuple[str, int]]) -> List[Tuple[str, int]]:
    """(title, index of its first row) from (title, row count)."""
    starts, at = [], 0
    for title, count in groups:
        starts.append((title, at))
        at += count
    return starts


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;font-size:.85em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right;white-space:nowrap}th{background:#f3f3f3}"
    "div.scroll{overflow-x:auto}"
    "td:first-child,td:nth-child(2){text-align:left}td.fail{background:#fde2e2;font-weight:600}"
    "tr.group th{text-align:left;background:#e8eef7}figure.plot{display:inline-block;margin:1em}"
    "figure.plot svg{max-width:100%;height:auto}figcaption{font-size:.85em;color:#444}"
)
