"""What does measuring through the ssh transport cost against the local one, and does it move
the numbers it reports?

Starts a throw-away OpenSSH server on 127.0.0.1 (or uses --device with your own keys), then runs
the same digits-cnn FP32 job alternately through the local transport and the ssh transport.
Prints: the first ssh job (connect + pushing the agent, the artifact and the inputs), the median
wall time of a job on each transport, and the median inference latency each one reported
(the transport must not change what the agent measures).

    python benchmarks/ssh_overhead.py [--jobs 10]
    python benchmarks/ssh_overhead.py --device ssh://pi@raspberrypi.local --python python3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_edgeopt.agent.contract import Job, RuntimeRef, SamplingPlan, Success  # noqa: E402
from pytest_edgeopt.models.zoo import load_zoo_model  # noqa: E402
from pytest_edgeopt.optimize.artifacts import build_artifact, eval_inputs_file  # noqa: E402
from pytest_edgeopt.optimize.cache import ArtifactCache  # noqa: E402
from pytest_edgeopt.optimize.precisions import get_precision  # noqa: E402
from pytest_edgeopt.platforms.options import SshOptions  # noqa: E402
from pytest_edgeopt.platforms.ssh import SshAddress, SshTransport  # noqa: E402
from pytest_edgeopt.platforms.transport import LocalTransport  # noqa: E402
from pytest_edgeopt.runtimes import RUNTIMES  # noqa: E402
from pytest_edgeopt.runtimes.base import RuntimeOptions  # noqa: E402

PLAN = SamplingPlan(warmup_runs=20, warmup_s=0.1, min_runs=200, min_s=0.5, max_s=5.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--device", help="ssh://USER@HOST[:PORT] (default: a loopback sshd started here)")
    parser.add_argument("--python", default=sys.executable, help="the device's Python")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        job = _job(work)
        remote, stop = _remote(args, work)
        try:
            _report(job, LocalTransport(lock_dir=work), remote, args.jobs)
        finally:
            remote.close()
            stop()


def _job(work: Path) -> Job:
    cache = ArtifactCache(work / "cache")
    model = load_zoo_model("digits-cnn")
    artifact = build_artifact(model, precision=get_precision("fp32"), batch=1, arch=platform.machine(), cache=cache)
    spec = RUNTIMES["onnxruntime"]
    return Job(
        artifact=str(artifact.path),
        inputs=str(eval_inputs_file(model, cache)),
        runtime=RuntimeRef(spec.name, spec.module, spec.cls, spec.package, spec.extra),
        batch=1,
        threads=1,
        options=RuntimeOptions(providers=("CPUExecutionProvider",)),
        plan=PLAN,
        topk=5,
    )


def _remote(args: argparse.Namespace, work: Path) -> Any:
    if args.device:
        return SshTransport(
            SshAddress.parse(args.device), options=SshOptions(python=args.python), lock_dir=work
        ), lambda: None
    from tests.remote.sshd import start_sshd

    device = start_sshd(work / "sshd")
    options = SshOptions(
        python=args.python,
        known_hosts=str(device.known_hosts),
        identity_file=str(device.identity_file),
        remote_dir=str(device.remote_dir),
    )
    return SshTransport(SshAddress.parse(device.url), options=options, lock_dir=work), device.stop


def _report(job: Job, local: Any, remote: Any, jobs: int) -> None:
    first_s, _ = _timed(remote, job)
    times: Dict[str, List[float]] = {"local": [], "ssh": []}
    latency: Dict[str, List[float]] = {"local": [], "ssh": []}
    for _ in range(jobs):
        for name, transport in (("local", local), ("ssh", remote)):
            seconds, result = _timed(transport, job)
            times[name].append(seconds)
            latency[name].append(statistics.median(result.timing.wall_ms))
    print(f"first ssh job (connect + push agent, artifact, inputs): {first_s:.2f} s")
    for name in ("local", "ssh"):
        print(
            f"{name:5s}: job median {statistics.median(times[name]):.2f} s over {jobs} jobs, "
            f"reported inference median {statistics.median(latency[name]) * 1000:.1f} us"
        )
    extra = statistics.median(times["ssh"]) - statistics.median(times["local"])
    ratio = statistics.median(latency["ssh"]) / statistics.median(latency["local"])
    print(f"ssh adds {extra * 1000:.0f} ms per job; reported latency ssh/local = {ratio:.3f}")


def _timed(transport: Any, job: Job) -> Tuple[float, Success]:
    start = time.perf_counter()
    result = transport.run(job, timeout_s=300)
    if not isinstance(result, Success) or result.timing is None:
        raise SystemExit(f"job failed: {getattr(result, 'error', 'no timing')}")
    return time.perf_counter() - start, result


if __name__ == "__main__":
    main()
