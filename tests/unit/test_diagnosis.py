"""Per-op profiles: the contract's types, the summary by op type, the diff a failure prints."""

from __future__ import annotations

import ctypes.util
import json
from pathlib import Path

import pytest

from pytest_edgeopt.agent.contract import Job, OpProfile, ProfileRequest, ProfileWhen, RuntimeRef, parse_result
from pytest_edgeopt.agent.profiling import summarize
from pytest_edgeopt.baselines.entry import BaselineEntry, entry_from_measurement
from pytest_edgeopt.baselines.store import validate
from pytest_edgeopt.measure.diagnosis import diagnosis_lines, op_changes, summary
from pytest_edgeopt.runtimes.base import NodeKernel
from pytest_edgeopt.runtimes.litert_profile import SYMBOLS, missing_symbols
from tests.unit.test_result import make_measurement

KERNELS = [
    NodeKernel("conv_1", "Conv", "CPUExecutionProvider", 30_000.0),
    NodeKernel("conv_2", "Conv", "CPUExecutionProvider", 10_000.0),
    NodeKernel("fc", "Gemm", "CPUExecutionProvider", 2_000.0),
]


def test_summarize_gives_ms_per_inference_by_op_type_and_by_node_slowest_first() -> None:
    profile = summarize(KERNELS, runs=10, source="test")
    assert [(o.op_type, o.ms, o.nodes) for o in profile.ops] == [("Conv", 4.0, 2), ("Gemm", 0.2, 1)]
    assert (profile.nodes[0].name, profile.nodes[0].ms, profile.nodes[0].provider) == (
        "conv_1",
        3.0,
        "CPUExecutionProvider",
    )
    assert profile.total_ms == pytest.approx(4.2)


def test_profiles_and_requests_cross_the_contract() -> None:
    profile = summarize(KERNELS, runs=10, source="test")
    assert OpProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    job = Job(artifact="a", inputs="i", runtime=RuntimeRef(name="x", module="m", cls="C"), profile=ProfileRequest())
    assert Job.from_dict(job.to_dict()).profile == ProfileRequest(when=ProfileWhen.REGRESSED, runs=10)
    assert Job.from_dict({**job.to_dict(), "profile": None}).profile is None  # an older host's job


def test_a_result_without_a_profile_parses_as_before() -> None:
    from tests.unit.test_contract import wire

    data = wire()
    data.pop("profile", None)
    assert parse_result(data).profile is None  # type: ignore[union-attr]


def test_the_failure_lists_the_largest_changes_with_their_node_counts() -> None:
    before = {"Conv": (4.1, 53), "Gemm": (0.5, 1), "Relu": (0.2, 10)}
    after = {"Conv": (6.3, 53), "Gemm": (0.5, 1), "Add": (0.4, 4)}
    assert [c.op_type for c in op_changes(before, after)] == ["Conv", "Add", "Relu", "Gemm"]
    lines = diagnosis_lines(before, after, against="baseline")
    assert lines[0].startswith("per-op profile, baseline -> now (kernel time per inference): 4.8 -> 7.2 ms")
    assert lines[1] == "Conv: 4.1 -> 6.3 ms (+54%), 53 nodes"
    assert lines[2] == "Add: 0 -> 0.4 ms (new), 0 -> 4 nodes"
    assert lines[3] == "Relu: 0.2 -> 0 ms (gone), 10 -> 0 nodes"
    assert lines[4] == "Gemm: 0.5 -> 0.5 ms (+0%), 1 node"
    assert diagnosis_lines(None, after, against="baseline") == []


def test_baselines_keep_a_compact_summary_and_old_entries_load() -> None:
    m = make_measurement(op_profile=summarize(KERNELS, runs=10, source="test"))
    entry = entry_from_measurement(m)
    stored = entry.to_dict()
    assert stored["op_profile"] == {"ops": {"Conv": [4.0, 2], "Gemm": [0.2, 1]}}
    assert BaselineEntry.from_dict(stored).op_summary == summary(m.op_profile)
    file = {"schema_version": 1, "platform": "host", "module": "t.py", "entries": {"k": stored}}
    assert validate(file) is None
    old = {k: v for k, v in stored.items() if k != "op_profile"}
    assert validate({**file, "entries": {"k": old}}) is None and BaselineEntry.from_dict(old).op_summary is None
    assert validate({**file, "entries": {"k": {**stored, "op_profile": {"ops": {"Conv": [-1, 2]}}}}})


def test_onnxruntime_trace_events_after_the_warm_up_run_are_summed_per_node() -> None:
    pytest.importorskip("onnxruntime")
    from pytest_edgeopt.runtimes.onnxruntime import _node_kernels

    def node(ts: float, dur: float) -> dict:
        args = {"op_name": "Conv", "provider": "CPUExecutionProvider"}
        return {"cat": "Node", "name": "c_kernel_time", "ts": ts, "dur": dur, "args": args}

    trace = [{"cat": "Session", "name": "model_run", "ts": 0, "dur": 10}, node(5, 100), node(20, 7), node(40, 3)]
    assert _node_kernels(trace) == [NodeKernel("c", "Conv", "CPUExecutionProvider", 10.0)]


def test_a_library_without_the_profiler_symbols_names_them() -> None:
    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no libc to load here")
    assert missing_symbols(Path(libc)) == SYMBOLS
    assert missing_symbols(Path("/no/such/libLiteRt.so")) == SYMBOLS


def test_an_update_with_a_profile_rewrites_an_entry_that_had_none() -> None:
    from pytest_edgeopt.baselines.entry import changed

    plain = entry_from_measurement(make_measurement())
    profiled = entry_from_measurement(make_measurement(op_profile=summarize(KERNELS, runs=10, source="test")))
    assert changed(plain, profiled) and not changed(profiled, plain) and not changed(plain, plain)
