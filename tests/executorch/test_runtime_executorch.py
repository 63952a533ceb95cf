"""runtime="executorch": the edgeopt-executorch plugin, registered through the runtime hook.

torch.export -> XNNPACK lowering -> .pte, FP32 and PT2E INT8, run by ExecuTorch's C++ runtime in
the agent; the FP32 row is checked against ONNX Runtime. Turning the plugin off makes the runtime
unknown, which is the proof that the hook alone adds it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("executorch.exir")  # imported once here, before any pytester run (C extensions)
pytest.importorskip("executorch.backends.xnnpack.partition.xnnpack_partitioner")
pytest.importorskip("executorch.backends.xnnpack.quantizer.xnnpack_quantizer")
pytest.importorskip("torchao.quantization.pt2e.quantize_pt2e")

from pytest_edgeopt.plugins.executorch import EXECUTORCH
from pytest_edgeopt.runtimes.install import install_command
from tests.agent.agent_helpers import make_job, run_agent
from tests.pytester_helpers import QUICK, failures, notes, table
from tests.runtime_helpers import build_in_process, shadow_package

DATA = Path(__file__).resolve().parent.parent / "data" / "onnx"


@pytest.fixture(scope="module", autouse=True)
def _built_here(shared_cache: Path) -> None:
    build_in_process(
        shared_cache, precisions=("fp32", "int8"), fmt="pte", builder="pytest_edgeopt.optimize.executorch:BUILDER"
    )


DIGITS = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
@pytest.mark.edge_runtimes("onnxruntime", "executorch")
def test_digits(edge_model, edge_precision, edge_runner, edge_runtime):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    m.check(max_accuracy_drop=1.0, min_agreement=0.98)
    if edge_runtime == "executorch" and edge_precision == "fp32":
        assert m.parity.ok and m.parity.runtime == "onnxruntime" and m.parity.max_abs < 1e-4, m.parity
"""


def test_digits_measures_at_fp32_and_int8_through_the_plugin_with_parity(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=DIGITS)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=4)
    rows = [row for row in table(result) if row["Runtime"].startswith("executorch ")]
    assert len(rows) == 2 and all(row["Runtime"].endswith(" (XNNPACK)") for row in rows)
    assert [row["Bit-width (W/A)"] for row in rows] == ["FP32/FP32", "INT8/INT8"]
    assert float(rows[1]["Storage (MB)"]) * 3 < float(rows[0]["Storage (MB)"])
    assert float(rows[0]["Params (M)"]) > 0 and not rows[0]["Compute (GFLOPs, GFLOP/s)"].startswith("0,")
    assert any(line.split("] ", 1)[1].startswith("parity vs onnxruntime: top-1 100.0%") for line in notes(result))


MARKED = """
import pytest

@pytest.mark.edge_runtimes("executorch")
def test_x(edge_runner):
    pass
"""


def test_without_the_plugin_executorch_is_an_unknown_runtime(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=MARKED)
    result = pytester.runpytest(*QUICK, "-p", "no:edgeopt-executorch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown runtime 'executorch'; choose from onnxruntime, tflite, *openvino*"])
    assert "executorch," not in result.stderr.str()


ONNX_ONLY = """
from pytest_edgeopt import EdgeModel

def test_onnx(edge_runner):
    edge_runner.measure(EdgeModel.from_onnx("digits_fp32.onnx"), precision="fp32", runtime="executorch")
"""


def test_an_onnx_only_model_is_a_one_line_error_naming_the_fix(pytester: pytest.Pytester) -> None:
    (pytester.path / "digits_fp32.onnx").write_bytes((DATA / "digits_fp32.onnx").read_bytes())
    pytester.makepyfile(test_x=ONNX_ONLY)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(failed=1)
    assert failures(result)["test_onnx"] == (
        "EdgeOptError: digits_fp32 is a onnx file and ExecuTorch lowers a torch.nn.Module: pass the module "
        "(EdgeModel.from_torch) to measure it with runtime='executorch'"
    )


