"""The user contract of `edge_runner.measure(...)`, driven through pytester with real models.

Every run uses the session's shared artifact cache (tests/conftest.py), so each export and
quantization happens once per session however many runs ask for it.
"""

from __future__ import annotations

import platform
import re
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


QUICK = ("--edge-quick", "-p", "no:cacheprovider")
X86 = ("x86_64", "amd64", "i686", "x86")

BITWIDTHS = {
    "fp32": "FP32/FP32",
    "fp16": "FP16/FP16",
    "int8": "INT8/INT8",
    "int8-dynamic": "INT8/FP32",
    "int8-u8s8": "INT8/INT8",
    "int8-s8s8": "INT8/INT8",
}


def one_line_failures(result: pytest.RunResult) -> dict:
    """test name -> its failure report text; each must be one line (the plugin's EdgeOptError)."""
    failures = {}
    for report in result.reprec.getfailures():  # type: ignore[attr-defined]
        text = report.longreprtext.strip()
        assert "\n" not in text, f"{report.nodeid} failed with more than one line:\n{text}"
        failures[report.nodeid.split("::")[-1]] = text
    return failures


@pytest.fixture(scope="module", autouse=True)
def digits_onnx(shared_cache: Path) -> Path:
    """The digits CNN as a plain FP32 .onnx file, built by the plugin's own optimize stage.

    Building every kind of artifact here, in this process and before any pytester run, also keeps
    the native modules loaded: pytester restores sys.modules after each in-process run, and onnx's
    C extension aborts the whole process (SIGABRT, no message) when it is imported a second time.
    """
    import onnx  # noqa: F401
    import onnxruntime.quantization  # noqa: F401
    import sklearn.datasets  # noqa: F401

    from pytest_edgeopt.models.zoo import load_zoo_model
    from pytest_edgeopt.optimize.artifacts import build_artifact
    from pytest_edgeopt.optimize.cache import ArtifactCache
    from pytest_edgeopt.optimize.precisions import get_precision

    model, cache = load_zoo_model("digits-cnn"), ArtifactCache(shared_cache)
    built = {
        name: build_artifact(model, precision=get_precision(name), batch=1, arch=platform.machine(), cache=cache)
        for name in ("fp32", "fp16", "int8", "int8-dynamic")
    }
    return built["fp32"].path


# (a) a user's own torch module, trained in the test file ------------------------------------------

USER_MODULE = """
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    from pytest_edgeopt import EdgeModel


    class MyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 8, kernel_size=3, padding=1)
            self.fc = torch.nn.Linear(8 * 4 * 4, 10)

        def forward(self, x):
            x = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
            return self.fc(x.flatten(1))


    def load_split():
        digits = load_digits()
        x = (digits.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
        y = digits.target.astype(np.int64)
        order = np.random.default_rng(0).permutation(len(x))
        x, y = x[order], y[order]
        return x[:1400], y[:1400], x[1400:], y[1400:]


    def train(x_train, y_train, epochs=10):
        torch.manual_seed(0)
        net = MyNet()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
        inputs, labels = torch.from_numpy(x_train), torch.from_numpy(y_train)
        for _ in range(epochs):
            for start in range(0, len(inputs), 64):
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(net(inputs[start:start + 64]),
                                                         labels[start:start + 64])
                loss.backward()
                optimizer.step()
        return net.eval()


    def test_mynet_int8_agrees_with_fp32(edge_runner):
        x_train, y_train, x_test, y_test = load_split()
        model = EdgeModel.from_torch(
            train(x_train, y_train), name="mynet", example_input=torch.zeros(1, 1, 8, 8),
            eval_data=(x_test, y_test), calibration_data=x_train[:128])
        m = edge_runner.measure(model, precision="int8", runtime="onnxruntime")
        assert m.agreement >= 0.98
        assert m.reference_top1 >= 0.9 and m.top1 >= 0.9
        assert (m.model, m.precision, m.runtime, m.bitwidth) == ("mynet", "int8", "onnxruntime", "INT8/INT8")
        assert m.eval_count == len(x_test) and m.quantization["calibration_samples"] == 128
        assert not any("calibrated on the eval inputs" in note for note in m.notes)
"""


