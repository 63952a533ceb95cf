"""Green means checked, part two: the cached artifact is the model under test, and nothing a file,
a device or a signal says can switch the gate off (issue 24).

One section per numbered reproduction of the issue; each test failed on the code before the fix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Tuple

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.integration.test_green_means_checked import SLOW_AGENT, _agents_of, agents_left
from tests.integration.test_update_baselines import baseline_file
from tests.pytester_helpers import QUICK, assert_gate_failed, failures, table

OWN_CACHE = "--edge-cache-dir=cache"

# -- 1. two different models never share one cached artifact ---------------------------------------------------

# Labels come from each model's own forward: top-1 is 100% exactly when the measured artifact is that model.
TWO_MODELS = """
import numpy as np
import pytest
import torch

from pytest_edgeopt import EdgeModel

CLASSES


def own_labels(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x)).argmax(1).numpy()


@pytest.mark.parametrize("arg", ARGS)
def test_net(edge_runner, arg):
    x = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    net = Net(arg)
    model = EdgeModel.from_torch(net, name="net", example_input=x[:1], eval_data=(x, own_labels(net, x)))
    assert edge_runner.measure(model, precision="fp32").top1 == 1.0
"""

NET = """
class Net(torch.nn.Module):
    def __init__(self, arg):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(16, 4)
        HOLD

    def forward(self, x):
        return FORWARD
"""
# a plain attribute: not a parameter, not a buffer, not in repr()
SCALED = NET.replace("HOLD", "self.k = arg").replace("FORWARD", "self.k * self.fc(x)")
# a buffer that is not in state_dict()
NORMED = NET.replace("HOLD", 'self.register_buffer("mean", torch.full((16,), arg), persistent=False)').replace(
    "FORWARD", "self.fc(x - self.mean)"
)
HELPED = "from helpers import act\n" + NET.replace("HOLD", "").replace("FORWARD", "act(self.fc(x))")


def _two_models(classes: str, args: str) -> str:
    return TWO_MODELS.replace("CLASSES", classes).replace("ARGS", args)


def test_a_plain_attribute_is_part_of_the_cache_key(pytester: pytest.Pytester) -> None:
    """Scaled(1.0) then Scaled(-1.0): the attribute-parts of the key tell them apart."""
    pytester.makepyfile(test_net=_two_models(SCALED, "[1.0, -1.0]"))
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=2)


def test_a_non_persistent_buffer_is_part_of_the_cache_key(pytester: pytest.Pytester) -> None:
    """Normed(mean=0.0) then Normed(mean=3.0): the buffer-parts of the key tell them apart."""
    pytester.makepyfile(test_net=_two_models(NORMED, "[0.0, 3.0]"))
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=2)


def test_an_edited_helper_in_another_module_is_exported_again(pytester: pytest.Pytester) -> None:
    """act() lives in helpers.py; editing it changes the graph, and the reached-code part of the key."""
    pytester.makepyfile(test_net=_two_models(HELPED, "[0]"))
    pytester.makepyfile(helpers="import torch\n\ndef act(x):\n    return torch.relu(x) + x\n")
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=1)
    pytester.makepyfile(helpers="import torch\n\ndef act(x):\n    return -x\n")
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=1)


# -- 6. a baseline that overflows the parser is one error line for that file, the rest of the run goes on ------

ONE_CASE = """
import pytest

@pytest.mark.edge_budget(max_latency_regression="300%", max_top1_regression=0.0)
def test_a(edge_runner):
    edge_runner.measure("digits-cnn", precision="fp32")
