"""--edge-platform on a microcontroller profile: the INT8 model runs in TFLite Micro on this
machine, the arena must fit the SRAM and the model the flash, latency and energy are estimates
labelled in every cell, FP32 and hybrid models skip, and ai-edge-quantizer's external buffers are
inlined before TFLM sees them. Each behaviour runs with TFLM, and with it made unimportable
(LiteRT's reference kernels then stand in and the arena is estimated).

Most cases measure the committed digits INT8 .tflite as given (no torch, no quantizer needed);
one goes the whole way from the zoo's PyTorch model.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Dict, List

import pytest

pytest.importorskip("ai_edge_litert")

from tests.mcu_helpers import DATA, DIGITS_INT8, externalized
from tests.pytester_helpers import QUICK, failures, notes, table

HAS_TFLM = importlib.util.find_spec("tflite_micro") is not None
ARENA_KB = 6352 / 1024  # what TFLM allocates for digits_int8.tflite, and what the estimate says

MODEL = """
import pytest
from pytest_edgeopt import EdgeModel
from pytest_edgeopt.models.digits import _load_split

X, Y, _ = _load_split()


def digits(path, name="digits-int8"):
    return EdgeModel.from_tflite(path, name=name, eval_data=(X, Y))
"""

MEASURE = (
    MODEL
    + """

def test_board(edge_runner):
    m = edge_runner.measure(digits({path!r}), precision="fp32")  # the file is INT8: measured as given
    print("ARENA", m.arena_kb, "FLASH", m.flash_kb, "TOP1", m.top1)
    print("ESTIMATES", ",".join(m.estimates))
"""
)


@pytest.fixture(params=["tflm", "stand-in"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """TFLM where the wheel is installed; "stand-in": the same run with tflite_micro unimportable
    in the agent, as on a machine the nightly wheel does not exist for."""
    if request.param == "tflm" and not HAS_TFLM:
        pytest.skip('tflite-micro is not installed: pip install "pytest-edgeopt[mcu]" (x86-64 Linux)')
    if request.param == "stand-in":
        shadow = tmp_path / "shadow" / "tflite_micro"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text('raise ImportError("tflite_micro made unimportable by the test")\n')
        monkeypatch.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")]))
        )
    return str(request.param)


def _row(result: pytest.RunResult) -> Dict[str, str]:
    rows = table(result)
    assert len(rows) == 1, rows
    return rows[0]


def _printed(result: pytest.RunResult, key: str) -> List[str]:
    """The words after `key` on the line a test printed it (-s: it follows the file's name)."""
    line = next(line for line in result.stdout.lines if f"{key} " in line)
    return line.split(f"{key} ", 1)[1].split()


@pytest.mark.parametrize(
    "option, platform, device",
    [("mcu", "cortex-m4", "Cortex-M4F at 120 MHz"), ("cortex-m7", "cortex-m7", "Cortex-M7 at 480 MHz")],
)
def test_a_full_integer_model_shows_arena_flash_and_estimates_labelled(
    pytester: pytest.Pytester, engine: str, option: str, platform: str, device: str
) -> None:
    pytester.makepyfile(test_b=MEASURE.format(path=str(DIGITS_INT8)))
    result = pytester.runpytest(*QUICK, "-s", f"--edge-platform={option}")
    result.assert_outcomes(passed=1)
    arena, flash = (float(v) for v in _printed(result, "ARENA")[::2][:2])
    assert arena == ARENA_KB and flash == pytest.approx(DIGITS_INT8.stat().st_size / 1024 + 100)
    estimated = _printed(result, "ESTIMATES")[0].split(",")
    assert {"latency_ms", "throughput", "energy_mj", "energy_w", "flash_kb"} <= set(estimated)
    assert ("arena_kb" in estimated) is (engine == "stand-in")
    row = _row(result)
    assert row["Arena (KB)"] == ("6.2" if engine == "tflm" else "6.2 est.")
    assert row["Flash (KB)"] == "146.2 est." and row["Peak RSS (MB)"] == "-"
    assert row["Latency (ms, p50)"].endswith(" est.") and row["Throughput (inf/s)"].endswith(" est.")
    assert row["Energy (mJ/inf)"].endswith(f"({platform} active power est.)")
    assert row["Platform"].startswith(f"{platform}: {device}")
    texts = "\n".join(notes(result))
    assert "latency est.: MACs per kernel class x" in texts and "flash est.: the model file + 100 KB" in texts
    if engine == "tflm":
        assert row["Runtime"].startswith("tflm 0.dev") and "arena: what TFLM allocated" in texts
    else:
        assert row["Runtime"] == "tflm absent (LiteRT 2.3.0 reference kernels)"
        assert "tflite-micro is not installed here" in texts and "arena est.: TFLM's memory planner" in texts


SKIPS = (
    MODEL
    + """

@pytest.mark.parametrize("precision", ["fp32", "int8-dynamic", "fp16"])
def test_not_integer(edge_runner, precision):
    edge_runner.measure(digits({path!r}, name="digits-fp32"), precision=precision)
"""
)


def test_fp32_dynamic_int8_and_fp16_skip_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SKIPS.format(path=str(DATA / "digits_fp32.tflite")))
    result = pytester.runpytest(*QUICK, "-rs", "--edge-platform=cortex-m4")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(
        [
            "*fp32 does not run on cortex-m4: float compute in RESHAPE x2, DEPTHWISE_CONV_2D, CONV_2D*"
            "a microcontroller runs full-integer models: measure precision int8",
            "*int8-dynamic does not run on cortex-m4: TFLite Micro refuses hybrid (dynamic-range) models*",
            "*fp16 does not run on cortex-m4: TFLite Micro takes no float16 weights*",
        ],
        consecutive=False,
    )


