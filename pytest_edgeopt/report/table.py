"""The seed document's comparison table: rows in, lines out (the plugin writes them).

A pure function, like syrupy's report lines(): pytest-benchmark writing straight to the terminal
reporter forced shims in its CLI, and the same rows also feed markdown and JSON reports.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from tabulate import tabulate

from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.optimize.precisions import PRECISIONS

HEADERS = (
    "Model", "Bit-width (W/A)", "Runtime", "Size (MB)", "Params (M)", "Top-1 (%)", "Agreement (%)",
    "Storage (MB)", "Latency (ms, p50)", "Throughput (inf/s)", "Energy (W)",
    "Compute (GFLOPs, GFLOP/s)", "Platform", "Notes",
)
_PRECISION_ORDER = {name: index for index, name in enumerate(PRECISIONS)}


def table_lines(rows: Sequence[Measurement], *, tablefmt: str = "simple") -> List[str]:
    """The table plus numbered notes; empty when nothing was measured."""
    ordered = _unique(sorted(rows, key=_order))
    if not ordered:
        return []
    notes = _note_numbers(ordered)
    body = [_cells(row, notes, show_model=_first_of_model(ordered, i)) for i, row in enumerate(ordered)]
    lines = tabulate(body, headers=HEADERS, tablefmt=tablefmt, disable_numparse=True).splitlines()
    return lines + [f"[{number}] {note}" for note, number in notes.items()]


def bitwidth_label(row: Measurement) -> str:
    """`INT8/INT8 (U8S8)`: the exact types matter, S8S8 ran 1.65x slower than U8S8 on AVX2."""
    activation = str(row.quantization.get("activation_type", ""))
    if row.quantization.get("format") == "QDQ":
        return f"{row.bitwidth} ({'U8' if activation == 'uint8' else 'S8'}S8)"
    if row.precision == "int8-dynamic":
        return f"{row.bitwidth} (dynamic)"
    return row.bitwidth


def _cells(row: Measurement, notes: Dict[str, int], *, show_model: bool) -> Tuple[str, ...]:
    return (
        row.model if show_model else "", bitwidth_label(row), f"{row.runtime} {row.runtime_version}",
        f"{row.size_mb:.3f}", f"{row.params / 1e6:.3f}", _percent(row.top1), _agreement(row),
        f"{row.storage_mb:.3f}", _latency(row), f"{row.throughput:.1f}", _energy(row.energy_w),
        f"{row.gflops:.3g}, {row.gflops_per_s:.3g} ({row.compute_unit})",
        f"{row.platform}: {row.device}, {row.threads} thr", _note_refs(row, notes),
    )


def _latency(row: Measurement) -> str:
    return f"{row.latency.median_ms:.3f}" if row.latency.median_ms < 10 else f"{row.latency.median_ms:.1f}"


def _percent(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}"


def _agreement(row: Measurement) -> str:
    return "ref" if row.precision == "fp32" else f"{row.agreement * 100:.1f}"


def _energy(watts: Optional[float]) -> str:
    return "-" if watts is None else f"{watts:.2f}"


def _note_numbers(rows: Iterable[Measurement]) -> Dict[str, int]:
    numbers: Dict[str, int] = {}
    for row in rows:
        for note in row.notes:
            numbers.setdefault(note, len(numbers) + 1)
    return numbers


def _note_refs(row: Measurement, notes: Dict[str, int]) -> str:
    return ",".join(str(notes[n]) for n in row.notes)


def _order(row: Measurement) -> Tuple[object, ...]:
    return (row.model, row.platform, row.runtime, row.batch, _PRECISION_ORDER.get(row.precision, 99))


def _unique(rows: List[Measurement]) -> List[Measurement]:
    """One row per measured case: a reused FP32 reference measured by two tests shows once."""
    seen, unique = set(), []
    for row in rows:
        key = (row.model, row.precision, row.runtime, row.platform, row.batch, row.artifact_sha,
               row.latency.median_ms)
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def _first_of_model(rows: List[Measurement], index: int) -> bool:
    return index == 0 or rows[index - 1].model != rows[index].model
