"""Latency and energy of a model on a microcontroller, estimated from its graph.

No board is timed: latency = (cycles per MAC of each kernel class x that class's MACs + cycles
per element x the other ops' element operations) / clock, and energy = the board's active power
x that latency. The cycles per MAC are an engine's (TFLM + CMSIS-NN, ESP-NN) speed on a core,
fitted to published MLPerf Tiny results (docs/mcu.md, "Calibration"), so every figure made here is an
estimate and is labelled so wherever it is shown. Pure: facts in, numbers out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Mapping

from pytest_edgeopt.inspect.tflite_kernels import KernelWork

KB = 1024  # MCU memory is counted in KiB, as datasheets do (640 KB SRAM = 655,360 B)


@dataclass(frozen=True)
class CyclesPerMac:
    """Core cycles per multiply-accumulate of each kernel class, and per element of other ops."""

    conv: float
    depthwise: float
    fully_connected: float
    other: float = 4.0  # < 1 % of the work in every MLPerf Tiny model, so fixed rather than fitted

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> "CyclesPerMac":
        return cls(**{k: float(v) for k, v in data.items()})


@dataclass(frozen=True)
class McuEstimate:
    cycles: float
    latency_ms: float
    active_w: float  # the board's power while it computes
    energy_mj: float  # per inference

    @property
    def throughput(self) -> float:
        return 1000.0 / self.latency_ms if self.latency_ms else 0.0


def cycles(work: KernelWork, cpm: CyclesPerMac) -> float:
    return (
        cpm.conv * work.conv
        + cpm.depthwise * work.depthwise
        + cpm.fully_connected * work.fully_connected
        + cpm.other * work.other
    )


def estimate(work: KernelWork, *, cpm: CyclesPerMac, clock_mhz: float, active_mw: float) -> McuEstimate:
    """One inference; `work` counts the batch the graph was built for."""
    total = cycles(work, cpm)
    latency_ms = total / (clock_mhz * 1e3)
    return McuEstimate(
        cycles=total, latency_ms=latency_ms, active_w=active_mw / 1e3, energy_mj=active_mw * latency_ms / 1e3
    )
