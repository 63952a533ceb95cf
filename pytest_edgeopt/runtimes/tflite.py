"""LiteRT (ai-edge-litert) behind the Runtime protocol; tflite-runtime only as an explicit fallback.

Threads are always passed (the interpreter's default is 1 thread, ORT's is all cores, and the
two must be compared at the same count). Integer I/O is (de)quantized here from the tensors'
own scale and zero point, inside the timed call, as the application on the device must do it.
The per-op profile is not the interpreter's (its Python API has none): LiteRT's C profiler runs a
compiled model of the same file with the same kernels, in litert_profile.py's child process.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import import_module
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from pytest_edgeopt.runtimes.base import (
    ArtifactError,
    InputError,
    NodeKernel,
    ProfilerUnavailable,
    RuntimeInfo,
    RuntimeOptions,
    TensorSpec,
    package_version,
)
from pytest_edgeopt.runtimes.causes import cause_line

LEGACY_NOTE = (
    "tflite-runtime 2.14 is legacy: no XNNPACK for INT8, rejects newer op versions and "
    "returns wrong results for some dynamic-INT8 models; prefer runtime='tflite' (ai-edge-litert)"
)


class LiteRT:
    """`runtime="tflite"`: the maintained LiteRT interpreter with XNNPACK on by default."""

    name = "tflite"
    package = "ai-edge-litert"
    module = "ai_edge_litert.interpreter"
    reference_kernels = False
    resolver: Optional[str] = None  # an OpResolverType by name; None: AUTO, or no delegates for reference kernels

    def __init__(self) -> None:
        self._api = import_module(self.module)  # ImportError -> RuntimeMissing with the install hint
        self._interpreter: Any = None
        self._inputs: List[Dict[str, Any]] = []
        self._outputs: List[Dict[str, Any]] = []
        self._artifact: Optional[str] = None
        self._threads = 1

    def load(self, artifact: str, *, threads: int, options: RuntimeOptions) -> None:
        default = "BUILTIN_WITHOUT_DEFAULT_DELEGATES" if self.reference_kernels else "AUTO"
        resolver = getattr(self._api.OpResolverType, self.resolver or default)
        try:
            self._interpreter = self._api.Interpreter(
                model_path=artifact, num_threads=int(threads), experimental_op_resolver_type=resolver
            )
            self._interpreter.allocate_tensors()
        except Exception as error:  # ValueError (not a flatbuffer), RuntimeError (op missing, prepare failed)
            raise ArtifactError(cause_line(error)) from None
        self._inputs = list(self._interpreter.get_input_details())
        self._outputs = list(self._interpreter.get_output_details())
        self._artifact, self._threads = artifact, int(threads)

    def inputs(self) -> Sequence[TensorSpec]:
        """The file's own layout (NCHW or NHWC is never assumed); integer inputs take float data,
        which `run` quantizes, so eval data is the same for every precision."""
        return [_spec(detail, quantized_as_float=True) for detail in self._inputs]

    def outputs(self) -> Sequence[TensorSpec]:
        return [_spec(detail, quantized_as_float=True) for detail in self._outputs]

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        it = self._interpreter
        try:
            if any(tuple(feeds[d["name"]].shape) != tuple(int(x) for x in d["shape"]) for d in self._inputs):
                self._resize(feeds)
            for detail in self._inputs:
                it.set_tensor(detail["index"], _quantize(feeds[detail["name"]], detail))
            it.invoke()
            return [_dequantize(it.get_tensor(detail["index"]), detail) for detail in self._outputs]
        except KeyError as missing:
            raise InputError(f"no data for input {missing}") from None
        except Exception as error:
            raise InputError(cause_line(error)) from None

    def _resize(self, feeds: Mapping[str, np.ndarray]) -> None:
        it = self._interpreter
        for detail in self._inputs:
            it.resize_tensor_input(detail["index"], list(feeds[detail["name"]].shape))
        it.allocate_tensors()
        self._inputs = list(it.get_input_details())
        self._outputs = list(it.get_output_details())

    def info(self) -> RuntimeInfo:
        first_in, first_out = (self._inputs or [{}])[0], (self._outputs or [{}])[0]
        return RuntimeInfo(
            name=self.name,
            version=package_version(self.package),
            xnnpack=self._delegated(),
            reference_kernels=self.reference_kernels,
            io=_io_label(first_in, first_out) if first_in and first_out else None,
            output_step=_step(first_out) if first_out else None,
        )

    def close(self) -> None:
        self._interpreter = None

    def profile_nodes(self, feeds: Sequence[Mapping[str, np.ndarray]], *, runs: int) -> List[NodeKernel]:
        """LiteRT's C profiler on a compiled model of the same file, in a child process
        (runtimes/litert_profile.py): one warm-up left out, then `runs` runs, with the kernels
        this row timed (XNNPACK, or TFLite's builtin or reference ones); integer inputs quantized here."""
        from pytest_edgeopt.runtimes import litert_profile

        if self._artifact is None:
            raise ProfilerUnavailable("no model is loaded")
        try:
            quantized = [{d["name"]: _quantize(batch[d["name"]], d) for d in self._inputs} for batch in feeds]
        except KeyError as missing:
            raise ProfilerUnavailable(f"no data for input {missing}") from None
        return litert_profile.profile_nodes(
            model=self._artifact,
            feeds=quantized,
            threads=self._threads,
            runs=runs,
            version=package_version(self.package),
            kernel_mode=self._kernel_mode(),
        )

    def _kernel_mode(self) -> str:
        """LiteRT's CPU kernel mode for the interpreter's resolver."""
        if self.resolver == "BUILTIN_REF":
            return "reference"
        return "builtin" if self.reference_kernels else "delegate"

    def _delegated(self) -> Optional[bool]:
        """Whether XNNPACK took (part of) the graph; the private ops list is the only per-model
        signal (the C++ log line is printed once per process)."""
        try:
            ops: List[Dict[str, Any]] = self._interpreter._get_ops_details()
        except Exception:
            return None
        return any(op.get("op_name") == "DELEGATE" for op in ops)


class LiteRTReference(LiteRT):
    """`runtime="tflite-reference"`: TFLite's builtin kernels without XNNPACK, the numerical
    reference a delegate is checked against (3-4x slower on CPU)."""

    name = "tflite-reference"
    reference_kernels = True


class LegacyTfliteRuntime(LiteRT):
    """`runtime="tflite-runtime"`: old Raspberry Pi OS images that cannot install ai-edge-litert."""

    name = "tflite-runtime"
    package = "tflite-runtime"
    module = "tflite_runtime.interpreter"

    def load(self, artifact: str, *, threads: int, options: RuntimeOptions) -> None:
        if int(np.__version__.split(".")[0]) >= 2:  # it imports fine, then fails inside Interpreter()
            raise ArtifactError(
                f"tflite-runtime needs numpy<2 (numpy {np.__version__} is installed): "
                "pip install \"numpy<2\", or use runtime='tflite' (ai-edge-litert)"
            )
        super().load(artifact, threads=threads, options=options)

    def info(self) -> RuntimeInfo:
        return replace(super().info(), warning=LEGACY_NOTE)

    def profile_nodes(self, feeds: Sequence[Mapping[str, np.ndarray]], *, runs: int) -> List[NodeKernel]:
        """tflite-runtime has no libLiteRt.so: an ai-edge-litert installed next to it would be
        profiling another runtime than the one timed."""
        raise ProfilerUnavailable(
            "tflite-runtime ships no C profiler (libLiteRt.so): no per-op profile; runtime='tflite' has one"
        )


def _spec(detail: Dict[str, Any], *, quantized_as_float: bool) -> TensorSpec:
    signature = detail.get("shape_signature", detail["shape"])
    shape = tuple(int(d) if int(d) >= 0 else None for d in signature)
    dtype = "float32" if quantized_as_float and _quantized(detail) else np.dtype(detail["dtype"]).name
    return TensorSpec(name=str(detail["name"]), shape=shape, dtype=dtype)


def _quantized(detail: Dict[str, Any]) -> bool:
    return np.dtype(detail["dtype"]).kind in "iu" and _step(detail) is not None


def _step(detail: Dict[str, Any]) -> Optional[float]:
    scale, _ = detail.get("quantization", (0.0, 0))
    return float(scale) if scale else None


def _quantize(batch: np.ndarray, detail: Dict[str, Any]) -> np.ndarray:
    if not _quantized(detail):
        return np.ascontiguousarray(batch, dtype=detail["dtype"])
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    q = np.clip(np.round(batch / scale + zero_point), info.min, info.max)
    return np.asarray(q.astype(detail["dtype"]))


def _dequantize(output: np.ndarray, detail: Dict[str, Any]) -> np.ndarray:
    if not _quantized(detail):
        return output  # get_tensor already returns a copy
    scale, zero_point = detail["quantization"]
    return np.asarray(((output.astype(np.float32) - zero_point) * scale).astype(np.float32))


def _io_label(inp: Dict[str, Any], out: Dict[str, Any]) -> str:
    return f"{np.dtype(inp['dtype']).name} in, {np.dtype(out['dtype']).name} out"
