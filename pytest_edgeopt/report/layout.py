"""Laying the comparison table out at a width: stacked blocks that keep every value.

The full table has 19-21 columns and was 367 characters wide on the suites; a CI log (GitHub
Actions, GitLab, Jenkins, `| tee`) is 80 columns. Dropping columns to fit left a CI log with no
numbers, so the table wraps instead, as pandas prints a wide frame: blocks stacked one under the
other, each repeating the columns that name a row (Model, Bit-width, Runtime) and carrying the
next columns that fit, the verdict's first. Nothing is dropped: a column with one value on every
row moves into the line above the table, a runtime's only version into that line too, a header or
cell too wide for any block is shortened and a legend under the table gives its full text.
Pure functions of headers, cells and a width: the plugin decides the width.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Set, Tuple

from tabulate import tabulate

Cells = Tuple[str, ...]
Render = Callable[[Sequence[str], Sequence[Cells]], List[str]]
Groups = Sequence[Tuple[str, int]]  # (title, number of rows) in row order

# repeated in every block: what names the row
KEYS = ("Model", "Bit-width (W/A)", "Runtime")
# the blocks' column order after the keys, most important first (a broken budget's column comes
# right after the Verdict); a column not named here follows in the table's own order
WRAP_ORDER = (
    "Verdict",
    "Delta",
    "Latency (ms, p50)",
    "Top-1 (%)",
    "Agreement (%)",
    "Baseline (ms)",
    "Arena (KB)",
    "Flash (KB)",
    "Size (MB)",
    "Storage (MB)",
    "Throughput (inf/s)",
    "Energy (mJ/inf)",
    "Energy (W)",
    "Peak RSS (MB)",
    "Params (M)",
    "Compute (GFLOPs, GFLOP/s)",
    "Platform",
    "Notes",
)
# a column that moves into the line above the table when every row has the same value in it
SHAREABLE = ("Runtime", "Platform", "Compute (GFLOPs, GFLOP/s)", "Energy (W)", "Energy (mJ/inf)", "Peak RSS (MB)")
EMPTY = ("-",)
REF = "*"  # a shortened cell ends in `*3`; the legend line `*3 Delta: ...` gives it whole


@dataclass(frozen=True)
class Table:
    """Columns and cells, the values every row shares, and the legend of what was shortened."""

    headers: Tuple[str, ...]
    body: List[Cells]
    shared: Tuple[str, ...] = ()  # "Platform: host: AMD EPYC (x86_64), 1 thr"
    empty: Tuple[str, ...] = ()  # columns that say "-" on every row
    legend: Tuple[str, ...] = ()  # "*1 Delta: +25.0% (cpu, paired A/B vs baseline, 40 pairs)"


def render_simple(headers: Sequence[str], body: Sequence[Cells]) -> List[str]:
    return str(tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)).splitlines()


def wrap_table(
    headers: Sequence[str],
    body: Sequence[Cells],
    *,
    width: int,
    first: Sequence[str] = (),
    groups: Groups = (),
    render: Render = render_simple,
) -> List[str]:
    """The table in lines of at most `width` characters (when its key columns and the longest
    title fit), every value of every row kept. `first`: columns placed right after the Verdict (a
    broken budget's). `groups`: a title line before each run of rows (the platforms of the
    stored-baselines table), in every block. The full table comes back when it already fits."""
    if _width(render(headers, body)) <= width:
        return grouped(render(headers, body), groups)
    table = _compact(_share(_empties(Table(tuple(headers), list(body)))))
    keys = [h for h in KEYS if h in table.headers]
    rest = _ordered([h for h in table.headers if h not in keys], first)
    table = _shorten(table, keys, width=width, render=render)
    lines = wrap_text(_above(table), width)
    for index, block in enumerate(_blocks(table, keys, rest, width=width, render=render)):
        lines += ([""] if index else []) + grouped(render(*_select(table, block)), groups)
    return lines + wrap_text(table.legend, width)


def grouped(lines: List[str], groups: Groups) -> List[str]:
    """A title line before each group's rows (lines are header, rule, one line per row)."""
    if not groups:
        return lines
    out, at = lines[:2], 2
    for title, count in groups:
        out += [f"-- {title} --"] + lines[at : at + count]
        at += count
    return out


def wrap_text(lines: Sequence[str], width: int) -> List[str]:
    """Lines around the table wrap at the width too, continued under an indent."""
    wrap = textwrap.TextWrapper(width=max(width, 40), subsequent_indent="    ", break_on_hyphens=False)
    return [part for line in lines for part in (wrap.wrap(line) or [line])]


def _above(table: Table) -> List[str]:
    lines = [f"all rows: {'; '.join(table.shared)}"] if table.shared else []
    return lines + ([f"- on every row: {', '.join(table.empty)}"] if table.empty else [])


