"""ONNX Runtime behind the Runtime protocol, with threads set explicitly (never ORT's default)."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import onnxruntime as ort

from pytest_edgeopt.runtimes.base import (
    ArtifactError,
    InputError,
    NodeKernel,
    ProfilerUnavailable,
    RuntimeInfo,
    RuntimeOptions,
    TensorSpec,
)
from pytest_edgeopt.runtimes.causes import cause_line

_DTYPES: Dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self) -> None:
        self._session: Optional[ort.InferenceSession] = None
        self._providers: List[str] = []
        self._artifact, self._threads = "", 1
        self._disabled: List[str] = []

    def load(self, artifact: str, *, threads: int, options: RuntimeOptions) -> None:
        self._artifact, self._threads = artifact, threads
        wanted = list(options.providers) or ["CPUExecutionProvider"]
        self._providers = [p for p in wanted if p in ort.get_available_providers()] or ["CPUExecutionProvider"]
        # a layer kept float stays float: ORT would otherwise quantize its weights when loading
        self._disabled = ["WeightBiasQuantization"] if options.keep_float_weights else []
        try:
            self._session = ort.InferenceSession(
                artifact,
                sess_options=_session_options(threads),
                providers=self._providers,
                disabled_optimizers=self._disabled,
            )
        except Exception as error:
            raise ArtifactError(cause_line(error)) from None

    def inputs(self) -> Sequence[TensorSpec]:
        return [_spec(meta) for meta in self._loaded().get_inputs()]

    def outputs(self) -> Sequence[TensorSpec]:
        return [_spec(meta) for meta in self._loaded().get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        try:
            return list(self._loaded().run(None, dict(feeds)))
        except Exception as error:
            raise InputError(cause_line(error)) from None

    def info(self) -> RuntimeInfo:
        used = self._session.get_providers() if self._session else self._providers
        return RuntimeInfo(name=self.name, version=ort.__version__, providers=tuple(used))

    def close(self) -> None:
        self._session = None

    def profile_nodes(self, feeds: Sequence[Mapping[str, np.ndarray]], *, runs: int) -> List[NodeKernel]:
        """A second session with ONNX Runtime's profiler on: one warm-up run (left out), then
        `runs` runs; the chrome-trace JSON's Node kernel events summed per node, with each node's
        execution provider. Node names are those of the optimized graph (fused, NCHWc)."""
        options = _session_options(self._threads)
        options.enable_profiling = True
        with tempfile.TemporaryDirectory(prefix="edgeopt-profile-") as tmp:
            options.profile_file_prefix = os.path.join(tmp, "ort")
            try:
                session = ort.InferenceSession(
                    self._artifact, sess_options=options, providers=self._providers, disabled_optimizers=self._disabled
                )
                session.run(None, dict(feeds[0]))  # the warm-up: left out of the sums
                for index in range(runs):
                    session.run(None, dict(feeds[index % len(feeds)]))
                with open(session.end_profiling(), encoding="utf-8") as handle:
                    trace = json.load(handle)
            except Exception as error:
                raise ProfilerUnavailable(f"onnxruntime profiling failed: {cause_line(error)}") from None
        return _node_kernels(trace)

    def _loaded(self) -> ort.InferenceSession:
        if self._session is None:
            raise ArtifactError("no model is loaded")
        return self._session


def _node_kernels(trace: Sequence[Mapping[str, object]]) -> List[NodeKernel]:
    """Kernel time per node over the trace's runs after the first (the warm-up)."""
    runs = [e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"]
    warm_up_end = _number(runs[0].get("ts")) + _number(runs[0].get("dur")) if runs else 0.0
    totals: Dict[str, NodeKernel] = {}
    for event in trace:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith(KERNEL) or _number(event.get("ts")) < warm_up_end:
            continue
        args = event.get("args")
        facts = args if isinstance(args, dict) else {}
        node = name[: -len(KERNEL)]
        before = totals[node].total_us if node in totals else 0.0
        totals[node] = NodeKernel(
            name=node,
            op_type=str(facts.get("op_name", "?")),
            provider=str(facts.get("provider", "?")),
            total_us=before + _number(event.get("dur")),
        )
    return list(totals.values())


KERNEL = "_kernel_time"


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def _spec(meta: ort.NodeArg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in (meta.shape or ()))
    return TensorSpec(name=meta.name, shape=shape, dtype=_DTYPES.get(meta.type, "float32"))


def _session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options
