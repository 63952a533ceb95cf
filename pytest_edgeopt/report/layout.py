"""Laying the comparison table out at a width: stacked blocks that keep every value.

The full table has 19-21 columns and was 367 characters wide on the suites; a CI log (GitHub
Actions, GitLab, Jenkins, `| tee`) is 80 columns. Dropping columns to fit left a CI log with no
numbers, so the table wraps instead, as pandas prints a wide frame: blocks stacked one under the
other, each repeating the columns that name a row (Model, Bit-width, Runtime) and carrying the
next columns that fit, the verdict's first. Nothing is dropped: a column with one value on every
row moves into the line above the table, a runtime's only version into that line too, a header or
cell too wide for any block is shortened and a legend under the table gives its full text.
Columns are named by id (measure/registry.py) and titled only where a block is rendered. Pure
functions of column ids, cells and a width: the plugin decides the width.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Mapping, Sequence, Set, Tuple

from tabulate import tabulate

from pytest_edgeopt.measure.registry import TITLES

Cells = Tuple[str, ...]
Render = Callable[[Sequence[str], Sequence[Cells], Mapping[str, str]], List[str]]
Groups = Sequence[Tuple[str, int]]  # (title, number of rows) in row order

# repeated in every block: what names the row
KEYS = ("model", "bitwidth", "runtime")
# the blocks' column order after the keys, most important first (a broken budget's column comes
# right after the Verdict); a column not named here follows in the table's own order
WRAP_ORDER = (
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
EMPTY = ("-",)
REF = "*"  # a shortened cell ends in `*3`; the legend line `*3 Delta: ...` gives it whole


@dataclass(frozen=True)
class Table:
    """Columns and cells, the values every row shares, and the legend of what was shortened."""

    headers: Tuple[str, ...]  # column ids
    body: List[Cells]
    shared: Tuple[str, ...] = ()  # "Platform: host: AMD EPYC (x86_64), 1 thr"
    empty: Tuple[str, ...] = ()  # columns that say "-" on every row
    legend: Tuple[str, ...] = ()  # "*1 Delta: +25.0% (cpu, paired A/B vs baseline, 40 pairs)"
    titles: Tuple[Tuple[str, str], ...] = ()  # id -> a shortened title, where one was needed

    def title(self, column: str) -> str:
        return dict(self.titles).get(column, TITLES.get(column, column))


def render_simple(columns: Sequence[str], body: Sequence[Cells], titles: Mapping[str, str] = TITLES) -> List[str]:
    headers = [titles.get(c, c) for c in columns]
    return str(tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)).splitlines()


def wrap_table(
    columns: Sequence[str],
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
    if _width(render(columns, body, TITLES)) <= width:
        return grouped(render(columns, body, TITLES), groups)
    table = _compact(_share(_empties(Table(tuple(columns), list(body)))))
    keys = [c for c in KEYS if c in table.headers]
    rest = _ordered([c for c in table.headers if c not in keys], first)
    table = _shorten(table, keys, width=width, render=render)
    lines = wrap_text(_above(table), width)
    for index, block in enumerate(_blocks(table, keys, rest, width=width, render=render)):
        lines += ([""] if index else []) + grouped(_rendered(table, block, render), groups)
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


def _rendered(table: Table, columns: Sequence[str], render: Render) -> List[str]:
    ids, body = _select(table, columns)
    return render(ids, body, {c: table.title(c) for c in ids})


def _above(table: Table) -> List[str]:
    lines = [f"all rows: {'; '.join(table.shared)}"] if table.shared else []
    return lines + ([f"- on every row: {', '.join(table.empty)}"] if table.empty else [])


def _ordered(columns: Sequence[str], first: Sequence[str]) -> List[str]:
    rank = {column: i for i, column in enumerate(WRAP_ORDER)}
    known = sorted((c for c in columns if c in rank), key=lambda c: rank[c])
    lead = [c for c in known[:1] if c == "verdict"] + [c for c in first if c in columns and c != "verdict"]
    return lead + [c for c in known if c not in lead] + [c for c in columns if c not in rank]


def _blocks(table: Table, keys: List[str], rest: List[str], *, width: int, render: Render) -> List[List[str]]:
    """Greedy, like pandas: a block takes the next column while the block still fits."""
    blocks: List[List[str]] = []
    current: List[str] = []
    for column in rest:
        if current and _width(_rendered(table, keys + current + [column], render)) > width:
            blocks.append(keys + current)
            current = []
        current.append(column)
    return blocks + [keys + current] if current or not blocks else blocks


# what the keys leave beside them at least: a value ("F1 0.7059 !", "+2.2% (wall)") and its title
MIN_ROOM = 20


def _shorten(table: Table, keys: List[str], *, width: int, render: Render) -> Table:
    """A title or cell wider than the room beside the keys is shortened, the legend giving it
    whole: `Compute` for "Compute (GFLOPs, GFLOP/s)", `+25.0% *1` for a Delta with its method.
    Key cells too long to leave MIN_ROOM beside them are shortened first the same way
    (`INT8 mixed, 1 layers float *1`): otherwise every value became a reference and an 80-column
    log of YOLOv8n's OpenVINO rows showed no number."""
    body = [list(row) for row in table.body]
    cells: List[str] = []
    refs: Dict[Tuple[str, str], str] = {}
    table = _shorten_keys(table, keys, body, refs, cells, width=width, render=render)
    room = width - (_width(_rendered(table, keys, render)) + 2 if keys else 0)
    titles: Dict[str, str] = {}
    renamed: List[str] = []
    for at, column in enumerate(table.headers):
        if column in keys:
            continue
        title = table.title(column)
        for row in body:
            if len(row[at]) > room:
                if (column, row[at]) not in refs:
                    refs[(column, row[at])] = f"{REF}{len(refs) + 1}"
                    cells.append(f"{refs[(column, row[at])]} {title}: {row[at]}")
                row[at] = _reference(row[at], refs[(column, row[at])], room)
    cut = replace(table, body=[tuple(row) for row in body])
    for column in (c for c in table.headers if c not in keys):
        # rendered beside the keys, not counted: the renderer pads a numeric column's title
        title = table.title(column)
        short = title.split(" (")[0]
        wide = len(title) > room or _width(_rendered(cut, keys + [column], render)) > width
        if wide and short != title and short not in titles.values():
            titles[column] = short
            renamed.append(f"{short} = {title}")
    legend = [f"short headers: {'; '.join(renamed)}"] if renamed else []
    return replace(table, body=[tuple(row) for row in body], legend=(*legend, *cells), titles=tuple(titles.items()))