TOO_SMALL = """
[tool.edgeopt.platforms.tiny-m4]
extends = "cortex-m4"
mcu = {sram_kb = 4, flash_kb = 128}
"""


def test_a_board_too_small_fails_by_default_with_the_numbers(pytester: pytest.Pytester, engine: str) -> None:
    pytester.makepyprojecttoml(TOO_SMALL)
    pytester.makepyfile(test_b=MEASURE.format(path=str(DIGITS_INT8)))
    result = pytester.runpytest(*QUICK, "--edge-platform=tiny-m4")
    result.assert_outcomes(failed=1)
    est = "" if engine == "tflm" else " (est.)"
    assert failures(result)["test_board"].splitlines()[1:] == [
        f"  sram_fit: arena 6.2 KB{est} > 4 KB SRAM of tiny-m4",
        "  flash_fit: flash 146.2 KB (est.) > 128 KB flash of tiny-m4",
    ]
    row = _row(result)
    assert row["Arena (KB)"].endswith(" !") and row["Flash (KB)"] == "146.2 est. !" and row["Verdict"] == "fail"
    pytester.runpytest(*QUICK, "--edge-platform=tiny-m4", "-o", "edgeopt_mcu_fit=off").assert_outcomes(passed=1)


BUDGETS = (
    MODEL
    + """

@pytest.mark.edge_budget(max_arena_kb=5, max_flash_kb=100)
def test_budgets(edge_runner):
    edge_runner.measure(digits({path!r}), precision="fp32")
"""
)


def test_arena_and_flash_budgets_fail_with_measured_and_limit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_b=BUDGETS.format(path=str(DIGITS_INT8)))
    result = pytester.runpytest(*QUICK, "--edge-platform=cortex-m4")
    result.assert_outcomes(failed=1)
    est = "" if HAS_TFLM else " (est.)"
    assert failures(result)["test_budgets"].splitlines()[1:] == [
        f"  max_arena_kb: measured 6.203 KB{est}, limit <= 5 KB",
        "  max_flash_kb: measured 146.2 KB (est.), limit <= 100 KB",
    ]


TRAP = (
    MODEL
    + """

def test_trap(edge_runner):
    inside = edge_runner.measure(digits({inside!r}, name="inside"), precision="fp32")
    outside = edge_runner.measure(digits({outside!r}, name="outside"), precision="fp32")
    assert outside.top1 == inside.top1 > 0.95 and outside.arena_kb == inside.arena_kb
    print("NOTES", [n for n in outside.notes if "flatbuffer" in n])
"""
)


def test_weights_stored_outside_the_flatbuffer_are_inlined_before_tflm_runs(
    pytester: pytest.Pytester, engine: str
) -> None:
    """ai-edge-quantizer's layout for large models: TFLM would plan the weights as activations and
    compute with garbage. The digits INT8 file rewritten that way must give the same row."""
    outside = pytester.path / "digits_outside.tflite"
    outside.write_bytes(externalized(DIGITS_INT8.read_bytes()))
    pytester.makepyfile(test_t=TRAP.format(inside=str(DIGITS_INT8), outside=str(outside)))
    result = pytester.runpytest(*QUICK, "-s", "--edge-platform=cortex-m4")
    result.assert_outcomes(passed=1)
    assert "NOTES ['6 buffers stored after the flatbuffer (Buffer.offset) were moved into it: " in result.stdout.str()


