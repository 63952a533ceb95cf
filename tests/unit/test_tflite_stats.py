"""Static facts of the committed digits .tflite files, read from the flatbuffer."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ai_edge_litert")

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.tflite_stats import artifact_stats, input_batch, input_shape, stored_bitwidth

DATA = Path(__file__).resolve().parent.parent / "data" / "tflite"
# the torch model's 38,282 weights plus 10 int32 shape constants the converter adds (RESHAPE, TRANSPOSE)
PARAMS = 38_292
# 2 x the multiply-adds of both convs and both linears, exactly torch's FlopCounterMode figure
FLOPS = 675_072


@pytest.mark.parametrize(
    "name, types, weight_bytes",
    [
        ("fp32", ("float32", "int32"), 153_168),
        ("fp16", ("float16", "float32", "int32"), 76_848),
        ("int8", ("int32", "int8"), 41_616),
        ("int8_dynamic", ("float32", "int32", "int8"), 40_152),
    ],
)
def test_every_precision_counts_the_same_weights_at_its_own_width(name: str, types: tuple, weight_bytes: int) -> None:
    path = DATA / f"digits_{name}.tflite"
    stats = artifact_stats(path)
    assert stats.params == PARAMS
    assert stats.weight_types == types
    assert stats.weight_bytes == weight_bytes
    assert stats.storage_bytes == path.stat().st_size
    assert (stats.flops, stats.flops_exact) == (FLOPS, True)


@pytest.mark.parametrize(
    "name, bitwidth",
    [("fp32", "FP32/FP32"), ("fp16", "FP16/FP32"), ("int8", "INT8/INT8"), ("int8_dynamic", "INT8/FP32")],
)
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


@pytest.mark.parametrize("read", [artifact_stats, stored_bitwidth, input_shape])
def test_a_corrupt_byte_anywhere_in_the_tables_is_one_line(tmp_path: Path, read) -> None:
    """Flatbuffers reads lazily: a bad offset surfaces wherever a field is first touched, not at parse."""
    data = (DATA / "digits_fp32.tflite").read_bytes()
    path = tmp_path / "bent.tflite"
    for offset in range(1024):  # the header and the tables before the weight data
        bent = bytearray(data)
        bent[offset] ^= 0xFF
        path.write_bytes(bytes(bent))
        try:
            read(path)
        except EdgeOptError as error:
            assert str(error).startswith("bent.tflite") and "\n" not in str(error)  # or a bent input count


def _batch_matmul(path: Path, *, adj_x: bool) -> Path:
    """A one-op model: (1, 3, 4) @ (1, 4, 5), the lhs stored as (1, 4, 3) when adj_x transposes it."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    def tensor(shape: list, buffer: int) -> object:
        t = schema.TensorT()
        t.shape, t.type, t.buffer, t.name = shape, schema.TensorType.FLOAT32, buffer, f"t{buffer}".encode()
        return t

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.BATCH_MATMUL
    options = schema.BatchMatMulOptionsT()
    options.adjX = adj_x
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.BatchMatMulOptions, options
    graph = schema.SubGraphT()
    graph.tensors = [tensor([1, 4, 3] if adj_x else [1, 3, 4], 1), tensor([1, 4, 5], 2), tensor([1, 3, 5], 3)]
    graph.inputs, graph.outputs, graph.operators = [0, 1], [2], [op]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = [schema.BufferT() for _ in range(4)]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())
    return path


@pytest.mark.parametrize("adj_x", [False, True])
def test_batch_matmul_counts_k_whichever_side_it_is_stored_on(tmp_path: Path, adj_x: bool) -> None:
    stats = artifact_stats(_batch_matmul(tmp_path / "bmm.tflite", adj_x=adj_x))
    assert (stats.flops, stats.flops_exact, stats.params) == (2 * 3 * 4 * 5, True, 0)
