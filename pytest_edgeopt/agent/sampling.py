"""The latency loop: warm-up by count and time, then samples until a minimum count and time.

Each inference is timed twice, wall clock and process CPU time: with one thread the CPU time held
a 1-2% CV while other work on the same cores moved wall time by 9-33% (notes/onnxruntime).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from itertools import cycle
from typing import Any, Callable, List, Optional, Sequence, TypeVar

import numpy as np

from pytest_edgeopt.agent import paired
from pytest_edgeopt.agent.contract import Pairing, PairStop, SamplingPlan, TimingSignal

Batch = TypeVar("Batch")  # one batch of feeds, whatever the runtime takes


REFERENCE_INTERVAL_S = 0.05  # one reference-workload timing at most this often


@dataclass
class Samples:
    wall_ms: List[float]
    cpu_ms: List[float]
    capped: bool  # stopped by max_s before min_runs/min_s were both met
    reference_wall_ms: List[float] = field(default_factory=list)
    reference_cpu_ms: List[float] = field(default_factory=list)


def reference_workload() -> Callable[[], Any]:
    """A fixed float32 matmul timed between inferences: the machine's speed, measured in-run.

    Host drift that nothing inside the VM shows (MobileNetV2 7-12% slower an hour later on a quiet
    machine) slows this too, so latency divided by it compares across runs.
    """
    rng = np.random.default_rng(0)
    left, right = (rng.standard_normal((128, 128)).astype(np.float32) for _ in range(2))

    def run() -> Any:
        out = left
        for _ in range(2):
            out = np.tanh(out @ right)
        return out

    return run


def warm_up(run: Callable[[Batch], object], batches: Sequence[Batch], plan: SamplingPlan) -> int:
    start, count = time.perf_counter(), 0
    for batch in cycle(batches):
        elapsed = time.perf_counter() - start
        if (count >= plan.warmup_runs and elapsed >= plan.warmup_s) or elapsed >= plan.max_s:
            return count
        run(batch)
        count += 1
    return count


def sample(
    run: Callable[[Batch], object],
    batches: Sequence[Batch],
    plan: SamplingPlan,
    reference: Optional[Callable[[], object]] = None,
) -> Samples:
    """Cycle through the eval batches (reusing one input flatters caches) until the plan is met."""
    out = Samples([], [], capped=False)
    start = last_reference = time.perf_counter()
    for batch in cycle(batches):
        elapsed = time.perf_counter() - start
        if len(out.wall_ms) >= plan.min_runs and elapsed >= plan.min_s:
            return out
        if out.wall_ms and elapsed >= plan.max_s:
            out.capped = True
            return out
        _timed(partial(run, batch), out.wall_ms, out.cpu_ms)
        if reference is not None and (
            time.perf_counter() - last_reference >= REFERENCE_INTERVAL_S or not out.reference_wall_ms
        ):
            _timed(reference, out.reference_wall_ms, out.reference_cpu_ms)
            last_reference = time.perf_counter()
    return out


def _timed(call: Callable[[], Any], wall: List[float], cpu: List[float]) -> None:
    cpu0, wall0 = time.process_time_ns(), time.perf_counter_ns()
    call()
    wall1, cpu1 = time.perf_counter_ns(), time.process_time_ns()
    wall.append((wall1 - wall0) / 1e6)
    cpu.append((cpu1 - cpu0) / 1e6)


@dataclass
class PairedSamples:
    a: Samples
    b: Samples
    ratios: List[float]
    looks: int
    stopped: PairStop  # REGRESSED / PASS: a look decided; CAP: time or the last look ran out
    seconds: float


def paired_sample(
    run_a: Callable[[Batch], object],
    run_b: Callable[[Batch], object],
    batches: Sequence[Batch],
    pairing: Pairing,
) -> PairedSamples:
    """A B B A quads of `block` inferences each, the same inputs on both sides, until a scheduled
    look decides or the time cap (agent/paired.py says why that keeps the error rate)."""
    out = PairedSamples(
        a=Samples([], [], capped=False),
        b=Samples([], [], capped=False),
        ratios=[],
        looks=0,
        stopped=PairStop.CAP,
        seconds=0.0,
    )
    start, inputs = time.perf_counter(), cycle(batches)
    while len(out.ratios) < paired.MAX_QUADS:
        quad = [next(inputs) for _ in range(pairing.block)]
        sums = [
            _block(run, quad, side, pairing.signal)
            for run, side in ((run_a, out.a), (run_b, out.b), (run_b, out.b), (run_a, out.a))
        ]
        out.ratios.append(paired.quad_ratio(*sums))
        if paired.next_look(len(out.ratios), out.looks):
            out.looks += 1
            verdict = paired.decide(
                out.ratios, limit=pairing.limit, confidence=pairing.confidence, looks=out.looks
            ).verdict
            if verdict != paired.INCONCLUSIVE:
                out.stopped = PairStop(verdict.value)
                break
        if time.perf_counter() - start >= pairing.max_s and out.looks:
            break
    out.seconds = time.perf_counter() - start
    return out


def _block(run: Callable[[Batch], object], inputs: Sequence[Batch], side: Samples, signal: TimingSignal) -> float:
    """Time each inference (the table's samples) and return the block's sum on the signal."""
    wall0, cpu0 = len(side.wall_ms), len(side.cpu_ms)
    for batch in inputs:
        _timed(partial(run, batch), side.wall_ms, side.cpu_ms)
    chosen = side.cpu_ms[cpu0:] if signal == TimingSignal.CPU else side.wall_ms[wall0:]
    return max(sum(chosen), 1e-9)  # a 0 ns CPU block (a coarse clock) must not divide by zero
