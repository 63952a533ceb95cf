"""The note an INT8 row gets when it ran slower than FP32: real QDQ file, given samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import pytest

from pytest_edgeopt.agent.contract import DeviceFacts
from pytest_edgeopt.inspect.facts import ArtifactStats, Quantization
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.optimize.precisions import get_precision
from pytest_edgeopt.session.slower import slower_note

pytest.importorskip("onnx")

INT8 = Path(__file__).resolve().parent.parent / "data" / "onnx" / "digits_int8.onnx"
STATS = ArtifactStats(params=1, weight_bytes=1, storage_bytes=1, flops=1, weight_types=("int8",), flops_exact=True)


def _artifact(precision: str) -> Artifact:
    return Artifact(
        path=INT8,
        precision=get_precision(precision),
        key="k",
        quantization=Quantization(),
        stats=STATS,
        params=1,
        flops=2_000_000,
    )


def _facts(*flags: str) -> DeviceFacts:
    return DeviceFacts(arch="x86_64", cpu_model="test", cpu_flags=tuple(flags))


FP32_MS: Tuple[float, ...] = (1.0, 1.0, 1.1)


def test_a_clearly_slower_int8_row_says_why() -> None:
    note = slower_note((2.0, 2.1, 2.2), FP32_MS, artifact=_artifact("int8"), facts=_facts("avx2", "fma"))
    assert note is not None
    assert note.text.startswith("INT8 ran 2.1x FP32's time: ")
    assert "Quantize/DequantizeLinear ops around" in note.text
    assert "this CPU has no VNNI" in note.text


def test_a_cpu_with_int8_dot_products_is_not_blamed() -> None:
    note = slower_note((2.0,), FP32_MS, artifact=_artifact("int8"), facts=_facts("avx2", "avx512_vnni"))
    assert note is not None and "VNNI" not in note.text


@pytest.mark.parametrize("samples", [(1.2, 1.2), (0.5, 0.6)])
def test_drift_sized_or_faster_rows_get_no_note(samples: Tuple[float, ...]) -> None:
    assert slower_note(samples, FP32_MS, artifact=_artifact("int8"), facts=_facts("avx2")) is None


def test_only_int8_rows_are_explained() -> None:
    assert slower_note((3.0,), FP32_MS, artifact=_artifact("fp16"), facts=_facts("avx2")) is None


def _qdq_graph(tmp_path: Path, nodes: List[Any], inits: List[Tuple[str, Any]]) -> Path:
    """A tiny QDQ graph: x [1, 4] in, y out; every weight and scale an initializer."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tensors = [numpy_helper.from_array(np.asarray(value), name) for name, value in inits]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        tensors,
    )
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


SCALES = [("s", np.float32(0.1)), ("z", np.uint8(128)), ("zw", np.int8(0))]
QW = [("qw", np.ones((4, 4), np.int8)), ("w", np.ones((4, 4), np.float32))]


def test_float_ops_counts_ops_that_read_no_dequantized_tensor_in_either_qdq_style(tmp_path: Path) -> None:
    from onnx import helper

    from pytest_edgeopt.inspect.onnx_file import float_ops

    dq_x = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["qx"]),
        helper.make_node("DequantizeLinear", ["qx", "s", "z"], ["dx"]),
    ]
    dq_w = [helper.make_node("DequantizeLinear", ["qw", "s", "zw"], ["dw"])]
    ort_style = (
        dq_x
        + dq_w
        + [helper.make_node("MatMul", ["dx", "dw"], ["m"]), helper.make_node("QuantizeLinear", ["m", "s", "z"], ["y"])]
    )
    nncf_style = (
        dq_x
        + dq_w
        + [  # inputs quantized, the result goes on in float through a Relu
            helper.make_node("MatMul", ["dx", "dw"], ["m"]),
            helper.make_node("Relu", ["m"], ["r"]),
            helper.make_node("Reshape", ["r", "shape"], ["v"]),
            helper.make_node("MatMul", ["v", "dw"], ["y"]),
        ]
    )
    island = dq_x + [  # a float weight on a float activation: really float
        helper.make_node("Identity", ["x"], ["fx"]),
        helper.make_node("MatMul", ["fx", "w"], ["y"]),
    ]
    shape = [("shape", np.array([1, 4], np.int64))]
    assert float_ops(_qdq_graph(tmp_path, ort_style, SCALES + QW)) == {}
    assert float_ops(_qdq_graph(tmp_path, nncf_style, SCALES + QW + shape)) == {"Relu": 1}  # MatMuls read DQ
    assert float_ops(_qdq_graph(tmp_path, island, SCALES + QW)) == {"MatMul": 1}
