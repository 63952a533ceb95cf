"""ExecuTorch behind the Runtime protocol: a .pte with the XNNPACK delegate, run by the C++ runtime.

The C extension is imported directly: `executorch.runtime` and the `portable_lib` wrapper first
import `executorch.exir` (the export stack: sympy, ruamel.yaml, the dialect tables), which cost
~10 s per agent job (a digits job took 14.7 s with it, 4.7 s without). The extension takes and
returns torch tensors, so the device needs torch beside executorch; both are imported by name here
(the agent's import contract forbids importing torch statically: no other runtime needs it).
XNNPACK runs on ExecuTorch's own thread pool, which is sized to the job's threads before loading.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, List, Mapping, Optional, Sequence

import numpy as np

from pytest_edgeopt.runtimes.base import (
    ArtifactError,
    InputError,
    RuntimeInfo,
    RuntimeOptions,
    TensorSpec,
    package_version,
)
from pytest_edgeopt.runtimes.causes import cause_line

EXTENSION = "executorch.extension.pybindings._C"
XNNPACK_BACKEND = b"XnnpackBackend"  # the delegate's id, stored in a .pte that calls it
METHOD = "forward"
# ExecuTorch's ScalarType codes (MethodMeta's TensorInfo.dtype() is the number) -> numpy
_DTYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64",
           11: "bool"}  # fmt: skip


class ExecuTorch:
    """`runtime="executorch"` (the edgeopt-executorch plugin registers it)."""

    name = "executorch"

    def __init__(self) -> None:
        self._torch = import_module("torch")  # ImportError -> RuntimeMissing naming torch
        self._api = import_module(EXTENSION)  # ImportError -> RuntimeMissing with the install hint
        self._module: Any = None
        self._inputs: List[TensorSpec] = []
        self._outputs: List[TensorSpec] = []
        self._calls_xnnpack = False

    def load(self, artifact: str, *, threads: int, options: RuntimeOptions) -> None:
        self._api._unsafe_reset_threadpool(int(threads))
        try:
            self._module = self._api._load_for_executorch(artifact)
            meta = self._module.method_meta(METHOD)
        except Exception as error:  # RuntimeError: not a program, no forward method, a missing kernel
            raise ArtifactError(cause_line(error)) from None
        with open(artifact, "rb") as handle:  # a program lowered without the delegate names no backend
            self._calls_xnnpack = XNNPACK_BACKEND in handle.read()
        self._inputs = [_spec(f"input_{i}", meta.input_tensor_meta(i)) for i in range(meta.num_inputs())]
        self._outputs = [_spec(f"output_{i}", meta.output_tensor_meta(i)) for i in range(meta.num_outputs())]

    def inputs(self) -> Sequence[TensorSpec]:
        """A .pte has no input names: they are numbered, and a single-input model needs none."""
        return self._inputs

    def outputs(self) -> Sequence[TensorSpec]:
        return self._outputs

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        if self._module is None:
            raise ArtifactError("no model is loaded")
        try:
            tensors = [self._torch.from_numpy(np.ascontiguousarray(feeds[spec.name])) for spec in self._inputs]
            return [np.array(out.numpy()) for out in self._module.forward(tensors)]
        except KeyError as missing:
            raise InputError(f"no data for input {missing}") from None
        except Exception as error:  # RuntimeError: the shapes do not fit the memory plan
            raise InputError(cause_line(error)) from None

    def info(self) -> RuntimeInfo:
        return RuntimeInfo(name=self.name, version=package_version("executorch"), xnnpack=self._delegated())

    def close(self) -> None:
        self._module = None

    def _delegated(self) -> Optional[bool]:
        """Whether the program calls the XNNPACK delegate (the builder falls back to the portable
        kernels where XNNPACK cannot lower a graph) and this build has it registered."""
        if not self._calls_xnnpack:
            return False
        try:
            return XNNPACK_BACKEND.decode() in list(self._api._get_registered_backend_names())
        except Exception:
            return None


def _spec(name: str, info: Any) -> TensorSpec:
    return TensorSpec(name=name, shape=tuple(int(d) for d in info.sizes()), dtype=_dtype(info))


def _dtype(info: Any) -> str:
    code = info.dtype()
    return _DTYPES.get(int(code) if isinstance(code, int) else -1, "float32")
