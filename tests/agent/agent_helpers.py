"""Running `python -m pytest_edgeopt.agent` the way a transport does, for the agent tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from pytest_edgeopt.agent.contract import CONTRACT_VERSION
from pytest_edgeopt.runtimes import RUNTIMES

FAST_PLAN = {"warmup_runs": 1, "warmup_s": 0.0, "min_runs": 5, "min_s": 0.0, "max_s": 30.0}


def make_job(
    artifact: Union[str, Path], inputs: Union[str, Path], *, runtime: str = "onnxruntime", **changes: Any
) -> Dict[str, Any]:
    """A job as the host writes it (agent/contract.py's Job.to_dict), by a runtime's name."""
    spec = RUNTIMES.get(runtime)
    ref = {
        "name": runtime,
        "module": spec.module if spec else f"pytest_edgeopt.runtimes.{runtime}",
        "cls": spec.cls if spec else runtime,
        "package": spec.package if spec else runtime,
        "extra": spec.extra if spec else "",
    }
    base = {
        "version": CONTRACT_VERSION,
        "artifact": str(artifact),
        "runtime": ref,
        "batch": 1,
        "threads": 1,
        "options": {"providers": ["CPUExecutionProvider"]},
        "inputs": str(inputs),
        "plan": dict(FAST_PLAN),
        "topk": 5,
    }
    return {**base, **changes}


def run_agent(stdin: str, *, argv: Optional[list] = None) -> Tuple[Dict[str, Any], int, str]:
    """(result, exit code, stderr); the result is the one JSON line on stdout."""
    done = subprocess.run(
        argv or [sys.executable, "-m", "pytest_edgeopt.agent"], input=stdin, capture_output=True, text=True, timeout=120
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout + done.stderr
    return json.loads(lines[0]), done.returncode, done.stderr