def _ordered(names: Sequence[str], first: Sequence[str]) -> List[str]:
    rank = {name: i for i, name in enumerate(WRAP_ORDER)}
    known = sorted((n for n in names if n in rank), key=lambda n: rank[n])
    lead = [n for n in known[:1] if n == "Verdict"] + [n for n in first if n in names and n != "Verdict"]
    return lead + [n for n in known if n not in lead] + [n for n in names if n not in rank]


def _blocks(table: Table, keys: List[str], rest: List[str], *, width: int, render: Render) -> List[List[str]]:
    """Greedy, like pandas: a block takes the next column while the block still fits."""
    blocks: List[List[str]] = []
    current: List[str] = []
    for name in rest:
        if current and _width(render(*_select(table, keys + current + [name]))) > width:
            blocks.append(keys + current)
            current = []
        current.append(name)
    return blocks + [keys + current] if current or not blocks else blocks


def _shorten(table: Table, keys: List[str], *, width: int, render: Render) -> Table:
    """A header or cell wider than the room beside the keys is shortened, the legend giving it
    whole: `Compute` for "Compute (GFLOPs, GFLOP/s)", `+25.0% *1` for a Delta with its method."""
    room = width - (_width(render(*_select(table, keys))) + 2 if keys else 0)
    headers = list(table.headers)
    body = [list(row) for row in table.body]
    renamed: List[str] = []
    cells: List[str] = []
    refs: Dict[Tuple[str, str], str] = {}
    for at, name in enumerate(table.headers):
        if name in keys:
            continue
        for row in body:
            if len(row[at]) > room:
                if (name, row[at]) not in refs:
                    refs[(name, row[at])] = f"{REF}{len(refs) + 1}"
                    cells.append(f"{refs[(name, row[at])]} {name}: {row[at]}")
                row[at] = _reference(row[at], refs[(name, row[at])], room)
        short = name.split(" (")[0] if len(name) > room else name
        if short != name and short not in headers:
            headers[at] = short
            renamed.append(f"{short} = {name}")
    legend = [f"short headers: {'; '.join(renamed)}"] if renamed else []
    return Table(tuple(headers), [tuple(row) for row in body], table.shared, table.empty, (*legend, *cells))


def _reference(cell: str, ref: str, room: int) -> str:
    """`+25.0% *1`: the cell's head before its parenthesis stays when it fits with the reference."""
    head = cell.split(" (")[0]
    return f"{head} {ref}" if head != cell and len(head) + len(ref) + 1 <= room else ref


def _share(table: Table) -> Table:
    """Columns with one value on every row (the platform of a run) become one line above the table."""
    shared = list(table.shared)
    for name in SHAREABLE:
        if name in table.headers:
            values = {row[table.headers.index(name)] for row in table.body}
            if len(values) == 1:
                shared.append(f"{name}: {values.pop()}")
                table = _without(table, name)
    return Table(table.headers, table.body, tuple(shared), table.empty, table.legend)


def _empties(table: Table) -> Table:
    """A column that says `-` on every row (no energy meter, no baseline) is named in one line."""
    columns = enumerate(table.headers)
    empty = [h for i, h in columns if h not in KEYS and table.body and all(r[i] in EMPTY for r in table.body)]
    kept = [h for h in table.headers if h not in empty]
    return Table(*_select(table, kept), table.shared, tuple(empty), table.legend)


def _compact(table: Table) -> Table:
    """`tflite (XNNPACK)`: a runtime's version moves above the table when it has only one."""
    if "Runtime" not in table.headers:
        return table
    at = table.headers.index("Runtime")
    parsed = [_RUNTIME.match(row[at]) for row in table.body]
    versions: Dict[str, Set[str]] = {}
    for m in parsed:
        if m:
            versions.setdefault(m.group(1), set()).add(m.group(2))
    if not all(parsed) or any(len(v) > 1 for v in versions.values()):
        return table
    shared = (*table.shared, "versions: " + ", ".join(f"{name} {v.pop()}" for name, v in versions.items()))
    body = [row[:at] + (_RUNTIME.sub(r"\1\3", row[at]),) + row[at + 1 :] for row in table.body]
    return Table(table.headers, body, shared, table.empty, table.legend)


_RUNTIME = re.compile(r"^(\S+) (\S+)( \(XNNPACK\))?$")


def _without(table: Table, name: str) -> Table:
    headers, body = _select(table, [h for h in table.headers if h != name])
    return Table(headers, body, table.shared, table.empty, table.legend)


def _select(table: Table, names: Sequence[str]) -> Tuple[Tuple[str, ...], List[Cells]]:
    index = [table.headers.index(n) for n in names]
    return tuple(names), [tuple(row[i] for i in index) for row in table.body]


def _width(lines: Sequence[str]) -> int:
    return max((len(line) for line in lines), default=0)
