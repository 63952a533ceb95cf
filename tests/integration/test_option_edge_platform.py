"""--edge-platform, --edge-threads, the pytest_edgeopt_platforms hook and the edge_platform fixture."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


QUICK = ("--edge-quick", "-p", "no:cacheprovider")

MEASURE_FP32 = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32")
def test_x(edge_model, edge_precision, edge_runner, edge_platform):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.platform == edge_platform.name == edge_runner.platform.name
    print("THREADS", m.threads)
"""

HOST_2T_CONFTEST = """
from pytest_edgeopt import Platform

def pytest_edgeopt_platforms(config):
    return [Platform(name="host-2t", description="this machine, 2 threads", threads=2)]
"""


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "model name" and value.strip():
            return value.strip()
    pytest.skip("/proc/cpuinfo names no CPU model")


def _platform_cells(result: pytest.RunResult) -> list:
    """The Platform cell of every row of the comparison table."""
    lines = result.stdout.lines
    section = next(i for i, line in enumerate(lines) if "pytest-edgeopt: comparison table" in line)
    header = next(i for i in range(section, len(lines)) if lines[i].startswith("Model "))
    column = lines[header].index("Platform")
    end = next((i for i in range(header, len(lines)) if "pytest-edgeopt: what to deploy" in lines[i]), len(lines))
    rows = [line for line in lines[header + 2 : end] if line.strip() and not line.startswith(("[", "="))]
    return [row[column:].split("  ")[0].strip() for row in rows]


def test_default_platform_is_the_host_cpu(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=MEASURE_FP32)
    result = pytester.runpytest(*QUICK, "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*THREADS 1"])
    cells = _platform_cells(result)
    assert cells == [f"host: {_cpu_model()} ({platform.machine()}), 1 thr"]


def test_unknown_platform_is_a_usage_error_listing_host(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=MEASURE_FP32)
    result = pytester.runpytest(*QUICK, "--edge-platform=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-platform: unknown platform 'nope'; choose from host*"])


def test_hook_adds_a_platform_the_option_selects(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HOST_2T_CONFTEST)
    pytester.makepyfile(test_x=MEASURE_FP32)
    result = pytester.runpytest(*QUICK, "-s", "--edge-platform=host-2t")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*THREADS 2"])
    assert _platform_cells(result) == [f"host-2t: {_cpu_model()} ({platform.machine()}), 2 thr"]


def test_hook_platforms_are_listed_when_the_name_is_wrong(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HOST_2T_CONFTEST)
    pytester.makepyfile(test_x=MEASURE_FP32)
    result = pytester.runpytest(*QUICK, "--edge-platform=host-3t")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown platform 'host-3t'; choose from host-2t, host*"])


def test_edgeopt_platform_ini_selects_the_platform(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HOST_2T_CONFTEST)
    pytester.makeini("[pytest]\nedgeopt_platform = host-2t\n")
    pytester.makepyfile("""
        def test_p(edge_platform):
            assert edge_platform.name == "host-2t"
    """)
    pytester.runpytest(*QUICK).assert_outcomes(passed=1)


def test_edge_threads_changes_the_threads_measured_with(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=MEASURE_FP32)
    result = pytester.runpytest(*QUICK, "-s", "--edge-threads=2")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*THREADS 2"])
    assert _platform_cells(result) == [f"host: {_cpu_model()} ({platform.machine()}), 2 thr"]


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_edge_threads_must_be_a_positive_whole_number(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(test_x=MEASURE_FP32)
    result = pytester.runpytest(*QUICK, f"--edge-threads={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-threads*expected*"])


def test_edge_platform_fixture_returns_the_platform(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HOST_2T_CONFTEST)
    pytester.makepyfile("""
        from pytest_edgeopt import Platform

        def test_default(edge_platform):
            assert isinstance(edge_platform, Platform)
            assert edge_platform.name == "host"
            assert edge_platform.runtime == "onnxruntime"
            assert edge_platform.threads == 1
    """)
    pytester.runpytest(*QUICK).assert_outcomes(passed=1)
    pytester.makepyfile("""
        from pytest_edgeopt import Platform

        def test_default(edge_platform):
            assert edge_platform == Platform(name="host-2t", description="this machine, 2 threads",
                                             threads=2)
    """)
    pytester.runpytest(*QUICK, "--edge-platform=host-2t").assert_outcomes(passed=1)


def test_a_conftest_platform_named_host_replaces_the_builtin_one(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        from pytest_edgeopt import Platform

        def pytest_edgeopt_platforms(config):
            return [Platform(name="host", description="host with 2 threads", threads=2)]
    """)
    pytester.makepyfile("""
        def test_p(edge_platform):
            assert edge_platform.threads == 2
    """)
    pytester.runpytest(*QUICK).assert_outcomes(passed=1)
