"""The HTML report: one self-contained page people look at, offline (no script, no CDN).

The comparison table with every column, the broken budgets, an accuracy-vs-latency plot per model
(report/plots.py; inline SVG) and the notes. A pure function of the rows, like the other reports.
"""

from __future__ import annotations

import datetime as _dt
import html
from typing import List, Sequence, Tuple

from pytest_edgeopt.agent.contract import OpProfile
from pytest_edgeopt.judge.types import Row
from pytest_edgeopt.kinds import Verdict
from pytest_edgeopt.report.plots import PLOT_INSTALL, ModelPlot, model_plots, pareto_front, svg
from pytest_edgeopt.report.recommend import recommendation_lines
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
            *_deploy(rows),
            "<h2>Accuracy vs latency</h2>",
            *_plots(ordered_rows(rows, by_platform=by_platform)),
            *_diagnoses(ordered_rows(rows, by_platform=by_platform)),
        ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body><h1>{title}</h1>{''.join(sections)}"
        f"<p class='created'>{_now()}</p></body></html>\n"
    )


def _deploy(rows: Sequence[Row]) -> List[str]:
    lines = recommendation_lines(rows)
    if not lines:
        return []
    return ["<h2>What to deploy</h2><ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"]


def html_table(headers: Sequence[str], body: Sequence[Tuple[str, ...]], groups: Sequence[Tuple[str, int]]) -> str:
    """The comparison table with every column; a broken budget's cell is marked, a platform's rows grouped."""
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
        f"<li><b>{r.judgement.verdict.value}</b> <code>{html.escape(r.measurement.nodeid)}</code>: "
        f"{html.escape(v)}</li>"
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


def _diagnoses(rows: Sequence[Row]) -> List[str]:
    """Failed rows: where the time went; every other profiled row: its profile, folded."""
    failed = [_diagnosis(r) for r in rows if r.judgement.diagnosis]
    profiled = [_folded(r) for r in rows if not r.judgement.diagnosis and _profiles(r)]
    out = ["<h2>Per-op diagnosis</h2>", *failed] if failed else []
    return out + (["<h2>Per-op profiles</h2>", *profiled] if profiled else [])


def _diagnosis(row: Row) -> str:
    lines = "\n".join(row.judgement.diagnosis)
    return (
        f"<section class='diagnosis'><h3><code>{html.escape(_label(row))}</code></h3>"
        f"<pre>{html.escape(lines)}</pre>{''.join(_profile_tables(row))}</section>"
    )


def _folded(row: Row) -> str:
    return (
        f"<details><summary><code>{html.escape(_label(row))}</code></summary>{''.join(_profile_tables(row))}</details>"
    )


def _label(row: Row) -> str:
    m = row.measurement
    return f"{m.nodeid or m.model} [{m.precision}, {m.runtime}]"


def _profiles(row: Row) -> List[Tuple[str, OpProfile]]:
    """(side, profile): the current artifact's and, when paired, the other side's."""
    m, paired = row.measurement, row.measurement.paired
    current = (paired.current_op_profile if paired else None) or m.op_profile
    found = [("now", current)] if current is not None else []
    if paired is not None and paired.op_profile is not None:
        found.append((paired.against, paired.op_profile))
    return [(side, p) for side, p in found if not p.skipped]


def _profile_tables(row: Row) -> List[str]:
    """By op type for each side, then the slowest nodes of the current artifact with their provider."""
    tables = []
    for side, profile in _profiles(row):
        body = "".join(
            f"<tr><td>{html.escape(o.op_type)}</td><td>{o.ms:.4g}</td><td>{o.nodes}</td></tr>" for o in profile.ops
        )
        tables.append(
            f"<table class='ops'><caption>{html.escape(side)}: by op type ({profile.runs} profiled runs, "
            f"{html.escape(profile.source)})</caption><thead><tr><th>Op</th><th>ms / inference</th><th>Nodes</th>"
            f"</tr></thead><tbody>{body}</tbody></table>"
        )
    if _profiles(row):
        side, profile = _profiles(row)[0]
        body = "".join(
            f"<tr><td>{html.escape(n.name)}</td><td>{html.escape(n.op_type)}</td><td>{html.escape(n.provider)}</td>"
            f"<td>{n.ms:.4g}</td></tr>"
            for n in profile.nodes[:NODES_SHOWN]
        )
        tables.append(
            f"<table class='ops'><caption>{html.escape(side)}: slowest nodes</caption><thead><tr><th>Node</th>"
            f"<th>Op</th><th>Provider</th><th>ms / inference</th></tr></thead><tbody>{body}</tbody></table>"
        )
    return tables


NODES_SHOWN = 20


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
    "table.ops{display:inline-table;margin:.5em 1em .5em 0;vertical-align:top}caption{text-align:left;font-size:.85em}"
)
