"""Does the model fit the microcontroller? The first question on an MCU, asked of every row.

The tensor arena must fit the board's SRAM and the model plus the inference code its flash; a
row that does not fit fails by default, with the numbers (`edgeopt_mcu_fit = off` turns it off).
Neither is a budget a test opts into: a model that does not fit has no latency worth gating.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from pytest_edgeopt.measure.result import Measurement


@dataclass(frozen=True)
class FitLimits:
    platform: str
    sram_kb: float
    flash_kb: float


def fit_problems(m: Measurement, limits: Optional[FitLimits]) -> List[str]:
    """`sram_fit: arena 1,656.4 KB > 640 KB SRAM of cortex-m4`, and the same for flash."""
    if limits is None:
        return []
    problems = []
    if m.arena_kb is not None and m.arena_kb > limits.sram_kb:
        problems.append(f"sram_fit: arena {_kb(m, 'arena_kb')} > {limits.sram_kb:,g} KB SRAM of {limits.platform}")
    if m.flash_kb is not None and m.flash_kb > limits.flash_kb:
        problems.append(f"flash_fit: flash {_kb(m, 'flash_kb')} > {limits.flash_kb:,g} KB flash of {limits.platform}")
    return problems


def _kb(m: Measurement, name: str) -> str:
    value = getattr(m, name)
    return f"{value:,.1f} KB{' (est.)' if name in m.estimates else ''}"
