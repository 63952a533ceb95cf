"""The agent with runtime "tflite" on the committed digits .tflite files: integer I/O, XNNPACK,
evaluation-only jobs and a corrupt file, as a device-side caller sees them (torch not needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from pytest_edgeopt.models.digits import _load_split
from tests.agent.agent_helpers import make_job, run_agent

DATA = Path(__file__).resolve().parent.parent / "data" / "tflite"
EVAL_COUNT = 40


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tflite-agent") / "inputs.npz"
    np.savez(path, inputs=_load_split()[0][:EVAL_COUNT])
    return path


def job(name: str, inputs: Path, **changes: Any) -> Dict[str, Any]:
    return make_job(DATA / f"digits_{name}.tflite", inputs, **{"runtime": "tflite", "options": {}, **changes})


def test_int8_io_is_quantized_and_ties_within_one_output_step_are_reported(inputs: Path) -> None:
    result, code, _ = run_agent(json.dumps(job("int8", inputs, keep_outputs=True)))
    assert code == 0 and result["ok"], result
    runtime = result["runtime"]
    assert runtime["xnnpack"] is True and runtime["io"] == "int8 in, int8 out"
    assert 0 < runtime["output_step"] < 1  # the output tensor's scale
    assert len(result["evaluation"]["near_top1"]) == EVAL_COUNT
    assert all(top[0] in near for top, near in zip(result["evaluation"]["top_k"], result["evaluation"]["near_top1"]))
    head = np.asarray(result["evaluation"]["outputs_head"])
    assert head.shape == (16, 10)
    steps = (head - head[:, :1]) / runtime["output_step"]  # dequantized: whole steps apart
    assert np.allclose(steps, np.round(steps), atol=1e-3)


def test_float_outputs_have_no_near_top1_and_fp32_matches_int8_top1(inputs: Path) -> None:
    fp32, _, _ = run_agent(json.dumps(job("fp32", inputs)))
    int8, _, _ = run_agent(json.dumps(job("int8", inputs)))
    assert fp32["evaluation"]["near_top1"] is None and fp32["runtime"]["io"] == "float32 in, float32 out"
    assert fp32["evaluation"]["outputs_head"] is None  # only parity jobs carry outputs back
    same = np.mean([a[0] == b[0] for a, b in zip(fp32["evaluation"]["top_k"], int8["evaluation"]["top_k"])])
    assert same >= 0.95


def test_reference_kernels_run_without_xnnpack(inputs: Path) -> None:
    result, code, _ = run_agent(json.dumps(job("fp32", inputs, runtime="tflite-reference")))
    assert code == 0 and result["runtime"]["xnnpack"] is False and result["runtime"]["reference_kernels"] is True


def test_evaluate_only_returns_outputs_without_timing(inputs: Path) -> None:
    result, code, _ = run_agent(json.dumps(job("fp16", inputs, evaluate_only=True)))
    assert code == 0 and result["ok"] and len(result["evaluation"]["top_k"]) == EVAL_COUNT
    assert "wall_ms" not in result and "cpu_ms" not in result


def test_a_corrupt_file_is_a_one_line_bad_artifact(inputs: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x00" * 64)
    result, code, _ = run_agent(json.dumps({**job("fp32", inputs), "artifact": str(corrupt)}))
    assert code == 1 and result["ok"] is False and result["kind"] == "bad-artifact"
    assert result["error"].startswith("cannot load corrupt.tflite: ") and "\n" not in result["error"]


def test_nhwc_inputs_for_an_nchw_file_are_a_bad_input_naming_the_transpose(tmp_path: Path) -> None:
    nhwc = tmp_path / "nhwc.npz"
    np.savez(nhwc, inputs=_load_split()[0][:8].transpose(0, 2, 3, 1))
    result, code, _ = run_agent(json.dumps(job("fp32", nhwc)))
    assert code == 1 and result["ok"] is False and result["kind"] == "bad-input"
    assert result["error"] == (
        "the model takes input shape (1, 1, 8, 8) but the eval data gives (1, 8, 8, 1) "
        "at batch 1; the data looks NHWC and the model NCHW: pass x.transpose(0, 3, 1, 2)"
    )


def test_a_missing_litert_is_reported_with_the_install_command(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shadow = tmp_path / "shadow" / "ai_edge_litert"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("fake missing")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")])))
    result, _, _ = run_agent(json.dumps(job("fp32", inputs)))
    assert result["ok"] is False and result["kind"] == "missing-runtime"
    assert 'pip install "pytest-edgeopt[tflite]"' in result["error"] and "\n" not in result["error"]


def test_near_top1_keeps_the_maximum_when_more_than_the_cap_are_tied() -> None:
    """1000 classes, 11 within one step of the maximum at index 500: the cap keeps the closest."""
    from pytest_edgeopt.agent.job import NEAR_TOP_CAP, _near_rows

    out = np.full((1, 1000), -1.0, np.float32)
    out[0, :11] = 0.0
    out[0, 500] = 1 / 256
    near = _near_rows(out, 1 / 256)
    assert near[0][0] == 500 and len(near[0]) == NEAR_TOP_CAP


def test_a_fixed_batch_file_at_another_batch_names_the_batch_to_use(inputs: Path) -> None:
    result, code, _ = run_agent(json.dumps(job("fp32", inputs, batch=4)))
    assert code == 1 and result["kind"] == "bad-input"
    assert (
        result["error"]
        == "the model file has a fixed batch of 1: measure it with batch=1, or export it with that batch"
    )
