"""The profiled pass: where an inference spends its time, by op type and by node.

Made after the timed samples, never inside them (ONNX Runtime's profiler added +0.5% on ResNet-50
but +22% on a QDQ MobileNetV2), on the runtime's own profiler: ONNX Runtime's profiling JSON,
LiteRT's C profiler summary (by ctypes, in a child process), and for a runtime without one a
profile that says why (`skipped`). Stdlib only: this runs on devices.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Mapping, Sequence

from pytest_edgeopt.agent.contract import NodeTime, OpProfile, OpTime
from pytest_edgeopt.runtimes.base import NodeKernel, ProfilerUnavailable, Runtime

MAX_NODES = 200  # the slowest nodes kept: a ResNet-50 has 58 after fusion, a QDQ MobileNetV2 196
SOURCES = {
    "onnxruntime": "onnxruntime profiling JSON (kernel time per node, optimized graph)",
    "tflite": "LiteRT C profiler summary (kernel time per XNNPACK node, whole microseconds)",
    "tflite-reference": "LiteRT C profiler summary (kernel time per builtin-kernel node, whole microseconds)",
}


def profile(runtime: Runtime, feeds: Sequence[Mapping[str, object]], *, runs: int) -> OpProfile:
    """The runtime's per-op profile over `runs` inferences, per inference; `skipped` when it has none."""
    profiler = getattr(runtime, "profile_nodes", None)
    if profiler is None:
        return OpProfile(skipped=f"{runtime.name} has no per-op profiler in pytest-edgeopt")
    try:
        kernels: Sequence[NodeKernel] = profiler(feeds, runs=runs)
    except ProfilerUnavailable as why:
        return OpProfile(skipped=str(why))
    return summarize(kernels, runs=runs, source=SOURCES.get(runtime.name, f"{runtime.name} profiler"))


def summarize(kernels: Sequence[NodeKernel], *, runs: int, source: str) -> OpProfile:
    """Per-inference milliseconds by op type (with its node count) and by node, slowest first."""
    per_run = 1e3 * max(runs, 1)
    by_type: Dict[str, List[float]] = defaultdict(list)
    for kernel in kernels:
        by_type[kernel.op_type].append(kernel.total_us / per_run)
    ops = sorted((OpTime(op, round(sum(ms), 6), len(ms)) for op, ms in by_type.items()), key=lambda o: -o.ms)
    nodes = sorted(
        (NodeTime(k.name, k.op_type, k.provider, round(k.total_us / per_run, 6)) for k in kernels),
        key=lambda n: -n.ms,
    )
    return OpProfile(runs=runs, ops=tuple(ops), nodes=tuple(nodes[:MAX_NODES]), source=source)
