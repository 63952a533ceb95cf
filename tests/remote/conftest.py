"""Loopback devices: real sshd servers started once per test session."""

from __future__ import annotations

from typing import Iterator, List

import pytest

from tests.remote.sshd import Device, sshd_path, start_sshd

pytest.importorskip("paramiko", reason='paramiko is not installed: pip install "pytest-edgeopt[ssh]"')


@pytest.fixture(scope="session")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[List[Device]]:
    """Two loopback "devices" (two sshd ports): enough for a fleet."""
    if sshd_path() is None:
        pytest.skip("OpenSSH server not installed (Debian: apt-get install openssh-server)")
    started = [start_sshd(tmp_path_factory.mktemp(f"device{i}")) for i in range(2)]
    yield started
    for device in started:
        device.stop()


@pytest.fixture(scope="session")
def device(devices: List[Device]) -> Device:
    return devices[0]
