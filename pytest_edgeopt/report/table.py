"""The seed document's comparison table: rows in, lines out (the plugin writes them).

A pure function, like syrupy's report lines(): pytest-benchmark writing straight to the terminal
reporter forced shims in its CLI, and the same cells also feed the markdown and HTML reports.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from tabulate import tabulate

from pytest_edgeopt.baselines.entry import BaselineEntry
from pytest_edgeopt.baselines.store import Update
from pytest_edgeopt.judge.types import Row
from pytest_edgeopt.kinds import Note, NoteKind
from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.optimize.precisions import PRECISIONS
from pytest_edgeopt.report.layout import grouped, render_simple, wrap_table, wrap_text

HEADERS = (
    "Model",
    "Bit-width (W/A)",
    "Runtime",
    "Size (MB)",
    "Params (M)",
    "Top-1 (%)",
    "Agreement (%)",
    "Storage (MB)",
    "Latency (ms, p50)",
    "Throughput (inf/s)",
    "Peak RSS (MB)",
    "Energy (W)",
    "Energy (mJ/inf)",
    "Compute (GFLOPs, GFLOP/s)",
    "Platform",
    "Baseline (ms)",
    "Delta",
    "Verdict",
    "Notes",
)
JUDGED = ("Baseline (ms)", "Delta", "Verdict")  # a run's columns, not the seed's
FAIL_MARK = " !"
MCU_HEADERS = ("Arena (KB)", "Flash (KB)")  # only when a row has them: microcontroller rows
ESTIMATE_MARK = " est."
# which column a broken budget marks
_BUDGET_COLUMN = {
    "max_accuracy_drop": "Top-1 (%)",
    "min_top1": "Top-1 (%)",
    "max_top1_regression": "Top-1 (%)",
    "min_agreement": "Agreement (%)",
    "min_top5_agreement": "Agreement (%)",
    "max_agreement_regression": "Agreement (%)",
    "max_size_mb": "Size (MB)",
    "max_size_regression": "Size (MB)",
    "max_storage_mb": "Storage (MB)",
    "max_storage_regression": "Storage (MB)",
    "max_params": "Params (M)",
    "max_peak_rss_mb": "Peak RSS (MB)",
    "max_peak_rss_regression": "Peak RSS (MB)",
    "max_latency_ms": "Latency (ms, p50)",
    "max_latency_regression": "Latency (ms, p50)",
    "max_latency_ratio_vs": "Latency (ms, p50)",
    "min_throughput": "Throughput (inf/s)",
    "max_energy_w": "Energy (W)",
    "max_energy_mj": "Energy (mJ/inf)",
    "max_arena_kb": "Arena (KB)",
    "sram_fit": "Arena (KB)",
    "max_flash_kb": "Flash (KB)",
    "flash_fit": "Flash (KB)",
}
_PRECISION_ORDER = {name: index for index, name in enumerate(PRECISIONS)}


def table_lines(rows: Sequence[Row], *, width: Optional[int] = None, by_platform: bool = False) -> List[str]:
    """The table plus numbered notes; empty when nothing was measured. With a `width` (the
    terminal's, 80 in a CI log) the columns wrap into stacked blocks that fit it and keep every
    value (report/layout.py); without, one block of every column."""
    headers, body, notes = table_cells(rows, by_platform=by_platform)
    if not body:
        return []
    groups = platform_groups(rows) if by_platform else []
    numbered = [f"[{number}] {note}" for note, number in notes.items()]
    if width is None:
        return grouped(render_simple(headers, body), groups) + numbered
    table = wrap_table(headers, body, width=width, first=_marked(headers, body), groups=groups)
    return table + wrap_text(numbered, width)


def table_cells(
    rows: Sequence[Row], *, by_platform: bool = False
) -> Tuple[Tuple[str, ...], List[Tuple[str, ...]], Dict[str, int]]:
    """Headers, one tuple of cells per measured case (grouped by model, or by platform and then
    model for the table of stored baselines) and the numbered notes."""
    ordered = ordered_rows(rows, by_platform=by_platform)
    notes = _note_numbers(ordered)
    headers = headers_for(ordered)
    if by_platform:  # stored entries were not judged: the seed's columns only
        headers = tuple(h for h in headers if h not in JUDGED)
    body = [_cells(row, notes, headers, show_model=_first_of_model(ordered, i)) for i, row in enumerate(ordered)]
    return headers, body, notes


def ordered_rows(rows: Sequence[Row], *, by_platform: bool = False) -> List[Row]:
    """One row per case, in the table's order: by model, or by platform and then model."""
    key = (lambda r: (r.measurement.platform, *_order(r.measurement))) if by_platform else None
    return _unique(sorted(rows, key=key or (lambda r: _order(r.measurement))))


def platform_groups(rows: Sequence[Row]) -> List[Tuple[str, int]]:
    """(title, number of table rows) in table order: the row groups of the stored-baselines table,
    each titled by its platform and the device its first row was measured on."""
    ordered = ordered_rows(rows, by_platform=True)
    counts = Counter(r.measurement.platform for r in ordered)
    titles = {r.measurement.platform: f"{r.measurement.platform}: {r.measurement.device}" for r in reversed(ordered)}
    return [(titles[platform], count) for platform, count in counts.items()]


def _marked(headers: Sequence[str], body: Sequence[Tuple[str, ...]]) -> List[str]:
    """Columns with a broken budget's mark in some row: they decide the verdict, so they stay."""
    return [h for i, h in enumerate(headers) if any(row[i].endswith(FAIL_MARK) for row in body)]


def headers_for(rows: Sequence[Row]) -> Tuple[str, ...]:
    """The seed's columns, with Arena and Flash after Peak RSS when a microcontroller row is there."""
    if not any(r.measurement.arena_kb is not None or r.measurement.flash_kb is not None for r in rows):
        return HEADERS
    at = HEADERS.index("Peak RSS (MB)") + 1
    return HEADERS[:at] + MCU_HEADERS + HEADERS[at:]


def bitwidth_label(row: Measurement) -> str:
    """`INT8/INT8 (U8S8)`: the exact types matter, S8S8 ran 1.65x slower than U8S8 on AVX2."""
    activation = str(row.quantization.get("activation_type", ""))
    if row.quantization.get("format") == "QDQ":  # NNCF mixes: "uint8+int8" -> U8+S8 activations
        kinds = "+".join("U8" if part == "uint8" else "S8" for part in activation.split("+"))
        return f"{row.bitwidth} ({kinds}S8)" if "+" not in kinds else f"{row.bitwidth} ({kinds} act, S8 w)"
    if row.precision == "int8-dynamic":
        return f"{row.bitwidth} (dynamic)"
    return row.bitwidth


def device_lines(rows: Sequence[Row]) -> List[str]:
    """Where each row was measured (a fleet spreads them over devices) and what did not match."""
    counts = Counter((r.measurement.platform, r.measurement.device) for r in rows)
    lines = [
        f"{platform}: {device}: {n} row{'s' if n != 1 else ''}" for (platform, device), n in sorted(counts.items())
    ]
    problems = sorted(
        {
            f"{r.measurement.device}: {note.text}"
            for r in rows
            for note in r.measurement.notes
            if note.kind == NoteKind.FINGERPRINT
        }
    )
    return lines + [f"WARNING {text}" for text in problems]


def unchecked_lines(rows: Sequence[Row]) -> List[str]:
    """After the table: how many budgets were not checked and why, so a green run that compared
    nothing says so ("2 latency budgets not checked: baselines from another CPU")."""
    reasons: Counter[str] = Counter()
    for row in _unique(sorted(rows, key=lambda r: _order(r.measurement))):
        for text in row.judgement.unchecked:
            budget, _, why = text.partition(": not compared: ")
            reasons[f"{_budget_kind(budget)}|{why}"] += 1
    lines = []
    for key, count in sorted(reasons.items()):
        kind, why = key.split("|", 1)
        lines.append(f"{count} {kind} budget{'s' if count != 1 else ''} not checked: {why}")
    return lines


def _budget_kind(budget: str) -> str:
    return "latency" if "latency" in budget else "memory" if "rss" in budget else budget


def baseline_lines(updates: Sequence[Update], stale: Mapping[str, Set[str]], *, updating: Optional[str]) -> List[str]:
    """The old -> new table of an update, and the stale entries a plain run found."""
    lines: List[str] = []
    body = [change for update in updates for change in _update_rows(update)]
    if body:
        lines += tabulate(
            body,
            headers=("File", "Entry", "Change", "Latency (ms)", "Size (MB)", "Top-1 (%)"),
            tablefmt="simple",
            disable_numparse=True,
        ).splitlines()
    if stale and not updating:
        count = sum(len(keys) for keys in stale.values())
        lines.append(
            f"{count} stale baseline entr{'y' if count == 1 else 'ies'} (their tests are gone or no "
            "longer measure them); --update-baselines removes them:"
        )
        lines += [f"  {module}: {key}" for module, keys in stale.items() for key in sorted(keys)]
    return lines


def _update_rows(update: Update) -> List[Tuple[str, ...]]:
    name = str(update.path)
    rows: List[Tuple[str, ...]] = [(name, key, "added", "", "", "") for key in update.added]
    rows += [
        (
            name,
            key,
            "changed",
            _est_arrow(new, _arrow(old, new, "latency_ms")),
            _arrow(old, new, "size_mb"),
            _arrow(old, new, "top1", scale=100),
        )
        for key, old, new in update.changed
    ]
    return rows + [(name, key, "removed", "", "", "") for key in update.removed]


def _est_arrow(new: BaselineEntry, text: str) -> str:
    return text + ESTIMATE_MARK if "latency_ms" in new.metrics.estimates else text


def _arrow(old: BaselineEntry, new: BaselineEntry, metric: str, *, scale: float = 1.0) -> str:
    before, after = old.metrics.value(metric), new.metrics.value(metric)
    if before is None or after is None:
        return f"{before} -> {after}"
    return f"{before * scale:.4g} -> {after * scale:.4g}"


def _cells(row: Row, notes: Dict[str, int], headers: Sequence[str], *, show_model: bool) -> Tuple[str, ...]:
    m, judgement = row.measurement, row.judgement
    cells = {
        "Model": m.model if show_model else "",
        "Bit-width (W/A)": bitwidth_label(m),
        "Runtime": _runtime(m),
        "Size (MB)": f"{m.size_mb:.3f}",
        "Params (M)": f"{m.params / 1e6:.3f}",
        "Top-1 (%)": _top1(m),
        "Agreement (%)": _agreement(m),
        "Storage (MB)": f"{m.storage_mb:.3f}",
        "Latency (ms, p50)": _est(m, "latency_ms", _ms(m.latency.median_ms)),
        "Throughput (inf/s)": _est(m, "throughput", _throughput(m.throughput)),
        "Peak RSS (MB)": f"{m.peak_rss_mb:.0f}" if m.peak_rss_mb else "-",
        "Arena (KB)": _kb(m, "arena_kb"),
        "Flash (KB)": _kb(m, "flash_kb"),
        "Energy (W)": _energy(m.energy_w, m.energy_source),
        "Energy (mJ/inf)": _energy(m.energy_mj, m.energy_source),
        "Compute (GFLOPs, GFLOP/s)": _compute(m),
        "Platform": f"{m.platform}: {m.device}, {m.threads} thr",
        "Baseline (ms)": _est(m, "latency_ms", _ms(judgement.baseline_latency_ms))
        if judgement.baseline_latency_ms
        else "-",
        "Delta": _delta(row),
        "Verdict": _verdict(row),
        "Notes": _note_refs(row, notes),
    }
    for column in _failing_columns(row):
        cells[column] += FAIL_MARK
    return tuple(cells[h] for h in headers)


def _est(m: Measurement, name: str, text: str) -> str:
    """`167.4 est.`: a figure computed from the graph and the profile is never shown as measured."""
    return text + ESTIMATE_MARK if name in m.estimates else text


def _kb(m: Measurement, name: str) -> str:
    value = getattr(m, name)
    return "-" if value is None else _est(m, name, f"{value:,.1f}")


def _failing_columns(row: Row) -> Set[str]:
    names = {violation.split(":", 1)[0] for violation in row.judgement.violations}
    return {_BUDGET_COLUMN[n] for n in names if n in _BUDGET_COLUMN}


def _verdict(row: Row) -> str:
    """`pass, 1 not compared`: a budget that could not be checked is never shown as a pass."""
    unchecked = len(row.judgement.unchecked)
    return f"{row.judgement.verdict.value}, {unchecked} not compared" if unchecked else row.judgement.verdict.value


def _delta(row: Row) -> str:
    latency, base = row.judgement.latency, row.judgement.baseline_latency_ms
    if latency is None and any(u.startswith("max_latency_regression") for u in row.judgement.unchecked):
        return "not compared"
    if latency is not None:
        return f"{(latency.ratio - 1) * 100:+.1f}% ({latency.signal})"
    if base:
        signal = "est." if "latency_ms" in row.measurement.estimates else "wall"
        return f"{(row.measurement.latency.median_ms / base - 1) * 100:+.1f}% ({signal})"
    return "-"


def _compute(m: Measurement) -> str:
    """GFLOPs that could not be counted (a shape known only at run time) are n/a, never a guess."""
    if m.gflops is None or m.gflops_per_s is None:
        return f"n/a ({m.compute_unit})"
    return f"{m.gflops:.3g}, {_est(m, 'gflops_per_s', f'{m.gflops_per_s:.3g}')} ({m.compute_unit})"


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _throughput(value: float) -> str:
    """`0.0369` for a big model on a microcontroller, where one decimal would show 0.0."""
    return f"{value:.1f}" if value >= 1 else f"{value:.3g}"


def _percent(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}"


def _top1(m: Measurement) -> str:
    """A model with a task metric shows it where a classifier shows top-1: `IoU 0.712`."""
    if m.metric is not None:
        return f"{m.metric_name} {m.metric:.4g}"
    return _percent(m.top1)


def _agreement(m: Measurement) -> str:
    """Top-1 agreement with the reference; for an output without a class axis, the worst
    output's fidelity instead (`SQNR 31.2 dB`), argmax agreement meaning nothing there."""
    if m.precision == "fp32" and m.reference_model is None:
        return "ref"
    if m.agreement is None:
        sqnr = m.min_sqnr_db
        return "n/a" if sqnr is None else ("SQNR inf" if sqnr == float("inf") else f"SQNR {sqnr:.1f} dB")
    within_step = " (+-1 step)" if m.agreement_rule != "top-1" else ""
    return f"{m.agreement * 100:.1f}{within_step}"


def _runtime(m: Measurement) -> str:
    """`tflite 2.3.0 (XNNPACK)`: whether the delegate took the graph changes latency 3-4x."""
    info = m.runtime_info
    label = f"{m.runtime} {m.runtime_version}"
    return f"{label} (XNNPACK)" if info.xnnpack and not info.reference_kernels else label


def _energy(value: Optional[float], source: Optional[str]) -> str:
    """`1.84 (rapl)`, `0.42 (estimate est.)`: every energy figure names where it came from."""
    if value is None:
        return "-"
    return f"{value:.3g} ({source})" if source else f"{value:.3g}"


def row_notes(row: Row) -> Tuple[Note, ...]:
    extra = (Note(NoteKind.BASELINE, row.judgement.baseline_note),) if row.judgement.baseline_note else ()
    return row.measurement.notes + extra


def _note_numbers(rows: Iterable[Row]) -> Dict[str, int]:
    """Note text -> its number under the table; the same text on several rows is one note."""
    numbers: Dict[str, int] = {}
    for row in rows:
        for note in row_notes(row):
            numbers.setdefault(note.text, len(numbers) + 1)
    return numbers


def _note_refs(row: Row, notes: Dict[str, int]) -> str:
    return ",".join(str(notes[n.text]) for n in row_notes(row))


def _order(m: Measurement) -> Tuple[object, ...]:
    return (m.model, m.platform, m.runtime, m.batch, _PRECISION_ORDER.get(m.precision, 99))


def _unique(rows: List[Row]) -> List[Row]:
    """One row per measured case: a case measured by two tests shows once, with the worst verdict
    and the broken budgets of both (each test may gate a different column)."""
    unique: Dict[Tuple[Any, ...], Row] = {}
    for row in rows:
        m = row.measurement
        key = (m.model, m.precision, m.runtime, m.platform, m.batch, m.artifact_sha)
        kept = unique.setdefault(key, row)
        if kept is not row:
            worst, other = (row, kept) if _worse(row, kept) else (kept, row)
            violations = tuple(dict.fromkeys(worst.judgement.violations + other.judgement.violations))
            latency = worst.judgement.latency or other.judgement.latency
            unique[key] = Row(
                measurement=worst.measurement,
                judgement=replace(
                    worst.judgement,
                    violations=violations,
                    latency=latency,
                    limits={**other.judgement.limits, **worst.judgement.limits},
                    diagnosis=worst.judgement.diagnosis or other.judgement.diagnosis,
                ),
            )
    return list(unique.values())


def _worse(row: Row, other: Row) -> bool:
    return row.judgement.verdict.severity > other.judgement.verdict.severity


def _first_of_model(rows: List[Row], index: int) -> bool:
    before, this = (rows[index - 1].measurement, rows[index].measurement) if index else (None, None)
    return before is None or this is None or (before.model, before.platform) != (this.model, this.platform)
