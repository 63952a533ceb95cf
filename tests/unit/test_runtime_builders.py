"""A runtime's own artifact build (RuntimeSpec.builder) and the device that ran a row."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.optimize.artifacts import _derived_parts, suffix_of
from pytest_edgeopt.optimize.formats import distribution_version, load_builder
from pytest_edgeopt.platforms.profiles import HOST, JETSON_NANO
from pytest_edgeopt.runtimes import RUNTIMES
from pytest_edgeopt.runtimes.base import RuntimeInfo
from pytest_edgeopt.session.assemble import compute_unit, device_unit

OPENVINO = "pytest_edgeopt.optimize.openvino:BUILDER"
EXECUTORCH = "pytest_edgeopt.optimize.executorch:BUILDER"


def test_openvino_is_built_in_with_its_int8_builder() -> None:
    spec = RUNTIMES["openvino"]
    assert (spec.format, spec.extra, spec.builder) == ("onnx", "openvino", OPENVINO)
    assert "executorch" not in RUNTIMES  # a plugin's runtime: the hook alone adds it


def test_a_builders_precisions_are_keyed_by_the_builder_and_its_packages_versions() -> None:
    root = SimpleNamespace(key="0123456789abcdef0123", path=None)  # FP16 and NNCF INT8 never read the file
    model = SimpleNamespace(data_hash=lambda what: f"{what}-hash")
    ours = _derived_parts(model, "int8", root=root, batch=1, arch="x86_64", fmt="onnx", builder=OPENVINO)
    assert ours["builder"] == OPENVINO and ours["calibration"] == "calibration-hash"
    assert ours["tools"]["nncf"] == distribution_version("nncf") and "activation" not in ours
    # FP16 on OpenVINO is the ONNX format's own file: the same key as ONNX Runtime's
    fp16 = _derived_parts(model, "fp16", root=root, batch=1, arch="x86_64", fmt="onnx", builder=OPENVINO)
    assert fp16 == _derived_parts(model, "fp16", root=root, batch=1, arch="x86_64", fmt="onnx", builder="")
    assert suffix_of("onnx", OPENVINO, "int8") == ".xml" and suffix_of("pte", EXECUTORCH, "fp32") == ".pte"


def test_a_builder_that_cannot_be_loaded_is_one_line() -> None:
    with pytest.raises(EdgeOptError, match="cannot load the artifact builder 'nowhere:BUILDER'"):
        load_builder("nowhere:BUILDER")
    assert load_builder("") is None


def test_the_compute_cell_names_the_device_that_ran() -> None:
    assert device_unit("GPU.0", default="CPU") == "GPU"
    assert device_unit("CPU", default="GPU") == "CPU"
    assert device_unit("GPU.0,CPU", default="CPU") == "CPU+GPU"
    assert device_unit("HETERO", default="CPU") == "CPU"
    # a runtime that reports its device beats the profile's compute unit
    assert compute_unit(JETSON_NANO, RuntimeInfo(name="openvino", version="1", device="CPU")) == "CPU"
    assert compute_unit(HOST, RuntimeInfo(name="openvino", version="1", device="NPU")) == "NPU"


def test_executorch_tensor_types_come_from_scalar_type_codes() -> None:
    from pytest_edgeopt.runtimes.executorch import _dtype

    assert [_dtype(SimpleNamespace(dtype=lambda code=c: code)) for c in (6, 1, 0, 4, 99)] == [
        "float32",
        "int8",
        "uint8",
        "int64",
        "float32",
    ]
