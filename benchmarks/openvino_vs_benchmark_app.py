"""Does runtime="openvino" time what OpenVINO's own benchmark_app times, on the same file?

For each model, the plugin's FP32 .onnx (the file the ONNX Runtime and OpenVINO rows share) is
timed by the plugin's agent (child process, `openvino` runtime, 1 thread) and by `benchmark_app`
(shipped with the openvino wheel) with the same settings: CPU, -nthreads 1, -nstreams 1, -hint
none, synchronous API, f32 inference precision. The two alternate, so drift hits both alike; the
ratio plugin/benchmark_app of medians is printed per pair and its median per model. On a large
model it should be ~1.0; on a tiny one (digits-cnn, ~0.08 ms) the Python call of the agent's loop
is a visible share of each inference.

    python benchmarks/openvino_vs_benchmark_app.py [--pairs 3] [--seconds 10] [--models efficientnet-lite0 digits-cnn]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_edgeopt.agent.contract import Failure, Job, RuntimeRef, SamplingPlan  # noqa: E402
from pytest_edgeopt.models.zoo import load_zoo_model  # noqa: E402
from pytest_edgeopt.optimize.artifacts import build_artifact, eval_inputs_file  # noqa: E402
from pytest_edgeopt.optimize.cache import ArtifactCache  # noqa: E402
from pytest_edgeopt.optimize.precisions import get_precision  # noqa: E402
from pytest_edgeopt.platforms.transport import LocalTransport  # noqa: E402
from pytest_edgeopt.runtimes import RUNTIMES  # noqa: E402
from pytest_edgeopt.runtimes.base import RuntimeOptions  # noqa: E402

MEDIAN = re.compile(r"Median:\s+([0-9.]+) (ms|us)")


def prepare(name: str, cache: ArtifactCache) -> Tuple[Path, Path]:
    model = load_zoo_model(name)
    artifact = build_artifact(model, precision=get_precision("fp32"), batch=1, arch="x86_64", cache=cache)
    return artifact.path, eval_inputs_file(model, cache)


def plugin_median(transport: LocalTransport, artifact: Path, inputs: Path, seconds: float) -> float:
    spec = RUNTIMES["openvino"]
    job = Job(
        artifact=str(artifact),
        inputs=str(inputs),
        runtime=RuntimeRef(name=spec.name, module=spec.module, cls=spec.cls, package=spec.package, extra=spec.extra),
        batch=1,
        threads=1,
        options=RuntimeOptions(device="CPU"),
        plan=SamplingPlan(warmup_runs=20, warmup_s=1.0, min_runs=50, min_s=seconds, max_s=seconds * 2),
        topk=1,
    )
    result = transport.run(job, timeout_s=seconds * 10 + 120)
    if isinstance(result, Failure):
        raise SystemExit(f"agent failed: {result.error}")
    return statistics.median(result.timed().wall_ms)


# benchmark_app's own entry point, with openvino's usage telemetry blocked as the plugin blocks it
BENCHMARK_APP = (
    "import sys; sys.modules['openvino_telemetry'] = None; sys.argv[0] = 'benchmark_app'; "
    "from openvino.tools.benchmark.main import main; main()"
)


def benchmark_app_median(artifact: Path, seconds: float) -> float:
    settings = ["-d", "CPU", "-nthreads", "1", "-nstreams", "1", "-hint", "none", "-api", "sync"]
    command = [sys.executable, "-c", BENCHMARK_APP, "-m", str(artifact), *settings, "-infer_precision", "f32"]
    command += ["-t", f"{seconds:g}"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = MEDIAN.search(done.stdout + done.stderr)
    if found is None:
        raise SystemExit(f"benchmark_app printed no median:\n{(done.stdout + done.stderr)[-2000:]}")
    return float(found.group(1)) / (1000.0 if found.group(2) == "us" else 1.0)


def compare(name: str, *, pairs: int, seconds: float, cache: ArtifactCache, transport: LocalTransport) -> None:
    artifact, inputs = prepare(name, cache)
    plugin: List[float] = []
    tool: List[float] = []
    for _ in range(pairs):
        plugin.append(plugin_median(transport, artifact, inputs, seconds))
        tool.append(benchmark_app_median(artifact, seconds))
    ratios = [p / t for p, t in zip(plugin, tool)]
    print(
        f"{name} fp32 on openvino (CPU, 1 thread, 1 stream): plugin median {statistics.median(plugin):.3f} ms, "
        f"benchmark_app {statistics.median(tool):.3f} ms; ratio per pair {', '.join(f'{r:.3f}' for r in ratios)}; "
        f"median {statistics.median(ratios):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per process")
    parser.add_argument("--models", nargs="+", default=["efficientnet-lite0", "digits-cnn"])
    parser.add_argument("--cache-dir", default=str(ROOT / ".edgeopt_cache"))
    args = parser.parse_args()
    cache = ArtifactCache(Path(args.cache_dir))
    transport = LocalTransport(lock_dir=Path(tempfile.mkdtemp(prefix="edgeopt-bench-")))
    for name in args.models:
        compare(name, pairs=args.pairs, seconds=args.seconds, cache=cache, transport=transport)


if __name__ == "__main__":
    main()
