"""Sampling, timeout and cache options (--edge-min-runs ... --edge-cache-dir) and their ini twins.

Each option is checked through what it changes in the result (the number of timed runs, the
time-cap note, a killed agent, the files in the cache), never through how long anything took.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


QUICK = ("--edge-quick", "-p", "no:cacheprovider")

MEASURE = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32")
def test_x(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.latency.rounds == len(m.samples_ms)
    print("ROUNDS", m.latency.rounds)
    print("NOTES", m.notes)
    {check}
"""


def _measuring_test(pytester: pytest.Pytester, check: str = "") -> None:
    pytester.makepyfile(test_x=MEASURE.format(check=check))


def _usage_error(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    _measuring_test(pytester)
    result = pytester.runpytest(*QUICK, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    return result


# --edge-min-runs / --edge-min-time / --edge-max-time


def test_min_runs_with_no_min_time_takes_exactly_that_many_samples(pytester: pytest.Pytester) -> None:
    _measuring_test(pytester, check="assert m.latency.rounds == 40")
    result = pytester.runpytest(*QUICK, "-s", "--edge-min-runs=40", "--edge-min-time=0")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ROUNDS 40"])


def test_min_time_keeps_sampling_past_min_runs(pytester: pytest.Pytester) -> None:
    # one run of a millisecond-model cannot fill 0.3 s, so more than the one required run is taken
    _measuring_test(pytester, check="assert m.latency.rounds > 1")
    result = pytester.runpytest(*QUICK, "--edge-min-runs=1", "--edge-min-time=0.3")
    result.assert_outcomes(passed=1)


def test_max_time_caps_sampling_and_the_row_says_so(pytester: pytest.Pytester) -> None:
    _measuring_test(
        pytester, check="assert 0 < m.latency.rounds < 10**8\n    assert any('time cap' in note for note in m.notes)"
    )
    result = pytester.runpytest(*QUICK, "--edge-min-runs=100000000", "--edge-min-time=0", "--edge-max-time=0.1")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["[[]*[]] timing stopped at the time cap after * runs"])


def test_max_time_below_min_time_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = _usage_error(pytester, "--edge-min-time=1", "--edge-max-time=0.5")
    result.stderr.fnmatch_lines(["*--edge-max-time (0.5 s) is below --edge-min-time (1.0 s)*"])


@pytest.mark.parametrize(
    "args",
    [
        ("--edge-min-runs=0",),
        ("--edge-min-runs=abc",),
        ("--edge-min-runs=-3",),
        ("--edge-min-runs=2.5",),
        ("--edge-min-time=-1",),
        ("--edge-min-time=abc",),
        ("--edge-max-time=0",),
        ("--edge-max-time=-1",),
        ("--edge-warmup-runs=-1",),
        ("--edge-warmup-runs=abc",),
        ("--edge-warmup-time=-0.5",),
        ("--edge-timeout=0",),
        ("--edge-timeout=abc",),
    ],
    ids=lambda args: " ".join(args),
)
def test_bad_numbers_are_usage_errors(pytester: pytest.Pytester, args: tuple) -> None:
    result = _usage_error(pytester, *args)
    option = args[0].split("=")[0]
    assert (
        option in result.stderr.str()
        or option.lstrip("-").replace("edge-", "edgeopt_").replace("-", "_") in result.stderr.str()
    )
    assert "Traceback" not in result.stderr.str()


# --edge-warmup-runs / --edge-warmup-time: the warm-up of a tiny model takes as long as asked,
# so an agent told to warm up far longer than --edge-timeout allows is killed


@pytest.mark.parametrize(
    "warmup",
    [
        ("--edge-warmup-runs=100000000", "--edge-warmup-time=0"),
        ("--edge-warmup-runs=0", "--edge-warmup-time=60"),
    ],
    ids=["runs", "time"],
)
def test_warmup_options_set_the_warm_up(pytester: pytest.Pytester, warmup: tuple) -> None:
    _measuring_test(pytester)
    result = pytester.runpytest(*QUICK, *warmup, "--edge-max-time=60", "--edge-timeout=2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the agent did not finish within 2 s (raise --edge-timeout)*"])


