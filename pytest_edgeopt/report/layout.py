"""Fitting the comparison table into the terminal: which columns a narrow terminal keeps.

The full table has 19-21 columns and was 367 characters wide on the suites: in a normal terminal
it wrapped into noise. The fitted table keeps what decides the verdict and what names the case,
puts a column that has one value on every row into a line above the table, and drops the rest in
a fixed order, saying which; `-v` (or `--edge-table-columns=all`) and the report files keep every
column in the table's own order. Pure functions of cells: the plugin decides the width.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Set, Tuple

from pytest_edgeopt.measure.registry import TITLES

Cells = Tuple[str, ...]
Render = Callable[[Sequence[str], Sequence[Cells]], List[str]]

# Columns are named by id (measure/registry.py); titles are the render's business.
# never dropped: what names the case, what it was judged, and the numbers of its notes
ALWAYS = ("model", "bitwidth", "verdict", "notes")
# the fitted table's column order, most important first; columns are dropped from the end
FIT_ORDER = (
    "model",
    "bitwidth",
    "runtime",
    "verdict",
    "delta",
    "latency",
    "top1",
    "agreement",
    "baseline",
    "arena",
    "flash",
    "size",
    "storage",
    "throughput",
    "energy_mj",
    "energy_w",
    "peak_rss",
    "params",
    "compute",
    "platform",
    "notes",
)
# a column that moves into the line above the table when every row has the same value in it
SHAREABLE = ("runtime", "platform", "compute", "energy_w", "energy_mj", "peak_rss")


@dataclass(frozen=True)
class Fitted:
    """The columns a width keeps, the values every row shares, and what was left out."""

    headers: Tuple[str, ...]  # column ids
    body: List[Cells]
    shared: Tuple[str, ...] = ()  # "Platform: host: AMD EPYC (x86_64), 1 thr"
    hidden: Tuple[str, ...] = ()  # dropped columns whose values differ between rows


def fit(
    headers: Sequence[str], body: Sequence[Cells], *, width: int, render: Render, marked: Sequence[str] = ()
) -> Fitted:
    """The widest table that fits `width` characters. `marked` columns (a broken budget's " !")
    decide the verdict and are kept like ALWAYS; the full table comes back when it already fits."""
    full = Fitted(tuple(headers), list(body))
    if _width(render(full.headers, full.body)) <= width:
        return full
    table = _compact(_share(_without_empty(full), keep=set(ALWAYS) | set(marked)))
    keep = [h for h in FIT_ORDER if h in table.headers] + [h for h in table.headers if h not in FIT_ORDER]
    table = _select(table, keep)
    for name in reversed(keep):
        if _width(render(table.headers, table.body)) <= width:
            break
        if name not in ALWAYS and name not in marked:
            table = _drop(table, name)
    return table


def shared_line(table: Fitted) -> List[str]:
    return [f"all rows: {'; '.join(table.shared)}"] if table.shared else []


def hidden_line(table: Fitted, *, width: int) -> List[str]:
    if not table.hidden:
        return []
    hidden = ", ".join(TITLES[c] for c in table.hidden)
    return [f"not shown to fit {width} columns: {hidden} (-v or --edge-table-columns=all shows them)"]


def _share(table: Fitted, *, keep: Set[str]) -> Fitted:
    """Columns with one value on every row (the platform of a run) become one line above the table."""
    shared = list(table.shared)
    for name in SHAREABLE:
        if name in table.headers and name not in keep:
            values = {row[table.headers.index(name)] for row in table.body}
            if len(values) == 1:
                shared.append(f"{TITLES[name]}: {values.pop()}")
                table = _without(table, name)
    return Fitted(table.headers, table.body, tuple(shared), table.hidden)


def _without_empty(table: Fitted) -> Fitted:
    """A column that says `-` on every row (no energy meter, no baseline) tells nothing: it goes first."""
    empty = [h for i, h in enumerate(table.headers) if h not in ALWAYS and all(r[i] in ("", "-") for r in table.body)]
    return _select(table, [h for h in table.headers if h not in empty])


def _compact(table: Fitted) -> Fitted:
    """`+25.0% (cpu)`: the Delta keeps its signal (how the baseline was obtained is in the full
    table); `tflite (XNNPACK)`: a runtime's version moves above the table when it has only one."""
    table = _replace_cells(table, "delta", lambda cell: _DETAIL.sub(r" (\1)", cell))
    if "runtime" not in table.headers:
        return table
    at = table.headers.index("runtime")
    parsed = [_RUNTIME.match(row[at]) for row in table.body]
    versions: Dict[str, Set[str]] = {}
    for m in parsed:
        if m:
            versions.setdefault(m.group(1), set()).add(m.group(2))
    if not all(parsed) or any(len(v) > 1 for v in versions.values()):
        return table
    shared = (*table.shared, "versions: " + ", ".join(f"{name} {v.pop()}" for name, v in versions.items()))
    short = _replace_cells(table, "runtime", lambda cell: _RUNTIME.sub(r"\1\3", cell))
    return Fitted(short.headers, short.body, shared, short.hidden)


def _replace_cells(table: Fitted, name: str, change: Callable[[str], str]) -> Fitted:
    if name not in table.headers:
        return table
    at = table.headers.index(name)
    body = [row[:at] + (change(row[at]),) + row[at + 1 :] for row in table.body]
    return Fitted(table.headers, body, table.shared, table.hidden)


_DETAIL = re.compile(r" \(([^,()]*),.*\)$")  # "(cpu, vs stored samples (weaker: ...))" -> "(cpu)"
_RUNTIME = re.compile(r"^(\S+) (\S+)( \(XNNPACK\))?$")


def _drop(table: Fitted, name: str) -> Fitted:
    narrower = _without(table, name)
    return Fitted(narrower.headers, narrower.body, table.shared, (name, *table.hidden))


def _without(table: Fitted, name: str) -> Fitted:
    return _select(table, [h for h in table.headers if h != name])


def _select(table: Fitted, names: Sequence[str]) -> Fitted:
    index = [table.headers.index(n) for n in names]
    return Fitted(tuple(names), [tuple(row[i] for i in index) for row in table.body], table.shared, table.hidden)


def _width(lines: Sequence[str]) -> int:
    return max((len(line) for line in lines), default=0)
