"""The ONNX table columns agree with torch and stay comparable across precisions.

FLOPs are checked against torch's own FlopCounterMode (exactly), and the parameter count must not
move when the same network is stored as FP16, QDQ int8 or dynamic int8: only the bytes may.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort_quantization = pytest.importorskip("onnxruntime.quantization")

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.facts import ArtifactStats
from pytest_edgeopt.inspect.onnx_stats import artifact_stats
from pytest_edgeopt.optimize.quantize import to_int8_dynamic
from pytest_edgeopt.runtimes.causes import own_warning_filters
from tests.onnx_graphs import paddle_style_classifier

INPUT_SHAPE = (1, 3, 16, 16)


class ConvNet(torch.nn.Module):
    """Every counted op kind: plain, depthwise, grouped and transposed conv, batched MatMul, Gemm."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(32)  # folded into the stem by the exporter
        self.depthwise = torch.nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32)
        self.grouped = torch.nn.Conv2d(32, 64, 3, padding=1, groups=4)
        self.up = torch.nn.ConvTranspose2d(64, 32, 2, stride=2)
        self.tokens = torch.nn.Linear(32, 64)  # on [1, HW, C]: MatMul + Add
        self.head = torch.nn.Linear(64, 10)  # on [1, C]: Gemm

    def forward(self, x: Any) -> Any:
        x = torch.relu(self.bn(self.stem(x)))
        x = torch.relu(self.grouped(self.depthwise(x)))
        x = torch.relu(self.up(x))
        tokens = torch.relu(self.tokens(x.flatten(2).transpose(1, 2)))
        return self.head(tokens.mean(1))


class _Calibration:
    def __init__(self, input_name: str) -> None:
        rng = np.random.default_rng(0)
        self._batches: Iterator[Dict[str, np.ndarray]] = iter(
            {input_name: rng.standard_normal(INPUT_SHAPE, dtype=np.float32)} for _ in range(4)
        )

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self._batches, None)


def _export(module: Any, dest: Path, *, external_data: bool = False, **kwargs: Any) -> Path:
    sample = kwargs.pop("sample", torch.randn(*INPUT_SHAPE))
    # the exporter's own warning filters, as the plugin calls it: torch 2.13 (the floor) warns about
    # LeafSpec from a frame outside torch, which this project's filterwarnings = error would raise
    with torch.no_grad(), own_warning_filters():
        torch.onnx.export(
            module, (sample,), str(dest), dynamo=True, external_data=external_data, opset_version=20, **kwargs
        )
    return dest


def _torch_flops(module: Any, shape: tuple) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.randn(*shape))
    return int(counter.get_total_flops())


def _trained_batchnorm(module: Any) -> Any:
    """Statistics like a trained model's: a fresh BatchNorm folds to an all-zero bias, which the
    exporter drops, so an untrained network would export fewer parameters than a trained one."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            for value, low, high in (
                (bn.weight, 0.5, 2.0),
                (bn.bias, -1.0, 1.0),
                (bn.running_mean, -1.0, 1.0),
                (bn.running_var, 0.5, 2.0),
            ):
                value.copy_(torch.empty_like(value).uniform_(low, high, generator=generator))
    return module


def _folded_params(module: Any) -> int:
    """torch's count once each BatchNorm is folded into its bias-free conv (one bias per channel)."""
    bn = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    learned = sum(p.numel() for p in module.parameters())
    return learned - sum(p.numel() for m in bn for p in m.parameters()) + sum(m.num_features for m in bn)


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


@pytest.fixture(scope="module")
def net() -> ConvNet:
    torch.manual_seed(0)
    return _trained_batchnorm(ConvNet().eval())


@pytest.fixture(scope="module")
def artifacts(net: ConvNet, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    root = tmp_path_factory.mktemp("onnx-stats")
    fp32 = _export(net, root / "fp32.onnx")
    paths = {name: root / f"{name}.onnx" for name in ("qdq", "dynamic", "fp16")}
    q = ort_quantization
    # the quantizers' own warning filters, as the plugin calls them: ONNX Runtime 1.18 (the floor) reads
    # onnx.mapping, which onnx 1.17 deprecates
    with own_warning_filters():
        q.quantize_static(
            str(fp32),
            str(paths["qdq"]),
            _Calibration(_input_name(fp32)),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
        )
        onnx.save(convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True), str(paths["fp16"]))
    # the plugin's own dynamic INT8 (pre-processed first): ONNX Runtime 1.18's quantize_dynamic on the
    # exporter's raw graph failed its second shape inference ("differ in dimension 0: (64) vs (10)")
    to_int8_dynamic(fp32, paths["dynamic"])
    return {"fp32": fp32, **paths}


@pytest.fixture(scope="module")
def stats(artifacts: Dict[str, Path]) -> Dict[str, ArtifactStats]:
    return {name: artifact_stats(path) for name, path in artifacts.items()}


def _op_types(path: Path) -> set:
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_the_artifacts_use_the_quantized_op_forms(artifacts: Dict[str, Path]) -> None:
    assert {"Conv", "ConvTranspose", "MatMul", "Gemm", "DequantizeLinear"} <= _op_types(artifacts["qdq"])
    assert {"ConvInteger", "MatMulInteger"} <= _op_types(artifacts["dynamic"])


@pytest.mark.parametrize("precision", ["fp32", "qdq", "dynamic", "fp16"])
def test_flops_equal_torch_flop_counter(net: ConvNet, stats: Dict[str, ArtifactStats], precision: str) -> None:
    assert stats[precision].flops == _torch_flops(net, INPUT_SHAPE)
    assert stats[precision].flops_exact


