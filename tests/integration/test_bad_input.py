"""Bad input fails the test with one line that says what is wrong, never a plugin traceback.

The inputs are real: a corrupt file, a text file, a model that emits NaN, data of the wrong shape.
A missing runtime is the one fault simulated, by shadowing onnxruntime for a pytest subprocess.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

QUICK = ("--edge-quick", "-p", "no:cacheprovider")

BAD_INPUTS = """
    import numpy as np
    import torch

    from pytest_edgeopt import EdgeModel
    from pytest_edgeopt.models.zoo import load_zoo_model

    DIGITS = load_zoo_model("digits-cnn")
    X, Y = DIGITS.eval_inputs, DIGITS.eval_labels


    class NanNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(x.flatten(1)) * float("nan")


    def test_corrupt_onnx(edge_runner):
        edge_runner.measure("corrupt.onnx", precision="fp32")


    def test_corrupt_onnx_with_eval_data(edge_runner):
        edge_runner.measure(EdgeModel.from_onnx("corrupt.onnx", eval_data=X), precision="fp32")


    def test_text_file_named_onnx(edge_runner):
        edge_runner.measure("notes.onnx", precision="fp32")


    def test_wrong_input_shape(edge_runner):
        model = EdgeModel.from_onnx("digits.onnx", eval_data=(np.zeros((10, 1, 9, 9), np.float32), Y[:10]))
        edge_runner.measure(model, precision="fp32")


    def test_model_producing_nan(edge_runner):
        model = EdgeModel.from_torch(NanNet(), name="nan-net", example_input=X[:1], eval_data=X[:20])
        edge_runner.measure(model, precision="fp32")


    def test_empty_eval_set(edge_runner):
        model = EdgeModel.from_torch(DIGITS.module, name="empty", example_input=X[:1], eval_data=(X[:0], Y[:0]))
        edge_runner.measure(model, precision="fp32")


    def test_label_count_mismatch(edge_runner):
        model = EdgeModel.from_torch(DIGITS.module, name="short", example_input=X[:1], eval_data=(X[:10], Y[:9]))
        edge_runner.measure(model, precision="fp32")


    def test_unknown_precision(edge_runner):
        edge_runner.measure("digits-cnn", precision="int4")


    def test_unknown_runtime(edge_runner):
        edge_runner.measure("digits-cnn", precision="fp32", runtime="tensorrt")


    def test_batch_zero(edge_runner):
        edge_runner.measure("digits-cnn", precision="fp32", batch=0)


    def test_unknown_zoo_name(edge_runner):
        edge_runner.measure("resnet9000", precision="fp32")


    def test_failed_quantization(edge_runner):
        model = EdgeModel.from_torch(DIGITS.module, name="few-calib", example_input=X[:1],
                                     eval_data=(X, Y), calibration_data=DIGITS.calibration_inputs[:2])
        edge_runner.measure(model, precision="int8", batch=4)
