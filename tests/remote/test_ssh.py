"""--edge-device ssh://...: the same suite measured through a real sshd on 127.0.0.1.

The loopback "device" is this machine, so its fingerprint is the host's: the built-in pi profile
(aarch64, "Raspberry Pi") does not match it, which the rows say (policy warn) or which fails the
test (policy fail); a profile that expects this machine is used where a match is wanted.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.pytester_helpers import QUICK, failures, table
from tests.remote.sshd import Device, StallingProxy, free_port

pytest.importorskip("onnxruntime")

DIGITS = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
def test_digits(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.top1 >= 0.95
    assert m.accuracy_drop <= 1.0
    assert m.storage_mb < 1.0
    print("DEVICE", m.device)
"""

TOO_STRICT = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("int8")
def test_too_strict(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    m.check(max_storage_mb=0.001)
"""

HERE = {"arch": platform.machine()}  # what a loopback device must report


def _project(pytester: pytest.Pytester, *profiles: str, tests: str = DIGITS) -> None:
    pytester.makefile(".toml", pyproject="".join(profiles))
    pytester.makepyfile(test_suite=tests)


def _needs_litert() -> None:
    """The pi profile runs LiteRT, and its INT8 rows need the quantizer on the host."""
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("ai_edge_quantizer")


def _host_profile(device: Device, name: str = "board", **extra: str) -> str:
    """A user profile for the loopback device on ONNX Runtime (fast, no conversion)."""
    fields = {
        "extends": '"host"',
        "device": f'"{device.url}"',
        "fingerprint": f'{{arch = "{platform.machine()}"}}',
        **extra,
    }
    return device.profile(name, **fields)


def test_pi_over_ssh_runs_the_suite_and_names_the_device(pytester: pytest.Pytester, device: Device) -> None:
    _needs_litert()
    _project(pytester, device.profile("pi"))
    result = pytester.runpytest(*QUICK, "-s", "--edge-platform=pi", f"--edge-device={device.url}")
    result.assert_outcomes(passed=2)
    rows = table(result)
    address = f"{device.user}@127.0.0.1:{device.port}"
    assert all(r["Platform"].startswith("pi: ") and address in r["Platform"] for r in rows), rows
    assert all(r["Runtime"].startswith("tflite") for r in rows)
    # the loopback device is not a Raspberry Pi: the rows say so and the summary repeats it
    result.stdout.fnmatch_lines(
        [
            "*pytest-edgeopt: devices*",
            f"pi: *at {address}*: 2 rows",
            "WARNING *fingerprint mismatch: arch is *, the profile expects 'aarch64'*",
        ]
    )
    assert list(device.remote_dir.glob("agent-*.pyz")), "the agent was pushed to the device"


def test_ssh_and_local_give_the_same_verdicts(pytester: pytest.Pytester, device: Device) -> None:
    _project(pytester, _host_profile(device), tests=DIGITS + TOO_STRICT)
    local = pytester.runpytest(*QUICK, "--edge-platform=board", "--edge-device=local")
    remote = pytester.runpytest(*QUICK, "--edge-platform=board")
    for result in (local, remote):
        result.assert_outcomes(passed=2, failed=1)
    assert [r["Verdict"] for r in table(local)] == [r["Verdict"] for r in table(remote)]
    assert "max_storage_mb" in failures(remote)["test_too_strict[digits-cnn-int8]"]
    assert f":{device.port}" in table(remote)[0]["Platform"] and "127.0.0.1" not in table(local)[0]["Platform"]


def test_update_baselines_writes_the_platforms_own_file(pytester: pytest.Pytester, device: Device) -> None:
    _needs_litert()
    _project(pytester, device.profile("pi"))
    result = pytester.runpytest(*QUICK, "--edge-platform=pi", f"--edge-device={device.url}", "--update-baselines")
    result.assert_outcomes(passed=2)
    stored = json.loads((pytester.path / "baselines" / "pi" / "test_suite.json").read_text())
    assert stored["platform"] == "pi" and len(stored["entries"]) == 2
    info = next(iter(stored["entries"].values()))["fingerprint"]["info"]
    assert f"127.0.0.1:{device.port}" in info["device"]
    again = pytester.runpytest(*QUICK, "--edge-platform=pi", f"--edge-device={device.url}")
    again.assert_outcomes(passed=2)
    assert "no baseline" not in again.stdout.str()


def test_fingerprint_policy_fail_fails_on_the_wrong_device(pytester: pytest.Pytester, device: Device) -> None:
    _needs_litert()
    _project(pytester, device.profile("pi", fingerprint_policy='"fail"'))
    result = pytester.runpytest(
        *QUICK, "--edge-platform=pi", f"--edge-device={device.url}", "--edge-precision=fp32", "--update-baselines"
    )
    result.assert_outcomes(failed=1)
    reason = failures(result)["test_digits[digits-cnn-fp32]"]
    assert "is not the device the pi profile describes: arch is" in reason and "\n" not in reason
    assert not (pytester.path / "baselines").exists()


def test_a_closed_port_fails_in_one_line_and_writes_nothing(pytester: pytest.Pytester, device: Device) -> None:
    _project(pytester, _host_profile(device))
    closed = f"ssh://{device.user}@127.0.0.1:{free_port()}"
    result = pytester.runpytest(*QUICK, "--edge-platform=board", f"--edge-device={closed}", "--update-baselines")
    result.assert_outcomes(failed=2)
    reason = failures(result)["test_digits[digits-cnn-fp32]"]
    assert "refused the connection: is sshd running there on port" in reason and "\n" not in reason
    assert not (pytester.path / "baselines").exists()


def test_on_unreachable_skip_skips(pytester: pytest.Pytester, device: Device) -> None:
    _project(pytester, _host_profile(device, on_unreachable='"skip"'))
    closed = f"ssh://{device.user}@127.0.0.1:{free_port()}"
    result = pytester.runpytest(*QUICK, "-rs", "--edge-platform=board", f"--edge-device={closed}")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*refused the connection*"])


def test_a_wrong_key_is_refused_in_one_line(pytester: pytest.Pytester, device: Device, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    profile = _host_profile(device).replace(str(device.identity_file), str(other))
    _project(pytester, profile)
    result = pytester.runpytest(*QUICK, "--edge-platform=board", "--edge-precision=fp32")
    result.assert_outcomes(failed=1)
    reason = failures(result)["test_digits[digits-cnn-fp32]"]
    assert "refused our key (authentication failed): ssh-copy-id" in reason and "\n" not in reason


def test_an_unknown_host_key_is_never_trusted(pytester: pytest.Pytester, device: Device, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    _project(pytester, _host_profile(device).replace(str(device.known_hosts), str(empty)))
    result = pytester.runpytest(*QUICK, "--edge-platform=board", "--edge-precision=fp32")
    result.assert_outcomes(failed=1)
    reason = failures(result)["test_digits[digits-cnn-fp32]"]
    assert f"is not in {empty}: check it and add it with ssh-keyscan -p {device.port} 127.0.0.1" in reason
    assert empty.read_text() == "", "the key was not added behind the user's back"


def test_a_changed_host_key_is_refused(pytester: pytest.Pytester, device: Device, tmp_path: Path) -> None:
    forged = tmp_path / "forged"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(forged)], check=True)
    key_type, key = Path(f"{forged}.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{device.port} {key_type} {key}\n")
    _project(pytester, _host_profile(device).replace(str(device.known_hosts), str(known)))
    result = pytester.runpytest(*QUICK, "--edge-platform=board", "--edge-precision=fp32")
    result.assert_outcomes(failed=1)
    assert "does not match" in failures(result)["test_digits[digits-cnn-fp32]"]


def test_a_device_timeout_is_one_line(pytester: pytest.Pytester, device: Device) -> None:
    _project(pytester, _host_profile(device))
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--edge-platform=board",
        "--edge-precision=fp32",
        "--edge-timeout=3",
        "--edge-min-time=60",
        "--edge-max-time=120",
        "--edge-min-runs=100000000",
        "--update-baselines",
    )
    result.assert_outcomes(failed=1)
    reason = failures(result)["test_digits[digits-cnn-fp32]"]
    assert "did not finish within 3 s (raise --edge-timeout)" in reason and "\n" not in reason, reason
    assert not (pytester.path / "baselines").exists()


def test_an_agent_killed_mid_run_is_one_line(pytester: pytest.Pytester, device: Device) -> None:
    _project(pytester, _host_profile(device))
    killer = threading.Thread(target=_kill_agent_when_it_runs, args=(device.remote_dir,), daemon=True)
    killer.start()
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--edge-platform=board",
        "--edge-precision=fp32",
        "--edge-min-time=60",
        "--edge-max-time=120",
        "--edge-min-runs=100000000",
    )
    killer.join(timeout=5)
    result.assert_outcomes(failed=1)
    reason = failures(result)["test_digits[digits-cnn-fp32]"]
    assert "agent" in reason and ("killed" in reason or "exited with code" in reason) and "\n" not in reason


def _kill_agent_when_it_runs(remote_dir: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", f"{remote_dir}/agent-"], capture_output=True, text=True).stdout.split()
        if found:
            time.sleep(1.0)  # well inside the timed loop
            subprocess.run(["kill", "-9", *found])
            return
        time.sleep(0.1)


def test_a_device_without_the_runtime_fails_naming_what_to_install(pytester: pytest.Pytester, device: Device) -> None:
    _project(pytester, _host_profile(device, runtime='"tflite-runtime"'))
    result = pytester.runpytest(*QUICK, "-rs", "--edge-platform=board", "--edge-precision=fp32")
    if result.parseoutcomes().get("passed"):
        pytest.skip("tflite-runtime is installed here: no device lacks it")
    result.assert_outcomes(failed=1)
    assert failures(result)["test_digits[digits-cnn-fp32]"].endswith(
        f"tflite-runtime is not installed on the device {device.user}@127.0.0.1:{device.port}: there, run "
        f"{_sys_executable()} -m pip install tflite-runtime"
    )


def test_a_device_without_numpy_fails_unless_the_profile_skips_unreachable_devices(
    pytester: pytest.Pytester, device: Device
) -> None:
    """A skip would turn CI green with nothing measured: only on_unreachable = "skip" asks for it."""
    bare = _python_without_numpy()
    profile = _host_profile(device).replace(f'python = "{_sys_executable()}"', f'python = "{bare}"')
    _project(pytester, profile)
    result = pytester.runpytest(*QUICK, "-rs", "--edge-platform=board", "--edge-precision=fp32")
    result.assert_outcomes(failed=1)
    assert (
        f"numpy is not installed on the device {device.user}@127.0.0.1:{device.port}: there, run"
        in (failures(result)["test_digits[digits-cnn-fp32]"])
    )
    skipping = _host_profile(device, on_unreachable='"skip"')
    _project(pytester, skipping.replace(f'python = "{_sys_executable()}"', f'python = "{bare}"'))
    skipped = pytester.runpytest(*QUICK, "-rs", "--edge-platform=board", "--edge-precision=fp32")
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.fnmatch_lines([f"*numpy is not installed on the device *:{device.port}: there, run*"])


def test_a_typo_in_the_devices_python_fails_every_test_naming_it(pytester: pytest.Pytester, device: Device) -> None:
    _project(
        pytester, _host_profile(device).replace(f'python = "{_sys_executable()}"', 'python = "/nonexistent/python3"')
    )
    result = pytester.runpytest(*QUICK, "-rs", "--edge-platform=board")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*/nonexistent/python3 was not found on *: install Python 3.9+ there*"])


def _sys_executable() -> str:
    import sys

    return sys.executable


def _python_without_numpy() -> str:
    """`python -I -S`-like: an interpreter that cannot import numpy, made from this one."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        probe = subprocess.run([candidate, "-c", "import numpy"], capture_output=True)
        if Path(candidate).exists() and probe.returncode != 0:
            return candidate
    pytest.skip("every Python here has numpy")


def test_the_pushed_agent_stands_alone(device: Device, tmp_path: Path) -> None:
    """The bundle imports the agent from itself, never from an installed pytest-edgeopt."""
    from pytest_edgeopt.platforms.bundle import agent_bundle

    name, data = agent_bundle()
    bundle = tmp_path / name
    bundle.write_bytes(data)
    code = (
        f"import sys; sys.path.insert(0, {str(bundle)!r}); import pytest_edgeopt.agent.job as job; print(job.__file__)"
    )
    done = subprocess.run([_sys_executable(), "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().startswith(str(bundle))
    assert agent_bundle()[1] == data, "the bundle is deterministic (its name is its content hash)"


def test_the_example_suite_runs_on_a_pi_over_ssh_and_records_pi_baselines(
    pytester: pytest.Pytester, device: Device
) -> None:
    """The issue's "done when": `pytest --edge-platform=pi --edge-device ssh://... suites/`."""
    _needs_litert()
    suite = Path(__file__).resolve().parents[2] / "suites" / "test_digits.py"
    pytester.makefile(".toml", pyproject=device.profile("pi"))
    pytester.makepyfile(test_digits=suite.read_text())
    args = (*QUICK, "--edge-platform=pi", f"--edge-device={device.url}")
    first = pytester.runpytest(*args, "--update-baselines")
    first.assert_outcomes(passed=12)  # onnxruntime, tflite, openvino and executorch, on the device
    stored = json.loads((pytester.path / "baselines" / "pi" / "test_digits.json").read_text())
    assert stored["platform"] == "pi" and len(stored["entries"]) == 16  # 8 cases + 4 x (fp32, int8) pairs
    address = f"{device.user}@127.0.0.1:{device.port}"
    assert {r["Platform"].split(", ")[0] for r in table(first)} == {f"pi: {_here()} at {address}"}
    again = pytester.runpytest(*args)
    again.assert_outcomes(passed=12)
    assert all(r["Baseline (ms)"] != "-" for r in table(again)), table(again)


def _here() -> str:
    """The loopback device's own model string, as its agent reports it."""
    from pytest_edgeopt.agent.device import fingerprint

    facts = fingerprint()
    return f"{facts.device_model or facts.cpu_model} ({facts.arch})"


def test_defaults_use_the_users_ssh_config_known_hosts_and_keys(
    pytester: pytest.Pytester, device: Device, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ssh options but the device's Python: ~/.ssh/config's alias, ~/.ssh/known_hosts and the
    key it names, as `ssh mypi` would use them."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f"Host mypi\n  HostName 127.0.0.1\n  Port {device.port}\n"
        f"  User {device.user}\n  IdentityFile {device.identity_file}\n"
    )
    (home / ".ssh" / "known_hosts").write_text(device.known_hosts.read_text())
    monkeypatch.setenv("HOME", str(home))
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.edgeopt.platforms.board]\nextends = "host"\n'
        f'ssh = {{python = "{_sys_executable()}", remote_dir = "{device.remote_dir}"}}\n',
    )
    pytester.makepyfile(test_suite=DIGITS)
    result = pytester.runpytest(*QUICK, "--edge-platform=board", "--edge-device=ssh://mypi")
    result.assert_outcomes(passed=2)
    address = f"at {device.user}@127.0.0.1:{device.port}, 1 thr"  # the address the alias resolved to
    assert all(r["Platform"].endswith(address) for r in table(result)), table(result)


@pytest.mark.parametrize("key", ["identity_file", "known_hosts"])
def test_a_missing_key_or_known_hosts_file_is_a_usage_error(
    pytester: pytest.Pytester, device: Device, key: str
) -> None:
    path = str(device.identity_file if key == "identity_file" else device.known_hosts)
    _project(pytester, _host_profile(device).replace(path, "/nonexistent/file"))
    result = pytester.runpytest(*QUICK, "--edge-platform=board")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: ssh.{key} /nonexistent/file of platform 'board' is not a file: "
            "fix it in [[]tool.edgeopt.platforms.board.ssh]"
        ]
    )