def test_params_are_torch_params_after_batchnorm_folding(net: ConvNet, stats: Dict[str, ArtifactStats]) -> None:
    assert stats["fp32"].params == _folded_params(net)


@pytest.mark.parametrize("precision", ["qdq", "dynamic", "fp16"])
def test_params_do_not_change_with_precision(stats: Dict[str, ArtifactStats], precision: str) -> None:
    assert stats[precision].params == pytest.approx(stats["fp32"].params, rel=0.005)
    assert stats[precision].params == stats["fp32"].params  # this net has no bias that quantizers drop


def test_weight_bytes_follow_the_stored_precision(stats: Dict[str, ArtifactStats]) -> None:
    fp32 = stats["fp32"].weight_bytes
    assert fp32 == 4 * stats["fp32"].params
    assert stats["fp16"].weight_bytes == 2 * stats["fp16"].params
    assert 0.2 < stats["qdq"].weight_bytes / fp32 < 0.35
    # quantize_dynamic leaves ConvTranspose and the biases in float32
    assert 0.25 < stats["dynamic"].weight_bytes / fp32 < 1


def test_weight_types_name_the_stored_element_types(stats: Dict[str, ArtifactStats]) -> None:
    assert stats["fp32"].weight_types == ("float32",)
    assert stats["fp16"].weight_types == ("float16",)
    # conv biases are int32; the bias of the MatMul's separate Add is quantized like an activation
    assert stats["qdq"].weight_types == ("int32", "int8", "uint8")
    assert stats["dynamic"].weight_types == ("float32", "int8")


def test_storage_is_the_file_size_when_self_contained(
    artifacts: Dict[str, Path], stats: Dict[str, ArtifactStats]
) -> None:
    for name, path in artifacts.items():
        assert stats[name].storage_bytes == path.stat().st_size


def test_storage_counts_external_data_files(net: ConvNet, tmp_path: Path, stats: Dict[str, ArtifactStats]) -> None:
    path = _export(net, tmp_path / "model.onnx", external_data=True)
    side_files = [f for f in tmp_path.iterdir() if f != path]
    assert side_files, "the exporter wrote no external data file"
    result = artifact_stats(path)
    assert result.storage_bytes == path.stat().st_size + sum(f.stat().st_size for f in side_files)
    assert (result.params, result.flops, result.weight_bytes) == (
        stats["fp32"].params,
        stats["fp32"].flops,
        stats["fp32"].weight_bytes,
    )


def test_missing_external_data_is_an_edgeopt_error(net: ConvNet, tmp_path: Path) -> None:
    path = _export(net, tmp_path / "model.onnx", external_data=True)
    for side_file in (f for f in tmp_path.iterdir() if f != path):
        side_file.unlink()
    with pytest.raises(EdgeOptError, match="missing"):
        artifact_stats(path)


@pytest.mark.parametrize("content", [b"this is not an onnx model\n", b"\x08\x07\x12\x03abc\xff\xff", b""])
def test_a_corrupt_file_is_an_edgeopt_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(EdgeOptError) as error:
        artifact_stats(path)
    assert "broken.onnx" in str(error.value) and "\n" not in str(error.value)


def test_a_truncated_model_is_an_edgeopt_error(artifacts: Dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "truncated.onnx"
    path.write_bytes(artifacts["fp32"].read_bytes()[:-100])
    with pytest.raises(EdgeOptError, match=r"truncated\.onnx"):
        artifact_stats(path)


def test_a_dynamic_batch_counts_as_one_and_says_so(net: ConvNet, tmp_path: Path) -> None:
    path = _export(
        net,
        tmp_path / "dynamic-batch.onnx",
        sample=torch.randn(2, *INPUT_SHAPE[1:]),
        dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
    )
    result = artifact_stats(path)
    assert result.flops == _torch_flops(net, INPUT_SHAPE)
    assert not result.flops_exact


def test_stats_round_trip_through_json(stats: Dict[str, ArtifactStats]) -> None:
    for value in stats.values():
        assert ArtifactStats.from_dict(json.loads(json.dumps(value.to_dict()))) == value


def test_resnet50_flops_equal_torch_flop_counter(tmp_path: Path) -> None:
    """A few seconds: the real-network check (bottlenecks, strided 1x1 downsampling, fc)."""
    torchvision = pytest.importorskip("torchvision")
    model = _trained_batchnorm(torchvision.models.resnet50(weights=None).eval())
    shape = (1, 3, 224, 224)
    result = artifact_stats(_export(model, tmp_path / "resnet50.onnx", sample=torch.randn(*shape)))
    assert result.flops == _torch_flops(model, shape)
    assert result.flops_exact
    assert result.params == _folded_params(model)
    assert result.weight_bytes == 4 * result.params


def test_dynamic_dims_of_a_third_party_graph_are_counted_at_the_eval_shape_never_negative(tmp_path: Path) -> None:
    path = paddle_style_classifier(tmp_path / "cls.onnx")
    conv = 2 * 8 * 3 * 3 * 3 * 48 * 192  # per sample, at the shape it is measured on
    fc = 2 * 8 * 2
    unpinned = artifact_stats(path)
    assert unpinned.flops >= 0 and not unpinned.flops_exact  # -1 is an unknown dim, not a size
    pinned = artifact_stats(path, sample=np.zeros((3, 48, 192), np.float32))
    assert (pinned.flops, pinned.flops_exact) == (conv + fc, True)  # the Reshape's target seen in one run


def test_a_graph_with_a_data_dependent_branch_is_not_countable(tmp_path: Path) -> None:
    path = paddle_style_classifier(tmp_path / "cls-if.onnx", with_if=True)
    assert not artifact_stats(path, sample=np.zeros((3, 48, 192), np.float32)).flops_exact