def _job(artifact: Path, inputs: Path) -> dict:
    job = make_job(artifact, inputs, options={})
    job["runtime"] = {"name": "executorch", "module": EXECUTORCH.module, "cls": EXECUTORCH.cls,
                      "package": EXECUTORCH.package, "extra": EXECUTORCH.extra}  # fmt: skip
    return job


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    from pytest_edgeopt.models.digits import _load_split

    path = tmp_path / "inputs.npz"
    np.savez(path, inputs=_load_split()[0][:16])
    return path


def test_a_broken_pte_is_a_one_line_bad_artifact(tmp_path: Path, inputs: Path) -> None:
    broken = tmp_path / "broken.pte"
    broken.write_bytes(b"\x00" * 64)
    result, _, _ = run_agent(json.dumps(_job(broken, inputs)))
    assert result["ok"] is False and result["kind"] == "bad-artifact", result
    assert result["error"].startswith("cannot load broken.pte: ") and "\n" not in result["error"]


def test_a_device_without_torch_is_told_to_install_torch_not_executorch(
    tmp_path: Path, inputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ExecuTorch's C extension links libtorch and takes torch tensors: the dependency is named."""
    shadow_package("torch", tmp_path, monkeypatch)
    result, _, _ = run_agent(json.dumps(_job(tmp_path / "any.pte", inputs)))
    assert result["ok"] is False and result["kind"] == "missing-runtime", result
    assert result["error"] == "torch is not installed (executorch needs it): pip install torch"
    assert result["package"] == "torch"


def test_a_host_without_an_export_dependency_names_it() -> None:
    """executorch is installed with --no-deps: a missing ruamel.yaml is named, not executorch."""
    code = (
        "import sys; sys.modules['ruamel'] = None\n"
        "from pytest_edgeopt.optimize.executorch import require_exir\n"
        "from pytest_edgeopt.errors import MissingDependency\n"
        "try:\n    require_exir()\nexcept MissingDependency as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == (
        "ruamel.yaml is not installed (ExecuTorch export needs it): " + install_command("executorch")
    ), done.stderr


ONET_FILE = Path(__file__).resolve().parent.parent / "data" / "third_party" / "mtcnn_onet.onnx"
ONET = f"""
import numpy as np
import torch
from torch import nn
from pytest_edgeopt import EdgeModel


class ONet(nn.Module):
    \"\"\"MTCNN's O-Net as facenet_pytorch/models/mtcnn.py defines it, with its published weights.\"\"\"

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, kernel_size=3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, kernel_size=3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, kernel_size=3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, kernel_size=2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
        self.dense6_2, self.dense6_3 = nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def published_weights():
    # facenet-pytorch's weights, read back from the shipped ONNX export (its PReLU slopes are
    # the unnamed initializers, in layer order)
    import onnx
    from onnx import numpy_helper

    found = {{i.name: numpy_helper.to_array(i) for i in onnx.load({str(ONET_FILE)!r}).graph.initializer}}
    slopes = [found.pop(name) for name in sorted((n for n in found if n.startswith("onnx::PRelu_")),
                                                 key=lambda n: int(n.rsplit("_", 1)[1]))]
    found.update({{f"prelu{{i + 1}}.weight": slope.reshape(-1) for i, slope in enumerate(slopes)}})
    return {{name: torch.from_numpy(np.array(value)) for name, value in found.items()}}


def test_onet(edge_runner):
    module = ONet().eval()
    module.load_state_dict(published_weights())
    x = np.random.default_rng(0).uniform(-1, 1, (8, 3, 48, 48)).astype(np.float32)
    model = EdgeModel.from_torch(module, name="mtcnn-onet", example_input=x[:1], eval_data=x)
    m = edge_runner.measure(model, precision="fp32",
                            runtime="executorch")
    assert m.parity.ok, m.parity  # the portable kernels compute what ONNX Runtime computes
"""


def test_a_graph_xnnpack_cannot_lower_runs_on_the_portable_kernels_and_the_row_says_so(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x=ONET)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1)
    said = " ".join(" ".join(notes(result)).split())
    assert "XNNPACK could not lower it (An error occurred when running the 'ChannelsLastTaggedReshapePass'" in said
    assert "measured on ExecuTorch's portable kernels, without the delegate" in said
    row = table(result)[0]
    assert "XNNPACK" not in row["Runtime"], row
