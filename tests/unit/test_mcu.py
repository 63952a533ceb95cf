"""The MCU platform's pure parts: board profiles and their overrides, the latency and energy
estimate and its calibration, the fit check, the estimate labels in the table, baselines and the
agent contract carrying an arena."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Dict

import pytest

from benchmarks.mcu_calibration import rows as calibration_rows
from pytest_edgeopt.agent.contract import ContractError, parse_result
from pytest_edgeopt.baselines.entry import BaselineEntry, changed, entry_from_measurement
from pytest_edgeopt.baselines.store import validate
from pytest_edgeopt.inspect.tflite_kernels import KernelWork
from pytest_edgeopt.judge.checks import check
from pytest_edgeopt.judge.fit import FitLimits, fit_problems
from pytest_edgeopt.judge.types import Context, Row
from pytest_edgeopt.measure.mcu import CyclesPerMac, estimate
from pytest_edgeopt.measure.result import LatencyStats, Measurement
from pytest_edgeopt.platforms.profiles import ALIASES, BUILTIN, CORTEX_M4, apply_user_profiles
from pytest_edgeopt.report.table import HEADERS, MCU_HEADERS, table_cells
from pytest_edgeopt.runtimes.base import ArenaUse, RuntimeInfo, RuntimeOptions
from tests.unit.test_budgets_unit import baseline_file
from tests.unit.test_result import make_measurement

TABLE = {p.name: p for p in BUILTIN}
MCU_ESTIMATES = ("latency_ms", "throughput", "gflops_per_s", "first_inference_ms", "energy_w", "energy_mj", "flash_kb")


def mcu_measurement(**overrides: Any) -> Measurement:
    stats = LatencyStats.from_values([20.0])
    values: Dict[str, Any] = dict(
        platform="cortex-m4",
        runtime="tflm",
        latency=stats,
        cpu_latency=stats,
        samples_ms=(20.0,),
        cpu_samples_ms=(20.0,),
        batch=1,
        peak_rss_mb=0.0,
        arena_kb=6.203125,
        flash_kb=146.15625,
        estimates=MCU_ESTIMATES,
        energy_w=0.041,
        energy_mj=0.82,
        energy_source="cortex-m4 active power est.",
        runtime_info=RuntimeInfo(name="tflm", version="0.dev1", arena=ArenaUse(6352, 3072, 3280, 65664)),
        nodeid="suites/test_mcu.py::test_d[int8]",
    )
    values.update(overrides)
    return make_measurement(**values)


def test_the_builtin_boards_and_the_seed_word_mcu() -> None:
    assert {"cortex-m4", "cortex-m7", "esp32-s3"} <= set(TABLE) and ALIASES == {"mcu": "cortex-m4"}
    m4 = TABLE["cortex-m4"]
    assert m4.runtime == "tflm" and m4.mcu is not None and m4.remote is False
    assert (m4.mcu.clock_mhz, m4.mcu.sram_kb, m4.mcu.flash_kb) == (120, 640, 2048)
    assert TABLE["cortex-m7"].mcu.clock_mhz == 480  # type: ignore[union-attr]
    assert "derived, not fitted" in TABLE["cortex-m7"].mcu.calibration  # type: ignore[union-attr]


def test_a_user_board_extends_one_and_overrides_single_facts() -> None:
    entries = {
        "my-board": {"extends": "mcu", "mcu": {"sram_kb": 256, "cycles_per_mac": {"depthwise": 4.8}}},
        "cortex-m7": {"mcu": {"clock_mhz": 550}},
    }
    merged = apply_user_profiles(TABLE, entries, where="pyproject.toml")
    board = merged["my-board"].mcu
    assert board is not None and board.sram_kb == 256 and board.clock_mhz == 120
    assert board.cycles_per_mac == replace(CORTEX_M4.mcu.cycles_per_mac, depthwise=4.8)  # type: ignore[union-attr]
    assert merged["my-board"].runtime == "tflm" and merged["cortex-m7"].mcu.clock_mhz == 550  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"mcu": {"sram_kb": 256}}, "mcu: core, board, arch, clock_mhz, flash_kb, runtime_code_kb, cycles_per_mac"),
        ({"extends": "cortex-m4", "mcu": {"sram": 256}}, "mcu: Additional properties are not allowed ('sram'"),
        ({"extends": "cortex-m4", "mcu": {"clock_mhz": 0}}, "mcu.clock_mhz: 0 is less than or equal to the minimum"),
    ],
)
def test_a_wrong_board_entry_names_the_key(entry: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        apply_user_profiles(TABLE, {"b": entry}, where="pyproject.toml")


def test_latency_is_cycles_per_mac_per_class_over_the_clock_and_energy_is_power_times_it() -> None:
    work = KernelWork(conv=1_000_000, depthwise=100_000, fully_connected=10_000, other=1_000)
    cpm = CyclesPerMac(conv=2.0, depthwise=5.0, fully_connected=3.0, other=4.0)
    guess = estimate(work, cpm=cpm, clock_mhz=100, active_mw=50)
    assert guess.cycles == 2_000_000 + 500_000 + 30_000 + 4_000
    assert guess.latency_ms == pytest.approx(25.34) and guess.throughput == pytest.approx(1000 / 25.34)
    assert guess.active_w == 0.05 and guess.energy_mj == pytest.approx(0.05 * 25.34)


def test_the_cortex_m4_profile_reproduces_its_mlperf_tiny_calibration_within_nine_percent() -> None:
    fitted = [r for r in calibration_rows() if r["profile"] == "cortex-m4" and r["fitted"]]
    assert [r["benchmark"].split()[0] for r in fitted] == ["IC", "KWS", "VWW", "AD"]
    assert max(abs(r["error_pct"]) for r in fitted) < 9.0
    esp = next(r for r in calibration_rows() if r["profile"] == "esp32-s3")
    assert abs(esp["error_pct"]) < 0.1  # its one published point, exact by construction


def test_the_fit_check_names_the_numbers_and_labels_an_estimated_arena() -> None:
    limits = FitLimits(platform="cortex-m4", sram_kb=640, flash_kb=2048)
    big = mcu_measurement(arena_kb=1656.4375, flash_kb=5290.4)
    assert fit_problems(big, limits) == [
        "sram_fit: arena 1,656.4 KB > 640 KB SRAM of cortex-m4",
        "flash_fit: flash 5,290.4 KB (est.) > 2,048 KB flash of cortex-m4",
    ]
    assert fit_problems(mcu_measurement(), limits) == [] and fit_problems(big, None) == []
    assert fit_problems(replace(big, estimates=("arena_kb",)), limits)[0].startswith(
        "sram_fit: arena 1,656.4 KB (est.)"
    )
    _, judgement = check(big, {}, Context(baseline=None, fit=limits))
    assert judgement.verdict == "fail" and len(judgement.violations) == 2


def test_arena_and_flash_budgets_and_their_absence_off_a_microcontroller() -> None:
    _, judgement = check(mcu_measurement(), {"max_arena_kb": 5, "max_flash_kb": 200}, Context(baseline=None))
    assert judgement.violations == ("max_arena_kb: measured 6.203 KB, limit <= 5 KB",)
    _, host = check(make_measurement(), {"max_arena_kb": 5}, Context(baseline=None))
    assert host.violations == (
        "max_arena_kb: arena_kb is measured on microcontroller platforms only (e.g. --edge-platform=cortex-m4)",
    )


def test_an_estimated_latency_is_compared_exactly_with_the_stored_estimate() -> None:
    stored = BaselineEntry.from_dict(entry_from_measurement(mcu_measurement()).to_dict())
    stats = LatencyStats.from_values([20.5])
    slower = (mcu_measurement()).replace(samples_ms=(20.5,), cpu_samples_ms=(20.5,), latency=stats, cpu_latency=stats)
    _, judgement = check(slower, {"max_latency_regression": "2%"}, Context(baseline=stored))
    assert judgement.violations == (
        "max_latency_regression: 20.500 ms est. vs baseline 20.000 ms est.: ratio 1.025, limit 1.020: regressed",
    )
    _, same = check(mcu_measurement(), {"max_latency_regression": "0%"}, Context(baseline=stored))
    assert same.verdict == "pass"


def test_mcu_rows_get_arena_and_flash_columns_and_every_estimate_says_so() -> None:
    headers, body, _ = table_cells([Row(measurement=mcu_measurement())])
    assert len(HEADERS) == 19 and headers[: HEADERS.index("Peak RSS (MB)") + 1] == HEADERS[:11]
    cells = dict(zip(headers, body[0]))
    assert set(MCU_HEADERS) <= set(headers)
    assert (cells["Arena (KB)"], cells["Flash (KB)"], cells["Peak RSS (MB)"]) == ("6.2", "146.2 est.", "-")
    assert cells["Latency (ms, p50)"] == "20.0 est." and cells["Throughput (inf/s)"] == "50.0 est."
    assert cells["Energy (mJ/inf)"] == "0.82 (cortex-m4 active power est.)"
    assert cells["Compute (GFLOPs, GFLOP/s)"].endswith(" est. (CPU)")
    assert table_cells([Row(measurement=make_measurement())])[0] == HEADERS  # other platforms: unchanged


def test_baselines_store_the_mcu_metrics_and_files_without_them_still_load() -> None:
    entry = entry_from_measurement(mcu_measurement())
    stored = entry.to_dict()
    assert stored["metrics"]["arena_kb"] == 6.203125 and stored["metrics"]["estimates"] == list(MCU_ESTIMATES)
    assert validate(baseline_file(mcu_measurement())) is None
    assert BaselineEntry.from_dict(stored).metrics == entry.metrics
    host = entry_from_measurement(make_measurement(nodeid="suites/test_x.py::test_a")).to_dict()
    assert not {"arena_kb", "flash_kb", "estimates"} & set(host["metrics"])
    assert BaselineEntry.from_dict(host).metrics.arena_kb is None
    assert changed(BaselineEntry.from_dict(stored), entry_from_measurement(mcu_measurement(arena_kb=7.0)))


def test_the_arena_crosses_the_agent_contract_validated() -> None:
    info = RuntimeInfo(
        name="tflm", version="0.dev1", arena=ArenaUse(total=6352, head=3072, tail=3280, arena_size=65664)
    )
    assert RuntimeInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    assert RuntimeOptions.from_dict(RuntimeOptions(arena_bytes=6352).to_dict()).arena_bytes == 6352
    result = {
        "ok": True,
        "version": 2,
        "runtime": {
            "name": "tflm",
            "version": "0.dev1",
            "arena": {"total": 10, "head": 3, "tail": 3, "arena_size": 64},
        },
        "evaluation": {"top_k": [[1]], "eval_count": 1, "output_shape": [10]},
        "batch": 1,
        "threads": 1,
        "load_ms": 1.0,
        "first_inference_ms": 1.0,
    }
    with pytest.raises(ContractError, match=r"result.runtime: arena.total 10 is not head 3 \+ tail 3"):
        parse_result(result)
    with pytest.raises(ValueError, match=r"options\.arena_bytes must be a whole number of bytes > 0"):
        RuntimeOptions.from_dict({"arena_bytes": -1})