BASELINED = (
    MODEL
    + """

@pytest.mark.edge_budget(max_latency_regression="0%", max_size_regression="0%", max_arena_kb=8)
def test_board(edge_runner):
    edge_runner.measure(digits({path!r}), precision="fp32")
"""
)


def test_baselines_keep_the_estimates_labelled_and_compare_them_exactly_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_b=BASELINED.format(path=str(DIGITS_INT8)))
    first = pytester.runpytest(*QUICK, "--edge-platform=cortex-m4", "--update-baselines")
    first.assert_outcomes(passed=1)
    stored = json.loads((pytester.path / "baselines" / "cortex-m4" / "test_b.json").read_text())
    (entry,) = stored["entries"].values()
    assert entry["metrics"]["arena_kb"] == ARENA_KB and "latency_ms" in entry["metrics"]["estimates"]
    assert entry["fingerprint"]["must_match"]["cpu_model"] == "Cortex-M4F at 120 MHz"
    assert entry["samples"]["wall_ms"] == [pytest.approx(entry["metrics"]["latency_ms"], abs=1e-4)]  # one estimate
    report = pytester.path / "out.json"
    again = pytester.runpytest(*QUICK, "--edge-platform=cortex-m4", "-n", "2", f"--edge-report={report}")
    again.assert_outcomes(passed=1)
    row = _row(again)
    assert row["Verdict"] == "pass" and row["Delta"] == "+0.0% (est., vs stored estimate)"
    (reported,) = json.loads(report.read_text())["rows"]
    assert reported["measurement"]["arena_kb"] == ARENA_KB and "energy_mj" in reported["measurement"]["estimates"]


ZOO = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("int8")
@pytest.mark.edge_budget(max_accuracy_drop=1.0, min_agreement=0.98)
def test_zoo(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.runtime == "tflm" and m.reference_top1 > 0.95 and m.arena_kb < 16
"""


def test_the_zoo_model_is_quantized_on_the_host_and_judged_against_its_fp32_reference(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("ai_edge_quantizer")
    pytester.makepyfile(test_z=ZOO)
    result = pytester.runpytest(*QUICK, "--edge-platform=cortex-m4")
    result.assert_outcomes(passed=1)
    row = _row(result)
    assert row["Bit-width (W/A)"] == "INT8/INT8" and row["Verdict"] == "pass"


BOARD_RUNNER = """
from dataclasses import replace

from pytest_edgeopt.agent.contract import DeviceFacts, Timing
from pytest_edgeopt.platforms.transport import LocalTransport
from pytest_edgeopt.runtimes.base import ArenaUse


class BoardRunner:
    '''Stands in for firmware on a Cortex-M4 board (none is attached to CI): the outputs come from
    the local agent, the timing, arena and fingerprint are what the board's runner would send.'''

    label = "stlink:/dev/ttyACM0"

    def __init__(self, lock_dir):
        self._local = LocalTransport(lock_dir=lock_dir)

    def run(self, job, *, timeout_s):
        assert not job.evaluate_only and job.runtime.name == "tflm" and job.options.arena_bytes > 0
        result = self._local.run(replace(job, evaluate_only=True), timeout_s=timeout_s)
        if not result.ok:
            return result
        return replace(
            result,
            runtime=replace(result.runtime, arena=ArenaUse(total=7000, head=3600, tail=3400, arena_size=8192)),
            timing=Timing(wall_ms=(12.5, 12.5, 12.6), cpu_ms=(12.5, 12.5, 12.6)),
            fingerprint=DeviceFacts(arch="armv7e-m", cpu_model="Cortex-M4F at 120 MHz", device_model="NUCLEO-L4R5ZI"),
        )

    def close(self):
        pass


def pytest_edgeopt_make_transport(config, platform):
    if platform.name == "my-board":
        return BoardRunner(lock_dir=config.rootpath)
"""


def test_a_board_runner_behind_the_transport_hook_makes_latency_and_arena_measured(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.edgeopt.platforms.my-board]\nextends = "cortex-m4"\n')
    pytester.makeconftest(BOARD_RUNNER)
    pytester.makepyfile(test_b=MEASURE.format(path=str(DIGITS_INT8)))
    result = pytester.runpytest(*QUICK, "-s", "--edge-platform=my-board")
    result.assert_outcomes(passed=1)
    assert _printed(result, "ESTIMATES") == ["energy_w,energy_mj,flash_kb"]
    row = _row(result)
    assert (row["Latency (ms, p50)"], row["Arena (KB)"]) == ("12.5", "6.8")
    assert row["Platform"] == "my-board: NUCLEO-L4R5ZI (armv7e-m), 1 thr"
