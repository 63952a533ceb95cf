"""A green run means the model was checked: nothing stale, nothing switched off, nothing lost.

One section per way a CI gate used to pass without checking (issue "Green means checked"); every
test runs real models through the plugin and fails on the code before the fix. The device items
(a broken device, a stalled link, the device's copies) are in tests/remote/test_ssh.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.integration.test_budgets import USER_MODEL
from tests.integration.test_update_baselines import KEY_A, KEY_B, TWO_TESTS, baseline_file, edit, load
from tests.pytester_helpers import QUICK, failures, table

OWN_CACHE = "--edge-cache-dir=cache"  # these tests reason about what is cached: their own cache

# -- 1. stale artifacts --------------------------------------------------------------------------------------

# A user's net whose labels come from the module's own forward: top-1 is 100% by construction,
# whatever forward() computes, as long as what is measured is the current code.
SIGNED_NET = """
import numpy as np
import torch

from pytest_edgeopt import EdgeModel


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, x):
        return SIGN * self.fc(x)


def test_net(edge_runner):
    x = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    net = Net()
    with torch.no_grad():
        labels = net(torch.from_numpy(x)).argmax(1).numpy()
    model = EdgeModel.from_torch(net, name="net", example_input=x[:1], eval_data=(x, labels))
    m = edge_runner.measure(model, precision="fp32")
    assert m.top1 == 1.0
"""


def test_a_changed_forward_is_exported_again(pytester: pytest.Pytester) -> None:
    """Same class name, same repr, same weights; only forward() changed its sign."""
    pytester.makepyfile(test_net=SIGNED_NET.replace("SIGN * ", "1.0 * "))
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=1)
    pytester.makepyfile(test_net=SIGNED_NET.replace("SIGN * ", "-1.0 * "))
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=1)


EXTERNAL_DATA = """
import numpy as np
from pytest_edgeopt import EdgeModel

def test_file(edge_runner):
    x = np.random.default_rng(1).standard_normal((64, 16)).astype(np.float32)
    w = np.load("weights.npy")
    model = EdgeModel.from_onnx("model.onnx", eval_data=(x, (x @ w).argmax(1)))
    assert edge_runner.measure(model, precision="fp32").top1 == 1.0
"""


def _matmul_with_external_data(directory: Path, seed: int) -> None:
    """model.onnx + model.onnx.data: a retrained side file with the .onnx untouched."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(seed).standard_normal((16, 4)).astype(np.float32)
    np.save(directory / "weights.npy", weights)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (directory / "model.onnx.data").unlink(missing_ok=True)
    onnx.save(
        model,
        str(directory / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )


def test_retrained_external_data_is_not_served_from_the_cache(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_file=EXTERNAL_DATA)
    _matmul_with_external_data(pytester.path, seed=1)
    onnx_bytes = (pytester.path / "model.onnx").read_bytes()
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=1)
    _matmul_with_external_data(pytester.path, seed=2)
    assert (pytester.path / "model.onnx").read_bytes() == onnx_bytes  # only the side file changed
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=1)


def test_a_damaged_cached_artifact_is_rebuilt_and_the_cache_can_be_capped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_TESTS.replace("@pytest.mark.edge_budget(**RELATIVE)\n", ""))
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=2)
    cache = pytester.path / "cache"
    artifacts = sorted(cache.glob("*.onnx"))
    for path in artifacts:  # same size, other bytes: what a disk error or a stray edit leaves
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    result = pytester.runpytest(*QUICK, OWN_CACHE)
    result.assert_outcomes(passed=2)
    assert all(row["Top-1 (%)"] == "98.06" for row in table(result))

    older = time.time() - 365 * 86400
    for meta in cache.glob("*.json"):  # every entry is old until the next run uses it again
        os.utime(meta, (older, older))
    result = pytester.runpytest(*QUICK, OWN_CACHE, "--edge-cache-max-mb=0", "-k", "test_a")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*pruned * least recently used artifact(s) to stay under 0 MB*"])
    stages = {json.loads(meta.read_text())["parts"]["stage"] for meta in cache.glob("*.json")}
    assert stages == {"fp32", "eval-inputs"}  # test_b's int8 artifact went; what test_a used stayed


