"""Whether a row's numbers count at all, decided in one place: a throttled device, a device that
is not the one the profile describes, an FP32 conversion that computes another function.

The agent reports facts; these functions judge them on the host. A Pi profile's numbers measured
on a laptop, or on a Pi that throttled half way through, are not Pi numbers.
"""

from __future__ import annotations

from typing import List, Optional

from pytest_edgeopt.agent.contract import Timing
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.kinds import Note, NoteKind, Policy
from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.platforms.fingerprint import device_facts, mismatches
from pytest_edgeopt.platforms.profiles import Platform

# vcgencmd get_throttled: bits 0-3 are the state now, bits 16-19 "has happened since boot"
_THROTTLE_NOW = {0x1: "under-voltage", 0x2: "ARM frequency capped", 0x4: "throttled", 0x8: "soft temperature limit"}
_SINCE_BOOT_SHIFT = 16


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
    return (
        f"the device throttled during the run (get_throttled {hex(after if after is not None else before or 0)}: "
        f"{names}): the measurement is invalid; cool the device or fix its power supply and re-run"
    )


def timing_problem(timing: Timing) -> Optional[str]:
    return throttle_problem(timing.throttled_before, timing.throttled_after)


def fingerprint_note(m: Measurement, platform: Platform) -> Optional[Note]:
    """The device that answered against the profile's expected fingerprint: a note under the
    `warn` policy, an error (the test fails) under `fail`."""
    if platform.on_host or not platform.fingerprint:
        return None
    problems = mismatches(platform.fingerprint, device_facts(m.facts, m.runtime_info))
    if not problems:
        return None
    if platform.fingerprint_policy == Policy.FAIL:
        raise EdgeOptError(
            f"{m.device} is not the device the {platform.name} profile describes: {'; '.join(problems)}; "
            f'name the right device, or set fingerprint_policy = "warn" in [tool.edgeopt.platforms.{platform.name}]'
        )
    return Note(NoteKind.FINGERPRINT, f"fingerprint mismatch: {'; '.join(problems)}")


def row_problems(m: Measurement) -> List[str]:
    """Violations no test opts into: a converted FP32 model that computes another function makes
    every number in its row meaningless, and so does a device that throttled while timing."""
    problems = []
    if m.parity is not None and m.parity.failed:
        problems.append(f"parity: {m.parity.text()}")
    if m.invalid:
        problems.append(f"invalid: {m.invalid}")
    return problems
