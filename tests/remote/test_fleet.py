"""A fleet: --edge-device twice and -n 2: each worker leases one device, one table, one baseline write."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import List

import pytest

from tests.pytester_helpers import QUICK
from tests.remote.sshd import Device

pytest.importorskip("xdist")
pytest.importorskip("onnxruntime")

CASES = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8", "fp16", "int8-dynamic")
def test_{name}(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.agreement >= 0.9
"""


def _fleet_profile(devices: List[Device], tmp_path: Path) -> str:
    """One key and one known_hosts file that reach both loopback devices, as on a real LAN."""
    first, second = devices
    known = tmp_path / "known_hosts"
    known.write_text(first.known_hosts.read_text() + second.known_hosts.read_text())
    authorized = Path(second.known_hosts.parent / "authorized_keys")
    key = Path(f"{first.identity_file}.pub").read_text()
    if key not in authorized.read_text():
        authorized.write_text(authorized.read_text() + key)
    profile = first.profile(
        "fleet",
        extends='"host"',
        device=f'["{first.url}", "{second.url}"]',
        fingerprint=f'{{arch = "{platform.machine()}"}}',
    )
    return profile.replace(str(first.known_hosts), str(known))


def test_two_workers_measure_on_two_devices_and_write_baselines_once(
    pytester: pytest.Pytester, devices: List[Device], tmp_path: Path
) -> None:
    pytester.makefile(".toml", pyproject=_fleet_profile(devices, tmp_path))
    pytester.makepyfile(test_a=CASES.format(name="a"), test_b=CASES.format(name="b"))
    result = pytester.runpytest_subprocess(*QUICK, "-n", "2", "--edge-platform=fleet", "--update-baselines")
    result.assert_outcomes(passed=8)
    used = [line for line in result.stdout.lines if line.startswith("fleet: ") and " row" in line]
    ports = {d.port for d in devices if any(f"127.0.0.1:{d.port}" in line for line in used)}
    assert ports == {d.port for d in devices}, used  # both devices measured
    assert sum(int(line.rsplit(": ", 1)[1].split()[0]) for line in used) == 8
    for module in ("test_a", "test_b"):
        stored = json.loads((pytester.path / "baselines" / "fleet" / f"{module}.json").read_text())
        assert len(stored["entries"]) == 4
    assert not list((pytester.path / "baselines").rglob("*.tmp*")), "no half-written files"
    assert result.stdout.str().count("pytest-edgeopt: comparison table") == 1
