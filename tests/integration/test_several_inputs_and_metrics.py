"""Models that are not single-input classifiers: several inputs, dense outputs, task metrics,
fidelity against FP32 and a reference model, driven through pytester on real runtimes.

The graphs are small real ONNX files built here (a recurrent-state input batched on axis 1 and a
constant scalar, like Silero VAD's `state [2, N, 128]` and `sr`), real torch modules exported by
the plugin, and the third-party Silero VAD and PP-OCR detector shipped in `suites/models/`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.pytester_helpers import QUICK, failures, table

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

SUITE_MODELS = Path(__file__).resolve().parents[2] / "suites" / "models"


def stateful_graph(path: Path) -> Path:
    """y = x @ W + k * sum(state, axis 0) and stateN = 0.5 * state, from `x [N, 8]`,
    `state [2, N, 4]` (batch on axis 1, as Silero VAD's) and `k`, a scalar fed once per call."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(3).standard_normal((8, 4)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("ReduceSum", ["state", "axes"], ["summed"], keepdims=0),
        helper.make_node("Mul", ["summed", "k"], ["scaled"]),
        helper.make_node("Add", ["xw", "scaled"], ["y"]),
        helper.make_node("Mul", ["state", "half"], ["stateN"]),
    ]
    graph = helper.make_graph(
        nodes,
        "stateful",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "n", 4]),
            helper.make_tensor_value_info("k", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4]),
            helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [2, "n", 4]),
        ],
        [
            numpy_helper.from_array(weight, "W"),
            numpy_helper.from_array(np.array([0], np.int64), "axes"),
            numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    np.save(path.with_suffix(".W.npy"), weight)
    return path


STATEFUL = """
import numpy as np
import pytest
from pytest_edgeopt import EdgeModel, Metric

rng = np.random.default_rng(0)
N = 24
X = rng.standard_normal((N, 8)).astype(np.float32)
STATE = rng.standard_normal((N, 2, 4)).astype(np.float32)  # batch-first; the model takes [2, N, 4]
W = np.load("stateful.W.npy")
EXPECTED = X @ W + 2.0 * STATE.sum(axis=1)


def max_error(outputs, labels):
    return float(np.max(np.abs(outputs["y"] - labels)))


def model(**extra):
    data = ({"x": X, "state": STATE, "k": np.array(2.0, np.float32)}, EXPECTED)
    return EdgeModel.from_onnx("stateful.onnx", name="stateful", eval_data=data,
                               metric=Metric("max error", max_error, higher_is_better=False), **extra)


@pytest.mark.parametrize("batch", [1, 4])
def test_fp32(edge_runner, batch):
    m = edge_runner.measure(model(), precision="fp32", batch=batch)
    state_n = m.fidelity["stateN"]
    print(f"FP32 batch={batch} metric={m.metric} agreement={m.agreement} sqnr={state_n.sqnr_db}")


def test_int8(edge_runner):
    m = edge_runner.measure(model(), precision="int8")
    f = m.fidelity["y"]
    print(f"INT8 metric={m.metric} drop={m.metric_drop} sqnr={f.sqnr_db} cosine={f.cosine} max_abs={f.max_abs}")
    m.check(min_cosine=0.9)


def test_impossible_fidelity(edge_runner):
    edge_runner.measure(model(), precision="int8").check(min_sqnr_db=500)
"""


def test_several_named_inputs_reach_the_model_on_their_own_batch_axis(pytester: pytest.Pytester) -> None:
    """The state goes in as [2, N, 4] from batch-first data, the scalar once per call: the FP32
    outputs equal numpy's at batch 1 and 4, and INT8 is judged by its metric and fidelity."""
    stateful_graph(pytester.path / "stateful.onnx")
    pytester.makepyfile(test_stateful=STATEFUL)
    result = pytester.runpytest_inprocess("-s", *QUICK)
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    for batch in (1, 4):
        metric = float(re.search(rf"FP32 batch={batch} metric=(\S+)", out).group(1))  # type: ignore[union-attr]
        assert metric < 1e-4  # the model computed exactly x @ W + k * sum(state): the axes were right
    # y is 4 wide, which is no reason to call it class scores: a metric and fidelity judge it
    assert "agreement=None" in out.split("FP32 batch=1")[1].split("\n")[0]
    assert "sqnr=inf" in out
    int8 = dict(re.findall(r"(\w+)=(\S+)", re.search(r"INT8 (.*)", out).group(1)))  # type: ignore[union-attr]
    assert np.isfinite(float(int8["sqnr"])) and float(int8["cosine"]) > 0.9
    assert float(int8["drop"]) >= 0  # lower is better: a larger error is a positive drop
    reason = failures(result)["test_impossible_fidelity"]
    assert "min_sqnr_db" in reason and "limit >= 500 dB" in reason
    rows = table(result)
    assert any(r["Top-1 (%)"].startswith("max error ") for r in rows)


TWO_OUTPUTS = """
import numpy as np
import pytest
import torch
from pytest_edgeopt import EdgeModel


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Linear(16, 32)
        self.logits = torch.nn.Linear(32, 5)
        self.score = torch.nn.Linear(32, 1)

    def forward(self, image, mask):
        h = torch.relu(self.body(image * mask))
        return self.score(h), self.logits(h)


X = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32)
MASK = (np.random.default_rng(1).uniform(size=(40, 16)) > 0.2).astype(np.float32)
LABELS = np.random.default_rng(2).integers(0, 5, 40)


def model(output=None, name="two-heads"):
    return EdgeModel.from_torch(Net(), name=name, example_input=(X[:1], MASK[:1]),
                                eval_data=({"image": X, "mask": MASK}, LABELS), output=output)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_scored_by_name(edge_runner, precision):
    m = edge_runner.measure(model(output=1), precision=precision)
    print(f"NAMED {precision} agreement={m.agreement} top1={m.top1} outputs={sorted(m.fidelity)}")


def test_default_first_output(edge_runner):
    m = edge_runner.measure(model(name="first-head"), precision="int8")
    print(f"FIRST agreement={m.agreement} top1={m.top1} sqnr={m.min_sqnr_db}")


def test_no_such_output(edge_runner):
    edge_runner.measure(model(output="probabilities"), precision="fp32")


def test_tuple_eval_data_is_refused(edge_runner):
    EdgeModel.from_torch(Net(), name="x", example_input=(X[:1], MASK[:1]), eval_data=(X, MASK))
"""


def test_a_torch_model_with_two_inputs_and_two_outputs_scores_the_output_it_is_told(
    pytester: pytest.Pytester,
) -> None:
    """Tuple example inputs are named after forward's parameters; `output=` picks the class
    output (agreement and top-1 there); class-id labels on the default first output, a [N, 1]
    score, are refused in one line listing the outputs, and so is a wrong name."""
    pytester.makepyfile(test_heads=TWO_OUTPUTS)
    result = pytester.runpytest_inprocess("-s", "--edge-table-columns=all", *QUICK)
    result.assert_outcomes(passed=2, failed=3)
    out = result.stdout.str()
    named = re.search(r"NAMED int8 agreement=(\S+) top1=(\S+) outputs=(.*)", out)
    assert named is not None and float(named.group(1)) > 0.5 and named.group(2) != "None"
    assert len(eval(named.group(3))) == 2  # fidelity of both outputs
    reasons = failures(result)
    first = reasons["test_default_first_output"]
    assert "the scored output 'linear_1' [1] has no class axis" in first
    assert "(outputs: 'linear_1' [1], 'linear_2' [5])" in first
    wrong = reasons["test_no_such_output"]
    assert "no output 'probabilities'" in wrong and "\n" not in wrong.strip().splitlines()[-1]
    assert "pass eval_data as a dict" in reasons["test_tuple_eval_data_is_refused"]


METRIC_ERRORS = """
import numpy as np
import pytest
import torch
from pytest_edgeopt import EdgeModel, Metric

torch.manual_seed(0)
NET = torch.nn.Sequential(torch.nn.Linear(8, 3))
X = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
MASKS = np.random.default_rng(1).uniform(size=(16, 4, 4)) > 0.5


def broken(outputs, labels):
    return outputs["missing"].mean()


def not_a_number(outputs, labels):
    return "good"


def mean_output(outputs, labels):
    assert labels.shape == (16, 4, 4)  # labels that are not class ids reach the metric as given
    return float(outputs["output"].mean())


def measure(edge_runner, metric, **budgets):
    model = EdgeModel.from_torch(NET, name="m", example_input=X[:1], eval_data=(X, MASKS), metric=metric)
    return edge_runner.measure(model, precision="fp32").check(**budgets)


def test_raises(edge_runner):
    measure(edge_runner, Metric("IoU", broken))


def test_returns_text(edge_runner):
    measure(edge_runner, Metric("IoU", not_a_number))


def test_budget(edge_runner):
    measure(edge_runner, Metric("mean", mean_output), min_metric=1e9)


def test_masks_without_a_metric(edge_runner):
    EdgeModel.from_torch(NET, name="m", example_input=X[:1], eval_data=(X, MASKS))


def test_no_metric_drop(edge_runner):
    model = EdgeModel.from_torch(NET, name="m", example_input=X[:1], eval_data=X)
    edge_runner.measure(model, precision="fp32").check(max_metric_drop=1.0)
"""


def test_a_metric_that_raises_or_returns_no_number_fails_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_metric=METRIC_ERRORS)
    result = pytester.runpytest_inprocess(*QUICK)
    result.assert_outcomes(failed=5)
    reasons = {name: text.strip().splitlines()[-1] for name, text in failures(result).items()}
    assert "metric 'IoU' of model 'm' raised KeyError: 'missing' at test_metric.py:" in reasons["test_raises"]
    assert "returned 'good': it must return one finite number" in reasons["test_returns_text"]
    assert "min_metric" in failures(result)["test_budget"] and "limit >= 1e+09" in failures(result)["test_budget"]
    assert "not class ids; pass metric=Metric" in reasons["test_masks_without_a_metric"]
    assert "metric_drop needs a task metric" in failures(result)["test_no_metric_drop"]


