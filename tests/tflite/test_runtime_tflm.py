"""The agent with runtime "tflm" on the committed digits .tflite files, as a device-side caller
sees it: TFLite Micro's arena, its outputs against LiteRT's reference kernels, the models it
refuses with one line, the external-buffer trap, and LiteRT standing in where TFLM is missing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from pytest_edgeopt.inspect.tflite_graph import read_graph
from pytest_edgeopt.inspect.tflite_memory import arena_estimate
from pytest_edgeopt.models.digits import _load_split
from pytest_edgeopt.runtimes import tflm
from tests.agent.agent_helpers import make_job, run_agent
from tests.mcu_helpers import DATA, DIGITS_INT8, externalized

EVAL_COUNT = 40
LSB_TOLERANCE = 2  # TFLM vs LiteRT BUILTIN_REF: FULLY_CONNECTED differed by up to 2 LSB in the study
needs_tflm = pytest.mark.skipif(
    __import__("importlib").util.find_spec("tflite_micro") is None,
    reason='tflite-micro is not installed: pip install "pytest-edgeopt[mcu]" (x86-64 Linux)',
)


@pytest.fixture
def no_tflm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tflite_micro unimportable in the agent, as where its nightly wheel does not exist."""
    shadow = tmp_path / "shadow" / "tflite_micro"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("made unimportable by the test")\n')
    paths = [str(shadow.parent), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


@pytest.fixture
def engine() -> Iterator[tflm.MicroEngine]:
    micro = tflm.MicroEngine()
    yield micro
    micro.close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tflm-agent") / "inputs.npz"
    np.savez(path, inputs=_load_split()[0][:EVAL_COUNT])
    return path


def job(model: Path, inputs: Path, **changes: Any) -> Dict[str, Any]:
    return make_job(model, inputs, **{"runtime": "tflm", "options": {}, "evaluate_only": True, **changes})


@needs_tflm
def test_the_arena_tflm_allocated_is_reported_and_equals_the_estimate(inputs: Path) -> None:
    result, code, _ = run_agent(json.dumps(job(DIGITS_INT8, inputs, options={"arena_bytes": 6352})))
    assert code == 0 and result["ok"], result
    runtime = result["runtime"]
    assert runtime["extra"] == {"engine": "tflite-micro"} and runtime["io"] == "int8 in, int8 out"
    assert runtime["arena"]["arena_size"] % 16 == 0
    estimate = arena_estimate(read_graph(DIGITS_INT8.read_bytes()))
    assert (runtime["arena"]["head"], runtime["arena"]["tail"]) == (estimate.head, estimate.tail) == (3072, 3280)
    assert "timing" not in result or result["timing"] is None


@needs_tflm
def test_outputs_are_the_stand_ins_litert_reference_kernels_within_two_lsb(
    inputs: Path, request: pytest.FixtureRequest
) -> None:
    micro, _, _ = run_agent(json.dumps(job(DIGITS_INT8, inputs, keep_outputs=True)))
    request.getfixturevalue("no_tflm")
    reference, _, _ = run_agent(json.dumps(job(DIGITS_INT8, inputs, keep_outputs=True)))
    assert reference["runtime"]["extra"] == {"engine": "litert-reference"}
    step = micro["runtime"]["output_step"]
    lsb = np.abs(np.asarray(micro["evaluation"]["outputs_head"]) - np.asarray(reference["evaluation"]["outputs_head"]))
    assert np.max(np.round(lsb / step)) <= LSB_TOLERANCE
    assert micro["evaluation"]["top_k"] == reference["evaluation"]["top_k"]


@needs_tflm
@pytest.mark.parametrize(
    "name, reason",
    [
        ("digits_int8_dynamic", "hybrid (dynamic-range INT8) model: Hybrid models are not supported on TFLite Micro"),
        ("digits_fp16", "float16 weights: TFLM's DEQUANTIZE takes int8/int16/uint8 inputs only"),
    ],
)
def test_models_tflm_refuses_are_one_line_naming_why(inputs: Path, name: str, reason: str) -> None:
    result, code, _ = run_agent(json.dumps(job(DATA / f"{name}.tflite", inputs)))
    assert code == 1 and result["kind"] == "bad-artifact"
    assert result["error"].startswith(f"cannot load {name}.tflite: {reason}") and "\n" not in result["error"]


@needs_tflm
def test_weights_outside_the_flatbuffer_are_refused_and_would_have_been_the_trap(
    inputs: Path, tmp_path: Path, engine: tflm.MicroEngine
) -> None:
    outside = tmp_path / "outside.tflite"
    outside.write_bytes(externalized(DIGITS_INT8.read_bytes()))
    result, code, _ = run_agent(json.dumps(job(outside, inputs)))
    assert code == 1 and result["kind"] == "bad-artifact" and "Buffer.offset > 1" in result["error"]
    trapped = engine.load_bytes(outside.read_bytes(), arena_size=1 << 20)  # what TFLM does when nobody stops it
    assert trapped.head == 41_472 > 3_072  # the weights were planned as activations...
    x, y, _ = _load_split()
    name = engine.inputs()[0].name  # the file's own tensor name, as LiteRT names it
    predicted = [int(np.argmax(engine.run({name: x[i : i + 1]})[0])) for i in range(40)]
    assert np.mean(np.asarray(predicted) == y[:40]) < 0.5  # ...and computed with whatever the arena held


@needs_tflm
def test_a_short_arena_grows_by_what_tflm_says_is_missing(engine: tflm.MicroEngine) -> None:
    arena = engine.load_bytes((DATA / "digits_fp32.tflite").read_bytes(), arena_size=1024)
    assert arena.arena_size > 1024 and arena.total == 14_896
    assert tflm.grown(1024, "Requested: 12288, available 96, missing: 12192") == 1024 + 12192 + 64 * 1024
    assert tflm.grown(1024, "no figure") == 4096
    assert tflm.first_arena(47_264, None) == 472_640 and tflm.first_arena(47_264, 6352) % 16 == 0


def test_without_tflite_micro_litert_reference_kernels_stand_in(inputs: Path, no_tflm: None) -> None:
    result, code, _ = run_agent(json.dumps(job(DIGITS_INT8, inputs)))
    assert code == 0 and result["ok"]
    runtime = result["runtime"]
    assert runtime["extra"] == {"engine": "litert-reference"} and "arena" not in runtime
    assert runtime["version"].startswith("absent (LiteRT ") and "pytest-edgeopt[mcu]" in runtime["warning"]


def test_a_malformed_arena_hint_is_a_bad_job(inputs: Path) -> None:
    result, code, _ = run_agent(json.dumps(job(DIGITS_INT8, inputs, options={"arena_bytes": "big"})))
    assert code == 1 and result["kind"] == "bad-job" and "options.arena_bytes must be a whole number" in result["error"]
