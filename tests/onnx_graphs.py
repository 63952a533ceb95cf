"""ONNX graphs written the way third-party exporters write them, for tests of what the plugin reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def paddle_style_classifier(path: Path, *, with_if: bool = False) -> Path:
    """What paddle2onnx writes (PP-OCR's text-direction classifier): input [-1, 3, ?, ?] with the
    dynamic batch as dim_value -1, a global pool, then a Reshape to a shape computed from Shape and
    Concat (static inference cannot follow it) before the classifier MatMul."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 2])
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(rng.standard_normal((8, 2)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus_one"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv_w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        helper.make_node("Shape", ["p"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["p", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "fc_w"], ["y"]),
    ]
    if with_if:  # a branch whose cost depends on data: nothing honest can be counted
        branch = helper.make_graph(
            [helper.make_node("Identity", ["flat"], ["b"])], "branch", [], [helper.make_tensor_value_info("b", 1, None)]
        )
        inits.append(numpy_helper.from_array(np.array(True), "cond"))
        nodes[-1] = helper.make_node("If", ["cond"], ["flat2"], then_branch=branch, else_branch=branch)
        nodes.append(helper.make_node("MatMul", ["flat2", "fc_w"], ["y"]))
    graph = helper.make_graph(nodes, "paddle_style", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