def test_an_encrypted_key_says_to_use_the_agent(pytester: pytest.Pytester, device: Device, tmp_path: Path) -> None:
    locked = tmp_path / "locked_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(locked)], check=True)
    _project(pytester, _host_profile(device).replace(str(device.identity_file), str(locked)))
    result = pytester.runpytest(*QUICK, "--edge-platform=board", "--edge-precision=fp32")
    result.assert_outcomes(failed=1)
    assert "is encrypted: add it to ssh-agent" in failures(result)["test_digits[digits-cnn-fp32]"]


def test_a_device_that_answers_outside_the_contract_fails_in_one_line_naming_it(
    pytester: pytest.Pytester, device: Device, tmp_path: Path
) -> None:
    """A stale or foreign agent on the device answers JSON that is not this contract's result."""
    impostor = tmp_path / "impostor-python"
    impostor.write_text('#!/bin/sh\ncat > /dev/null\necho \'{"ok": true, "version": 2, "top_k": [[1]]}\'\n')
    impostor.chmod(0o755)
    profile = _host_profile(device).replace(f'python = "{_sys_executable()}"', f'python = "{impostor}"')
    _project(pytester, profile)
    result = pytester.runpytest(*QUICK, "--edge-platform=board", "--edge-precision=fp32")
    result.assert_outcomes(failed=1)
    reason = failures(result)["test_digits[digits-cnn-fp32]"]
    assert reason == (
        f"EdgeOptError: digits-cnn [fp32, onnxruntime]: the agent at {device.user}@127.0.0.1:{device.port} "
        "sent a malformed result: result.runtime is missing"
    )
    assert "Traceback" not in result.stdout.str() and "KeyError" not in result.stdout.str()


