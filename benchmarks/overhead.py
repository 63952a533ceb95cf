"""How much does the plugin's measurement add on top of a bare inference loop?

Runs the agent (the plugin's own job path: child process, cycling eval batches, wall + CPU time
per inference) and a bare loop (one InferenceSession or LiteRT Interpreter, same file, same
threads, perf_counter around the call) in separate processes, interleaved A/B several times so
machine drift hits both alike. Prints the ratio of medians on a large model (goal <= 1.02:
ResNet-50 on ONNX Runtime, EfficientNet-Lite0 on LiteRT) and the per-call overhead on digits-cnn
in microseconds.

    python benchmarks/overhead.py [--pairs 5] [--runs 200] [--runtime onnxruntime|tflite]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_edgeopt.agent.contract import Job, RuntimeRef, SamplingPlan, Success  # noqa: E402
from pytest_edgeopt.models.zoo import load_zoo_model  # noqa: E402
from pytest_edgeopt.optimize.artifacts import build_artifact, eval_inputs_file  # noqa: E402
from pytest_edgeopt.optimize.cache import ArtifactCache  # noqa: E402
from pytest_edgeopt.optimize.precisions import get_precision  # noqa: E402
from pytest_edgeopt.platforms.transport import LocalTransport  # noqa: E402
from pytest_edgeopt.runtimes import RUNTIMES  # noqa: E402

BARE_ORT = r"""
import json, sys, time
import numpy as np, onnxruntime as ort
artifact, inputs, runs, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(artifact, sess_options=options, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
data = np.load(inputs)["inputs"].astype(np.float32)
batches = [data[i:i + 1] for i in range(len(data))]
for i in range(warmup):
    session.run(None, {name: batches[i % len(batches)]})
samples = []
for i in range(runs):
    feed = {name: batches[i % len(batches)]}
    start = time.perf_counter_ns()
    session.run(None, feed)
    samples.append((time.perf_counter_ns() - start) / 1e6)
print(json.dumps(samples))
"""
BARE_LITERT = r"""
import json, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter
artifact, inputs, runs, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
it = Interpreter(model_path=artifact, num_threads=1)
it.allocate_tensors()
index, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
data = np.load(inputs)["inputs"].astype(np.float32)
batches = [np.ascontiguousarray(data[i:i + 1]) for i in range(len(data))]
def run(x):
    it.set_tensor(index, x)
    it.invoke()
    return it.get_tensor(out)
for i in range(warmup):
    run(batches[i % len(batches)])
samples = []
for i in range(runs):
    x = batches[i % len(batches)]
    start = time.perf_counter_ns()
    run(x)
    samples.append((time.perf_counter_ns() - start) / 1e6)
print(json.dumps(samples))
"""
BARE_LOOPS = {"onnxruntime": BARE_ORT, "tflite": BARE_LITERT}
LARGE_MODEL = {"onnxruntime": "resnet50", "tflite": "efficientnet-lite0"}
FORMATS = {"onnxruntime": "onnx", "tflite": "tflite"}


def prepare(model_name: str, cache: ArtifactCache, runtime: str) -> Tuple[Path, Path]:
    model = load_zoo_model(model_name)
    artifact = build_artifact(
        model, precision=get_precision("fp32"), batch=1, arch="x86_64", cache=cache, fmt=FORMATS[runtime]
    )
    return artifact.path, eval_inputs_file(model, cache)


def plugin_median(
    transport: LocalTransport, artifact: Path, inputs: Path, runs: int, warmup: int, runtime: str
) -> float:
    plan = SamplingPlan(warmup_runs=warmup, warmup_s=0.0, min_runs=runs, min_s=0.0, max_s=600.0)
    spec = RUNTIMES[runtime]
    job = Job(
        artifact=str(artifact),
        inputs=str(inputs),
        runtime=RuntimeRef(spec.name, spec.module, spec.cls, spec.package, spec.extra),
        batch=1,
        threads=1,
        plan=plan,
        topk=1,
    )
    result = transport.run(job, timeout_s=900)
    if not isinstance(result, Success) or result.timing is None:
        raise SystemExit(f"agent failed: {getattr(result, 'error', 'no timing')}")
    return statistics.median(result.timing.wall_ms)


def bare_median(artifact: Path, inputs: Path, runs: int, warmup: int, runtime: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", BARE_LOOPS[runtime], str(artifact), str(inputs), str(runs), str(warmup)],
        capture_output=True,
        text=True,
        check=True,
    )
    return statistics.median(json.loads(done.stdout))


def interleaved(
    model_name: str, *, pairs: int, runs: int, cache: ArtifactCache, transport: LocalTransport, runtime: str
) -> Dict[str, List[float]]:
    artifact, inputs = prepare(model_name, cache, runtime)
    warmup = max(5, runs // 10)
    out: Dict[str, List[float]] = {"plugin": [], "bare": []}
    for _ in range(pairs):
        out["plugin"].append(plugin_median(transport, artifact, inputs, runs, warmup, runtime))
        out["bare"].append(bare_median(artifact, inputs, runs, warmup, runtime))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200, help="timed runs per process (ResNet-50 uses a fifth)")
    parser.add_argument("--cache-dir", default=str(ROOT / ".edgeopt_cache"))
    parser.add_argument("--runtime", choices=sorted(BARE_LOOPS), default="onnxruntime")
    args = parser.parse_args()
    cache = ArtifactCache(Path(args.cache_dir))
    transport = LocalTransport(lock_dir=Path(tempfile.mkdtemp(prefix="edgeopt-bench-")))
    common = {"pairs": args.pairs, "cache": cache, "transport": transport, "runtime": args.runtime}
    name = LARGE_MODEL[args.runtime]
    large = interleaved(name, runs=max(20, args.runs // 5), **common)
    digits = interleaved("digits-cnn", runs=args.runs * 10, **common)
    ratios = [p / b for p, b in zip(large["plugin"], large["bare"])]
    overhead_us = [(p - b) * 1000 for p, b in zip(digits["plugin"], digits["bare"])]
    print(
        f"{name} fp32 on {args.runtime}, 1 thread: plugin median {statistics.median(large['plugin']):.2f} ms, "
        f"bare loop {statistics.median(large['bare']):.2f} ms"
    )
    print(
        f"{name} ratio plugin/bare per pair: {', '.join(f'{r:.3f}' for r in ratios)}; "
        f"median {statistics.median(ratios):.3f} (goal <= 1.02)"
    )
    print(
        f"digits-cnn fp32 on {args.runtime}: plugin median {statistics.median(digits['plugin']) * 1000:.1f} us, "
        f"bare {statistics.median(digits['bare']) * 1000:.1f} us; per-call overhead per pair: "
        f"{', '.join(f'{o:+.1f}' for o in overhead_us)} us; median {statistics.median(overhead_us):+.1f} us"
    )


if __name__ == "__main__":
    main()
