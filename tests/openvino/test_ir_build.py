"""NNCF's INT8 IR, piece by piece, on small real graphs read by OpenVINO: how ONNX node names map
to the ov.Model's operations (what keep_float= hands NNCF's IgnoredScope), which preset NNCF's
advice picks, how an activation's FakeQuantize range reads as a type, and what the IR holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

try:
    from pytest_edgeopt.runtimes.openvino import import_openvino

    ov = import_openvino()
except ImportError:
    pytest.skip('openvino is not installed: pip install "pytest-edgeopt[openvino]"', allow_module_level=True)
onnx = pytest.importorskip("onnx")
nncf = pytest.importorskip("nncf")

from onnx import TensorProto, helper, numpy_helper

from pytest_edgeopt.inspect.openvino_ir import ir_stats
from pytest_edgeopt.optimize.openvino import (
    _activation_type,
    _save_ir,
    activation_types,
    choose_preset,
    onnx_outputs,
    op_names,
)


def _conv_net(path: Path, *, silu: bool) -> Path:
    """x -> Conv (with a bias) -> SiLU or Relu -> Conv named like YOLOv8's last node -> "output0"."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="/model.0/conv/Conv", pads=[1, 1, 1, 1])]
    if silu:
        nodes += [
            helper.make_node("Sigmoid", ["c1"], ["s1"], name="/model.0/act/Sigmoid"),
            helper.make_node("Mul", ["c1", "s1"], ["a1"], name="/model.0/act/Mul"),
        ]
    else:
        nodes.append(helper.make_node("Relu", ["c1"], ["a1"], name="/model.0/act/Relu"))
    nodes.append(helper.make_node("Conv", ["a1", "w2"], ["output0"], name="/model.22/Concat_25"))
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4, 16, 16])],
        [w1, b1, w2],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_onnx_node_names_reach_the_operations_openvino_made_of_them(tmp_path: Path) -> None:
    """A Conv with a bias becomes `<node>/WithoutBiases` + an Add named `<node>`; the node that makes
    a graph output is named after the output ("output0"): both must reach NNCF's IgnoredScope."""
    path = _conv_net(tmp_path / "net.onnx", silu=True)
    made_of = op_names(ov.Core().read_model(str(path)), onnx_outputs(path))
    assert set(made_of["/model.0/conv/Conv"]) == {"/model.0/conv/Conv/WithoutBiases", "/model.0/conv/Conv"}
    assert made_of["/model.22/Concat_25"] == ("output0",)
    assert made_of["/model.0/act/Sigmoid"] == ("/model.0/act/Sigmoid",)


def test_the_preset_follows_nncfs_advice_on_the_activations(tmp_path: Path) -> None:
    core = ov.Core()
    mixed, why = choose_preset(core.read_model(str(_conv_net(tmp_path / "silu.onnx", silu=True))))
    assert mixed == "mixed" and "SiLU" in why
    assert choose_preset(core.read_model(str(_conv_net(tmp_path / "relu.onnx", silu=False))))[0] == "performance"


def test_a_fakequantize_range_reads_as_its_type() -> None:
    high = np.array([2.0], np.float32)
    assert _activation_type(-high * 128 / 127, high, 256) == "int8"  # symmetric, signed
    assert _activation_type(np.array([0.0], np.float32), high, 256) == "uint8"  # from zero
    assert _activation_type(np.array([-0.3], np.float32), high, 256) == "uint8"  # asymmetric: a zero point


def test_the_ir_holds_int8_weights_and_names_what_stayed_float(tmp_path: Path) -> None:
    path = _conv_net(tmp_path / "net.onnx", silu=True)
    model = ov.Core().read_model(str(path))
    data = nncf.Dataset([np.random.default_rng(i).normal(0, 1, (1, 3, 16, 16)).astype(np.float32) for i in range(4)])
    kept = op_names(model, onnx_outputs(path))["/model.22/Concat_25"]
    quantized = nncf.quantize(
        model, data, subset_size=4, preset=nncf.QuantizationPreset.MIXED, ignored_scope=nncf.IgnoredScope(list(kept))
    )
    assert activation_types(quantized) == "uint8"
    _save_ir(ov, quantized, tmp_path / "int8.xml")
    stats = ir_stats(tmp_path / "int8.xml", {"x": (1, 3, 16, 16)})
    weights, flops = dict(stats.weight_bytes_by_type), dict(stats.flops_by_type)
    assert weights["int8"] == 8 * 3 * 3 * 3  # the first conv's weights, one byte each
    assert weights["float32"] == (4 * 8 + 8) * 4  # the kept conv's weights and the bias, float32
    assert flops == {"int8": 2 * 16 * 16 * 8 * 27, "float32": 2 * 16 * 16 * 4 * 8}
    assert stats.storage_bytes == sum(p.stat().st_size for p in tmp_path.glob("int8.*"))


def test_the_ranking_runs_openvino_on_the_ir_and_blames_layers_with_weights(tmp_path: Path) -> None:
    """Real activations through OpenVINO's execution of both files, by ONNX node name; an activation
    without weights computes in float on what it reads and loses nothing of its own."""
    from pytest_edgeopt.optimize.openvino import quantize_int8
    from pytest_edgeopt.optimize.openvino_sensitivity import ir_sensitivity

    path = _conv_net(tmp_path / "net.onnx", silu=False)
    x = np.random.default_rng(0).normal(0, 1, (8, 3, 16, 16)).astype(np.float32)
    built = quantize_int8(path, tmp_path / "int8.xml", calibration=x, batch=1)
    assert built.preset == "performance" and built.kept_float == ()
    ranking = ir_sensitivity(path, tmp_path / "int8.xml", [{"x": x[i : i + 1]} for i in range(8)])
    by_name = {error.name: error for error in ranking}
    assert set(by_name) == {"/model.0/conv/Conv", "/model.0/act/Relu", "/model.22/Concat_25"}
    assert by_name["/model.0/act/Relu"].loss_db == 0.0 and by_name["/model.0/act/Relu"].op_type == "Relu"
    assert ranking[0].op_type == "Conv"
    assert all(error.sqnr_db < 100 for error in ranking if error.name != "/model.0/act/Relu")