def test_user_torch_module_trained_in_the_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mynet=textwrap.dedent(USER_MODULE))
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*pytest-edgeopt: comparison table*", "mynet*INT8/INT8*"])


# (b) (e) (f) (g) every precision of the zoo model in one session ----------------------------------

PRECISION_MATRIX = """
    import platform
    from pathlib import Path

    import pytest

    BITWIDTHS = {bitwidths!r}
    INT8_ACTIVATION = "uint8" if platform.machine().lower() in {x86!r} else "int8"
    SEEN = {{}}


    @pytest.mark.parametrize("precision", list(BITWIDTHS))
    def test_precision(edge_runner, precision):
        m = edge_runner.measure("digits-cnn", precision=precision)
        assert (m.precision, m.bitwidth) == (precision, BITWIDTHS[precision])
        SEEN[precision] = m


    def test_fp32_again(edge_runner):
        SEEN["fp32 again"] = edge_runner.measure("digits-cnn", precision="fp32")


    def test_quantization_records_the_types_used():
        assert SEEN["fp32"].quantization == {{}}
        assert SEEN["fp16"].quantization["weight_type"] == "float16"
        assert SEEN["int8"].quantization["activation_type"] == INT8_ACTIVATION
        assert SEEN["int8-u8s8"].quantization["activation_type"] == "uint8"
        assert SEEN["int8-s8s8"].quantization["activation_type"] == "int8"
        for static in ("int8", "int8-u8s8", "int8-s8s8"):
            assert SEEN[static].quantization["format"] == "QDQ"
            assert SEEN[static].quantization["weight_type"] == "int8 per-channel"
            assert SEEN[static].quantization["calibration_samples"] == 128
        assert SEEN["int8-dynamic"].quantization["format"] == "IntegerOps"
        assert SEEN["int8-dynamic"].quantization["weight_type"] == "int8"


    def test_storage_shrinks_while_params_stay():
        fp32 = SEEN["fp32"]
        assert fp32.params > 0 and {{m.params for m in SEEN.values()}} == {{fp32.params}}
        for name in ("int8", "int8-dynamic", "int8-u8s8", "int8-s8s8"):
            assert SEEN[name].storage_mb < SEEN["fp16"].storage_mb < fp32.storage_mb
            assert SEEN[name].size_mb < fp32.size_mb


    def test_fp32_reference_is_measured_once_per_session():
        first, again = SEEN["fp32"], SEEN["fp32 again"]
        assert len(first.samples_ms) >= 5
        assert again.samples_ms == first.samples_ms and again.cpu_samples_ms == first.cpu_samples_ms
        assert again.nodeid != first.nodeid
        assert first.top1 >= 0.97
        for name in ("fp16", "int8", "int8-dynamic", "int8-u8s8", "int8-s8s8"):
            assert SEEN[name].reference_top1 == first.top1


    def test_agent_peak_rss_is_its_own():
        status = Path("/proc/self/status")
        if not status.exists():
            pytest.skip("needs /proc/self/status")
        line = next(l for l in status.read_text().splitlines() if l.startswith("VmHWM:"))
        own_mb = int(line.split()[1]) / 1024  # this pytest process imported torch
        for m in SEEN.values():
            assert 0 < m.peak_rss_mb < own_mb
            assert m.peak_rss_mb < own_mb / 2, (m.precision, m.peak_rss_mb, own_mb)


    def test_timing_fields_are_populated_and_consistent():
        for m in SEEN.values():
            assert m.load_ms > 0 and m.first_inference_ms > 0
            for stats, samples in ((m.latency, m.samples_ms), (m.cpu_latency, m.cpu_samples_ms)):
                assert stats.rounds == len(samples) >= 5
                assert stats.max_ms >= stats.p99_ms >= stats.p90_ms >= stats.median_ms >= stats.min_ms >= 0
                assert stats.iqr_ms >= 0 and stats.mean_ms >= stats.min_ms
            assert m.latency.min_ms > 0 and m.latency_ms == m.latency.median_ms
            assert m.throughput == pytest.approx(m.batch * 1000.0 / m.latency.median_ms)
            assert (m.batch, m.threads, m.eval_count) == (1, 1, 360)
            assert m.fingerprint["arch"] == platform.machine()
            assert m.runtime == "onnxruntime" and m.runtime_version
"""


