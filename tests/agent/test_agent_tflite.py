"""The agent with runtime "tflite" on the committed digits .tflite files: integer I/O, XNNPACK,
evaluation-only jobs and a corrupt file, as a device-side caller sees them (torch not needed)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from pytest_edgeopt.models.digits import _load_split  # noqa: E402
from tests.agent.agent_helpers import FAST_PLAN, run_agent  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data" / "tflite"
EVAL_COUNT = 40


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tflite-agent") / "inputs.npz"
    np.savez(path, inputs=_load_split()[0][:EVAL_COUNT])
    return path


def job(name: str, inputs: Path, **changes: Any) -> Dict[str, Any]:
    base = {"artifact": str(DATA / f"digits_{name}.tflite"), "runtime": "tflite", "batch": 1, "threads": 1,
            "options": {}, "inputs": str(inputs), "plan": dict(FAST_PLAN), "topk": 5}
    return {**base, **changes}


def test_int8_io_is_quantized_and_ties_within_one_output_step_are_reported(inputs: Path) -> None:
    result, code, _ = run_agent(json.dumps(job("int8", inputs, keep_outputs=True)))
    assert code == 0 and result["ok"], result
    runtime = result["runtime"]
    assert runtime["xnnpack"] is True and runtime["io"] == "int8 in, int8 out"
    assert 0 < runtime["output_step"] < 1  # the output tensor's scale
    assert len(result["near_top1"]) == EVAL_COUNT
    assert all(top[0] in near for top, near in zip(result["top_k"], result["near_top1"]))
    head = np.asarray(result["outputs_head"])
    assert head.shape == (16, 10)
    steps = (head - head[:, :1]) / runtime["output_step"]  # dequantized: whole steps apart
    assert np.allclose(steps, np.round(steps), atol=1e-3)


def test_float_outputs_have_no_near_top1_and_fp32_matches_int8_top1(inputs: Path) -> None:
    fp32, _, _ = run_agent(json.dumps(job("fp32", inputs)))
    int8, _, _ = run_agent(json.dumps(job("int8", inputs)))
    assert fp32["near_top1"] is None and fp32["runtime"]["io"] == "float32 in, float32 out"
    assert fp32["outputs_head"] is None  # only parity jobs carry outputs back
    same = np.mean([a[0] == b[0] for a, b in zip(fp32["top_k"], int8["top_k"])])
    assert same >= 0.95


def test_reference_kernels_run_without_xnnpack(inputs: Path) -> None:
    result, code, _ = run_agent(json.dumps(job("fp32", inputs, runtime="tflite-reference")))
    assert code == 0 and result["runtime"]["xnnpack"] is False and result["runtime"]["reference_kernels"] is True


def test_evaluate_only_returns_outputs_without_timing(inputs: Path) -> None:
    result, code, _ = run_agent(json.dumps(job("fp16", inputs, evaluate_only=True)))
    assert code == 0 and result["ok"] and len(result["top_k"]) == EVAL_COUNT
    assert "wall_ms" not in result and "cpu_ms" not in result


def test_a_corrupt_file_is_a_one_line_bad_artifact(inputs: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x00" * 64)
    result, code, _ = run_agent(json.dumps({**job("fp32", inputs), "artifact": str(corrupt)}))
    assert code == 1 and result["ok"] is False and result["kind"] == "bad-artifact"
    assert result["error"].startswith("cannot load corrupt.tflite: ") and "\n" not in result["error"]
