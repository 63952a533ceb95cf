"""LiteRT's per-op profile on the committed digits .tflite files: the C profiler of the wheel's
libLiteRt.so, driven by ctypes in a child process, as a row, the agent and a pytest run see it.

Structure only (names, op types, providers, the runs counted): no timing threshold. Nothing here
needs torch or a converter, so the tflite-only CI venv runs it.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import List

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from pytest_edgeopt.agent.profiling import SOURCES, profile
from pytest_edgeopt.models.digits import _load_split
from pytest_edgeopt.runtimes import litert_profile
from pytest_edgeopt.runtimes.base import NodeKernel, ProfilerUnavailable, RuntimeOptions
from pytest_edgeopt.runtimes.tflite import LegacyTfliteRuntime, LiteRT, LiteRTReference, _quantize
from tests.agent.agent_helpers import make_job, run_agent
from tests.pytester_helpers import QUICK

DATA = Path(__file__).resolve().parent.parent / "data" / "tflite"
RUNS = 5
INPUT = "serving_default_args_0"


def feeds(count: int = 2) -> List[dict]:
    """Real digits images, one per batch, as the agent feeds them (float: `run` quantizes)."""
    images = _load_split()[0][:count].astype(np.float32)
    return [{INPUT: images[i : i + 1]} for i in range(count)]


def profiled(runtime: LiteRT, name: str) -> List[NodeKernel]:
    runtime.load(str(DATA / f"digits_{name}.tflite"), threads=2, options=RuntimeOptions())
    try:
        return runtime.profile_nodes(feeds(), runs=RUNS)
    finally:
        runtime.close()


@pytest.mark.parametrize("name", ["fp32", "int8"])
def test_every_node_runs_on_xnnpack_under_its_xnnpack_op_name(name: str) -> None:
    kernels = profiled(LiteRT(), name)
    assert len(kernels) == 8 and {k.provider for k in kernels} == {"XNNPACK"}
    assert [k.name for k in kernels] == [f"[Delegate]:{i}" for i in range(8)]  # XNNPACK node indices
    convolutions = [k for k in kernels if k.op_type.startswith("Convolution (NHWC, ")]
    assert len(convolutions) == 2 and all(k.op_type.endswith("IGEMM") for k in convolutions)
    assert ("QC8" in convolutions[0].op_type) == (name == "int8")  # integer kernels for the INT8 file
    assert all(k.total_us >= 0 for k in kernels) and sum(k.total_us for k in kernels) > 0
    assert not any(k.op_type.startswith("Delegate/") for k in kernels)


def test_a_node_xnnpack_leaves_out_runs_on_tflites_builtin_kernel() -> None:
    kernels = profiled(LiteRT(), "int8_dynamic")  # XNNPACK takes no dynamic-range depthwise conv
    assert {k.provider for k in kernels} == {"XNNPACK", "TFLite"}
    assert [k.op_type for k in kernels if k.provider == "TFLite"] == ["DEPTHWISE_CONV_2D"]
    assert len({k.name for k in kernels}) == len(kernels)  # two partitions, each from [Delegate]:0
    assert any(re.search(r"\bQDU?8\b", k.op_type) for k in kernels)  # dynamically quantized (QDU8 on VNNI CPUs)


def test_the_reference_runtime_profiles_tflites_builtin_kernels() -> None:
    kernels = profiled(LiteRTReference(), "int8")
    assert {k.provider for k in kernels} == {"TFLite"}
    assert [k.op_type for k in kernels].count("CONV_2D") == 1 and "FULLY_CONNECTED" in {k.op_type for k in kernels}


def test_the_warm_up_is_left_out_every_node_counts_the_profiled_runs() -> None:
    """The raw summary: each node called once per profiled run, the warm-up run reset away."""
    path = DATA / "digits_int8.tflite"
    runtime = LiteRT()
    runtime.load(str(path), threads=1, options=RuntimeOptions())
    detail = runtime._inputs[0]
    quantized = [{INPUT: _quantize(batch[INPUT], detail)} for batch in feeds()]
    with tempfile.TemporaryDirectory() as tmp:
        request = litert_profile._write_request(
            Path(tmp), model=str(path), feeds=quantized, threads=1, runs=RUNS, kernel_mode="delegate"
        )
        result = litert_profile._run_child(request)
    assert result.error is None and result.summary is not None
    rows = [line for line in litert_profile._table_rows(result.summary, "Run Order") if "[Delegate]:" in line]
    assert len(rows) == 8
    assert {int(re.split(r"\s+", row.strip())[-2]) for row in rows} == {RUNS}  # [times called]


def test_the_agents_profiled_pass_gives_the_litert_source() -> None:
    runtime = LiteRT()
    runtime.load(str(DATA / "digits_fp32.tflite"), threads=1, options=RuntimeOptions())
    result = profile(runtime, feeds(), runs=RUNS)
    runtime.close()
    assert result.skipped is None and result.runs == RUNS and result.source == SOURCES["tflite"]
    assert result.ops[0].op_type.startswith("Convolution (NHWC, F32)") and result.ops[0].nodes == 2
    assert {n.provider for n in result.nodes} == {"XNNPACK"} and len(result.nodes) == 8


def test_tflite_runtime_says_it_has_no_c_profiler() -> None:
    with pytest.raises(ProfilerUnavailable, match="tflite-runtime ships no C profiler"):
        LegacyTfliteRuntime.profile_nodes(LiteRT(), feeds(), runs=RUNS)  # type: ignore[arg-type]


def test_a_job_asking_for_a_profile_gets_litert_s(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, inputs=_load_split()[0][:8])
    job = make_job(
        DATA / "digits_int8.tflite", inputs, runtime="tflite", options={}, profile={"when": "always", "runs": RUNS}
    )
    result, code, _ = run_agent(json.dumps(job))
    assert code == 0 and result["ok"], result
    got = result["profile"]
    assert got["skipped"] is None and got["runs"] == RUNS and got["source"].startswith("LiteRT C profiler")
    assert {n["provider"] for n in got["nodes"]} == {"XNNPACK"}
    assert any(o["op_type"] == "Convolution (NHWC, QC8) IGEMM" and o["nodes"] == 2 for o in got["ops"])


PROFILED = """
from pytest_edgeopt import EdgeModel
from pytest_edgeopt.models.digits import _load_split

X, Y, _ = _load_split()


def test_profiled(edge_runner):
    model = EdgeModel.from_tflite("digits_int8.tflite", name="digits-int8", eval_data=(X, Y))
    edge_runner.measure(model, precision="fp32", runtime="tflite")
"""


def test_edge_profile_puts_litert_s_per_op_profile_in_the_json_report(pytester: pytest.Pytester) -> None:
    shutil.copyfile(DATA / "digits_int8.tflite", pytester.path / "digits_int8.tflite")
    pytester.makepyfile(test_x=PROFILED)
    result = pytester.runpytest(*QUICK, "--edge-profile", "--edge-report", "out.json")
    result.assert_outcomes(passed=1)
    assert "no per-op profile" not in result.stdout.str()
    row = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))["rows"][0]
    got = row["measurement"]["op_profile"]
    assert got["skipped"] is None and got["runs"] == 10 and got["source"] == SOURCES["tflite"]
    assert {n["provider"] for n in got["nodes"]} == {"XNNPACK"} and len(got["nodes"]) == 8
    assert [o["op_type"] for o in got["ops"]].count("Convolution (NHWC, QC8) IGEMM") == 1
    assert sum(o["nodes"] for o in got["ops"]) == 8
