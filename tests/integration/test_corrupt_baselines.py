"""A damaged baseline file fails its tests with the file, the place and the fix, and is never
overwritten unless --update-baselines; a run killed while updating leaves every file old or new."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.integration.test_update_baselines import KEY_A, KEY_B, baseline_file, edit, load, schema_errors
from tests.pytester_helpers import QUICK, assert_gate_failed, failures

TWO_TESTS = """
def test_a(edge_runner):
    edge_runner.measure("digits-cnn", precision="fp32")

def test_b(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")
"""
BROKEN_JSON = '{\n  "schema_version": 1,\n  "entries": {\n    "test_a::digits-cnn/fp32/onnxruntime/b1": {,\n'


def write_baseline(pytester: pytest.Pytester, text: str) -> Path:
    path = baseline_file(pytester)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def assert_both_fail_with(result: pytest.RunResult, message: str) -> None:
    assert_gate_failed(result, failed=2, passed=0)
    for name, text in failures(result).items():
        assert text == f"BaselineFileError: {message}", name


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["", "xdist"])
def test_invalid_json_fails_the_tests_naming_file_position_and_fix(pytester: pytest.Pytester, xdist: tuple) -> None:
    if xdist:
        pytest.importorskip("xdist")
    pytester.makepyfile(test_x=TWO_TESTS)
    path = write_baseline(pytester, BROKEN_JSON)
    with pytest.raises(json.JSONDecodeError) as error:
        json.loads(BROKEN_JSON)
    where = f"line {error.value.lineno}, column {error.value.colno}: {error.value.msg}"
    result = pytester.runpytest(*QUICK, *xdist)
    if xdist:  # xdist reports a worker's failure with its own prefix lines
        assert_gate_failed(result, failed=2, passed=0)
        result.stdout.fnmatch_lines(
            [f"*BaselineFileError: {path}: not valid JSON ({where}); regenerate it with --update-baselines"] * 2,
            consecutive=False,
        )
    else:
        assert_both_fail_with(result, f"{path}: not valid JSON ({where}); regenerate it with --update-baselines")
    assert path.read_text(encoding="utf-8") == BROKEN_JSON


@pytest.fixture
def valid_baseline(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_x=TWO_TESTS)
    pytester.runpytest(*QUICK, "--update-baselines").assert_outcomes(passed=2)
    return baseline_file(pytester)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda data: data["entries"][KEY_A].pop("metrics"), f"$.entries['{KEY_A}']: 'metrics' is a required property"),
        (lambda data: data.update(schema_version=0), "$.schema_version: 1 was expected"),
        (
            lambda data: data["entries"][KEY_B]["latency"]["cpu"].update(median_ms="fast"),
            f"$.entries['{KEY_B}'].latency.cpu.median_ms: 'fast' is not of type 'number'",
        ),
    ],
    ids=["no metrics", "schema_version 0", "wrong type"],
)
def test_schema_invalid_file_names_the_json_path(
    pytester: pytest.Pytester, valid_baseline: Path, damage: Callable[[dict], None], problem: str
) -> None:
    edit(valid_baseline, damage)
    damaged = valid_baseline.read_bytes()
    result = pytester.runpytest(*QUICK)
    assert_both_fail_with(
        result, f"{valid_baseline}: schema violation at {problem}; regenerate it with --update-baselines"
    )
    assert valid_baseline.read_bytes() == damaged
    # nor does the stale-entry check at the end of the run touch it, or crash on it
    assert "stale baseline entr" not in result.stdout.str()


@pytest.mark.parametrize("text", [BROKEN_JSON, '{"schema_version": 1}', ""], ids=["json", "schema", "empty"])
def test_update_baselines_replaces_a_damaged_file(pytester: pytest.Pytester, text: str) -> None:
    pytester.makepyfile(test_x=TWO_TESTS)
    path = write_baseline(pytester, text)
    result = pytester.runpytest(*QUICK, "--update-baselines")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"{path} * {KEY_A} * added*", f"{path} * {KEY_B} * added*"])
    assert sorted(load(path)["entries"]) == [KEY_A, KEY_B]
    pytester.runpytest(*QUICK).assert_outcomes(passed=2)


# -- killed while updating ------------------------------------------------------------------------------

SLOW_FSYNC_CONFTEST = """
import os
import time

# widen the window between "temporary file written" and "renamed into place"
if os.environ.get("EDGE_SLOW_FSYNC"):
    _fsync = os.fsync

    def _slow_fsync(fd):
        time.sleep(float(os.environ["EDGE_SLOW_FSYNC"]))
        _fsync(fd)

    os.fsync = _slow_fsync
"""
MANY_CASES = """
import pytest

@pytest.mark.parametrize("case", range(8))
def test_case(edge_runner, case):
    edge_runner.measure("digits-cnn", precision=("fp32", "int8")[case % 2])
"""
MODULES = ("test_m1", "test_m2", "test_m3")
OLD_SIZE = 9.0  # the tampered "old" entries; a completed update writes the real size


class UpdateRun:
    """`pytest --update-baselines` in its own process group, so a kill takes its agents too."""

    def __init__(self, pytester: pytest.Pytester, *, slow_fsync: float = 0.0) -> None:
        env = {**os.environ, "EDGE_SLOW_FSYNC": str(slow_fsync) if slow_fsync else ""}
        env.pop("PYTEST_ADDOPTS", None)
        self.log = pytester.path / "run.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pytest", *QUICK, "-p", "no:xdist", "--update-baselines"],
                cwd=pytester.path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until(self, condition: Callable[[], bool], *, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.002)
        raise AssertionError(f"timed out; the run said:\n{self.log.read_text()}")

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def finish(self) -> int:
        return self.process.wait(timeout=180)


def temp_files(root: Path) -> List[Path]:
    return list(root.rglob(".*.tmp"))


def assert_old_or_new(files: Dict[Path, bytes]) -> Dict[str, int]:
    """Every baseline file parses, validates, and is the old bytes or a whole new file."""
    seen = {"old": 0, "new": 0}
    for path, old in files.items():
        data = path.read_bytes()
        entries = load(path)["entries"]  # parses and validates, or fails here
        assert len(entries) == 8
        if data == old:
            seen["old"] += 1
        else:
            assert all(entry["metrics"]["size_mb"] != OLD_SIZE for entry in entries.values()), path
            seen["new"] += 1
    assert not [p for p in files if not p.exists()]
    return seen


def test_a_kill_during_update_leaves_every_file_old_or_new(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SLOW_FSYNC_CONFTEST)
    for module in MODULES:
        pytester.makepyfile(**{module: MANY_CASES})
    pytester.runpytest(*QUICK, "--update-baselines").assert_outcomes(passed=24)
    root = pytester.path / "baselines"
    files = {baseline_file(pytester, module): b"" for module in MODULES}
    for path in files:  # the old state: valid files that a full update rewrites entirely
        edit(path, lambda data: [entry["metrics"].update(size_mb=OLD_SIZE) for entry in data["entries"].values()])
        files[path] = path.read_bytes()
        assert schema_errors(json.loads(files[path])) == []

    outcomes: List[Dict[str, int]] = []

    # 1. while the first file's temporary copy is being written
    run = UpdateRun(pytester, slow_fsync=0.5)
    assert run.wait_until(lambda: bool(temp_files(root))), run.log.read_text()
    run.kill()
    outcomes.append(assert_old_or_new(files))
    assert outcomes[-1] == {"old": 3, "new": 0}
    assert temp_files(root)  # SIGKILL leaves the temporary file, never a half-written .json

    # 2. after the first file was replaced, while the next one is on its way
    run = UpdateRun(pytester, slow_fsync=0.5)
    first: Optional[Path] = None

    def one_replaced() -> bool:
        nonlocal first
        first = next((p for p, old in files.items() if p.read_bytes() != old), None)
        return first is not None

    assert run.wait_until(one_replaced), run.log.read_text()
    run.kill()
    outcomes.append(assert_old_or_new(files))
    assert 1 <= outcomes[-1]["new"] < 3

    # 3. at fixed moments of a normal-speed run: anywhere from start-up to writing
    for delay in (0.5, 2.0, 4.0):
        run = UpdateRun(pytester)
        time.sleep(delay)
        run.kill()
        outcomes.append(assert_old_or_new(files))

    # a run that completes replaces every file; the leftover temporary files are never read
    run = UpdateRun(pytester)
    assert run.finish() == 0, run.log.read_text()
    assert assert_old_or_new(files) == {"old": 0, "new": 3}
    assert "24 passed" in run.log.read_text()
