"""ONNX Runtime behind the Runtime protocol, with threads set explicitly (never ORT's default)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import onnxruntime as ort

from pytest_edgeopt.runtimes.base import ArtifactError, InputError

_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self) -> None:
        self._session: Optional[ort.InferenceSession] = None
        self._providers: List[str] = []

    def load(self, artifact: str, *, threads: int, options: Dict[str, Any]) -> None:
        wanted = options.get("providers") or ["CPUExecutionProvider"]
        self._providers = [p for p in wanted if p in ort.get_available_providers()] or [
            "CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(
                artifact, sess_options=_session_options(threads), providers=self._providers)
        except Exception as error:
            raise ArtifactError(_first_line(error)) from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ArtifactError(f"the model has {len(inputs)} inputs; only single-input models are supported")

    def input_spec(self) -> Tuple[Tuple[Optional[int], ...], np.dtype]:
        meta = self._session.get_inputs()[0]
        shape = tuple(d if isinstance(d, int) else None for d in meta.shape)
        return shape, np.dtype(_DTYPES.get(meta.type, np.float32))

    def run(self, batch: np.ndarray) -> np.ndarray:
        name = self._session.get_inputs()[0].name
        try:
            return self._session.run(None, {name: batch})[0]
        except Exception as error:
            raise InputError(_first_line(error)) from None

    def info(self) -> Dict[str, Any]:
        return {"name": self.name, "version": ort.__version__,
                "providers": list(self._session.get_providers()) if self._session else self._providers}

    def close(self) -> None:
        self._session = None


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