"""
PLAIN_CASE = "def test_a(edge_runner):\n    edge_runner.measure('digits-cnn', precision='fp32')\n"
KEY = "test_a::digits-cnn/fp32/onnxruntime/b1"


def _two_modules_with_baselines(pytester: pytest.Pytester) -> Dict[str, Path]:
    pytester.makepyfile(test_x=ONE_CASE, test_y=ONE_CASE)
    pytester.runpytest(*QUICK, "--update-baselines").assert_outcomes(passed=2)
    return {module: baseline_file(pytester, module) for module in ("test_x", "test_y")}


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (
            lambda text: text.replace('"eval_count": 360', '"eval_count": ' + "9" * 5000),
            "an integer of 5000 digits is not a count a baseline holds",
        ),
        (
            lambda text: text.replace('"entries": {', '"deep": ' + "[" * 100_000 + "]" * 100_000 + ', "entries": {'),
            "nested too deeply",
        ),
    ],
    ids=["5000-digit-int", "deep-nesting"],
)
def test_an_oversized_baseline_fails_its_cases_and_the_session_still_writes_everything(
    pytester: pytest.Pytester, damage: Callable[[str], str], why: str
) -> None:
    paths = _two_modules_with_baselines(pytester)
    damaged = damage(paths["test_x"].read_text(encoding="utf-8"))
    paths["test_x"].write_text(damaged, encoding="utf-8")
    result = pytester.runpytest(*QUICK, "--edge-report=report.json")
    assert_gate_failed(result, failed=1, passed=1)
    reason = failures(result)["test_a"]
    assert (
        reason == f"BaselineFileError: {paths['test_x']}: not a baseline ({why}); regenerate it with --update-baselines"
    )
    assert table(result)  # the table is printed, with test_y's row
    assert json.loads((pytester.path / "report.json").read_text())["rows"]  # the report is written

    paths["test_y"].unlink()  # the other module's baseline is written by an update run, an ERROR line names this one
    result = pytester.runpytest(*QUICK, "--add-baselines")
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output and "INTERNALERROR" not in output
    result.stdout.fnmatch_lines([f"ERROR {paths['test_x']}: not a baseline ({why}*"])
    assert KEY in json.loads(paths["test_y"].read_text())["entries"]
    assert paths["test_x"].read_text(encoding="utf-8") == damaged  # the damaged file is left as it was


# -- 7. NaN and Infinity in a baseline are a damaged file, never an inconclusive pass ------------------------


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "1e999"])
def test_non_finite_baseline_samples_fail_the_case_naming_the_file(pytester: pytest.Pytester, constant: str) -> None:
    pytester.makepyfile(test_x=ONE_CASE)
    pytester.runpytest(*QUICK, "--update-baselines").assert_outcomes(passed=1)
    path = baseline_file(pytester, "test_x")
    data = json.loads(path.read_text())
    samples = data["entries"][KEY]["samples"]
    samples["wall_ms"] = samples["cpu_ms"] = ["SAMPLE"] * len(samples["wall_ms"])
    path.write_text(json.dumps(data).replace('"SAMPLE"', constant))
    result = pytester.runpytest(*QUICK)
    assert_gate_failed(result, failed=1, passed=0)
    reason = failures(result)["test_a"]
    assert reason.startswith(f"BaselineFileError: {path}: not a baseline (")
    assert reason.endswith("regenerate it with --update-baselines")


# -- 8. NaN budgets and option values are usage errors, never a gate that passes everything ----------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("--edge-timeout", "nan"), "*argument --edge-timeout: expected a finite number, got 'nan'"),
        (("--edge-cache-max-mb", "nan"), "*argument --edge-cache-max-mb: expected a finite number, got 'nan'"),
        (("--edge-max-time", "inf"), "*argument --edge-max-time: expected a finite number, got 'inf'"),
        (("-o", "edgeopt_timeout=nan"), "*ini option edgeopt_timeout = 'nan' is not a number*"),
        (("-o", "edgeopt_cache_max_mb=NaN"), "*ini option edgeopt_cache_max_mb = 'NaN' is not a number*"),
    ],
    ids=["timeout", "cache-max-mb", "max-time", "ini-timeout", "ini-cache-max-mb"],
)
def test_a_non_finite_option_is_a_usage_error(pytester: pytest.Pytester, args: tuple, line: str) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest(*QUICK, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([line])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("budget", ["min_top1", "max_storage_mb"])
def test_a_nan_budget_in_pyproject_is_a_usage_error(pytester: pytest.Pytester, budget: str) -> None:
    pytester.makepyfile(test_x=ONE_CASE)
    pytester.makepyprojecttoml(f"[tool.edgeopt.budgets]\n{budget} = nan\n")
    result = pytester.runpytest(*QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*pyproject.toml [[]tool.edgeopt[]]: {budget}=nan: expected a finite number"])


@pytest.mark.parametrize(
    "budget",
    ['max_peak_rss_mb=float("nan")', 'max_latency_regression="nan%"', 'max_latency_ratio_vs={"fp32": float("inf")}'],
)
def test_a_non_finite_budget_in_a_marker_is_a_usage_error(pytester: pytest.Pytester, budget: str) -> None:
    pytester.makepyfile(test_x=ONE_CASE.replace('max_latency_regression="300%", max_top1_regression=0.0', budget))
    result = pytester.runpytest(*QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_x.py::test_a: @pytest.mark.edge_budget: max_*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# -- 9. labels are class ids: NaN, negative, fractional and out-of-range labels fail the case ----------------

LABELLED = """
import numpy as np
import torch

