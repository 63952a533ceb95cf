"""LiteRT's per-op profile without the runtime: the summary text LiteRT really printed, and what a
crashing child process becomes.

The fixture is the summary of a real run (`digits_int8_dynamic.tflite`, 10 profiled runs, 1 thread,
ai-edge-litert 2.3.0): two XNNPACK partitions (each numbering its nodes from 0) around a
DEPTHWISE_CONV_2D that XNNPACK left to TFLite's builtin kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_edgeopt.agent.profiling import summarize
from pytest_edgeopt.runtimes.base import NodeKernel
from pytest_edgeopt.runtimes.litert_profile import (
    ABI_VERSION,
    PassRequest,
    PassResult,
    _run_child,
    _with_version,
    parse_summary,
)

SUMMARY = Path(__file__).resolve().parent.parent / "data" / "tflite" / "digits_int8_dynamic.profile.txt"


def test_the_run_order_table_gives_one_kernel_per_node_with_its_provider() -> None:
    kernels = parse_summary(SUMMARY.read_text(encoding="utf-8"))
    assert len(kernels) == 9  # the "Top by Computation Time" table repeats them: not counted twice
    assert kernels[:4] == [
        NodeKernel("[Delegate]:0", "Static Reshape (NC)", "XNNPACK", 0.0),
        NodeKernel("[Builtin]:1", "DEPTHWISE_CONV_2D", "TFLite", 40.0),  # 0.004 ms x 10 calls
        NodeKernel("[Delegate]:0 #2", "Convert (NC, F32, QD8)", "XNNPACK", 0.0),  # the second partition
        NodeKernel("[Delegate]:1 #2", "Convolution (NHWC, QD8, F32, QC8W) IGEMM", "XNNPACK", 90.0),
    ]
    assert len({k.name for k in kernels}) == 9
    assert {k.provider for k in kernels} == {"XNNPACK", "TFLite"}


def test_the_summary_becomes_ms_per_inference_by_xnnpack_op() -> None:
    profile = summarize(parse_summary(SUMMARY.read_text(encoding="utf-8")), runs=10, source="LiteRT")
    assert [(o.op_type, o.ms, o.nodes) for o in profile.ops[:3]] == [
        ("Convolution (NHWC, QD8, F32, QC8W) IGEMM", 0.009, 1),
        ("DEPTHWISE_CONV_2D", 0.004, 1),
        ("Fully Connected (NC, QD8, F32, QC8W) GEMM", 0.001, 2),
    ]


def test_a_summary_without_the_table_gives_no_kernel() -> None:
    assert parse_summary("") == []
    assert parse_summary("Number of nodes executed: 0\n0 nodes observed\n") == []


def test_the_cross_process_records_round_trip() -> None:
    request = PassRequest("m.tflite", "f.npz", ("x", "y"), 2, 4, 10, "delegate", "r.json")
    assert PassRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request
    for result in (PassResult(summary="text"), PassResult(error="LiteRtCreateCompiledModel failed with status 1")):
        assert PassResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_a_child_that_segfaults_is_a_reason_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SIGSEGV: the child's interpreter reads address 0 as it starts (sitecustomize)."""
    crash = tmp_path / "crash"
    crash.mkdir()
    (crash / "sitecustomize.py").write_text("import ctypes\nctypes.string_at(0)\n")
    monkeypatch.setenv("PYTHONPATH", str(crash))
    request = PassRequest("m.tflite", "f.npz", ("x",), 1, 1, 1, "delegate", str(tmp_path / "result.json"))
    result = _run_child(request)
    assert result.summary is None and result.error is not None
    assert result.error.startswith("LiteRT's C profiler crashed (SIGSEGV, signal 11)")


def test_a_child_that_fails_says_how(tmp_path: Path) -> None:
    # the child reaches the feeds only once it has loaded the wheel's libLiteRt.so
    pytest.importorskip("ai_edge_litert")
    request = PassRequest("m.tflite", "f.npz", ("x",), 1, 1, 1, "delegate", str(tmp_path / "result.json"))
    (tmp_path / "request.json").write_text(json.dumps({**request.to_dict(), "feeds": str(tmp_path / "none.npz")}))
    result = _run_child(request)
    assert result.error is not None and result.error.startswith("LiteRT's C profiler exited with status 1")
    assert "none.npz" in result.error  # the child's last stderr line: what it could not read


def test_a_failure_on_another_litert_version_says_the_abi_was_checked_on_one() -> None:
    assert _with_version("LiteRtRunCompiledModel failed with status 1", ABI_VERSION).endswith("status 1")
    other = _with_version("LiteRtRunCompiledModel failed with status 1", "2.4.0")
    assert f"ai-edge-litert 2.4.0; the C profiler ABI was checked on {ABI_VERSION} only" in other