def test_every_precision_of_a_zoo_model_in_one_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_matrix=textwrap.dedent(PRECISION_MATRIX.format(bitwidths=BITWIDTHS, x86=X86)))
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=len(BITWIDTHS) + 6)
    # the table: one FP32 row although two tests measured it, and the exact int8 types
    assert sum(1 for line in result.outlines if "FP32/FP32" in line and "fastest" not in line) == 1  # one table row
    result.stdout.fnmatch_lines(["*INT8/INT8 (U8S8)*", "*INT8/INT8 (S8S8)*", "*INT8/FP32 (dynamic)*"])


# (c) an .onnx file without eval data: agreement is the only accuracy signal -----------------------

ONNX_FILE = """
    from pytest_edgeopt import EdgeModel


    def test_from_onnx(edge_runner):
        m = edge_runner.measure(EdgeModel.from_onnx("digits.onnx", classifier=True), precision="int8")
        assert m.top1 is None and m.reference_top1 is None
        assert 0.0 <= m.agreement <= 1.0 and m.eval_count == 32
        assert m.model == "digits" and any("seeded random inputs" in note for note in m.notes)


    def test_plain_path(edge_runner):
        m = edge_runner.measure("digits.onnx", precision="fp32")
        # nothing says its [N, 10] output holds class scores: judged by fidelity, not argmax
        assert m.top1 is None and m.agreement is None and m.min_sqnr_db == float("inf")


    def test_accuracy_drop(edge_runner):
        m = edge_runner.measure("digits.onnx", precision="int8")
        assert m.accuracy_drop < 1.0
"""


def test_onnx_file_without_eval_data_gates_on_agreement(pytester: pytest.Pytester, digits_onnx: Path) -> None:
    shutil.copyfile(digits_onnx, pytester.path / "digits.onnx")
    pytester.makepyfile(test_onnx_file=textwrap.dedent(ONNX_FILE))
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=2, failed=1)
    failures = one_line_failures(result)
    assert list(failures) == ["test_accuracy_drop"]
    assert "agreement" in failures["test_accuracy_drop"]
    assert "accuracy_drop needs labelled eval data" in failures["test_accuracy_drop"]
    assert "Traceback" not in result.stdout.str()


# (d) batch ----------------------------------------------------------------------------------------

BATCH = """
    import pytest


    def test_batch(edge_runner):
        one = edge_runner.measure("digits-cnn", precision="fp32")
        four = edge_runner.measure("digits-cnn", precision="fp32", batch=4)
        four_int8 = edge_runner.measure("digits-cnn", precision="int8", batch=4)
        for m in (four, four_int8):
            assert m.batch == 4
            # latency is per batch of four inferences; throughput counts samples
            assert m.throughput == pytest.approx(4 * 1000.0 / m.latency_ms)
            assert m.eval_count == one.eval_count == 360  # the padded last batch is dropped
            assert m.gflops == pytest.approx(4 * one.gflops)  # the work of one batch of four
            assert m.params == one.params
        assert one.batch == 1 and four.artifact_sha != one.artifact_sha
        assert four.samples_ms != one.samples_ms
        assert abs(four.top1 - one.top1) <= 1 / 360
        assert four_int8.reference_top1 == four.top1
        assert four_int8.quantization["calibration_samples"] == 128
"""


def test_batch_four_measures_batches_of_four(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_batch=textwrap.dedent(BATCH))
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1)


THIRD_PARTY = """
import numpy as np
import pytest
from pytest_edgeopt import EdgeModel

INPUTS = np.random.default_rng(0).standard_normal((4, 3, 48, 192)).astype(np.float32)


@pytest.mark.parametrize("name", ["cls.onnx", "cls-if.onnx"])
def test_file(edge_runner, name):
    m = edge_runner.measure(EdgeModel.from_onnx(name, eval_data=INPUTS), precision="fp32")
    print(f"GFLOPS {name} {m.gflops!r}")
"""