# -- 2. a new machine switches the gate off -----------------------------------------------------------------


def _from_another_cpu(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_x=TWO_TESTS)
    pytester.runpytest(*QUICK, "--update-baselines").assert_outcomes(passed=2)
    path = baseline_file(pytester)

    def elsewhere(data: Dict[str, Any]) -> None:
        for entry in data["entries"].values():
            entry["fingerprint"]["must_match"]["cpu_model"] = "Imaginary CPU 9000"

    edit(path, elsewhere)
    return path


def test_size_and_accuracy_are_compared_across_machines_and_latency_is_said_not_checked(
    pytester: pytest.Pytester,
) -> None:
    path = _from_another_cpu(pytester)
    edit(path, lambda data: data["entries"][KEY_B]["metrics"].update(size_mb=1e-6))  # a real size regression
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1, failed=1)
    assert "max_size_regression: measured 0.04" in failures(result)["test_b"]
    rows = {row["Bit-width (W/A)"].split("/")[0]: row for row in table(result)}
    assert rows["FP32"]["Verdict"] == "pass, 1 not compared" and rows["FP32"]["Delta"] == "not compared"
    result.stdout.fnmatch_lines(
        [
            "*pytest-edgeopt: not checked*",
            "2 latency budgets not checked: baseline measured under a different cpu_model 'Imaginary CPU 9000'"
            " -> '*'; run --update-baselines on this machine",
        ]
    )


def test_a_fingerprint_mismatch_fails_when_ci_says_so(pytester: pytest.Pytester) -> None:
    _from_another_cpu(pytester)
    result = pytester.runpytest(*QUICK, "--edge-fingerprint-mismatch=fail")
    result.assert_outcomes(failed=2)
    assert (
        "max_latency_regression: not compared: baseline measured under a different cpu_model"
        in (failures(result)["test_a"])
    )


# -- 4. failing rows become baselines ------------------------------------------------------------------------

FAILING_TESTS = """
import pytest

def test_passes(edge_runner):
    edge_runner.measure("digits-cnn", precision="fp32")

@pytest.mark.edge_budget(min_top1=1.01)
def test_breaks_a_budget(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")

def test_asserts_after_measuring(edge_runner):
    edge_runner.measure("digits-cnn", precision="fp16")
    assert False, "the test's own check"
"""


def test_only_rows_of_passed_tests_become_baselines(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=FAILING_TESTS)
    result = pytester.runpytest(*QUICK, "--update-baselines")
    result.assert_outcomes(passed=1, failed=2)
    assert list(load(baseline_file(pytester))["entries"]) == ["test_passes::digits-cnn/fp32/onnxruntime/b1"]


# A vcgencmd that reports throttling from its third call on: the first agent job (two calls,
# before and after timing) is healthy, every later job throttles.
THROTTLING_VCGENCMD = """#!{python}
from pathlib import Path
count = Path(__file__).with_suffix(".count")
calls = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(calls))
print("throttled=" + ("0x0" if calls <= 2 else "0x40004"))
"""
CHECKED_LATER = """
from usermodel import user_model

def test_a(edge_runner):
    m = edge_runner.measure(user_model(), precision="fp32")
    m.check(max_latency_regression="10%")  # a paired job of its own, after the measurement
"""


