"""`python -m pytest_edgeopt.agent`: read a job, run it, print the result as one JSON line.

Also the entry point of the bundle pushed to devices (`python3 agent-<sha>.pyz`): it must answer
in JSON even when numpy is missing there, so the host can say what to install on the device.
"""
from __future__ import annotations

import json
import signal
import sys
from typing import Any, Dict


def main() -> int:
    try:
        job = json.loads(sys.stdin.read())
    except ValueError as error:
        result: Dict[str, Any] = {"ok": False, "kind": "bad-job", "error": f"the job is not JSON: {error}"}
    else:
        _arm_deadline(job.get("deadline_s"))
        result = _run(job)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0 if result.get("ok") else 1


def _run(job: Dict[str, Any]) -> Dict[str, Any]:
    try:
        from pytest_edgeopt.agent.job import run_job
    except ModuleNotFoundError as error:  # numpy, the one package the agent itself needs
        name = (error.name or str(error)).split(".")[0]
        if name == "pytest_edgeopt":
            raise
        return {"ok": False, "kind": "missing-package", "package": name,
                "error": f"{name} is not installed for {sys.executable}"}
    return run_job(job)


def _arm_deadline(seconds: Any) -> None:
    """A job the host has given up on must not keep a device busy: SIGALRM's default action ends
    the process, whatever it is doing (an ssh channel closing does not stop it)."""
    if seconds and hasattr(signal, "SIGALRM"):
        signal.alarm(max(1, int(float(seconds) + 0.999)))


if __name__ == "__main__":
    sys.exit(main())
