"""Transports carry one agent job to the device and bring its JSON result back.

`local` runs the agent in a child process: its memory and threads are its own, so peak RSS and
thread settings mean what they say. A lock per machine keeps xdist workers from timing two
latency cases on the same cores at once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Dict, Optional, Protocol, Sequence, Tuple

import pytest_edgeopt
from pytest_edgeopt._fs import file_lock
from pytest_edgeopt.agent.contract import ContractError, FailureKind, Job, Result, failure, parse_result


class Transport(Protocol):
    """Carries one job to where the model runs and brings its Result back; a transport never
    raises for a device's fault: it answers with a Failure whose kind says what happened."""

    @property
    def label(self) -> str:
        """Where jobs run, for messages and the table: "local" or "user@host:port"."""

    def run(self, job: Job, *, timeout_s: float) -> Result: ...

    def close(self) -> None: ...


class LocalTransport:
    """The agent as `python -m pytest_edgeopt.agent` with this interpreter."""

    label = "local"

    def __init__(self, *, lock_dir: Path, python: Optional[str] = None) -> None:
        self.lock_path = host_timing_lock(lock_dir)
        self.python = python or sys.executable

    def close(self) -> None:
        """Nothing stays open between jobs."""

    def run(self, job: Job, *, timeout_s: float) -> Result:
        """The agent in its own process group with its own deadline: killed as a group when the
        host gives up or is interrupted, and ending itself when the host is killed outright, so
        no orphan keeps timing and skews the next run."""
        with file_lock(self.lock_path):
            agent = subprocess.Popen(
                [self.python, "-m", "pytest_edgeopt.agent"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_agent_env(plugin_module_dirs(job)),
                start_new_session=True,
            )
            try:
                stdout, stderr = agent.communicate(
                    json.dumps(replace(job, deadline_s=timeout_s).to_dict()), timeout=timeout_s
                )
            except subprocess.TimeoutExpired:
                _kill_group(agent)
                return _timed_out(timeout_s)
            except BaseException:  # KeyboardInterrupt, pytest-timeout: never leave it running
                _kill_group(agent)
                raise
        if agent.returncode == -getattr(signal, "SIGALRM", 14):  # its own deadline ended it
            return _timed_out(timeout_s)
        return parse_agent_output(stdout, stderr, agent.returncode, where=self.label)


def host_timing_lock(lock_dir: Path) -> Path:
    """One machine's timing lock: jobs hold it exclusively, artifact builds shared."""
    return Path(lock_dir) / "host-latency.lock"


def _timed_out(timeout_s: float) -> Result:
    return failure(FailureKind.TIMEOUT, f"the agent did not finish within {timeout_s:g} s (raise --edge-timeout)")


def _kill_group(agent: "subprocess.Popen[str]") -> None:
    try:
        os.killpg(agent.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):  # gone already, or no killpg (Windows)
        agent.kill()
    agent.communicate()


def parse_agent_output(stdout: str, stderr: str, returncode: int, *, where: str) -> Result:
    """The last stdout line is the result; anything else means the agent died (a crash, a kill).
    A line that is JSON but not the contract is one line naming the device and the field."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    data: object = None
    if lines:
        try:
            data = json.loads(lines[-1])
        except ValueError:
            data = None
    if data is None:
        last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "no output")
        return failure(FailureKind.AGENT_DIED, f"the agent exited with code {returncode}: {last.strip()[:300]}")
    try:
        return parse_result(data)
    except ContractError as error:
        return failure(FailureKind.MALFORMED, f"the agent at {where} sent a malformed result: {error}")


def slug(text: str) -> str:
    """A device label as a lock file name: `pi@10.0.0.7:22` -> `pi_10.0.0.7_22`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


HOST_PID_VAR = "EDGEOPT_HOST_PID"  # read by agent/__main__.py (which imports nothing of the host's)


def _agent_env(extra_paths: Sequence[str] = ()) -> Dict[str, str]:
    """Make this copy of the package (and a plugin's runtime or meter module) importable by the
    child even when it is not installed."""
    env = dict(os.environ)
    root = str(Path(pytest_edgeopt.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, *extra_paths, env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
    env[HOST_PID_VAR] = str(os.getpid())  # the agent ends itself when this process is gone
    return env


def plugin_modules(job: Job) -> Tuple[str, ...]:
    """The modules a plugin's runtime or power meter brings to the job (ours travel with the agent)."""
    modules = [job.runtime.module]
    if job.power and isinstance(job.power.get("module"), str):
        modules.append(str(job.power["module"]))
    return tuple(m for m in modules if not m.startswith("pytest_edgeopt."))


def plugin_module_dirs(job: Job) -> Tuple[str, ...]:
    """Where this process found the job's plugin modules (a conftest.py's directory is on pytest's
    sys.path, not on the child's)."""
    dirs = []
    for name in plugin_modules(job):
        spec = importlib.util.find_spec(name.split(".")[0])
        if spec is not None and spec.origin:
            origin = Path(spec.origin).parent
            dirs.append(str(origin.parent if spec.submodule_search_locations else origin))
    return tuple(dict.fromkeys(dirs))