from pytest_edgeopt import EdgeModel


def test_labels(edge_runner):
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    labels = np.zeros(8, dtype=np.float64)
    labels[3] = LABEL
    model = EdgeModel.from_torch(torch.nn.Linear(16, 4), name="net", example_input=x[:1], eval_data=(x, labels))
    edge_runner.measure(model, precision="fp32")
"""


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("np.nan", "eval label nan (index 3) is not a class id; labels must be whole numbers 0..classes-1"),
        ("2.5", "eval label 2.5 (index 3) is not a class id; labels must be whole numbers 0..classes-1"),
        ("-1", "eval label -1 (index 3) is negative; labels must be class ids 0..classes-1"),
        ("4", "the eval labels are class ids, but the scored output 'output' [4] has 4 classes, the labels run 0..4"),
    ],
    ids=["nan", "fractional", "negative", "out-of-range"],
)
def test_a_label_that_is_no_class_id_fails_the_case(pytester: pytest.Pytester, label: str, message: str) -> None:
    pytester.makepyfile(test_x=LABELLED.replace("LABEL", label))
    result = pytester.runpytest(*QUICK)
    assert_gate_failed(result, failed=1, passed=0)
    assert failures(result)["test_labels"].startswith(f"EdgeOptError: model 'net': {message}")


# -- 10. lock files are regular files of our own; an I/O fault is one line ---------------------------------------


def _cached_case(pytester: pytest.Pytester) -> Path:
    """A passing run with its own cache; returns the cache."""
    pytester.makepyfile(test_x=PLAIN_CASE)
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=1)
    return pytester.path / "cache"


@pytest.mark.parametrize("plant", ["symlink", "fifo"])
def test_a_planted_lock_file_is_refused_in_one_line(pytester: pytest.Pytester, plant: str) -> None:
    cache = _cached_case(pytester)
    lock = sorted(cache.glob("*.lock"))[0]
    lock.unlink()
    outside = pytester.path / "outside" / "created-by-the-lock"
    if plant == "symlink":
        lock.symlink_to(outside)
    else:
        os.mkfifo(lock)
    result = pytester.runpytest_subprocess(*QUICK, OWN_CACHE, timeout=300)  # a FIFO used to hang here
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    kind = "a symbolic link" if plant == "symlink" else "not a regular file"
    result.stdout.fnmatch_lines([f"EdgeOptError: lock file {lock} is {kind}*"])
    assert not outside.parent.exists()


def test_a_full_disk_while_writing_the_eval_file_is_one_line(pytester: pytest.Pytester) -> None:
    """/dev/full answers every write with ENOSPC: the eval file's write fails as on a full disk."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    pytester.makeconftest(
        """
        import numpy as np
        import pytest
        from pytest_edgeopt.optimize import artifacts

        def _full(inputs, dest):
            with open("/dev/full", "wb") as handle:
                np.save(handle, np.zeros(1 << 16))
                handle.flush()

        @pytest.fixture(autouse=True)
        def _disk_full(monkeypatch):
            # undone after the test: the in-process run shares this module with the tests that follow
            monkeypatch.setattr(artifacts, "_save_inputs", _full)
        """
    )
    pytester.makepyfile(test_x=PLAIN_CASE)
    result = pytester.runpytest(*QUICK, OWN_CACHE)
    assert_gate_failed(result, failed=1, passed=0)
    reason = failures(result)["test_a"]
    assert reason.startswith(f"EdgeOptError: artifact cache {pytester.path / 'cache'}: No space left on device")
    assert len(reason.splitlines()) == 1