TEACHER = """
import numpy as np
import torch
from pytest_edgeopt import EdgeModel

torch.manual_seed(0)
TEACHER = torch.nn.Sequential(torch.nn.Linear(32, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
STUDENT = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
X = np.random.default_rng(0).standard_normal((48, 32)).astype(np.float32)
LABELS = TEACHER(torch.from_numpy(X)).argmax(1).numpy()  # the teacher is right by construction


def test_student(edge_runner):
    teacher = EdgeModel.from_torch(TEACHER, name="teacher", example_input=X[:1], eval_data=(X, LABELS))
    student = EdgeModel.from_torch(STUDENT, name="student", example_input=X[:1], eval_data=(X, LABELS))
    m = edge_runner.measure(student, precision="int8", reference=teacher)
    print(f"STUDENT drop={m.accuracy_drop} ref_top1={m.reference_top1} size_ratio={m.size_ratio} "
          f"latency_ratio={m.latency_ratio} agreement={m.agreement} against={m.reference_model}")
    m.check(max_size_ratio=0.2)


def test_other_eval_data(edge_runner):
    teacher = EdgeModel.from_torch(TEACHER, name="teacher", example_input=X[:1], eval_data=X[:8])
    student = EdgeModel.from_torch(STUDENT, name="student", example_input=X[:1], eval_data=X)
    edge_runner.measure(student, precision="int8", reference=teacher)
"""


