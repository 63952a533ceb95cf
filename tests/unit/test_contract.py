"""The agent contract: jobs and results round-trip, and what a device sends back is validated
field by field, so a malformed answer is one line naming the field, never a KeyError."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict

import pytest

from pytest_edgeopt.agent.contract import (
    CONTRACT_VERSION,
    ContractError,
    DeviceFacts,
    Evaluation,
    Failure,
    FailureKind,
    Job,
    RuntimeRef,
    SamplingPlan,
    Success,
    Timing,
    parse_result,
)
from pytest_edgeopt.agent.power import PowerReading
from pytest_edgeopt.platforms.transport import parse_agent_output
from pytest_edgeopt.runtimes.base import RuntimeInfo, RuntimeOptions


def success() -> Success:
    return Success(
        runtime=RuntimeInfo(name="onnxruntime", version="1.32.0", providers=("CPUExecutionProvider",)),
        evaluation=Evaluation(top_k=((3, 1), (2, 0)), eval_count=2, output_shape=(10,), near_top1=((3,), (2, 0))),
        batch=1,
        threads=1,
        load_ms=2.5,
        first_inference_ms=0.4,
        timing=Timing(
            wall_ms=(0.1, 0.2),
            cpu_ms=(0.1, 0.19),
            reference_wall_ms=(0.05,),
            reference_cpu_ms=(0.05,),
            peak_rss_mb=60.0,
            foreign_cores=0.01,
            throttled_before=0,
            throttled_after=0,
            power=PowerReading(source="command", average_w=3.0, idle_w=1.0, seconds=1.0, samples=20, estimated=False),
        ),
        fingerprint=DeviceFacts(arch="x86_64", cpu_model="Test CPU", cpu_flags=("avx2",), os_bits=64),
    )


def wire() -> Dict[str, Any]:
    return json.loads(json.dumps(success().to_dict()))


def test_a_job_round_trips_with_its_version() -> None:
    job = Job(
        artifact="/m.onnx",
        inputs="/i.npz",
        runtime=RuntimeRef("tflite", "pytest_edgeopt.runtimes.tflite", "LiteRT", "ai-edge-litert", "tflite"),
        batch=4,
        threads=2,
        options=RuntimeOptions(providers=("CPUExecutionProvider",)),
        plan=SamplingPlan(min_runs=7),
        power={"kind": "estimate", "watts": 2.0},
        keep_outputs=True,
    )
    data = json.loads(json.dumps(job.to_dict()))
    assert data["version"] == CONTRACT_VERSION
    assert Job.from_dict(data) == job


def test_a_result_round_trips_through_json() -> None:
    assert parse_result(wire()) == success()
    failure = Failure(kind=FailureKind.MISSING_PACKAGE, error="numpy is not installed", package="numpy")
    assert parse_result(json.loads(json.dumps(failure.to_dict()))) == failure


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.pop("evaluation"), "result.evaluation is missing"),
        (lambda d: d["timing"].update(wall_ms=[]), "result.timing.wall_ms must be a non-empty list of milliseconds"),
        (lambda d: d["timing"].update(wall_ms=[0.1, -1.0]), "timing.wall_ms must hold finite numbers > 0"),
        (lambda d: d["timing"].update(wall_ms=[0.0, 0.0]), "timing.wall_ms must hold finite numbers > 0"),
        (lambda d: d["timing"].update(cpu_ms=[0.1]), "timing: 2 wall samples but 1 CPU samples"),
        (lambda d: d["evaluation"].update(top_k=[[1]]), "evaluation.top_k holds 1 rows for 2 eval inputs"),
        (lambda d: d["evaluation"].update(top_k="nope"), "evaluation.top_k must be a list of lists of whole numbers"),
        (lambda d: d.update(batch=0), "result.batch must be a whole number >= 1, got 0"),
        (lambda d: d.update(load_ms="fast"), "result.load_ms must be a number >= 0, got 'fast'"),
        (lambda d: d["runtime"].pop("version"), "result.runtime.version is missing"),
        (lambda d: d["fingerprint"].update(arch=7), "fingerprint.arch must be a string"),
        (lambda d: d["timing"]["power"].pop("average_w"), "power reading: missing key 'average_w'"),
        (lambda d: d.update(version=1), "result version 1, expected 2"),
        (lambda d: d.update(ok=False, kind="exploded", error="x"), "result.kind 'exploded' is not one of"),
    ],
)
def test_a_malformed_result_names_the_field(damage: Callable[[Dict[str, Any]], object], message: str) -> None:
    data = wire()
    damage(data)
    with pytest.raises(ContractError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_result(data)


def test_the_transport_turns_a_malformed_answer_into_one_line_naming_the_device() -> None:
    result = parse_agent_output('{"ok": true, "version": 2}\n', "", 0, where="pi@10.0.0.7:22")
    assert isinstance(result, Failure) and result.kind == FailureKind.MALFORMED
    assert result.error == "the agent at pi@10.0.0.7:22 sent a malformed result: result.runtime is missing"
    died = parse_agent_output("", "Segmentation fault\n", -11, where="local")
    assert isinstance(died, Failure) and died.kind == FailureKind.AGENT_DIED and "Segmentation fault" in died.error


def test_a_job_from_another_contract_version_says_to_push_the_agent_again() -> None:
    data = Job(artifact="a", inputs="b", runtime=RuntimeRef("onnxruntime", "m", "C")).to_dict()
    data["version"] = 1
    with pytest.raises(ContractError, match="job version 1 is not this agent's 2: push the agent again"):
        Job.from_dict(data)


def test_the_evaluate_only_result_has_no_timing_and_says_so() -> None:
    only = Success(
        runtime=success().runtime,
        evaluation=success().evaluation,
        batch=1,
        threads=1,
        load_ms=1.0,
        first_inference_ms=1.0,
    )
    again = parse_result(json.loads(json.dumps(only.to_dict())))
    assert isinstance(again, Success) and again.timing is None
    with pytest.raises(ContractError, match="no latency samples"):
        again.timed()
