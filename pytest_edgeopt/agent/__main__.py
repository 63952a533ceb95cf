"""`python -m pytest_edgeopt.agent`: read a job, run it, print the result as one JSON line.

Also the entry point of the bundle pushed to devices (`python3 agent-<sha>.pyz`): it must answer
in JSON even when numpy is missing there, so the host can say what to install on the device.
Only the standard library is imported before the job is parsed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Dict

from pytest_edgeopt.agent.contract import CONTRACT_VERSION  # stdlib only: safe before numpy is known


def main() -> int:
    parent = _host_pid()  # before anything that takes time: the host may die meanwhile
    try:
        data = json.loads(sys.stdin.read())
    except ValueError as error:
        return _answer(
            {"ok": False, "version": CONTRACT_VERSION, "kind": "bad-job", "error": f"the job is not JSON: {error}"}
        )
    _arm_deadline(data.get("deadline_s") if isinstance(data, dict) else None)
    _watch_parent(parent)
    return _answer(_run(data))


def _run(data: object) -> Dict[str, object]:
    try:
        from pytest_edgeopt.agent.job import run_job
    except ModuleNotFoundError as error:  # numpy, the one package the agent itself needs
        name = (error.name or str(error)).split(".")[0]
        if name == "pytest_edgeopt":
            raise
        return {
            "ok": False,
            "version": CONTRACT_VERSION,
            "kind": "missing-package",
            "package": name,
            "error": f"{name} is not installed for {sys.executable}",
        }
    return run_job(data).to_dict()


def _answer(result: Dict[str, object]) -> int:
    sys.stdout.write(json.dumps(result) + "\n")
    return 0 if result.get("ok") else 1


def _arm_deadline(seconds: object) -> None:
    """A job the host has given up on must not keep a device busy: SIGALRM's default action ends
    the process, whatever it is doing (an ssh channel closing does not stop it)."""
    if (
        isinstance(seconds, (int, float))
        and not isinstance(seconds, bool)
        and seconds > 0
        and hasattr(signal, "SIGALRM")
    ):
        signal.alarm(max(1, int(float(seconds) + 0.999)))


def _host_pid() -> int:
    """The local transport names its pid (the agent may start after the host died: then the
    parent pid is already the reaper's); over ssh the parent is the session's shell."""
    named = os.environ.get("EDGEOPT_HOST_PID", "")
    return int(named) if named.isdigit() else os.getppid()


def _watch_parent(parent: int) -> None:
    """An agent whose host died (SIGKILL, an OOM kill, a dropped ssh session) has nobody to
    answer: it ends itself within a second instead of timing on until its deadline. Orphans are
    re-parented, so a changed parent pid means the host is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=watch, name="edgeopt-parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