# --edge-timeout


def test_timeout_fails_the_measurement_with_one_line(pytester: pytest.Pytester) -> None:
    _measuring_test(pytester)
    result = pytester.runpytest(*QUICK, "--edge-timeout=0.001")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*EdgeOptError: digits-cnn [[]fp32, onnxruntime[]]: the agent did not finish within 0.001 s "
            "(raise --edge-timeout)"
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "pytest-edgeopt: comparison table" not in result.stdout.str()


# --edge-cache-dir


def _cache_files(root: Path) -> dict:
    return {suffix: sorted(root.glob(f"*{suffix}")) for suffix in (".onnx", ".npz", ".json")}


def test_cache_dir_option_receives_the_artifacts(pytester: pytest.Pytester) -> None:
    _measuring_test(pytester)
    result = pytester.runpytest(*QUICK, "--edge-cache-dir=my-cache")  # relative: to the rootdir
    result.assert_outcomes(passed=1)
    files = _cache_files(pytester.path / "my-cache")
    assert len(files[".onnx"]) == 1 and files[".npz"] and files[".json"]
    assert not (pytester.path / ".edgeopt_cache").exists()


# ini options


SMALL_PLAN_INI = """
[pytest]
edgeopt_min_runs = 40
edgeopt_min_time = 0
edgeopt_max_time = 5
edgeopt_warmup_runs = 1
edgeopt_warmup_time = 0
"""


def test_ini_sampling_options_set_the_plan(pytester: pytest.Pytester) -> None:
    pytester.makeini(SMALL_PLAN_INI)
    _measuring_test(pytester, check="assert m.latency.rounds == 40")
    result = pytester.runpytest("-p", "no:cacheprovider")  # no --edge-quick: the ini decides
    result.assert_outcomes(passed=1)


def test_command_line_beats_the_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(SMALL_PLAN_INI)
    _measuring_test(pytester, check="assert m.latency.rounds == 25")
    result = pytester.runpytest("-p", "no:cacheprovider", "--edge-min-runs=25")
    result.assert_outcomes(passed=1)


def test_quick_preset_beats_the_ini_and_explicit_options_beat_the_preset(pytester: pytest.Pytester) -> None:
    pytester.makeini(SMALL_PLAN_INI)  # 40 runs; --edge-quick takes 5, unless an option says otherwise
    _measuring_test(pytester, check="assert m.latency.rounds == 5")
    result = pytester.runpytest(*QUICK, "--edge-min-time=0")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "ini, message",
    [
        ("edgeopt_min_runs = abc", "*ini option edgeopt_min_runs = 'abc' is not a number*"),
        ("edgeopt_min_runs = 0", "*edgeopt_min_runs must be >= 1, got 0*"),
        ("edgeopt_warmup_runs = -1", "*edgeopt_warmup_runs must be >= 0, got -1*"),
        ("edgeopt_min_time = 1\nedgeopt_max_time = 0.5", "*below*min-time*"),
        ("edgeopt_timeout = 0", "*edgeopt_timeout must be > 0, got 0*"),
    ],
    ids=["not-a-number", "zero-runs", "negative-warmup", "max-below-min", "zero-timeout"],
)
def test_bad_ini_values_are_usage_errors(pytester: pytest.Pytester, ini: str, message: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    _measuring_test(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_ini_timeout_kills_the_agent(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nedgeopt_timeout = 0.001\n")
    _measuring_test(pytester)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the agent did not finish within 0.001 s (raise --edge-timeout)"])


def test_ini_cache_dir_is_relative_to_the_rootdir(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEOPT_CACHE_DIR")  # the variable beats the ini
    pytester.makeini("[pytest]\nedgeopt_cache_dir = build/edge\n")
    _measuring_test(pytester)
    pytester.mkdir("tests")
    result = pytester.runpytest(*QUICK, "--rootdir", str(pytester.path))
    result.assert_outcomes(passed=1)
    assert len(_cache_files(pytester.path / "build" / "edge")[".onnx"]) == 1
