"""Pure parts of the LiteRT ranking and keep_float: litert-torch's tensor names as torch module
paths, the recipe regex that selects one op alone, dequantization, the NHWC channel axis."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pytest_edgeopt.optimize.sensitivity import Layer, channel_sums, worst_channel_sqnr
from pytest_edgeopt.optimize.tflite_sensitivity import TfliteOp, dequantize, module_path


@pytest.mark.parametrize(
    "tensor, expected",
    [
        ("__main__.Sensitive/torch.nn.modules.linear.Linear_fc0;1", "fc0"),
        ("__main__.Sensitive/torch.nn.modules.linear.Linear_fc1;;__main__.Sensitive;", "fc1"),  # a fused ReLU
        ("m.Net/torch.nn.modules.container.Sequential_body/torch.nn.modules.conv.Conv2d_0;", "body.0"),
        ("m.Net/m.Block_conv_out/torch.nn.modules.conv.Conv2d_proj;", "conv_out.proj"),  # '_' in an attribute
        ("test_x.make.<locals>.Net/torch.nn.modules.linear.Linear_head;", "head"),
        (  # conv + batchnorm + relu fused: the conv's path
            "m.Net/torch.nn.modules.container.Sequential_body/torch.nn.modules.activation.ReLU_2;;"
            "m.Net/torch.nn.modules.container.Sequential_body/torch.nn.modules.batchnorm.BatchNorm2d_1;;"
            "m.Net/torch.nn.modules.container.Sequential_body/torch.nn.modules.conv.Conv2d_0;2",
            "body.0",
        ),
        ("serving_default_output_0_output", None),  # a name litert-torch did not make
        ("sequential/dense/MatMul;sequential/dense/BiasAdd", None),  # TensorFlow's converter
        ("conv2d/Kernel_dequantize", None),  # MediaPipe's BlazeFace, its float16 weights widened
        ("__main__.Sensitive;", None),  # the root module alone
    ],
)
def test_litert_torch_names_give_the_torch_module_path(tensor: str, expected: object) -> None:
    assert module_path(tensor) == expected


def test_a_float_scope_selects_its_op_alone() -> None:
    """ai-edge-quantizer matches re.search(regex, scope); a name may be a prefix of another's scope."""
    ops = [
        TfliteOp(Layer("a;", "FULLY_CONNECTED", "a"), "a;;"),
        TfliteOp(Layer("a;;b", "FULLY_CONNECTED", "b"), "a;;b;"),
        TfliteOp(Layer("x[0]", "ADD", "x[0]"), "x[0];y;"),  # regex characters, two outputs
    ]
    for op in ops:
        assert [o.layer.name for o in ops if re.search(op.float_scope, o.scope)] == [op.layer.name]


def test_integer_tensors_are_dequantized_per_tensor_and_per_channel() -> None:
    per_tensor = {"quantization_parameters": {"scales": np.array([0.5]), "zero_points": np.array([-2])}}
    assert dequantize(np.array([[-2, 0, 4]], dtype=np.int8), per_tensor).tolist() == [[0.0, 1.0, 3.0]]
    per_channel = {
        "quantization_parameters": {
            "scales": np.array([1.0, 0.1]),
            "zero_points": np.array([0, 0]),
            "quantized_dimension": 1,
        }
    }
    assert np.allclose(dequantize(np.array([[10, 10]], dtype=np.int8), per_channel), [[10.0, 1.0]])
    floats = np.array([1.5], dtype=np.float32)
    assert np.array_equal(dequantize(floats, per_tensor), floats)  # a float tensor stays as it is


def test_the_channel_axis_of_nhwc_gives_the_same_sqnr_as_nchw() -> None:
    rng = np.random.default_rng(0)
    exact = rng.normal(0, 1, (2, 3, 40, 50))
    seen = exact + rng.normal(0, 1, (2, 3, 40, 50)) * np.array([0.01, 0.1, 0.5]).reshape(1, 3, 1, 1)
    nhwc = (exact.transpose(0, 2, 3, 1), seen.transpose(0, 2, 3, 1))
    assert np.allclose(channel_sums(exact, seen), channel_sums(*nhwc, axis=-1))
    assert worst_channel_sqnr(exact, seen) == pytest.approx(worst_channel_sqnr(*nhwc, axis=-1))
    assert worst_channel_sqnr(exact, seen) == pytest.approx(6.0, abs=0.3)  # 20 log10(1 / 0.5): the noisiest channel
