"""Is the device that answered the device the profile describes, and was it healthy while timing?

The agent reports facts; these pure functions judge them on the host. A Pi profile's numbers
measured on a laptop, or on a Pi that throttled half way through, are not Pi numbers.
"""
from __future__ import annotations

import platform as _platform
import struct
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

# vcgencmd get_throttled: bits 0-3 are the state now, bits 16-19 "has happened since boot"
_THROTTLE_NOW = {0x1: "under-voltage", 0x2: "ARM frequency capped", 0x4: "throttled", 0x8: "soft temperature limit"}
_SINCE_BOOT_SHIFT = 16
MISMATCH_NOTE = "fingerprint mismatch"  # the row note's prefix; the report's device summary repeats these


def mismatches(expected: Mapping[str, Any], facts: Mapping[str, Any]) -> List[str]:
    """One phrase per expected fact the device does not have; strings match as substrings
    (case-insensitive, so "Raspberry Pi" matches "Raspberry Pi 5 Model B Rev 1.0")."""
    found = []
    for key, want in expected.items():
        have = facts.get(key)
        if not _matches(key, want, have):
            found.append(f"{key} is {have!r}, the profile expects {want!r}")
    return found


def _matches(key: str, want: Any, have: Any) -> bool:
    if have is None:
        return False
    if key == "runtime_version":
        return str(have) == str(want) or str(have).startswith(f"{want}.")
    if isinstance(want, str):
        return want.lower() in str(have).lower()
    return want == have


def device_facts(fingerprint: Mapping[str, Any]) -> Dict[str, Any]:
    """The agent's fingerprint in the names profiles use (the runtime version sits in its info)."""
    facts = dict(fingerprint)
    runtime = fingerprint.get("runtime") or {}
    facts["runtime_version"] = runtime.get("version")
    return facts


def throttle_problem(before: Optional[int], after: Optional[int]) -> Optional[str]:
    """Why the run is invalid, or None: throttling now (before or after timing) or begun during it."""
    if before is None and after is None:
        return None
    now = (before or 0) | (after or 0)
    began = ((after or 0) & ~(before or 0)) >> _SINCE_BOOT_SHIFT
    flags = (now | began) & 0xF
    if not flags:
        return None
    names = ", ".join(text for bit, text in _THROTTLE_NOW.items() if flags & bit)
    return (f"the device throttled during the run (get_throttled {hex(after if after is not None else before)}: "
            f"{names}): the measurement is invalid; cool the device or fix its power supply and re-run")


def local_facts() -> Dict[str, Any]:
    """What the machine pytest runs on would report, without numpy: enough to tell whether
    `--edge-platform=pi` is being run on a Pi."""
    return {"arch": _platform.machine(), "device_model": _device_tree_model(),
            "os_bits": struct.calcsize("P") * 8, "cpu_model": _platform.processor() or _platform.machine()}


def _device_tree_model() -> Optional[str]:
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ")
    except OSError:
        return None
