"""ONNX Runtime behind the Runtime protocol, with threads set explicitly (never ORT's default)."""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import onnxruntime as ort

from pytest_edgeopt.runtimes.base import ArtifactError, InputError, RuntimeInfo, RuntimeOptions, TensorSpec

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

    def load(self, artifact: str, *, threads: int, options: RuntimeOptions) -> None:
        wanted = list(options.providers) or ["CPUExecutionProvider"]
        self._providers = [p for p in wanted if p in ort.get_available_providers()] or ["CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(
                artifact, sess_options=_session_options(threads), providers=self._providers
            )
        except Exception as error:
            raise ArtifactError(_first_line(error)) from None

    def inputs(self) -> Sequence[TensorSpec]:
        return [_spec(meta) for meta in self._loaded().get_inputs()]

    def outputs(self) -> Sequence[TensorSpec]:
        return [_spec(meta) for meta in self._loaded().get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        try:
            return list(self._loaded().run(None, dict(feeds)))
        except Exception as error:
            raise InputError(_first_line(error)) from None

    def info(self) -> RuntimeInfo:
        used = self._session.get_providers() if self._session else self._providers
        return RuntimeInfo(name=self.name, version=ort.__version__, providers=tuple(used))

    def close(self) -> None:
        self._session = None

    def _loaded(self) -> ort.InferenceSession:
        if self._session is None:
            raise ArtifactError("no model is loaded")
        return self._session


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


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] if text else type(error).__name__
