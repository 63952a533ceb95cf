"""The comparison table is a pure function of the rows."""
from __future__ import annotations

from dataclasses import replace

from pytest_edgeopt.report.table import HEADERS, bitwidth_label, table_lines
from tests.unit.test_result import make_measurement

SEED_COLUMNS = ("Model", "Bit-width (W/A)", "Size (MB)", "Params (M)", "Top-1 (%)", "Storage (MB)",
                "Latency (ms, p50)", "Throughput (inf/s)", "Energy (W)", "Compute", "Platform")


def test_headers_carry_the_seed_columns() -> None:
    header = table_lines([make_measurement()])[0]
    for column in SEED_COLUMNS:
        assert column in header
    assert len(HEADERS) == 14


def test_no_rows_no_lines() -> None:
    assert table_lines([]) == []


def test_rows_grouped_by_model_in_precision_order() -> None:
    fp32 = make_measurement(precision="fp32", bitwidth="FP32/FP32", quantization={}, artifact_sha="f")
    int8 = make_measurement()
    other = make_measurement(model="a-model", artifact_sha="z")
    lines = table_lines([int8, other, fp32])
    body = [line for line in lines[2:] if not line.startswith("[")]
    assert body[0].startswith("a-model")
    assert body[1].startswith("m ") and "FP32/FP32" in body[1]
    assert body[2].startswith(" ") and "INT8/INT8 (U8S8)" in body[2]


def test_identical_cases_show_once_and_notes_are_numbered() -> None:
    m = make_measurement(notes=("first", "second"))
    lines = table_lines([m, replace(m, nodeid="other::test")])
    assert sum("INT8/INT8" in line for line in lines) == 1
    assert lines[-2:] == ["[1] first", "[2] second"]


def test_label_free_top1_and_missing_energy() -> None:
    line = table_lines([make_measurement(top1=None)])[2]
    assert " n/a " in line and " - " in line


def test_bitwidth_labels() -> None:
    assert bitwidth_label(make_measurement()) == "INT8/INT8 (U8S8)"
    assert bitwidth_label(make_measurement(quantization={"activation_type": "int8", "format": "QDQ"})) == "INT8/INT8 (S8S8)"
    dynamic = make_measurement(precision="int8-dynamic", bitwidth="INT8/FP32", quantization={"format": "IntegerOps"})
    assert bitwidth_label(dynamic) == "INT8/FP32 (dynamic)"
