"""The latency loop: warm-up by count and time, then samples until a minimum count and time.

Each inference is timed twice, wall clock and process CPU time: with one thread the CPU time held
a 1-2% CV while other work on the same cores moved wall time by 9-33% (notes/onnxruntime).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import cycle
from typing import Any, Callable, Dict, List, Sequence

import numpy as np


@dataclass(frozen=True)
class SamplingPlan:
    warmup_runs: int = 5
    warmup_s: float = 0.2
    min_runs: int = 30
    min_s: float = 1.0
    max_s: float = 10.0

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "SamplingPlan":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Samples:
    wall_ms: List[float]
    cpu_ms: List[float]
    capped: bool  # stopped by max_s before min_runs/min_s were both met


def warm_up(run: Callable[[np.ndarray], Any], batches: Sequence[np.ndarray], plan: SamplingPlan) -> int:
    start, count = time.perf_counter(), 0
    for batch in cycle(batches):
        elapsed = time.perf_counter() - start
        if (count >= plan.warmup_runs and elapsed >= plan.warmup_s) or elapsed >= plan.max_s:
            return count
        run(batch)
        count += 1
    return count


def sample(run: Callable[[np.ndarray], Any], batches: Sequence[np.ndarray], plan: SamplingPlan) -> Samples:
    """Cycle through the eval batches (reusing one input flatters caches) until the plan is met."""
    wall: List[float] = []
    cpu: List[float] = []
    start = time.perf_counter()
    for batch in cycle(batches):
        elapsed = time.perf_counter() - start
        if len(wall) >= plan.min_runs and elapsed >= plan.min_s:
            return Samples(wall, cpu, capped=False)
        if wall and elapsed >= plan.max_s:
            return Samples(wall, cpu, capped=True)
        cpu0, wall0 = time.process_time_ns(), time.perf_counter_ns()
        run(batch)
        wall1, cpu1 = time.perf_counter_ns(), time.process_time_ns()
        wall.append((wall1 - wall0) / 1e6)
        cpu.append((cpu1 - cpu0) / 1e6)
    return Samples(wall, cpu, capped=False)
