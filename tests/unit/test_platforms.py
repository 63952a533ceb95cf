"""Pure parts of platforms/: profiles and their schema, device addresses, fingerprints, throttling,
fleet leases and the agent bundle."""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path
from typing import Any, Dict, List

import pytest

from pytest_edgeopt.judge.validity import throttle_problem
from pytest_edgeopt.kinds import OnUnreachable, Policy
from pytest_edgeopt.optimize.precisions import PRECISIONS
from pytest_edgeopt.platforms.bundle import agent_bundle
from pytest_edgeopt.platforms.fingerprint import mismatches
from pytest_edgeopt.platforms.fleet import FleetTransport
from pytest_edgeopt.platforms.options import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_REMOTE_DIR, PowerSpec, SshOptions
from pytest_edgeopt.platforms.profiles import (
    BUILTIN,
    PI,
    Platform,
    apply_user_profiles,
    platform_schema,
    with_devices,
)
from pytest_edgeopt.platforms.ssh import SshAddress
from pytest_edgeopt.runtimes import RUNTIMES

TABLE = {p.name: p for p in BUILTIN}


@pytest.mark.parametrize(
    "text, user, host, port",
    [
        ("ssh://pi@raspberrypi.local", "pi", "raspberrypi.local", 22),
        ("ssh://root@10.0.0.7:2222", "root", "10.0.0.7", 2222),
        ("ssh://jetson", None, "jetson", 22),
        ("ssh://pi@[fe80::1]:2200", "pi", "fe80::1", 2200),
    ],
)
def test_device_addresses_parse(text: str, user: Any, host: str, port: int) -> None:
    address = SshAddress.parse(text)
    assert (address.user, address.host, address.port) == (user, host, port)


@pytest.mark.parametrize(
    "text",
    [
        "pi.local",
        "ssh://",
        "ssh://a@b:0",
        "ssh://a@b:70000",
        "ssh://a@b c",
        "ssh://a@b;rm -rf ~",
        "ssh://a@b;reboot",
        "ssh://$(id)@b",
        "scp://a@b",
    ],
)
def test_bad_addresses_say_the_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a device address: write ssh://USER@HOST\[:PORT\]"):
        SshAddress.parse(text)


def test_schema_names_every_precision_and_leaves_runtimes_to_the_registry() -> None:
    """Plugins add runtimes (the pytest_edgeopt_runtimes hook), so a profile's runtime is checked
    against the session's registry at configure time, not by an enum in the schema."""
    properties = platform_schema()["properties"]
    assert properties["runtime"] == {"type": "string", "minLength": 1} and "onnxruntime" in RUNTIMES
    assert properties["precisions"]["items"]["enum"] == list(PRECISIONS)


def test_a_user_entry_named_like_a_builtin_overrides_its_fields() -> None:
    table = apply_user_profiles(
        TABLE,
        {"pi": {"device": "ssh://pi@pi5.lan", "threads": 2, "budgets": {"max_latency_ms": 50}}},
        where="pyproject.toml",
    )
    pi = table["pi"]
    assert (pi.runtime, pi.threads, pi.devices, pi.transport) == ("tflite", 2, ("ssh://pi@pi5.lan",), "ssh")
    assert pi.fingerprint == PI.fingerprint and pi.budgets == {"max_latency_ms": 50}


def test_extends_starts_a_new_profile_from_another() -> None:
    table = apply_user_profiles(
        TABLE,
        {"pi-lab": {"extends": "pi", "device": ["ssh://a@x", "ssh://a@y"], "fingerprint_policy": "fail"}},
        where="pyproject.toml",
    )
    lab = table["pi-lab"]
    assert lab.name == "pi-lab" and lab.runtime == "tflite" and lab.devices == ("ssh://a@x", "ssh://a@y")
    assert lab.fingerprint_policy == "fail" and "pi-lab" in lab.description
    assert table["pi"] == PI, "the base is untouched"


