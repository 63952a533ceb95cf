"""Platform profiles: which runtime, how many threads and which transport a target uses.

Only `host` ships now; other plugins add profiles through the `pytest_edgeopt_platforms` hook.
"""
from __future__ import annotations

import platform as _platform
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple


@dataclass(frozen=True)
class Platform:
    """A measurement target. `arch` None means "the machine pytest runs on"."""

    name: str
    description: str
    runtime: str = "onnxruntime"
    threads: int = 1
    providers: Tuple[str, ...] = ("CPUExecutionProvider",)
    compute_unit: str = "CPU"
    arch: Optional[str] = None
    transport: str = "local"

    @property
    def target_arch(self) -> str:
        return self.arch or _platform.machine()


HOST = Platform(
    name="host",
    description="the machine pytest runs on, ONNX Runtime on the CPU, 1 thread (stable timings)",
)


def platform_table(profiles: Iterable[Iterable[Platform]]) -> Dict[str, Platform]:
    """Merge the hook results; the first plugin to name a platform wins (ours run last)."""
    table: Dict[str, Platform] = {}
    for group in profiles:
        for profile in group:
            table.setdefault(profile.name, profile)
    return table