def test_a_later_paired_run_on_a_throttling_device_invalidates_the_verdict(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = pytester.path / "tools"
    tools.mkdir()
    fake = tools / "vcgencmd"
    fake.write_text(THROTTLING_VCGENCMD.format(python=sys.executable))
    fake.chmod(0o755)
    pytester.makepyfile(usermodel=USER_MODEL, test_x=CHECKED_LATER)
    (pytester.path / "width.txt").write_text("8")
    pytester.runpytest(*QUICK, "--update-baselines").assert_outcomes(passed=1)
    retrained = textwrap.dedent(USER_MODEL).replace("torch.manual_seed(0)", "torch.manual_seed(1)")
    pytester.makepyfile(usermodel=retrained)  # other bytes: the baseline's artifact is paired with it
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(failed=1)
    assert "invalid: paired run: the device throttled during the run" in failures(result)["test_a"]


# -- 5. baselines lose entries ---------------------------------------------------------------------------------

FIVE_TESTS = """
import os
import pytest

@pytest.mark.parametrize("precision", ["fp32", "int8", "fp16", "int8-dynamic"])
def test_p(edge_runner, precision):
    edge_runner.measure("digits-cnn", precision=precision)

def test_zz_dies():
    if os.environ.get("KILL_WORKER"):
        os._exit(1)
"""


def test_a_dying_xdist_worker_loses_no_entry(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_x=FIVE_TESTS)
    pytester.runpytest(*QUICK, "-n", "2", "--update-baselines").assert_outcomes(passed=5)
    before = sorted(load(baseline_file(pytester))["entries"])
    assert len(before) == 4
    monkeypatch.setenv("KILL_WORKER", "1")
    result = pytester.runpytest(*QUICK, "-n", "2", "--update-baselines")
    assert result.ret != 0
    assert sorted(load(baseline_file(pytester))["entries"]) == before
    result.stdout.fnmatch_lines(["*no entry is stale: * ended without reporting its rows*"])


# both runs have read the file (--add-baselines reads it during the tests) before either writes it:
# the window a real race leaves
LATE_WRITER = """
import time
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    time.sleep(4)
"""


def test_two_update_runs_at_once_keep_each_others_entries(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_TESTS, conftest=LATE_WRITER)
    runs: List[subprocess.CompletedProcess] = []

    def update(keyword: str) -> None:
        command = [sys.executable, "-m", "pytest", *QUICK, "-p", "no:anyio", "--add-baselines", "-k", keyword]
        runs.append(subprocess.run(command, cwd=pytester.path, capture_output=True, text=True, timeout=300))

    threads = [threading.Thread(target=update, args=(k,)) for k in ("test_a", "test_b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(run.returncode == 0 for run in runs), [run.stdout[-2000:] for run in runs]
    assert sorted(load(baseline_file(pytester))["entries"]) == [KEY_A, KEY_B]


def test_a_file_from_a_newer_plugin_is_refused_in_one_line_and_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_TESTS)
    path = baseline_file(pytester)
    path.parent.mkdir(parents=True)
    text = json.dumps({"schema_version": 2, "platform": "host", "module": "test_x.py", "entries": {}, "drift": {}})
    path.write_text(text)
    result = pytester.runpytest(*QUICK, "--update-baselines")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["ERROR *test_x.json: written by a newer pytest-edgeopt (schema_version 2;*"])
    assert path.read_text() == text and "Traceback" not in result.stdout.str()


def test_a_damaged_file_is_rewritten_only_by_a_whole_module_update(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_TESTS)
    path = baseline_file(pytester)
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": 1, "entries": {')
    partial = pytester.runpytest(*QUICK, "--update-baselines", "-k", "test_a")
    partial.stdout.fnmatch_lines(
        [
            "ERROR *test_x.json: not valid JSON *; it was not rewritten: only --update-baselines"
            " over the whole module regenerates a damaged file"
        ]
    )
    assert path.read_text() == '{"schema_version": 1, "entries": {'
    pytester.runpytest(*QUICK, "--update-baselines").assert_outcomes(passed=2)
    assert sorted(load(path)["entries"]) == [KEY_A, KEY_B]


# -- 6. faults that end in a traceback or a hang ---------------------------------------------------------------


def test_an_unwritable_baselines_dir_is_one_line_a_failed_run_and_the_table_still_prints(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x=TWO_TESTS)
    (pytester.path / "baselines").write_text("a file where the directory should be")
    result = pytester.runpytest(*QUICK, "--update-baselines", "--edge-report=out/report.md")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*pytest-edgeopt: comparison table*",
            "*pytest-edgeopt: errors*",
            "ERROR *test_x.json: cannot write the baseline file (*); nothing of it was changed",
        ]
    )
    assert "Traceback" not in result.stdout.str() and (pytester.path / "out" / "report.md").is_file()


SLOW_AGENT = """
def test_slow(edge_runner):
    edge_runner.measure("digits-cnn", precision="fp32")
"""


