"""Which platform and which device this run measures on, decided once at configure time.

`--edge-platform=pi` must measure a Pi: on the Pi itself (local), on a named device
(`--edge-device ssh://...`), or, only when the user opts in with `--edge-on-host`, on this machine
with the pi profile's settings, saying so in every row. Anything else is a one-line UsageError.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Collection, Dict, Mapping, Optional, Tuple

import pytest

from pytest_edgeopt.kinds import TransportKind
from pytest_edgeopt.platforms.fingerprint import local_facts, mismatches
from pytest_edgeopt.platforms.profiles import ALIASES, Platform, apply_user_profiles, with_devices
from pytest_edgeopt.platforms.transport import LocalTransport, Transport

LOCAL_KEYS = ("arch", "device_model", "os_bits")  # what is known here without running the agent


@dataclass(frozen=True)
class PlatformRequest:
    """What the user asked for: the settings the choice needs, and nothing else of them."""

    name: str  # --edge-platform / edgeopt_platform
    entries: Mapping[str, Any] = field(default_factory=dict)  # [tool.edgeopt.platforms.*]
    devices: Tuple[str, ...] = ()  # --edge-device, in the order given
    on_host: bool = False  # --edge-on-host


def choose_platform(
    table: Dict[str, Platform], request: PlatformRequest, *, runtimes: Collection[str], meters: Collection[str]
) -> Platform:
    try:
        table = apply_user_profiles(table, request.entries, where="pyproject.toml")
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    chosen = request.name if request.name in table else ALIASES.get(request.name, request.name)
    if chosen not in table:
        raise pytest.UsageError(
            f"--edge-platform: unknown platform {request.name!r}; choose from {', '.join([*table, *ALIASES])}"
        )
    for name in (*request.entries, chosen):
        _check_names(table[name], runtimes=runtimes, meters=meters)
    profile = table[chosen]
    if request.devices:
        profile = with_devices(profile, request.devices)
    if request.on_host:
        # the device's own power meter (INA3221 rails, a Pi 5 PMIC) is not on this machine
        return replace(profile, devices=(), transport=TransportKind.LOCAL, on_host=True, power=None)
    if not profile.remote:
        _check_here(profile)
    return profile


def _check_names(profile: Platform, *, runtimes: Collection[str], meters: Collection[str]) -> None:
    """Runtimes and meters can come from plugins, so the schema cannot list them: check here."""
    where = f"pyproject.toml [tool.edgeopt.platforms.{profile.name}]"
    if profile.runtime not in runtimes:
        raise pytest.UsageError(
            f"{where}: runtime: {profile.runtime!r} is not one of {', '.join(runtimes)} (or a runtime a plugin adds)"
        )
    kind = profile.power.kind if profile.power else None
    if kind is not None and kind not in meters:
        raise pytest.UsageError(
            f"{where}: power.kind: {kind!r} is not one of {', '.join(meters)} (or a meter a plugin adds)"
        )


def _check_here(profile: Platform) -> None:
    """A device profile with no device named runs here only if here is that device."""
    expected = {k: v for k, v in profile.fingerprint.items() if k in LOCAL_KEYS}
    facts = local_facts()
    problems = mismatches(expected, facts)
    if problems:
        here = facts.get("device_model") or facts.get("cpu_model")
        raise pytest.UsageError(
            f"--edge-platform={profile.name}: no {profile.name} device is reachable: this machine is "
            f"{here} ({facts['arch']}) and no device is named; pass --edge-device ssh://USER@HOST[:PORT] "
            f"(or set device in [tool.edgeopt.platforms.{profile.name}]), run pytest on the device itself, "
            f"or add --edge-on-host to measure the {profile.name} profile on this machine"
        )


def make_transport(profile: Platform, *, lock_dir: Path) -> Optional[Transport]:
    """Our transports: local and ssh (one device, or a fleet of them); others come from plugins."""
    if profile.transport == TransportKind.LOCAL and not profile.remote:
        return LocalTransport(lock_dir=lock_dir)
    if profile.transport != TransportKind.SSH or not profile.devices:
        return None
    try:
        import paramiko  # noqa: F401
    except ImportError:
        raise pytest.UsageError(
            'paramiko is not installed (measuring over SSH): pip install "pytest-edgeopt[ssh]"'
        ) from None
    from pytest_edgeopt.platforms.fleet import FleetTransport
    from pytest_edgeopt.platforms.ssh import SshAddress, SshTransport

    _check_files(profile)
    devices = [
        SshTransport(SshAddress.parse(url), options=profile.ssh, lock_dir=lock_dir)
        for url in dict.fromkeys(profile.devices)
    ]
    return devices[0] if len(devices) == 1 else FleetTransport(devices, lock_dir=lock_dir)


def _check_files(profile: Platform) -> None:
    """A mistyped key or known_hosts path is the user's to fix before any test runs."""
    for key in ("identity_file", "known_hosts"):
        value = getattr(profile.ssh, key)
        if value and not Path(value).expanduser().is_file():
            raise pytest.UsageError(
                f"ssh.{key} {value} of platform {profile.name!r} is not a file: fix it in "
                f"[tool.edgeopt.platforms.{profile.name}.ssh]"
            )