STALLING_MEASUREMENT = """
import pytest

def test_long(edge_runner):
    edge_runner.measure("digits-cnn", precision="fp32")
"""


def test_a_link_that_goes_silent_mid_job_is_an_unreachable_device_in_seconds(
    pytester: pytest.Pytester, device: Device, tmp_path: Path
) -> None:
    """Not "raise --edge-timeout" after the full timeout: three unanswered keepalives end it."""
    proxy = StallingProxy(device.port)
    key_type, key = device.known_hosts.read_text().split()[1:3]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{proxy.port} {key_type} {key}\n")
    profile = _host_profile(device).replace(str(device.known_hosts), str(known_hosts))
    profile = profile.replace("connect_timeout_s = 5", "connect_timeout_s = 5\nkeepalive_s = 1")
    _project(pytester, profile, tests=STALLING_MEASUREMENT)
    threading.Timer(4.0, proxy.stall).start()  # connected and pushed by then; the agent is sampling
    start = time.monotonic()
    try:
        result = pytester.runpytest(
            *QUICK,
            "--edge-platform=board",
            f"--edge-device=ssh://{device.user}@127.0.0.1:{proxy.port}",
            "--edge-min-time=30",
            "--edge-max-time=30",
            "--edge-timeout=120",
        )
    finally:
        proxy.close()
    elapsed = time.monotonic() - start
    result.assert_outcomes(failed=1)
    reason = failures(result)["test_long"]
    assert f"the link to {device.user}@127.0.0.1:{proxy.port} dropped during the job" in reason, reason
    assert elapsed < 60, f"took {elapsed:.0f} s: the drop was not noticed before the timeout"