def _agents_of(marker: str, module: bytes = b"pytest_edgeopt.agent") -> List[int]:
    """Agent processes (or others running `module`) whose environment carries `marker` (this test's own)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ and module in cmdline:
            found.append(int(proc.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the agent process")
def test_an_agent_orphaned_by_a_killed_pytest_ends_itself(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=SLOW_AGENT)
    marker = f"EDGEOPT_ORPHAN_TEST={os.getpid()}"
    env = {**os.environ, "EDGEOPT_ORPHAN_TEST": str(os.getpid()), "PYTEST_ADDOPTS": "-p no:anyio"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--edge-timeout=4",
        "--edge-min-time=60",
        "--edge-max-time=60",
        "--edge-min-runs=1",
    ]
    pytest_run = subprocess.Popen(
        command, cwd=pytester.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not _agents_of(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _agents_of(marker), "the agent never started"
    pytest_run.send_signal(signal.SIGKILL)  # no cleanup runs: only the agent's own deadline can end it
    pytest_run.wait()
    assert not agents_left(marker), "the agent kept timing after pytest was killed"


def agents_left(marker: str, module: bytes = b"pytest_edgeopt.agent") -> List[int]:
    """Agents (or `module`'s processes) still running 20 s on (killed then, so a failing test
    leaves none behind)."""
    deadline = time.monotonic() + 20
    while _agents_of(marker, module) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = _agents_of(marker, module)
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    return leftovers


# -- 7. trusted inputs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda e: e["fingerprint"]["info"].update(artifact_sha="../../x"),
            "*fingerprint.info.artifact_sha: '../../x' does not match*",
        ),
        (lambda e: e["samples"].update(wall_ms=[0.0, 0.0]), "*samples.wall_ms[[]0]: 0.0 is less than or equal to*"),
    ],
    ids=["path-in-artifact-sha", "zero-samples"],
)
def test_baseline_fields_are_validated_before_use(pytester: pytest.Pytester, damage: Any, message: str) -> None:
    pytester.makepyfile(test_x=TWO_TESTS)
    pytester.runpytest(*QUICK, "--update-baselines").assert_outcomes(passed=2)
    edit(baseline_file(pytester), lambda data: damage(data["entries"][KEY_A]))
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([f"*BaselineFileError: {message}"])
    assert "Traceback" not in result.stdout.str() and "ZeroDivisionError" not in result.stdout.str()


def test_zero_cpu_samples_in_a_baseline_are_a_one_line_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_TESTS)
    pytester.runpytest(*QUICK, "--update-baselines").assert_outcomes(passed=2)

    def zero_samples_of_an_artifact_no_cache_holds(data: Dict[str, Any]) -> None:
        entry = data["entries"][KEY_A]
        entry["samples"]["cpu_ms"] = [0.0] * 5
        entry["fingerprint"]["info"]["artifact_sha"] = "0" * 20  # so the stored samples are what is compared

    edit(baseline_file(pytester), zero_samples_of_an_artifact_no_cache_holds)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1, failed=1)
    assert "the compared samples have a median of 0 ms" in failures(result)["test_a"]


# -- 8. the CLI fights the user ---------------------------------------------------------------------------------


def test_update_baselines_is_a_plain_flag_and_add_baselines_adds_only_missing_entries(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x=TWO_TESTS)
    result = pytester.runpytest(*QUICK, "--update-baselines", "test_x.py", "-k", "test_a")  # a path after the flag
    result.assert_outcomes(passed=1, deselected=1)
    assert list(load(baseline_file(pytester))["entries"]) == [KEY_A]
    result = pytester.runpytest(*QUICK, "--add-baselines", "test_x.py")
    result.assert_outcomes(passed=2)
    assert sorted(load(baseline_file(pytester))["entries"]) == [KEY_A, KEY_B]
    both = pytester.runpytest(*QUICK, "--update-baselines", "--add-baselines")
    assert both.ret == pytest.ExitCode.USAGE_ERROR


def test_edge_report_is_repeatable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_TESTS.replace("@pytest.mark.edge_budget(**RELATIVE)\n", ""))
    result = pytester.runpytest(
        *QUICK, "--edge-report=summary.md", "--edge-report=report.html", "--edge-report=report.json"
    )
    result.assert_outcomes(passed=2)
    for name in ("summary.md", "report.html", "report.json"):
        assert (pytester.path / name).stat().st_size > 0, name
    result.stdout.fnmatch_lines(["*wrote *summary.md", "*wrote *report.html", "*wrote *report.json"])