def test_a_compressed_student_is_judged_against_its_teacher(pytester: pytest.Pytester) -> None:
    """accuracy_drop against the teacher's FP32 top-1 (100% by construction), the size and
    latency ratios against the teacher; a teacher evaluated on other data is one line."""
    pytester.makepyfile(test_teacher=TEACHER)
    result = pytester.runpytest_inprocess("-s", *QUICK)
    result.assert_outcomes(passed=1, failed=1)
    facts = dict(re.findall(r"(\w+)=(\S+)", re.search(r"STUDENT (.*)", result.stdout.str()).group(1)))  # type: ignore[union-attr]
    assert float(facts["ref_top1"]) == 1.0 and float(facts["drop"]) == pytest.approx(
        100 * (1 - float(facts["agreement"]))
    )
    assert float(facts["size_ratio"]) < 0.2 and float(facts["latency_ratio"]) > 0
    assert facts["against"] == "teacher"
    assert "same eval_data" in failures(result)["test_other_eval_data"]


CAP = """
import numpy as np
from pytest_edgeopt import EdgeModel


def test_capped(edge_runner):
    model = EdgeModel.from_onnx("stateful.onnx", eval_data={
        "x": np.zeros((64, 8), np.float32), "state": np.zeros((64, 2, 4), np.float32), "k": np.array(1.0, np.float32)})
    edge_runner.measure(model, precision="fp32")


def test_missing_input(edge_runner):
    model = EdgeModel.from_onnx("stateful.onnx", eval_data={"x": np.zeros((4, 8), np.float32)})
    edge_runner.measure(model, precision="fp32")


def test_wrong_state_shape(edge_runner):
    model = EdgeModel.from_onnx("stateful.onnx", eval_data={
        "x": np.zeros((4, 8), np.float32), "state": np.zeros((4, 3, 4), np.float32), "k": np.array(1.0, np.float32)})
    edge_runner.measure(model, precision="fp32")


def test_varying_constant(edge_runner):
    model = EdgeModel.from_onnx("stateful.onnx", eval_data={
        "x": np.zeros((4, 8), np.float32), "state": np.zeros((4, 2, 4), np.float32),
        "k": np.arange(4, dtype=np.float32)})
    edge_runner.measure(model, precision="fp32")
"""


