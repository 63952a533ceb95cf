"""The comparison table is a pure function of the rows."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from pytest_edgeopt.baselines.entry import BaselineEntry, entry_from_measurement
from pytest_edgeopt.baselines.store import Update, read_tree
from pytest_edgeopt.judge.types import Judgement, Row
from pytest_edgeopt.measure.compare import LatencyVerdict
from pytest_edgeopt.measure.result import LatencyStats
from pytest_edgeopt.report.table import HEADERS, baseline_lines, bitwidth_label, table_cells, table_lines
from tests.pytester_helpers import read_table
from tests.unit.test_result import make_measurement

SEED_COLUMNS = (
    "Model",
    "Bit-width (W/A)",
    "Size (MB)",
    "Params (M)",
    "Top-1 (%)",
    "Storage (MB)",
    "Latency (ms, p50)",
    "Throughput (inf/s)",
    "Energy (W)",
    "Energy (mJ/inf)",
    "Compute",
    "Platform",
)


def rows(*measurements: object) -> list:
    return [Row(measurement=m) for m in measurements]  # type: ignore[arg-type]


def test_headers_carry_the_seed_columns_and_the_verdict() -> None:
    header = table_lines(rows(make_measurement()))[0]
    for column in SEED_COLUMNS + ("Baseline (ms)", "Delta", "Verdict"):
        assert column in header
    assert len(HEADERS) == 19


def test_no_rows_no_lines() -> None:
    assert table_lines([]) == []


def test_rows_grouped_by_model_in_precision_order() -> None:
    fp32 = make_measurement(precision="fp32", bitwidth="FP32/FP32", quantization={}, artifact_sha="f")
    int8 = make_measurement()
    other = make_measurement(model="a-model", artifact_sha="z")
    lines = table_lines(rows(int8, other, fp32))
    body = [line for line in lines[2:] if not line.startswith("[")]
    assert body[0].startswith("a-model")
    assert body[1].startswith("m ") and "FP32/FP32" in body[1]
    assert body[2].startswith(" ") and "INT8/INT8 (U8S8)" in body[2]


def test_identical_cases_show_once_with_the_worst_verdict_and_notes_are_numbered() -> None:
    m = make_measurement(notes=("first", "second"))
    failing = Row(measurement=replace(m, nodeid="other::test"), judgement=Judgement(verdict="fail"))
    lines = table_lines([Row(measurement=m), failing])
    assert sum("INT8/INT8" in line for line in lines) == 1
    assert " fail " in lines[2]
    assert lines[-2:] == ["[1] first", "[2] second"]


def test_label_free_top1_and_missing_energy() -> None:
    line = table_lines(rows(make_measurement(top1=None)))[2]
    assert " n/a " in line and " - " in line


def test_failing_cells_are_marked_and_delta_names_the_signal() -> None:
    verdict = LatencyVerdict(
        verdict="regressed", signal="cpu, vs stored samples", ratio=1.25, low=1.2, high=1.3, limit=1.1
    )
    judgement = Judgement(
        verdict="fail",
        latency=verdict,
        baseline_latency_ms=3.2,
        violations=("max_storage_mb: measured 0.6 MB, limit <= 0.5 MB", "max_latency_regression: ... regressed"),
    )
    line = table_lines([Row(measurement=make_measurement(), judgement=judgement)])[2]
    assert "0.600 !" in line and "4.000 !" in line
    assert "+25.0% (cpu, vs stored samples)" in line and "3.200" in line


def test_bitwidth_labels() -> None:
    assert bitwidth_label(make_measurement(batch=1)) == "INT8/INT8 (U8S8)"
    assert (
        bitwidth_label(make_measurement(batch=1, quantization={"activation_type": "int8", "format": "QDQ"}))
        == "INT8/INT8 (S8S8)"
    )
    dynamic = make_measurement(
        batch=1, precision="int8-dynamic", bitwidth="INT8/FP32", quantization={"format": "IntegerOps"}
    )
    assert bitwidth_label(dynamic) == "INT8/FP32 (dynamic)"
    mixed = make_measurement(batch=1, quantization={"activation_type": "int8+uint8", "format": "QDQ", "tool": "nncf"})
    assert bitwidth_label(mixed) == "INT8/INT8 (S8+U8 act, S8 w)"  # NNCF: int8 where values go negative


def test_a_batch_other_than_one_and_a_partial_quantization_are_in_the_bitwidth_cell() -> None:
    from pytest_edgeopt.measure.result import QuantizedShare

    assert bitwidth_label(make_measurement(batch=4)) == "INT8/INT8 (U8S8), batch 4"
    partly = QuantizedShare(target="int8", weight_share=0.99, mac_share=0.62)
    assert bitwidth_label(make_measurement(batch=1, quantized=partly)) == "INT8/INT8 (U8S8, 62% of MACs)"
    weights_only = QuantizedShare(target="int8", weight_share=0.0, mac_share=None)
    assert bitwidth_label(make_measurement(batch=1, quantized=weights_only)) == "INT8/INT8 (U8S8, 0% of weights)"
    whole = QuantizedShare(target="int8", weight_share=0.998, mac_share=1.0)
    assert bitwidth_label(make_measurement(batch=1, quantized=whole)) == "INT8/INT8 (U8S8)"


def test_baseline_lines_show_updates_and_stale_entries() -> None:
    def entry(latency_ms: float, top1: float) -> BaselineEntry:
        stats = LatencyStats.from_values([latency_ms])
        return entry_from_measurement(make_measurement(latency=stats, size_mb=1.0, top1=top1))

    update = Update(
        path=Path("baselines/host/t.json"),
        added=["t::a/fp32/onnxruntime/b1"],
        changed=[("t::a/int8/onnxruntime/b1", entry(2.0, 0.9), entry(2.5, 0.91))],
        removed=["t::gone/fp32/onnxruntime/b1"],
    )
    lines = baseline_lines([update], {}, updating="all")
    text = "\n".join(lines)
    assert "added" in text and "removed" in text and "2 -> 2.5" in text and "90 -> 91" in text
    stale = baseline_lines([], {"t.py": {"t::gone/fp32/onnxruntime/b1"}}, updating=None)
    assert stale[0].startswith("1 stale baseline entry") and "--update-baselines" in stale[0]


def wide_rows() -> list:
    """Two cases whose full table is far wider than a terminal, one with a broken storage budget."""
    fp32 = make_measurement(precision="fp32", bitwidth="FP32/FP32", quantization={}, artifact_sha="f")
    judgement = Judgement(
        verdict="fail",
        latency=LatencyVerdict(
            verdict="regressed",
            signal="cpu, paired A/B vs baseline, 40 pairs",
            ratio=1.25,
            low=1.2,
            high=1.3,
            limit=1.1,
        ),
        baseline_latency_ms=3.2,
        violations=("max_storage_mb: measured 0.6 MB, limit <= 0.5 MB",),
    )
    return [Row(measurement=fp32), Row(measurement=make_measurement(notes=("a note " * 30,)), judgement=judgement)]


def test_full_table_is_wider_than_a_terminal_and_keeps_the_seed_order() -> None:
    lines = table_lines(wide_rows())
    assert max(len(line) for line in lines[:4]) > 200
    assert [h for h in HEADERS if h in lines[0]] == list(HEADERS)
    assert lines[0].index("Size (MB)") < lines[0].index("Latency (ms, p50)") < lines[0].index("Verdict")


def full_rows(rows: list, *, by_platform: bool = False) -> list:
    headers, body, _ = table_cells(rows, by_platform=by_platform)
    return [dict(zip(headers, cells)) for cells in body]


def test_the_wrapped_table_fits_the_width_and_keeps_every_value() -> None:
    fp32, int8 = wide_rows()
    tflite = Row(measurement=replace(fp32.measurement, runtime="tflite", runtime_version="2.3.0", artifact_sha="t"))
    for cases in ([fp32, int8], [fp32, int8, tflite]):
        for width in (80, 120):
            lines = table_lines(cases, width=width)
            assert max(len(line) for line in lines) <= width, "\n".join(lines)  # the notes are wrapped too
            assert read_table(lines) == full_rows(cases), "\n".join(lines)
            assert sum(line.startswith("[") and "a note a note" in line for line in lines) == 1


def test_every_block_repeats_the_keys_and_the_first_holds_the_verdict_and_the_broken_budget() -> None:
    fp32, int8 = wide_rows()
    tflite = Row(measurement=replace(fp32.measurement, runtime="tflite", runtime_version="2.3.0", artifact_sha="t"))
    lines = table_lines([fp32, int8, tflite], width=80)
    headers = [line.split() for line in lines if line.startswith("Model ")]
    assert len(headers) > 2 and all(h[:3] == ["Model", "Bit-width", "(W/A)"] and h[3] == "Runtime" for h in headers)
    assert headers[0][4:7] == ["Verdict", "Storage", "(MB)"]  # the broken budget's column right after the verdict
    assert "0.600 !" in next(line for line in lines if " fail " in line)
    assert "versions: onnxruntime 1.0, tflite 2.3.0" in " ".join(line.strip() for line in lines[:2])


def test_what_is_shortened_or_moved_says_so_in_a_line() -> None:
    fp32, int8 = wide_rows()
    tflite = Row(measurement=replace(fp32.measurement, runtime="tflite", runtime_version="2.3.0", artifact_sha="t"))
    lines = table_lines([fp32, int8, tflite], width=80)
    assert lines[0].startswith("all rows: ") and "Platform: host: CPU (x86_64), 1 thr" in lines[0]
    assert any(line.startswith("- on every row: ") and "Energy (W)" in line for line in lines)
    assert any("+25.0% *1" in line for line in lines)  # the Delta's method is too long for 80 columns
    text = " ".join(line.strip() for line in lines)
    assert "*1 Delta: +25.0% (cpu, paired A/B vs baseline, 40 pairs)" in text
    assert not any(line.startswith("not shown") for line in lines)


def test_the_stored_baselines_table_keeps_every_value_at_80_and_120_columns() -> None:
    tree = read_tree(Path(__file__).resolve().parents[2] / "baselines")
    stored = [Row(measurement=m) for m in tree.measurements]
    for width in (80, 120):
        lines = table_lines(stored, width=width, by_platform=True)
        assert max(len(line) for line in lines) <= width
        assert read_table(lines) == full_rows(stored, by_platform=True)


def test_a_table_that_fits_is_the_full_table() -> None:
    narrow = [Row(measurement=make_measurement())]
    assert table_lines(narrow, width=1000) == table_lines(narrow)


def test_a_key_cell_too_long_for_80_columns_is_shortened_so_the_values_stay_numbers() -> None:
    """YOLOv8n's OpenVINO int8-mixed row: a 57-character Bit-width left no room beside the keys,
    and every value of the 80-column table became a `*N` reference to the legend."""
    from pytest_edgeopt.report.layout import wrap_table

    long = "INT8 mixed, 1 layers float (U8+S8 act, S8 w, 99% of MACs)"
    columns = ("model", "bitwidth", "runtime", "verdict", "top1", "latency", "size", "storage", "throughput")
    body = [
        ("yolov8n-320n", "FP32/FP32", "onnxruntime", "pass", "F1 1", "21.5", "12.037", "12.150", "46.5"),
        ("", long, "openvino", "pass", "F1 1", "10.9", "3.027", "4.057", "91.4"),
    ]
    lines = wrap_table(columns, body, width=80)
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    row = next(line for line in lines if line.lstrip().startswith("INT8 mixed, 1 layers float *1"))
    assert row.split()[-1] in ("pass", "F1", "1", "10.9", "3.027", "4.057", "91.4"), "\n".join(lines)
    assert not any(re.search(r"openvino\s+\*\d+$", line) for line in lines), "\n".join(lines)
    assert f"*1 Bit-width (W/A): {long}" in " ".join(line.strip() for line in lines)
    table = read_table(lines)
    assert table[1]["Bit-width (W/A)"] == long and table[1]["Latency (ms, p50)"] == "10.9"
