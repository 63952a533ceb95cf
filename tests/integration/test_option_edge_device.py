"""--edge-device, --edge-on-host, the built-in device profiles and [tool.edgeopt.platforms.*]."""

from __future__ import annotations

import platform

import pytest

from tests.pytester_helpers import QUICK, table

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

MEASURE = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
def test_x(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    print("RUN", m.runtime, m.threads, m.compute_unit)
"""
ON_A_PI = "Raspberry Pi" in (
    open("/proc/device-tree/model").read() if __import__("os").path.exists("/proc/device-tree/model") else ""
)


@pytest.mark.parametrize("value", ["pi.local", "ssh://", "ssh://pi@host:99999", "http://pi@host"])
def test_a_malformed_device_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, f"--edge-device={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-device*is not a device address: write ssh://USER@HOST[[]:PORT]*"])


@pytest.mark.skipif(ON_A_PI, reason="this machine is a Raspberry Pi")
def test_pi_without_a_device_on_another_machine_says_how_to_name_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, "--edge-platform=pi")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if "ERROR" in line]
    assert len(errors) == 1, result.stderr.lines
    assert "no pi device is reachable: this machine is" in errors[0]
    assert "--edge-device ssh://USER@HOST[:PORT]" in errors[0] and "--edge-on-host" in errors[0]


def test_on_host_runs_the_pi_profile_here_and_says_so(pytester: pytest.Pytester) -> None:
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("ai_edge_quantizer")
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, "-s", "--edge-platform=pi", "--edge-on-host")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*RUN tflite 4 CPU*"])
    cells = [r["Platform"] for r in table(result)]
    assert all(c.startswith("pi: host running the profile: ") and c.endswith("4 thr") for c in cells), cells
    assert "fingerprint mismatch" not in result.stdout.str()


def test_jetson_without_cuda_runs_on_the_cpu_and_the_row_says_it(pytester: pytest.Pytester) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, "-s", "--edge-platform=jetson-nano", "--edge-on-host")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*RUN onnxruntime 4 CPU*",
            "*TensorrtExecutionProvider and CUDAExecutionProvider not available on the device: ran on the CPU",
        ]
    )
    assert all(r["Compute (GFLOPs, GFLOP/s)"].endswith("(CPU)") for r in table(result))


def test_unknown_platform_lists_builtin_and_user_profiles(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject='[tool.edgeopt.platforms.mybox]\nextends = "host"\nthreads = 2\n')
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, "--edge-platform=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*unknown platform 'nope'; choose from host, pi, jetson-nano, cortex-m4, cortex-m7, esp32-s3, mybox*"]
    )


def test_a_user_profile_extends_a_builtin_one(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml", pyproject='[tool.edgeopt.platforms.host2]\nextends = "host"\nthreads = 2\nprecisions = ["fp32"]\n'
    )
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, "-s", "-rs", "--edge-platform=host2")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*RUN onnxruntime 2 CPU*", "*int8 is not among the host2 platform's precisions (fp32)*"]
    )
    assert table(result)[0]["Platform"].startswith("host2: ")


@pytest.mark.parametrize(
    "toml, message",
    [
        ("threads = 0", "[[]tool.edgeopt.platforms.bad]: threads: 0 is less than the minimum of 1"),
        ("thread = 2", "[[]tool.edgeopt.platforms.bad]: (the table): Additional properties are not allowed ('thread'*"),
        ('device = "pi.local"', "[[]tool.edgeopt.platforms.bad]: device: 'pi.local' is not valid*"),
        ('runtime = "tensorrt"', "*runtime: 'tensorrt' is not one of*"),
        ('power = {kind = "command"}', "*power: 'command' is a required property*"),
        ('extends = "orin"', "*extends unknown platform 'orin'; choose from host, pi, jetson-nano*"),
        ('fingerprint_policy = "ignore"', "*fingerprint_policy: 'ignore' is not one of [[]'fail', 'warn']*"),
    ],
)
def test_a_bad_profile_is_one_usage_error_naming_the_key(pytester: pytest.Pytester, toml: str, message: str) -> None:
    pytester.makefile(".toml", pyproject=f"[tool.edgeopt.platforms.bad]\n{toml}\n")
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, "--edge-platform=bad")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr.lines
    result.stderr.fnmatch_lines([f"ERROR: pyproject.toml {message}"])


def test_a_platforms_key_that_is_not_a_table_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject='[tool.edgeopt]\nplatforms = "pi"\n')
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*[[]tool.edgeopt.platforms] must hold one table per platform*"])


def test_device_local_means_here(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.edgeopt.platforms.here]\nextends = "host"\ndevice = "local"\n'
        f'fingerprint = {{arch = "{platform.machine()}"}}\n',
    )
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, "--edge-platform=here")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*pytest-edgeopt: devices*", "here: *: 2 rows"])


@pytest.mark.skipif(ON_A_PI, reason="this machine is a Raspberry Pi")
def test_device_local_for_pi_checks_this_machine_is_a_pi(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, "--edge-platform=pi", "--edge-device=local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no pi device is reachable: this machine is *"])
