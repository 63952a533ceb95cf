"""The extension hooks: a runtime and a power meter added by a conftest.py, used by name from
markers, options and platform profiles exactly like the built-ins, with real measurements."""

from __future__ import annotations

import textwrap

import pytest

from tests.pytester_helpers import QUICK, table

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

# A real runtime of the user's own: ONNX Runtime with graph optimizations off (a debugging build
# a team might keep next to the optimized one), in a module of their project.
RUNTIME_MODULE = """
import onnxruntime as ort

from pytest_edgeopt.runtimes.onnxruntime import OnnxRuntime, _session_options
from pytest_edgeopt.runtimes.base import ArtifactError


class UnoptimizedOrt(OnnxRuntime):
    name = "ort-unoptimized"

    def load(self, artifact, *, threads, options):
        settings = _session_options(threads)
        settings.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            self._session = ort.InferenceSession(artifact, sess_options=settings, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ArtifactError(str(error)) from None

    def info(self):
        from dataclasses import replace
        return replace(super().info(), name=self.name, extra={"graph_optimization": "disabled"})
"""

RUNTIME_CONFTEST = """
from pytest_edgeopt.runtimes import RuntimeSpec

def pytest_edgeopt_runtimes(config):
    return [RuntimeSpec(name="ort-unoptimized", module="my_runtimes", cls="UnoptimizedOrt",
                        package="onnxruntime", extra="", format="onnx")]
"""

BOTH_RUNTIMES = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
@pytest.mark.edge_runtimes("onnxruntime", "ort-unoptimized")
def test_digits(edge_model, edge_precision, edge_runtime, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.runtime == edge_runtime
    assert m.top1 >= 0.95
    if edge_runtime == "ort-unoptimized":
        assert m.fingerprint["runtime"]["extra"] == {"graph_optimization": "disabled"}
"""


def test_a_conftest_runtime_measures_beside_the_builtin_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(my_runtimes=RUNTIME_MODULE, conftest=RUNTIME_CONFTEST, test_rt=BOTH_RUNTIMES)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=4)
    runtimes = [row["Runtime"] for row in table(result)]
    assert sum(r.startswith("ort-unoptimized ") for r in runtimes) == 2
    assert sum(r.startswith("onnxruntime ") for r in runtimes) == 2


def test_options_and_profiles_accept_a_plugin_runtime_and_reject_an_unknown_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(my_runtimes=RUNTIME_MODULE, conftest=RUNTIME_CONFTEST, test_rt=BOTH_RUNTIMES)
    pytester.makefile(
        ".toml", pyproject='[tool.edgeopt.platforms.debug]\nextends = "host"\nruntime = "ort-unoptimized"\n'
    )
    result = pytester.runpytest(*QUICK, "--edge-runtime=ort-unoptimized", "--edge-platform=debug")
    result.assert_outcomes(passed=2, deselected=2)
    unknown = pytester.runpytest(*QUICK, "--edge-runtime=tensorrt")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["*unknown runtime 'tensorrt'; choose from *ort-unoptimized*, onnxruntime, *"])


# A meter of the user's own: a bench supply read over a serial line, here the configured full-load
# watts scaled by how busy this process kept its CPU (idle while the idle draw is sampled, busy in
# the timed loop); the factory receives the profile's power table.
METER_MODULE = """
from contextlib import contextmanager
import time

from pytest_edgeopt.agent.power import PowerReading


class BenchSupply:
    source = "bench-supply"

    def __init__(self, spec):
        self.watts = float(spec["options"]["watts"])
        self._last = None

    @contextmanager
    def track(self):
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        seconds = time.perf_counter() - wall
        busy = min((time.process_time() - cpu) / seconds, 1.0)
        self._last = PowerReading(source=self.source, average_w=self.watts * busy, idle_w=0.0,
                                  seconds=seconds, samples=1, estimated=False)

    def energy(self):
        return self._last


def make(spec):
    return BenchSupply(spec)
"""

METER_CONFTEST = """
from pytest_edgeopt.agent.power import PowerMeterSpec

def pytest_edgeopt_power_meters(config):
    return [PowerMeterSpec(kind="bench-supply", module="my_meters", factory="make")]
"""

ENERGY = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32")
def test_energy(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.energy_source == "bench-supply"
    assert m.energy_mj == pytest.approx(m.energy_w * m.latency_ms)
"""


def test_a_conftest_power_meter_fills_the_energy_columns(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(my_meters=METER_MODULE, conftest=METER_CONFTEST, test_e=ENERGY)
    pytester.makefile(
        ".toml",
        pyproject=textwrap.dedent("""
        [tool.edgeopt.platforms.bench]
        extends = "host"
        power = {kind = "bench-supply", idle_s = 0.1, options = {watts = 2.5}}
    """),
    )
    result = pytester.runpytest(*QUICK, "--edge-platform=bench")
    result.assert_outcomes(passed=1)
    watts, source = table(result)[0]["Energy (W)"].split()
    assert source == "(bench-supply)" and 1.0 < float(watts) <= 2.5  # the loop keeps one core busy


def test_a_power_meter_kind_nobody_registered_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_e=ENERGY)
    pytester.makefile(
        ".toml", pyproject='[tool.edgeopt.platforms.bench]\nextends = "host"\npower = {kind = "joulescope"}\n'
    )
    result = pytester.runpytest(*QUICK, "--edge-platform=bench")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*[[]tool.edgeopt.platforms.bench]: power.kind: 'joulescope' is not one of none, rapl*"]
    )