def test_a_new_name_without_extends_starts_from_host() -> None:
    box = apply_user_profiles(TABLE, {"box": {"threads": 3}}, where="pyproject.toml")["box"]
    assert (box.runtime, box.threads, box.transport, box.devices) == ("onnxruntime", 3, "local", ())


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"threads": "4"}, r"threads: '4' is not of type 'integer'"),
        ({"power": {"kind": "estimate"}}, r"power: 'watts' is a required property"),
        ({"ssh": {"password": "x"}}, r"ssh: Additional properties are not allowed \('password'"),
        ({"device": ["ssh://a@b", "nope"]}, r"device: .* is not valid"),
    ],
)
def test_schema_errors_name_the_key(entry: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_user_profiles(TABLE, {"x": entry}, where="pyproject.toml")


def test_ssh_and_power_tables_become_typed_values_with_each_default_written_once() -> None:
    entry = {
        "extends": "pi",
        "device": "ssh://a@b",
        "ssh": {"python": "/opt/py/bin/python3", "keepalive_s": 3},
        "power": {"kind": "command", "command": ["meter", "--watts"], "interval_s": 0.1},
    }
    lab = apply_user_profiles(TABLE, {"lab": entry}, where="pyproject.toml")["lab"]
    assert lab.ssh == SshOptions(python="/opt/py/bin/python3", keepalive_s=3.0)
    assert (lab.ssh.remote_dir, lab.ssh.connect_timeout_s) == (DEFAULT_REMOTE_DIR, DEFAULT_CONNECT_TIMEOUT_S)
    assert lab.power == PowerSpec(kind="command", command=("meter", "--watts"), interval_s=0.1)
    assert lab.power.to_dict() == entry["power"], "the agent's job gets the table as the profile wrote it"
    assert PI.ssh == SshOptions() and PI.power is None


def test_a_plugin_profile_given_dicts_and_strings_is_parsed_once() -> None:
    bench = Platform(
        name="bench",
        description="a bench supply",
        power={"kind": "rapl"},
        ssh={"python": "python3.11"},
        fingerprint_policy="fail",
        on_unreachable="skip",
    )
    assert bench.power == PowerSpec(kind="rapl") and bench.ssh.python == "python3.11"
    assert bench.fingerprint_policy is Policy.FAIL and bench.on_unreachable is OnUnreachable.SKIP
    assert bench.fingerprint_policy == "fail", "a mode still compares equal to the text it was written as"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"ssh": {"password": "x"}}, r"^platform 'bench': ssh: unknown key 'password'; valid keys: python, remote_dir"),
        ({"ssh": {"keepalive_s": 0}}, r"^platform 'bench': ssh.keepalive_s: expected a number > 0, got 0$"),
        ({"power": {"kind": "rapl", "every": 1}}, r"^platform 'bench': power: unknown key 'every'; valid keys: kind,"),
        ({"on_unreachable": "retry"}, r"^platform 'bench': expected one of fail, skip, got 'retry'$"),
    ],
)
def test_a_bad_table_or_mode_is_one_line_naming_the_profile(fields: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Platform(name="bench", description="x", **fields)


def test_device_local_runs_here() -> None:
    assert with_devices(PI, ("local",)).transport == "local" and not with_devices(PI, ("local",)).remote
    assert with_devices(PI, ("ssh://a@b",)).remote


def test_fingerprint_strings_match_as_case_insensitive_substrings() -> None:
    facts = {
        "arch": "aarch64",
        "device_model": "Raspberry Pi 5 Model B Rev 1.0",
        "os_bits": 64,
        "runtime_version": "2.3.0",
    }
    assert mismatches({"arch": "aarch64", "device_model": "raspberry pi", "os_bits": 64}, facts) == []
    assert mismatches({"runtime_version": "2.3"}, facts) == []
    assert mismatches({"runtime_version": "2.30"}, facts) == ["runtime_version is '2.3.0', the profile expects '2.30'"]
    assert mismatches({"os_bits": 32, "governor": "performance"}, facts) == [
        "os_bits is 64, the profile expects 32",
        "governor is None, the profile expects 'performance'",
    ]


@pytest.mark.parametrize(
    "before, after, invalid",
    [
        (None, None, None),
        (0x0, 0x0, None),
        (0x50000, 0x50000, None),  # throttled earlier since boot, not during this run
        (0x0, 0x50000, "under-voltage, throttled"),  # began during the run
        (0x0, 0x50005, "under-voltage, throttled"),
        (0x8, 0x8, "soft temperature limit"),
        (None, 0x2, "ARM frequency capped"),
    ],
)
def test_throttling_during_the_run_invalidates_it(before: Any, after: Any, invalid: Any) -> None:
    problem = throttle_problem(before, after)
    if invalid is None:
        assert problem is None
    else:
        assert f": {invalid}): the measurement is invalid" in problem


class _Device:
    def __init__(self, label: str) -> None:
        self.label = label
        self.jobs: List[Dict[str, Any]] = []

    def run(self, job: Dict[str, Any], *, timeout_s: float) -> Dict[str, Any]:
        self.jobs.append(job)
        return {"ok": True, "device_address": self.label}

    def close(self) -> None:
        pass


def test_each_worker_leases_its_own_device_and_extra_workers_share(tmp_path: Path) -> None:
    devices = [_Device("a@x:22"), _Device("a@y:22")]
    workers = [FleetTransport(devices, lock_dir=tmp_path, worker=f"gw{i}") for i in range(3)]
    try:
        used = [w.run({}, timeout_s=1)["device_address"] for w in workers]
        assert used[:2] == ["a@x:22", "a@y:22"]  # gw0 and gw1 hold one lease each
        assert used[2] in ("a@x:22", "a@y:22")  # gw2 shares, job by job
        assert [w.run({}, timeout_s=1)["device_address"] for w in workers] == used, "a lease is for life"
    finally:
        for w in workers:
            w.close()
    again = FleetTransport(devices, lock_dir=tmp_path, worker="gw1")
    assert again.run({}, timeout_s=1)["device_address"] == "a@y:22", "closing released the leases"
    again.close()


def test_the_controller_leases_nothing(tmp_path: Path) -> None:
    FleetTransport([_Device("a@x:22")], lock_dir=tmp_path).close()
    assert not (tmp_path / "devices").exists()


def test_the_agent_bundle_holds_only_stdlib_numpy_code_that_python39_parses() -> None:
    name, data = agent_bundle()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        sources = {n: archive.read(n).decode() for n in names}
    assert name.startswith("agent-") and name.endswith(".pyz") and "__main__.py" in names
    assert {n.split("/")[1] for n in names if n.count("/") == 2} == {"agent", "runtimes"}
    for path, source in sources.items():
        ast.parse(source, filename=path, feature_version=(3, 9))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            (node.module or "").split(".")[0]
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ImportFrom) and node.level == 0
        }
        assert not imported & {"pytest", "torch", "jsonschema", "tabulate", "paramiko"}, path


def test_a_plugin_runtime_module_travels_in_the_bundle_and_a_package_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "vendor_runtime.py").write_text("class VendorRuntime:\n    name = 'vendor'\n")
    (tmp_path / "vendor_pkg").mkdir()
    (tmp_path / "vendor_pkg" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    plain_name, plain = agent_bundle()
    name, data = agent_bundle(("vendor_runtime", "pytest_edgeopt.runtimes.tflite"))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("vendor_runtime.py").startswith(b"class VendorRuntime")
    assert name != plain_name and len(data) > len(plain)
    with pytest.raises(ValueError, match=r"vendor_pkg is not a single \.py module: install it on the device instead"):
        agent_bundle(("vendor_pkg",))