# -- 4. one timing lock per machine, whatever the cache dir -------------------------------------------------------


def test_the_timing_lock_is_the_machines_not_the_cache_dirs(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """A run with its own cache waits while another process holds the machine's timing lock."""
    import fcntl

    locks = tmp_path / "locks"
    locks.mkdir()
    pytester.makepyfile(test_x=PLAIN_CASE)
    env = {**os.environ, "EDGEOPT_LOCK_DIR": str(locks), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "pytest", *QUICK, OWN_CACHE, "-p", "no:randomly"]
    with open(locks / "host-latency.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # builds may run beside it; timing may not
        run = subprocess.Popen(command, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            while not list((pytester.path / "cache").glob("*.npz")) and run.poll() is None:
                time.sleep(0.2)
            time.sleep(3)  # ample for a cached 0.02 ms model to be timed, were it not waiting
            waited = run.poll() is None
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
    output = run.communicate(timeout=300)[0].decode()
    assert waited, output
    assert run.returncode == 0, output


# -- 13. reports escape what they render; an external-data path outside the model folder is never read -----------

ODD_NAME = """
import numpy as np
import torch

from pytest_edgeopt import EdgeModel


def test_odd(edge_runner):
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    name = "a|b\\n<img src=x onerror=alert(1)>"
    model = EdgeModel.from_torch(torch.nn.Linear(16, 4), name=name, example_input=x[:1], eval_data=x)
    edge_runner.measure(model, precision="fp32")
"""


def test_a_model_name_with_a_pipe_a_newline_or_html_stays_one_markdown_cell(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=ODD_NAME)
    pytester.runpytest(*QUICK, "--edge-report=report.md").assert_outcomes(passed=1)
    text = (pytester.path / "report.md").read_text()
    assert "<img" not in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    header_cells = rows[0].count("|")
    assert len(rows) == 3 and all(row.count("|") == header_cells for row in rows), text
    assert "a&#124;b &lt;img src=x onerror=alert(1)>" in rows[2]


def test_an_external_data_file_outside_the_model_folder_is_not_read_into_the_key(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from pytest_edgeopt import EdgeModel

    folder = tmp_path / "model"
    folder.mkdir()
    weights = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[16, 4])
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../outside.bin"), ("offset", "0"), ("length", str(16 * 4 * 4))):
        weights.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [weights],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(folder / "m.onnx"))
    x = np.zeros((4, 16), dtype=np.float32)
    keys = []
    for fill in (b"\x01", b"\x02"):
        (tmp_path / "outside.bin").write_bytes(fill * 256)
        keys.append(EdgeModel.from_onnx(folder / "m.onnx", eval_data=x).content_hash())
    assert keys[0] == keys[1]


# -- 2. the user's graph on the host runs in a child process under the deadline, killed as a group ---------------

CHILD = b"pytest_edgeopt._isolate"
SPIN_CASES = """
import numpy as np
import pytest

from pytest_edgeopt import EdgeModel

ONES = np.ones((8, 4), np.float32)
ENDLESS = np.full((8, 4), 1e12, np.float32)  # the Loop runs max(x) times


def test_probe(edge_runner):
    edge_runner.measure(EdgeModel.from_onnx("probe.onnx", eval_data=ENDLESS), precision="fp32")


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_calibration(edge_runner, runtime):
    model = EdgeModel.from_onnx("spin.onnx", eval_data=ONES, calibration_data=ENDLESS)
    edge_runner.measure(model, precision="int8", runtime=runtime)
"""


def _spin_models(folder: Path) -> None:
    """y = MatMul(Loop(x), w), the Loop running max(x) times: the data decides whether it ends
    (the FLOPs probe runs an eval sample, the quantizers the calibration data). Two files (the
    graph named apart): the FP32 file's key has the eval data's shape, not its values, so the
    calibration cases' cached spin.onnx would skip the probe case's probe in the second run."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["go_in"], ["go_on"]), helper.make_node("Mul", ["v", "one"], ["v_next"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("go_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("go_on", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_next", TensorProto.FLOAT, None),
        ],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMax", ["x"], ["top"], keepdims=0),
            helper.make_node("Cast", ["top"], ["trips"], to=TensorProto.INT64),
            helper.make_node("Loop", ["trips", "go", "x"], ["looped"], body=body),
            helper.make_node("MatMul", ["looped", "w"], ["y"]),
        ],
        "spin",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            helper.make_tensor("go", TensorProto.BOOL, [], [True]),
            helper.make_tensor("w", TensorProto.FLOAT, [4, 4], np.eye(4, dtype=np.float32).ravel()),
        ],
    )
    for name in ("spin", "probe"):
        graph.name = name
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(folder / f"{name}.onnx"))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the child process")
def test_a_graph_that_never_ends_fails_its_step_in_one_line_and_blocks_no_later_run(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FLOPs probe, ONNX Runtime's and NNCF's calibration each run a Loop of 1e12 iterations:
    each case fails naming the step and the file, the child is gone, the locks are free (a second
    run on the same cache ends the same way) and no temp dir stays."""
    pytest.importorskip("nncf")
    _spin_models(pytester.path)
    pytester.makepyfile(test_x=SPIN_CASES)
    marker = f"EDGEOPT_SPIN_TEST={tmp_path.name}"
    monkeypatch.setenv("EDGEOPT_SPIN_TEST", tmp_path.name)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    for _ in range(2):
        result = pytester.runpytest_subprocess(*QUICK, OWN_CACHE, "--edge-timeout=5", timeout=600)  # a hang guard
        result.assert_outcomes(failed=3)
        result.stdout.fnmatch_lines_random(
            [
                "*the FLOPs probe of probe.onnx did not finish within 5 s (raise --edge-timeout)",
                "*ONNX Runtime INT8 calibration of spin.onnx did not finish within 5 s (raise --edge-timeout)",
                "*NNCF INT8 calibration of spin.onnx did not finish within 5 s (raise --edge-timeout)",
            ]
        )
        assert "Traceback" not in result.stdout.str()
        assert agents_left(marker, CHILD) == [], "the graph's child process outlived its deadline"
    assert list(tmp_path.glob("edgeopt-*")) == []


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the child process")
@pytest.mark.parametrize("sent", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_signal_to_pytest_ends_the_graphs_child_process(pytester: pytest.Pytester, tmp_path: Path, sent: str) -> None:
    """Ctrl-C and SIGTERM kill the child's group and free the locks; after SIGKILL (no cleanup
    on the host) the child sees its parent gone and ends itself, long before its deadline."""
    _spin_models(pytester.path)
    pytester.makepyfile(test_x=SPIN_CASES)
    marker = f"EDGEOPT_SPIN_TEST={tmp_path.name}"
    env = {**os.environ, "EDGEOPT_SPIN_TEST": tmp_path.name, "TMPDIR": str(tmp_path), "PYTEST_ADDOPTS": "-p no:anyio"}
    command = [sys.executable, "-m", "pytest", *QUICK, OWN_CACHE, "--edge-timeout=600", "-k", "probe"]
    run = subprocess.Popen(command, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not _agents_of(marker, CHILD) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.2)
    assert _agents_of(marker, CHILD), "the probe's child never started"
    run.send_signal(getattr(signal, sent))
    output = run.communicate(timeout=120)[0].decode()
    assert agents_left(marker, CHILD) == [], "the graph's child process kept running"
    if sent != "SIGKILL":
        assert run.returncode == pytest.ExitCode.INTERRUPTED, output
        assert list(tmp_path.glob("edgeopt-*")) == []


# -- 3. SIGTERM and SIGHUP end the agent as Ctrl-C does; an agent whose host died ends itself ------------------


def _slow_run(pytester: pytest.Pytester, tmp: Path) -> Tuple[subprocess.Popen, str]:
    """pytest timing one case for a minute, with a deadline far beyond the test: only the signal
    handling (or the agent's parent watch) can end the agent."""

    pytester.makepyfile(test_x=SLOW_AGENT)
    marker = f"EDGEOPT_SIGNAL_TEST={tmp.name}"
    env = {**os.environ, "EDGEOPT_SIGNAL_TEST": tmp.name, "TMPDIR": str(tmp), "PYTEST_ADDOPTS": "-p no:anyio"}
    options = ("--edge-timeout=600", "--edge-min-time=60", "--edge-max-time=60", "--edge-min-runs=1")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *options]
    run = subprocess.Popen(command, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not _agents_of(marker) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.2)
    assert _agents_of(marker), "the agent never started"
    return run, marker


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the agent process")
@pytest.mark.parametrize("sent", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_end_the_agent_and_leave_no_temp_dir(
    pytester: pytest.Pytester, tmp_path: Path, sent: str
) -> None:
    run, marker = _slow_run(pytester, tmp_path)
    run.send_signal(getattr(signal, sent))
    output = run.communicate(timeout=120)[0].decode()
    assert agents_left(marker) == [], "the agent kept timing after pytest was told to stop"
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output
    assert list(tmp_path.glob("edgeopt-*")) == []


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the agent process")
def test_an_agent_whose_host_was_killed_ends_itself_before_its_deadline(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    run, marker = _slow_run(pytester, tmp_path)
    run.send_signal(signal.SIGKILL)  # no cleanup runs on the host; the deadline is 600 s away
    run.communicate(timeout=60)
    assert agents_left(marker) == [], "the orphaned agent kept timing"


# -- 12. eval data is capped; the row says when it was cut ----------------------------------------------------

BIG_EVAL = """
import numpy as np
import torch

from pytest_edgeopt import EdgeModel


def test_big(edge_runner):
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((4000, 256)).astype(np.float32)  # 4.1 MB
    labels = np.zeros(4000, dtype=np.int64)
    model = EdgeModel.from_torch(
        torch.nn.Linear(256, 4), name="big", example_input=x[:1], eval_data=(x, labels), classifier=True
    )
    m = edge_runner.measure(model, precision="fp32")
    assert m.eval_count == EXPECTED
"""


def test_eval_data_past_the_cap_is_cut_and_the_row_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=BIG_EVAL.replace("EXPECTED", "1000"))
    result = pytester.runpytest(*QUICK, "--edge-max-eval-mb=1.024")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*eval data cut to its first 1000 of 4000 samples (4 MB > 1.024 MB: raise --edge-max-eval-mb*"]
    )


def test_the_default_eval_cap_keeps_a_normal_eval_set_whole(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=BIG_EVAL.replace("EXPECTED", "4000"))
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1)
    assert "eval data cut" not in result.stdout.str()
