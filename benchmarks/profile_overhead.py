"""What the per-op profiled pass costs: the same inferences with the runtime's profiler off and on.

    python benchmarks/profile_overhead.py MODEL.onnx|MODEL.tflite [--runs 30] [--threads 1]

Prints the median per-inference time of the plain session and of the profiled pass (kernel events
summed per run), and the whole pass's wall time including its own session: the pass runs after the
timed samples, never inside them, so this is time added to a regressed case, not a bias in its numbers.
A .tflite runs on LiteRT (XNNPACK), whose pass is a child process driving the C profiler: its wall
time includes that process's start and the model's compilation.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from pytest_edgeopt.agent.profiling import SOURCES, summarize
from pytest_edgeopt.runtimes.base import RuntimeOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    runtime = _runtime(args.model)
    runtime.load(args.model, threads=args.threads, options=RuntimeOptions())
    spec = runtime.inputs()[0]
    shape = tuple(d or 1 for d in spec.shape)
    feeds = [{spec.name: np.random.default_rng(0).standard_normal(shape).astype(spec.dtype)}]
    runtime.run(feeds[0])
    plain = []
    for _ in range(args.runs):
        start = time.perf_counter()
        runtime.run(feeds[0])
        plain.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()
    profile = summarize(runtime.profile_nodes(feeds, runs=args.runs), runs=args.runs, source=SOURCES[runtime.name])
    whole = time.perf_counter() - start
    median = float(np.median(plain))
    print(f"{args.model}: plain {median:.3f} ms/inference (median of {args.runs})")
    print(f"profiled pass: kernel time {profile.total_ms:.3f} ms/inference over {len(profile.nodes)} nodes")
    print(
        f"profiled pass wall time, session included: {whole:.2f} s for {args.runs} + 1 runs "
        f"({whole * 1e3 / (args.runs + 1) / median:.2f}x the plain per-inference time)"
    )


def _runtime(model: str) -> Any:
    if model.endswith(".tflite"):
        from pytest_edgeopt.runtimes.tflite import LiteRT

        return LiteRT()
    from pytest_edgeopt.runtimes.onnxruntime import OnnxRuntime

    return OnnxRuntime()


if __name__ == "__main__":
    main()
