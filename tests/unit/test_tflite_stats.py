"""Static facts of the committed digits .tflite files, read from the flatbuffer."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ai_edge_litert")

from pytest_edgeopt.errors import EdgeOptError  # noqa: E402
from pytest_edgeopt.measure.tflite_stats import (  # noqa: E402
    artifact_stats, input_batch, input_shape, stored_bitwidth)

DATA = Path(__file__).resolve().parent.parent / "data" / "tflite"
# the torch model's 38,282 weights plus 10 int32 shape constants the converter adds (RESHAPE, TRANSPOSE)
PARAMS = 38_292
# 2 x the multiply-adds of both convs and both linears, exactly torch's FlopCounterMode figure
FLOPS = 675_072


@pytest.mark.parametrize("name, types, weight_bytes", [
    ("fp32", ("float32", "int32"), 153_168),
    ("fp16", ("float16", "float32", "int32"), 76_848),
    ("int8", ("int32", "int8"), 41_616),
    ("int8_dynamic", ("float32", "int32", "int8"), 40_152),
])
def test_every_precision_counts_the_same_weights_at_its_own_width(name: str, types: tuple, weight_bytes: int) -> None:
    path = DATA / f"digits_{name}.tflite"
    stats = artifact_stats(path)
    assert stats.params == PARAMS
    assert stats.weight_types == types
    assert stats.weight_bytes == weight_bytes
    assert stats.storage_bytes == path.stat().st_size
    assert (stats.flops, stats.flops_exact) == (FLOPS, True)


@pytest.mark.parametrize("name, bitwidth", [
    ("fp32", "FP32/FP32"), ("fp16", "FP16/FP32"), ("int8", "INT8/INT8"), ("int8_dynamic", "INT8/FP32")])
def test_stored_bitwidth_is_what_the_file_holds(name: str, bitwidth: str) -> None:
    assert stored_bitwidth(DATA / f"digits_{name}.tflite") == bitwidth


def test_input_shape_is_the_files_own_layout() -> None:
    assert input_shape(DATA / "digits_int8.tflite") == (1, 1, 8, 8)
    assert input_batch(DATA / "digits_int8.tflite") == 1


@pytest.mark.parametrize("content", [b"", b"not a model at all", bytes(range(256)) * 8])
def test_garbage_is_one_line_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(EdgeOptError, match=r"^model\.tflite is not a readable TFLite model \(") as error:
        artifact_stats(path)
    assert "\n" not in str(error.value)


def test_a_truncated_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.tflite"
    path.write_bytes((DATA / "digits_fp32.tflite").read_bytes()[:10_000])
    with pytest.raises(EdgeOptError, match=r"^cut\.tflite is not a readable TFLite model \(") as error:
        input_shape(path)
    assert "\n" not in str(error.value)
