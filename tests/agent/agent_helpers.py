"""Running `python -m pytest_edgeopt.agent` the way a transport does, for the agent tests."""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Dict, Optional, Tuple

FAST_PLAN = {"warmup_runs": 1, "warmup_s": 0.0, "min_runs": 5, "min_s": 0.0, "max_s": 30.0}


def run_agent(stdin: str, *, argv: Optional[list] = None) -> Tuple[Dict[str, Any], int, str]:
    """(result, exit code, stderr); the result is the one JSON line on stdout."""
    done = subprocess.run(argv or [sys.executable, "-m", "pytest_edgeopt.agent"], input=stdin,
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout + done.stderr
    return json.loads(lines[0]), done.returncode, done.stderr
