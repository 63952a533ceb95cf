"""Facts of a device in the names platform profiles use, and how expected facts are matched.

Pure functions: judge/validity.py decides what a mismatch does to a row; platform selection
uses the same matching on this machine's own facts.
"""

from __future__ import annotations

import platform as _platform
import struct
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from pytest_edgeopt.agent.contract import DeviceFacts
from pytest_edgeopt.runtimes.base import RuntimeInfo


def mismatches(expected: Mapping[str, object], facts: Mapping[str, object]) -> List[str]:
    """One phrase per expected fact the device does not have; strings match as substrings
    (case-insensitive, so "Raspberry Pi" matches "Raspberry Pi 5 Model B Rev 1.0")."""
    found = []
    for key, want in expected.items():
        have = facts.get(key)
        if not _matches(key, want, have):
            found.append(f"{key} is {have!r}, the profile expects {want!r}")
    return found


def _matches(key: str, want: object, have: object) -> bool:
    if have is None:
        return False
    if key == "runtime_version":
        return str(have) == str(want) or str(have).startswith(f"{want}.")
    if isinstance(want, str):
        return want.lower() in str(have).lower()
    return want == have


def device_facts(facts: DeviceFacts, runtime: RuntimeInfo) -> Dict[str, object]:
    """The agent's fingerprint in the names profiles use (the runtime version sits in its info)."""
    return {**facts.to_dict(), "runtime_version": runtime.version}


def local_facts() -> Dict[str, object]:
    """What the machine pytest runs on would report, without numpy: enough to tell whether
    `--edge-platform=pi` is being run on a Pi."""
    return {
        "arch": _platform.machine(),
        "device_model": _device_tree_model(),
        "os_bits": struct.calcsize("P") * 8,
        "cpu_model": _platform.processor() or _platform.machine(),
    }


def _device_tree_model() -> Optional[str]:
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ")
    except OSError:
        return None
