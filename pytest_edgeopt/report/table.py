"""The comparison table: rows in, lines out (the plugin writes them).

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
from pytest_edgeopt.measure.registry import COLUMNS, JUDGED_COLUMNS, MCU_COLUMNS, METRICS, TITLES
from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.optimize.precisions import PRECISIONS
from pytest_edgeopt.report.layout import grouped, render_simple, wrap_table, wrap_text

COLUMN_IDS: Tuple[str, ...] = tuple(c.id for c in COLUMNS if c.id not in MCU_COLUMNS)
HEADERS: Tuple[str, ...] = tuple(TITLES[c] for c in COLUMN_IDS)  # the table's columns, by title
JUDGED = tuple(TITLES[c] for c in JUDGED_COLUMNS)  # a run's columns, not the stored ones
FAIL_MARK = " !"
MCU_HEADERS = tuple(TITLES[c] for c in MCU_COLUMNS)  # only when a row has them: microcontroller rows
ESTIMATE_MARK = " est."
# which column (by id) a broken budget marks: the one that shows the metric it limits
_BUDGET_COLUMN: Dict[str, str] = {b.name: spec.column for spec in METRICS for b in spec.budgets if spec.column}
_PRECISION_ORDER = {name: index for index, name in enumerate(PRECISIONS)}


def table_lines(rows: Sequence[Row], *, width: Optional[int] = None, by_platform: bool = False) -> List[str]:
    """The table plus numbered notes; empty when nothing was measured. With a `width` (the
    terminal's, 80 in a CI log) the columns wrap into stacked blocks that fit it and keep every
    value (report/layout.py); without, one block of every column."""
    columns, body, notes = column_cells(rows, by_platform=by_platform)
    if not body:
        return []
    groups = platform_groups(rows) if by_platform else []
    numbered = [f"[{number}] {note}" for note, number in notes.items()]
    if width is None:
        return grouped(render_simple(columns, body), groups) + numbered
    table = wrap_table(columns, body, width=width, first=_marked(columns, body), groups=groups)
    return table + wrap_text(numbered, width)


def table_cells(
    rows: Sequence[Row], *, by_platform: bool = False
) -> Tuple[Tuple[str, ...], List[Tuple[str, ...]], Dict[str, int]]:
    """Headers (the columns' titles), one tuple of cells per measured case (grouped by model, or by
    platform and then model for the table of stored baselines) and the numbered notes."""
    columns, body, notes = column_cells(rows, by_platform=by_platform)
    return tuple(TITLES[c] for c in columns), body, notes


def column_cells(
    rows: Sequence[Row], *, by_platform: bool = False
) -> Tuple[Tuple[str, ...], List[Tuple[str, ...]], Dict[str, int]]:
    """As table_cells, with the columns named by id (measure/registry.py), as code refers to them."""
    ordered = ordered_rows(rows, by_platform=by_platform)
    notes = _note_numbers(ordered)
    columns = columns_for(ordered)
    if by_platform:  # stored entries were not judged: the measured columns only
        columns = tuple(c for c in columns if c not in JUDGED_COLUMNS)
    body = [_cells(row, notes, columns, show_model=_first_of_model(ordered, i)) for i, row in enumerate(ordered)]
    return columns, body, notes


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


def _marked(columns: Sequence[str], body: Sequence[Tuple[str, ...]]) -> List[str]:
    """Columns with a broken budget's mark in some row: they decide the verdict, so they stay."""
    return [c for i, c in enumerate(columns) if any(row[i].endswith(FAIL_MARK) for row in body)]


def columns_for(rows: Sequence[Row]) -> Tuple[str, ...]:
    """The table's columns by id, with Arena and Flash (after Peak RSS) when a microcontroller row is there."""
    mcu = any(r.measurement.arena_kb is not None or r.measurement.flash_kb is not None for r in rows)
    return tuple(c.id for c in COLUMNS if mcu or c.id not in MCU_COLUMNS)


def bitwidth_label(row: Measurement) -> str:
    """`INT8/INT8 (U8S8)`: the exact types matter, S8S8 ran 1.65x slower than U8S8 on AVX2; what
    was really quantized joins them when it is not all (`INT8/INT8 (U8S8, 62% of MACs)`), and a
    batch other than 1 is said (`, batch 4`)."""
    details = [d for d in (_types(row), _partly(row)) if d]
    label = f"{row.bitwidth} ({', '.join(details)})" if details else row.bitwidth
    return f"{label}, batch {row.batch}" if row.batch != 1 else label


def _types(row: Measurement) -> str:
    activation = str(row.quantization.get("activation_type", ""))
    if str(row.quantization.get("format", "")).startswith(("QDQ", "IR")):  # NNCF: "uint8+int8" -> U8+S8
        kinds = "+".join("U8" if part == "uint8" else "S8" for part in activation.split("+"))
        return f"{kinds}S8" if "+" not in kinds else f"{kinds} act, S8 w"
    return "dynamic" if row.precision == "int8-dynamic" else ""


def _partly(row: Measurement) -> str:
    """`97% of MACs`, or `62% of weights` where no compute was counted or the precision computes in
    float by design: shown when less than all of it is at the precision."""
    share = row.quantized
    if share is None:
        return ""
    if share.mac_share is not None:  # the compute decides; a bias kept float32 is no news
        return f"{share.mac_share:.0%} of MACs" if share.mac_share < ALL_QUANTIZED else ""
    if share.weight_share is not None and share.weight_share < MOST_WEIGHTS:
        return f"{share.weight_share:.0%} of weights"
    return ""


ALL_QUANTIZED = 0.995  # a compute share that rounds to 100%
# weights: biases and norm scales stay float32 in a TFLite FP16 file by design (5% of digits-cnn's bytes)
MOST_WEIGHTS = 0.9


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


def _cells(row: Row, notes: Dict[str, int], columns: Sequence[str], *, show_model: bool) -> Tuple[str, ...]:
    m, judgement = row.measurement, row.judgement
    cells = {
        "model": _model(m) if show_model else "",
        "bitwidth": bitwidth_label(m),
        "runtime": _runtime(m),
        "size": f"{m.size_mb:.3f}",
        "params": _millions(m.params),
        "top1": _top1(m),
        "agreement": _agreement(m),
        "storage": f"{m.storage_mb:.3f}",
        "latency": _est(m, "latency_ms", _ms(m.latency.median_ms)),
        "throughput": _est(m, "throughput", _throughput(m.throughput)),
        "peak_rss": f"{m.peak_rss_mb:.0f}" if m.peak_rss_mb else "-",
        "arena": _kb(m, "arena_kb"),
        "flash": _kb(m, "flash_kb"),
        "energy_w": _energy(m.energy_w, m.energy_source),
        "energy_mj": _energy(m.energy_mj, m.energy_source),
        "compute": _compute(m),
        "platform": f"{m.platform}: {m.device}, {m.threads} thr",
        "baseline": _est(m, "latency_ms", _ms(judgement.baseline_latency_ms)) if judgement.baseline_latency_ms else "-",
        "delta": _delta(row),
        "verdict": _verdict(row),
        "notes": _note_refs(row, notes),
    }
    for column in _failing_columns(row):
        cells[column] += FAIL_MARK
    return tuple(cells[c] for c in columns)


def _model(m: Measurement) -> str:
    """`onet -> prob`: the output a test scored, when it chose one, makes a case of its own."""
    return f"{m.model} -> {m.scored_output}" if m.scored_output else m.model


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
    """GFLOPs that could not be counted (a shape known only at run time) are n/a, never a guess;
    a stored baseline keeps no compute unit, so its cell names none."""
    unit = f" ({m.compute_unit})" if m.compute_unit else ""
    if m.gflops is None or m.gflops_per_s is None:
        return f"n/a{unit}"
    return f"{m.gflops:.3g}, {_est(m, 'gflops_per_s', f'{m.gflops_per_s:.3g}')}{unit}"


def _millions(count: int) -> str:
    """`0.038`; a microcontroller model's 321 parameters as `0.00032`, never `0.000`."""
    value = count / 1e6
    return f"{value:.3f}" if value >= 0.001 or value == 0 else f"{value:.2g}"


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
        return _worst_fidelity(m)
    within_step = " (+-1 step)" if m.agreement_rule != "top-1" else ""
    return f"{m.agreement * 100:.1f}{within_step}"


def _worst_fidelity(m: Measurement) -> str:
    """`SQNR 3.4 dB (world_landmarks)`: the worst output's, named when the model has several."""
    if not m.fidelity:
        return "n/a"
    name, worst = min(m.fidelity.items(), key=lambda item: item[1].sqnr_db)
    figure = "SQNR inf" if worst.sqnr_db == float("inf") else f"SQNR {worst.sqnr_db:.1f} dB"
    return f"{figure} ({name})" if len(m.fidelity) > 1 and worst.sqnr_db != float("inf") else figure


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
    return (m.model, m.scored_output or "", m.platform, m.runtime, m.batch, _PRECISION_ORDER.get(m.precision, 99))


def _unique(rows: List[Row]) -> List[Row]:
    """One row per measured case: a case measured by two tests shows once, with the worst verdict
    and the broken budgets of both (each test may gate a different column)."""
    unique: Dict[Tuple[Any, ...], Row] = {}
    for row in rows:
        m = row.measurement
        key = (m.model, m.precision, m.runtime, m.platform, m.batch, m.artifact_sha, m.scored_output)
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
    if before is None or this is None:
        return True
    return (before.model, before.platform, before.scored_output) != (this.model, this.platform, this.scored_output)