"""

EXPECTED = {  # test -> a piece of its one-line reason
    "test_corrupt_onnx": "corrupt.onnx is not a readable ONNX model",
    "test_corrupt_onnx_with_eval_data": "corrupt.onnx is not a readable ONNX model",
    "test_text_file_named_onnx": "notes.onnx is not a readable ONNX model",
    "test_wrong_input_shape": "the model takes input shape (1, 1, 8, 8) but the eval data gives (1, 1, 9, 9)",
    "test_model_producing_nan": "NaN",
    "test_empty_eval_set": "the eval set is empty",
    "test_label_count_mismatch": "10 eval inputs but 9 labels",
    "test_unknown_precision": "unknown precision 'int4'; choose from fp32, fp16, int8",
    "test_unknown_runtime": "unknown runtime 'tensorrt'; choose from executorch, onnxruntime",
    "test_batch_zero": "batch must be a whole number >= 1, got 0",
    "test_unknown_zoo_name": "unknown model 'resnet9000'; the zoo has digits-cnn",
    "test_failed_quantization": "calibration needs at least 4 samples (one batch), got 2",
}


@pytest.fixture(scope="module", autouse=True)
def digits_onnx(shared_cache: Path) -> Path:
    """The digits CNN as a plain FP32 .onnx file, built by the plugin's own optimize stage.

    Building (export, quantize) in this process before any pytester run keeps onnx's C extension
    loaded: pytester restores sys.modules after each in-process run, and importing that extension a
    second time aborts the whole process (SIGABRT, no message).
    """
    import onnx  # noqa: F401
    import onnxruntime.quantization  # noqa: F401

    from pytest_edgeopt.models.zoo import load_zoo_model
    from pytest_edgeopt.optimize.artifacts import build_artifact
    from pytest_edgeopt.optimize.cache import ArtifactCache
    from pytest_edgeopt.optimize.precisions import get_precision

    model, cache = load_zoo_model("digits-cnn"), ArtifactCache(shared_cache)
    built = {
        name: build_artifact(model, precision=get_precision(name), batch=1, arch=platform.machine(), cache=cache)
        for name in ("fp32", "int8")
    }
    return built["fp32"].path


def assert_cache_is_whole(cache_dir: Path) -> None:
    """No builder left a temporary file behind, and every artifact has its metadata and back."""
    names = set(os.listdir(cache_dir))
    assert not [n for n in names if n.endswith(".tmp")]
    bookkeeping = ("json", "lock")
    for name in names:
        stem, _, suffix = name.rpartition(".")
        if suffix not in bookkeeping:  # an artifact of any format (.onnx, .npz, .tflite, .pte, ...)
            assert f"{stem}.json" in names, name
        if suffix == "json":
            artifacts = [n for n in names if n.rpartition(".")[0] == stem and n.rpartition(".")[2] not in bookkeeping]
            assert artifacts, name


def test_every_bad_input_fails_with_one_line_and_no_traceback(
    pytester: pytest.Pytester, digits_onnx: Path, shared_cache: Path
) -> None:
    shutil.copyfile(digits_onnx, pytester.path / "digits.onnx")
    (pytester.path / "corrupt.onnx").write_bytes(np.random.default_rng(7).bytes(4096))
    (pytester.path / "notes.onnx").write_text("this is not a model, just notes about one\n")
    pytester.makepyfile(test_bad=textwrap.dedent(BAD_INPUTS))

    result = pytester.runpytest(*QUICK, "-rf")

    result.assert_outcomes(failed=len(EXPECTED))
    output = result.stdout.str()
    assert "Traceback" not in output
    assert "pytest_edgeopt/" not in output and "pytest_edgeopt\\" not in output
    failures = {}
    for report in result.reprec.getfailures():  # type: ignore[attr-defined]
        text = report.longreprtext.strip()
        assert "\n" not in text, f"{report.nodeid} failed with more than one line:\n{text}"
        failures[report.nodeid.split("::")[-1]] = text
    assert set(failures) == set(EXPECTED)
    for name, piece in EXPECTED.items():
        assert piece in failures[name], (name, failures[name])
        assert failures[name].startswith("EdgeOptError: ")
    # the short summary carries the same one line
    result.stdout.fnmatch_lines(["FAILED test_bad.py::test_wrong_input_shape - EdgeOptError: digits *"])
    assert_cache_is_whole(shared_cache)
    # the failed export (a copy of corrupt.onnx) and the failed quantization left no entry at all
    from pytest_edgeopt import EdgeModel
    from pytest_edgeopt.models.zoo import load_zoo_model

    digits = load_zoo_model("digits-cnn")
    corrupt = EdgeModel.from_onnx(pytester.path / "corrupt.onnx", eval_data=digits.eval_inputs)
    few = EdgeModel.from_torch(
        digits.module,
        name="few",
        example_input=digits.example_input,
        eval_data=digits.eval_inputs,
        calibration_data=digits.calibration_inputs[:2],
    )
    parts = [json.loads(meta.read_text())["parts"] for meta in shared_cache.glob("*.json")]
    assert not [p for p in parts if p.get("model") == corrupt.content_hash()]
    assert not [p for p in parts if p.get("calibration") == few.data_hash("calibration")]


MISSING_RUNTIME = """
    from pytest_edgeopt import EdgeModel


    def test_zoo_model(edge_runner):
        edge_runner.measure("digits-cnn", precision="fp32")


    def test_onnx_file(edge_runner):
        edge_runner.measure(EdgeModel.from_onnx("digits.onnx"), precision="fp32")
"""


def test_missing_runtime_skips_with_the_install_hint(
    pytester: pytest.Pytester, digits_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """onnxruntime shadowed by a package that raises ImportError, for pytest and its agent alike."""
    fake = pytester.mkdir("no_onnxruntime") / "onnxruntime"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'onnxruntime' (simulated)\")\n")
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    shutil.copyfile(digits_onnx, pytester.path / "digits.onnx")
    pytester.makepyfile(test_missing=textwrap.dedent(MISSING_RUNTIME))

    result = pytester.runpytest_subprocess(*QUICK, "-rs")

    result.assert_outcomes(skipped=2)
    skips = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert skips and all('pip install "pytest-edgeopt[onnx]"' in line for line in skips)
    # the agent found the runtime missing (the host needs none for fp32 of a cached export)
    assert all("(the onnxruntime runtime)" in line for line in skips)
    assert "Traceback" not in result.stdout.str()
