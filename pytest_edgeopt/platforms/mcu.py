"""Microcontroller boards: the facts a model is checked against (SRAM, flash) and the figures its
latency and energy are estimated from (clock, cycles per MAC, active power), with their sources.

A board hangs off a Platform profile (`Platform.mcu`). Users override any fact in pyproject.toml,
e.g. `[tool.edgeopt.platforms.my-board] extends = "cortex-m4", mcu = {sram_kb = 256}`; the
built-in figures and how they were calibrated are in docs/mcu.md ("Microcontrollers").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, Mapping, Optional

from pytest_edgeopt.measure.mcu import CyclesPerMac


@dataclass(frozen=True)
class McuBoard:
    core: str  # e.g. "Cortex-M4F"
    board: str  # the board class the figures are for
    arch: str  # the instruction set, as a device fingerprint names it
    clock_mhz: float
    sram_kb: float  # SRAM one contiguous tensor arena can use (KiB)
    flash_kb: float  # flash for the model and the code (KiB)
    runtime_code_kb: float  # flash the inference code takes beside the model (TFLM + kernels)
    cycles_per_mac: CyclesPerMac
    active_mw: float  # power while inferring: energy = this x the estimated latency
    engine: str  # whose kernels the cycles per MAC describe
    calibration: str  # where the cycles per MAC come from, and how well they predict
    power_source: str

    @property
    def summary(self) -> str:
        return (
            f"{self.board}: {self.core} at {self.clock_mhz:g} MHz, {self.sram_kb:g} KB SRAM, {self.flash_kb:g} KB flash"
        )

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def overlay_board(base: Optional[McuBoard], entry: Mapping[str, Any], *, where: str) -> McuBoard:
    """`mcu = {...}` of a profile on top of the board it extends; a profile that extends no MCU
    profile must give every fact."""
    values: Dict[str, Any] = {k: v for k, v in entry.items() if k != "cycles_per_mac"}
    cpm = entry.get("cycles_per_mac")
    if base is not None:
        merged = {**base.cycles_per_mac.to_dict(), **(cpm or {})}
        return replace(base, **values, cycles_per_mac=CyclesPerMac.from_dict(merged))
    missing = [f.name for f in fields(McuBoard) if f.name not in entry]
    if missing:
        raise ValueError(
            f"{where}: mcu: {', '.join(missing)} missing: extend a built-in MCU profile "
            '(extends = "cortex-m4") or give every board fact'
        )
    try:
        return McuBoard(**values, cycles_per_mac=CyclesPerMac.from_dict(cpm or {}))
    except TypeError:
        raise ValueError(f"{where}: mcu.cycles_per_mac: give conv, depthwise and fully_connected") from None


# Cycles per MAC fitted by non-negative least squares to the four MLPerf Tiny v0.5 closed-division
# results of the reference submission (TFLM 2.3.1 + CMSIS-NN, NUCLEO-L4R5ZI at 120 MHz):
# mlcommons/tiny_results_v0.5 closed/reference/results/Nucleo-L4R5ZI/{ic,kws,vww,ad}/performance.
STM32L4R5 = McuBoard(
    core="Cortex-M4F",
    board="STM32L4R5 class",
    arch="armv7e-m",
    clock_mhz=120,
    sram_kb=640,
    flash_kb=2048,
    runtime_code_kb=100,
    cycles_per_mac=CyclesPerMac(conv=6.756, depthwise=25.702, fully_connected=4.566),
    active_mw=41,
    engine="TFLM 2.3.1 + CMSIS-NN",
    calibration="fitted to MLPerf Tiny v0.5 (reference submission, NUCLEO-L4R5ZI): within 9% on IC/KWS/VWW/AD",
    power_source="MLPerf Tiny v0.5 energy runs, NUCLEO-L4R5ZI: 40.5-41.5 mW",
)

# No TFLM result on a Cortex-M7 exists in MLPerf Tiny v0.5-v1.3. Derived, not fitted: Plumerai's
# engine fitted on NUCLEO-H7A3ZI-Q (v1.1; conv 1.127, dw 1.318, fc 1.428) times 1.675, the
# TFLM + CMSIS-NN / Plumerai time ratio Plumerai published for an STM32F746 (blog, 2021).
STM32H743 = McuBoard(
    core="Cortex-M7",
    board="STM32H743 class",
    arch="armv7e-m",
    clock_mhz=480,
    sram_kb=512,  # AXI SRAM, the largest contiguous block of the 1 MB; the arena is one block
    flash_kb=2048,
    runtime_code_kb=100,
    cycles_per_mac=CyclesPerMac(conv=1.89, depthwise=2.21, fully_connected=2.39),
    active_mw=209,
    engine="TFLM + CMSIS-NN",
    calibration=(
        "derived, not fitted (no TFLM Cortex-M7 result is published): Plumerai's MLPerf Tiny v1.1 fit on "
        "NUCLEO-H7A3ZI-Q x 1.675 (TFLM/Plumerai on an STM32F746); expect up to 1.8x slower"
    ),
    power_source="MLPerf Tiny v1.1 energy runs, NUCLEO-H7A3ZI-Q: 122 mW at 280 MHz, scaled to 480 MHz by clock",
)

# ESP32-S3 has no MLPerf Tiny result. ESP-NN's kernel table (cycles/MAC per kernel) scaled so that
# TFLM's person_detect takes the 47 ms Espressif publishes (esp-tflite-micro, internal RAM).
ESP32_S3 = McuBoard(
    core="Xtensa LX7",
    board="ESP32-S3",
    arch="xtensa-lx7",
    clock_mhz=240,
    sram_kb=512,  # internal SRAM in all; ESP-IDF and the app take part of it (PSRAM is not counted)
    flash_kb=8192,  # external SPI flash of the common modules
    runtime_code_kb=100,
    cycles_per_mac=CyclesPerMac(conv=1.223, depthwise=3.832, fully_connected=1.017),
    active_mw=105,
    engine="TFLM + ESP-NN",
    calibration=(
        "derived from Espressif's figures (ESP-NN kernel table scaled to person_detect's 47 ms): "
        "one published point, no MLPerf Tiny result"
    ),
    power_source="third-party measurement of an ESP32-S3 board, 31.7 mA at 3.3 V (a lower bound)",
)