def _shorten_keys(
    table: Table,
    keys: List[str],
    body: List[List[str]],
    refs: Dict[Tuple[str, str], str],
    cells: List[str],
    *,
    width: int,
    render: Render,
) -> Table:
    """The widest key column's longest cells cut (in `body`, with `refs` and `cells` for the
    legend) until the keys leave MIN_ROOM; the table with those cells."""
    over = _width(_rendered(table, keys, render)) + 2 + MIN_ROOM - width
    for column in sorted(keys, key=lambda c: -max((len(r[table.headers.index(c)]) for r in body), default=0)):
        if over <= 0:
            break
        at = table.headers.index(column)
        limit = max(max(len(row[at]) for row in body) - over, len(table.title(column)))
        for row in body:
            if len(row[at]) > limit:
                key = (column, row[at])
                if key not in refs:
                    refs[key] = f"{REF}{len(refs) + 1}"
                    cells.append(f"{refs[key]} {table.title(column)}: {row[at]}")
                row[at] = _reference(row[at], refs[key], limit)
        table = replace(table, body=[tuple(row) for row in body])
        over = _width(_rendered(table, keys, render)) + 2 + MIN_ROOM - width
    return table


def _reference(cell: str, ref: str, room: int) -> str:
    """`+25.0% *1`: the cell's head before its parenthesis stays when it fits with the reference."""
    head = cell.split(" (")[0]
    return f"{head} {ref}" if head != cell and len(head) + len(ref) + 1 <= room else ref


def _share(table: Table) -> Table:
    """Columns with one value on every row (the platform of a run) become one line above the table."""
    shared = list(table.shared)
    for column in SHAREABLE:
        if column in table.headers:
            values = {row[table.headers.index(column)] for row in table.body}
            if len(values) == 1:
                shared.append(f"{table.title(column)}: {values.pop()}")
                table = _without(table, column)
    return replace(table, shared=tuple(shared))


def _empties(table: Table) -> Table:
    """A column that says `-` on every row (no energy meter, no baseline) is named in one line."""
    columns = enumerate(table.headers)
    empty = [c for i, c in columns if c not in KEYS and table.body and all(r[i] in EMPTY for r in table.body)]
    kept = [c for c in table.headers if c not in empty]
    headers, body = _select(table, kept)
    return replace(table, headers=headers, body=body, empty=tuple(table.title(c) for c in empty))


def _compact(table: Table) -> Table:
    """`tflite (XNNPACK)`: a runtime's version moves above the table when it has only one."""
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
    body = [row[:at] + (_RUNTIME.sub(r"\1\3", row[at]),) + row[at + 1 :] for row in table.body]
    return replace(table, body=body, shared=shared)


_RUNTIME = re.compile(r"^(\S+) (\S+)( \(XNNPACK\))?$")


def _without(table: Table, column: str) -> Table:
    headers, body = _select(table, [c for c in table.headers if c != column])
    return replace(table, headers=headers, body=body)


def _select(table: Table, columns: Sequence[str]) -> Tuple[Tuple[str, ...], List[Cells]]:
    index = [table.headers.index(c) for c in columns]
    return tuple(columns), [tuple(row[i] for i in index) for row in table.body]


def _width(lines: Sequence[str]) -> int:
    return max((len(line) for line in lines), default=0)