def test_the_devices_copies_are_private_and_a_tampered_copy_is_pushed_again(
    pytester: pytest.Pytester, device: Device
) -> None:
    import stat

    device.remote_dir.chmod(0o777)  # a cache directory someone left open to every user
    for earlier in device.remote_dir.glob("*.onnx"):
        earlier.unlink()  # other tests' copies: the one left after the run is this run's
    _project(pytester, _host_profile(device))
    left = _outputs_files(device)  # what earlier tests' killed or timed-out agents may have left
    pytester.runpytest(*QUICK, "--edge-platform=board", "--edge-precision=fp32").assert_outcomes(passed=1)
    assert stat.S_IMODE(device.remote_dir.stat().st_mode) == 0o700
    copies = [p for p in device.remote_dir.iterdir() if p.suffix in (".onnx", ".npz", ".pyz")]
    assert copies and {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in copies} == {p.name: "0o600" for p in copies}
    assert _outputs_files(device) == left  # fetched, then removed
    [artifact] = [p for p in copies if p.suffix == ".onnx"]
    tampered = bytearray(artifact.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF  # same size, other weights: reuse by size alone would measure it
    artifact.write_bytes(bytes(tampered))
    again = pytester.runpytest(*QUICK, "--edge-platform=board", "--edge-precision=fp32")
    again.assert_outcomes(passed=1)
    assert table(again)[0]["Top-1 (%)"] == "98.06"
    assert artifact.read_bytes() != bytes(tampered)  # pushed again after the agent saw the hash differ


def test_the_paired_gate_runs_on_the_device(pytester: pytest.Pytester, device: Device) -> None:
    """Both artifacts travel to the device and are timed there, interleaved in one agent."""
    import textwrap

    from tests.integration.test_budgets import USER_MODEL

    gated = """
import pytest
from usermodel import user_model

@pytest.mark.edge_budget(max_latency_regression="10%")
def test_gated(edge_runner):
    edge_runner.measure(user_model(), precision="fp32")
"""
    pytester.makepyfile(usermodel=textwrap.dedent(USER_MODEL))
    _project(pytester, _host_profile(device), tests=gated)
    (pytester.path / "width.txt").write_text("8")
    pytester.runpytest(*QUICK, "--edge-platform=board", "--update-baselines").assert_outcomes(passed=1)
    (pytester.path / "width.txt").write_text("64")
    result = pytester.runpytest(*QUICK, "--edge-platform=board")
    result.assert_outcomes(failed=1)
    assert "paired A/B vs baseline, 12 pairs" in table(result)[0]["Delta"]
    assert f"{device.user}@127.0.0.1:{device.port}" in table(result)[0]["Platform"]


SEVERAL_INPUTS = """
import numpy as np
import torch
from pytest_edgeopt import EdgeModel, Metric


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Linear(16, 8)

    def forward(self, image, mask):
        return torch.sigmoid(self.body(image * mask)).reshape(-1, 1, 2, 4)  # a small dense map


X = np.random.default_rng(0).standard_normal((32, 16)).astype(np.float32)
MASK = (np.random.default_rng(1).uniform(size=(32, 16)) > 0.2).astype(np.float32)
TRUTH = np.random.default_rng(2).uniform(size=(32, 1, 2, 4)) > 0.5


def iou(outputs, truth):
    hit = outputs["output"] > 0.5
    return float((hit & truth).sum() / max((hit | truth).sum(), 1))


def test_map(edge_runner):
    model = EdgeModel.from_torch(Net(), name="map", example_input=(X[:1], MASK[:1]),
                                 eval_data=({"image": X, "mask": MASK}, TRUTH), metric=Metric("IoU", iou))
    fp32 = edge_runner.measure(model, precision="fp32")
    m = edge_runner.measure(model, precision="int8")
    print(f"OVER SSH fp32={fp32.metric} int8={m.metric} sqnr={m.fidelity['output'].sqnr_db} agreement={m.agreement}")
    m.check(min_cosine=0.9)
"""


def test_several_inputs_a_metric_and_fidelity_work_over_ssh(pytester: pytest.Pytester, device: Device) -> None:
    """The outputs file the metric and the fidelity need comes back by SFTP; the device keeps none."""
    _project(pytester, _host_profile(device), tests=SEVERAL_INPUTS)
    left = _outputs_files(device)
    result = pytester.runpytest(*QUICK, "-s", "--edge-platform=board")
    result.assert_outcomes(passed=1)
    found = re.search(r"OVER SSH fp32=(\S+) int8=(\S+) sqnr=(\S+) agreement=(\S+)", result.stdout.str())
    assert found is not None and 0 < float(found.group(1)) <= 1 and 0 < float(found.group(2)) <= 1
    assert float(found.group(3)) > 10 and found.group(4) == "None"  # a [N, 1, 2, 4] map has no class axis
    assert _outputs_files(device) == left


def _outputs_files(device: Device) -> set:
    return {p.name for p in device.remote_dir.iterdir() if p.name.startswith("outputs-")}