def test_bad_several_input_data_and_an_outputs_cap_fail_in_one_line(pytester: pytest.Pytester) -> None:
    stateful_graph(pytester.path / "stateful.onnx")
    pytester.makepyfile(test_cap=CAP)
    pytester.makeini("[pytest]\nedgeopt_max_outputs_mb = 0.001\n")
    result = pytester.runpytest_inprocess(*QUICK)
    result.assert_outcomes(failed=4)
    reasons = {name: text.strip().splitlines()[-1] for name, text in failures(result).items()}
    assert "pass the cap of 0.001 MB" in reasons["test_capped"] and "edgeopt_max_outputs_mb" in reasons["test_capped"]
    assert "input(s) state, k have no eval data (given: x)" in reasons["test_missing_input"]
    assert (
        "input 'state': the model takes shape (2, ?, 4) but one eval sample has shape (3, 4)"
        in reasons["test_wrong_state_shape"]
    )
    assert "input 'k' is not batched by the model" in reasons["test_varying_constant"]


EVERY_RUNTIME = """
import numpy as np
import pytest
import torch
from pytest_edgeopt import EdgeModel


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Linear(16, 32)
        self.logits = torch.nn.Linear(32, 5)

    def forward(self, image, mask):
        return self.logits(torch.relu(self.body(image * mask)))


X = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32)
MASK = (np.random.default_rng(1).uniform(size=(40, 16)) > 0.2).astype(np.float32)


@pytest.mark.edge_runtimes("onnxruntime", "openvino", "tflite", "executorch")
@pytest.mark.edge_precisions("fp32", "int8")
def test_two_inputs(edge_runner, edge_runtime, edge_precision):
    model = EdgeModel.from_torch(Net(), name="masked", example_input={"image": X[:1], "mask": MASK[:1]},
                                 eval_data={"image": X, "mask": MASK},
                                 calibration_data={"image": X[:16], "mask": MASK[:16]}, classifier=True)
    m = edge_runner.measure(model, precision=edge_precision)
    print(f"RUNTIME {edge_runtime} {edge_precision} agreement={m.agreement} sqnr={m.min_sqnr_db}")
"""


def test_a_two_input_torch_model_runs_and_calibrates_on_every_runtime(pytester: pytest.Pytester) -> None:
    """Exported with its inputs' names (ONNX), numbered (ExecuTorch's input_0, litert-torch's
    args_0) and fed in forward's order; every INT8 calibrated on both inputs agrees with FP32."""
    pytester.makepyfile(test_runtimes=EVERY_RUNTIME)
    result = pytester.runpytest_inprocess("-s", *QUICK)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("passed", 0) >= 4, result.stdout.str()[-3000:]
    rows = re.findall(r"RUNTIME (\S+) (\S+) agreement=(\S+) sqnr=(\S+)", result.stdout.str())
    assert {runtime for runtime, *_ in rows} >= {"onnxruntime"}
    for runtime, precision, agreement, sqnr in rows:
        assert float(agreement) >= (1.0 if precision == "fp32" else 0.7), (runtime, precision)
        assert float(sqnr) > 5, (runtime, precision)  # a random net's int8: 9-22 dB here; a mis-fed input: < 0
