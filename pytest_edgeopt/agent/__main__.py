"""`python -m pytest_edgeopt.agent`: read a job, run it, print the result as one JSON line."""
from __future__ import annotations

import json
import sys

from pytest_edgeopt.agent.job import run_job


def main() -> int:
    try:
        job = json.loads(sys.stdin.read())
    except ValueError as error:
        result = {"ok": False, "kind": "bad-job", "error": f"the job is not JSON: {error}"}
    else:
        result = run_job(job)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