def test_a_third_party_graph_with_dynamic_dims_gets_its_real_gflops_or_na(pytester: pytest.Pytester) -> None:
    from tests.onnx_graphs import paddle_style_classifier

    paddle_style_classifier(pytester.path / "cls.onnx")
    paddle_style_classifier(pytester.path / "cls-if.onnx", with_if=True)
    pytester.makepyfile(test_file=THIRD_PARTY)
    result = pytester.runpytest_inprocess("-s", *QUICK)
    result.assert_outcomes(passed=2)
    conv_and_fc = (2 * 8 * 3 * 3 * 3 * 48 * 192 + 2 * 8 * 2) / 1e9
    printed = dict(re.findall(r"GFLOPS (\S+) (\S+)", result.stdout.str()))
    assert float(printed["cls.onnx"]) == pytest.approx(conv_and_fc)  # at the eval shape, per sample
    assert printed["cls-if.onnx"] == "None"
    table = "\n".join(result.outlines)
    assert "-0.0" not in table
    assert "n/a (CPU)" in table


PPOCR = Path(__file__).resolve().parent.parent / "data" / "third_party" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
PPOCR_TEST = """
import numpy as np
import pytest
from pytest_edgeopt import EdgeModel

LINES = np.random.default_rng(0).uniform(-1, 1, (8, 3, 48, 192)).astype(np.float32)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_cls(edge_runner, precision):
    m = edge_runner.measure(EdgeModel.from_onnx("cls.onnx", name="ppocr-cls", eval_data=LINES), precision=precision)
    print(f"ROW {precision} storage={m.storage_mb} size={m.size_mb} gflops={m.gflops}")
    print("NOTES", [str(note) for note in m.notes])
"""


def test_a_third_party_opset_11_file_quantizes_to_a_smaller_int8(pytester: pytest.Pytester) -> None:
    """PP-OCR's classifier (paddle2onnx, opset 11): upgraded to a per-channel opset and
    pre-processed as ORT recommends, its INT8 file is smaller than FP32 (it was 0.754 vs 0.586 MB)."""
    shutil.copyfile(PPOCR, pytester.path / "cls.onnx")
    pytester.makepyfile(test_file=PPOCR_TEST)
    result = pytester.runpytest_inprocess("-s", *QUICK)
    result.assert_outcomes(passed=2)
    rows = {
        p: {k: float(v) for k, v in re.findall(r"(\w+)=([\d.e-]+)", line)}
        for p, line in re.findall(r"ROW (\S+) (.*)", result.stdout.str())
    }
    assert rows["int8"]["storage"] < 0.7 * rows["fp32"]["storage"]
    assert rows["int8"]["size"] < 0.5 * rows["fp32"]["size"]
    assert rows["fp32"]["gflops"] == rows["int8"]["gflops"] > 0.03  # counted at 3x48x192, never negative
    assert "stayed float" not in result.stdout.str()


SUB_TEST = """
import numpy as np
import pytest
from pytest_edgeopt import EdgeModel


@pytest.mark.edge_budget(min_quantized_share=0)  # nothing here can be quantized: the note says what stayed
def test_sub(edge_runner):
    data = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    m = edge_runner.measure(EdgeModel.from_onnx("sub.onnx", eval_data=data), precision="int8")
    print("NOTES", [str(note) for note in m.notes])
"""


def test_an_int8_file_that_is_not_smaller_says_which_weights_stayed_float(pytester: pytest.Pytester) -> None:
    import onnx
    from onnx import helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(1).standard_normal((64,)).astype(np.float32), "offsets")
    graph = helper.make_graph(
        [helper.make_node("Sub", ["x", "offsets"], ["y"])],  # no INT8 kernel takes a float operand here
        "sub",
        [helper.make_tensor_value_info("x", 1, ["n", 64])],
        [helper.make_tensor_value_info("y", 1, ["n", 64])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(pytester.path / "sub.onnx"))
    pytester.makepyfile(test_file=SUB_TEST)
    result = pytester.runpytest_inprocess("-s", *QUICK)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*INT8 weights are not smaller than FP32 (0.3 vs 0.3 kB): 1 weight tensors*offsets*"])
