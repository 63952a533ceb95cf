"""`python -m pytest_edgeopt.agent` as the transport runs it: a JSON job on stdin, one JSON line out.

The artifact is the real digits CNN exported by the plugin's own optimize stage, run by the real
ONNX Runtime; the jobs are written here by hand, as a device-side caller would.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from tests.agent.agent_helpers import FAST_PLAN, make_job, run_agent

EVAL_COUNT = 24

# Runs the agent exactly as `-m` does, then reports which heavy packages the process imported.
IMPORT_PROBE = """
import runpy, sys
code = 0
try:
    runpy.run_module("pytest_edgeopt.agent", run_name="__main__")
except SystemExit as exit:
    code = exit.code
sys.stderr.write(repr(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "pytest", "_pytest"))))
sys.exit(code)
"""


ONNX_FIXTURES = Path(__file__).resolve().parent.parent / "data" / "onnx"  # scripts/export_digits_onnx.py


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:
    """(the FP32 digits .onnx, an inputs .npz with key "inputs") for hand-written jobs: the committed
    export, so these tests run where torch has no wheel (the oldest Python the agent supports)."""
    from pytest_edgeopt.models.digits import _load_split

    inputs = tmp_path_factory.mktemp("agent-inputs") / "inputs.npz"
    np.savez(inputs, inputs=_load_split()[0][:EVAL_COUNT])
    return ONNX_FIXTURES / "digits_fp32.onnx", inputs


def job(artifact: Path, inputs: Path, **changes: Any) -> Dict[str, Any]:
    return make_job(artifact, inputs, **changes)


def test_a_job_returns_raw_samples_predictions_memory_and_device(digits_files: Tuple[Path, Path]) -> None:
    result, code, _ = run_agent(json.dumps(job(*digits_files)))
    assert code == 0 and result["ok"] is True, result
    assert len(result["timing"]["wall_ms"]) == len(result["timing"]["cpu_ms"]) >= FAST_PLAN["min_runs"]
    assert all(value > 0 for value in result["timing"]["wall_ms"])
    assert result["evaluation"]["eval_count"] == EVAL_COUNT and len(result["evaluation"]["top_k"]) == EVAL_COUNT
    assert all(len(row) == 5 and len(set(row)) == 5 for row in result["evaluation"]["top_k"])
    assert result["evaluation"]["output_shape"] == [10]
    assert result["load_ms"] > 0 and result["first_inference_ms"] > 0
    assert result["timing"]["peak_rss_mb"] > 0
    assert result["fingerprint"]["arch"] == platform.machine()
    assert result["runtime"]["name"] == "onnxruntime" and result["runtime"]["version"]
    assert (result["batch"], result["threads"], result["timing"]["capped"]) == (1, 1, False)
    assert result["version"] == 2


def test_top1_predictions_match_the_labels(digits_files: Tuple[Path, Path]) -> None:
    from pytest_edgeopt.models.digits import _load_split

    result, _, _ = run_agent(json.dumps(job(*digits_files)))
    labels = _load_split()[1][:EVAL_COUNT]
    top1 = np.asarray([row[0] for row in result["evaluation"]["top_k"]])
    assert np.mean(top1 == labels) >= 0.9


def test_a_non_json_job_is_a_bad_job_with_exit_code_1() -> None:
    result, code, _ = run_agent("artifact=model.onnx\n")
    assert code == 1
    assert result["ok"] is False and result["kind"] == "bad-job"
    assert "not JSON" in result["error"] and "\n" not in result["error"]


def test_a_missing_artifact_is_a_bad_artifact(digits_files: Tuple[Path, Path], tmp_path: Path) -> None:
    _, inputs = digits_files
    result, code, _ = run_agent(json.dumps(job(tmp_path / "gone.onnx", inputs)))
    assert code == 1
    assert result["ok"] is False and result["kind"] == "bad-artifact"
    assert result["error"].startswith("cannot load gone.onnx") and "\n" not in result["error"]


def test_an_unknown_runtime_is_a_bad_job(digits_files: Tuple[Path, Path]) -> None:
    result, code, _ = run_agent(json.dumps(job(*digits_files, runtime="tensorrt")))
    assert code == 1 and result["kind"] == "bad-job" and "tensorrt" in result["error"]


def test_the_agent_never_imports_torch_or_pytest(digits_files: Tuple[Path, Path]) -> None:
    result, code, stderr = run_agent(json.dumps(job(*digits_files)), argv=[sys.executable, "-c", IMPORT_PROBE])
    assert code == 0 and result["ok"] is True, result
    assert stderr.strip().splitlines()[-1] == "[]"


def test_min_runs_with_no_minimum_time_takes_exactly_that_many_samples(digits_files: Tuple[Path, Path]) -> None:
    plan = {**FAST_PLAN, "min_runs": 40, "min_s": 0.0}
    result, _, _ = run_agent(json.dumps(job(*digits_files, plan=plan)))
    assert len(result["timing"]["wall_ms"]) == len(result["timing"]["cpu_ms"]) == 40
    assert result["timing"]["capped"] is False


def test_max_time_caps_the_loop_and_says_so(digits_files: Tuple[Path, Path]) -> None:
    plan = {**FAST_PLAN, "min_runs": 10**7, "min_s": 0.0, "max_s": 0.05}
    result, code, _ = run_agent(json.dumps(job(*digits_files, plan=plan)))
    assert code == 0 and result["ok"] is True
    assert result["timing"]["capped"] is True
    assert 1 <= len(result["timing"]["wall_ms"]) < 10**7


def test_batches_pad_the_last_one_and_drop_its_outputs(shared_cache: Path, tmp_path: Path) -> None:
    """23 inputs at batch 4: six runs, the last padded, and exactly 23 predictions back."""
    pytest.importorskip("torch")
    from pytest_edgeopt.models.zoo import load_zoo_model
    from pytest_edgeopt.optimize.artifacts import build_artifact
    from pytest_edgeopt.optimize.cache import ArtifactCache
    from pytest_edgeopt.optimize.precisions import get_precision

    model = load_zoo_model("digits-cnn")
    artifact = build_artifact(
        model, precision=get_precision("fp32"), batch=4, arch=platform.machine(), cache=ArtifactCache(shared_cache)
    )
    np.savez(tmp_path / "inputs.npz", inputs=model.eval_inputs[:23])
    result, code, _ = run_agent(json.dumps(job(artifact.path, tmp_path / "inputs.npz", batch=4)))
    assert code == 0 and result["ok"] is True, result
    assert (
        result["batch"] == 4 and result["evaluation"]["eval_count"] == 23 and len(result["evaluation"]["top_k"]) == 23
    )


def test_inputs_of_the_wrong_shape_are_bad_input(digits_files: Tuple[Path, Path], tmp_path: Path) -> None:
    artifact, _ = digits_files
    np.savez(tmp_path / "inputs.npz", inputs=np.zeros((3, 64), np.float32))
    result, code, _ = run_agent(json.dumps(job(artifact, tmp_path / "inputs.npz")))
    assert code == 1 and result["kind"] == "bad-input"
    assert result["error"] == "the model takes input shape (1, 1, 8, 8) but the eval data gives (1, 64) at batch 1"


def test_the_result_carries_device_health_and_os_bits(digits_files: Tuple[Path, Path]) -> None:
    result = run_agent(json.dumps(job(*digits_files)))[0]
    assert result["ok"], result
    assert result["fingerprint"]["os_bits"] in (32, 64)
    assert {"throttled_before", "throttled_after"} <= set(result["timing"])  # None off a Raspberry Pi
    assert "governor" in result["fingerprint"] and result["timing"]["power"] is None


def test_a_power_meter_runs_around_the_timed_loop(digits_files: Tuple[Path, Path], tmp_path: Path) -> None:
    script = tmp_path / "watts.py"
    script.write_text("print('2.5')\n")
    spec = {"kind": "command", "command": [sys.executable, str(script)], "interval_s": 0.05, "idle_s": 0.1}
    result = run_agent(json.dumps(job(*digits_files, power=spec)))[0]
    assert result["ok"], result
    power = result["timing"]["power"]
    assert power["source"] == "command" and power["average_w"] == 2.5 and power["idle_w"] == 2.5
    assert power["active_w"] == 0.0 and power["samples"] >= 2 and not power["estimated"]


def test_a_misconfigured_power_meter_fails_the_job_before_timing(digits_files: Tuple[Path, Path]) -> None:
    result = run_agent(json.dumps(job(*digits_files, power={"kind": "rapl", "root": "/nonexistent"})))[0]
    assert not result["ok"] and result["kind"] == "power"
    assert result["error"].startswith("rapl: ") and "\n" not in result["error"]
