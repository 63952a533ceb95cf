"""OpenVINO behind the Runtime protocol: it reads the project's ONNX files directly (no IR step).

The device comes from the platform profile (`runtime_device`: CPU, GPU, NPU or AUTO), CPU by
default; one that this machine lacks falls back to the CPU and the row says so, and the row's
Compute cell names the device that actually ran. On the CPU every property that changes a
timing is set explicitly: the thread count, one stream with the latency hint (OpenVINO's default
throughput mode would spread streams over all cores), and f32 inference precision, because on
CPUs with AMX or AVX512-BF16 OpenVINO's default runs an FP32 model in bf16 and the FP32 row would
not be FP32.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from pytest_edgeopt.runtimes.base import ArtifactError, InputError, RuntimeInfo, RuntimeOptions, TensorSpec
from pytest_edgeopt.runtimes.causes import cause_line

TELEMETRY = "openvino_telemetry"
DEVICES = ("CPU", "GPU", "NPU", "AUTO")
DEFAULT_DEVICE = "CPU"


class OpenVINO:
    """`runtime="openvino"`: `openvino.Core` compiles the .onnx for the profile's device."""

    name = "openvino"

    def __init__(self) -> None:
        self._ov = import_openvino()  # ImportError -> RuntimeMissing with the install hint
        self._core: Any = None
        self._compiled: Any = None
        self._request: Any = None
        self._device = DEFAULT_DEVICE
        self._note: Optional[str] = None
        self._buffers: Dict[str, np.ndarray] = {}  # the request's input buffers, by input name
        self._output_count = 0
        self._names: Tuple[List[str], List[str]] = ([], [])  # the file's own input and output names

    def load(self, artifact: str, *, threads: int, options: RuntimeOptions) -> None:
        self._core = self._ov.Core()
        self._device, self._note = choose_device(options.device, tuple(self._core.available_devices))
        try:
            model = self._core.read_model(artifact)
            self._compiled = self._core.compile_model(model, self._device, compile_config(self._device, threads))
            self._request = self._compiled.create_infer_request()
        except Exception as error:  # RuntimeError: not a model, an op the plugin lacks
            raise ArtifactError(cause_line(error)) from None
        self._output_count = len(self._compiled.outputs)
        self._names = file_names(model, self._compiled)
        ports = zip(self._names[0], self._compiled.inputs)
        static = [(name, p) for name, p in ports if not p.get_partial_shape().is_dynamic]
        self._buffers = {name: self._request.get_tensor(p).data for name, p in static}

    def inputs(self) -> Sequence[TensorSpec]:
        return [_spec(port, name) for name, port in zip(self._names[0], self._loaded().inputs)]

    def outputs(self) -> Sequence[TensorSpec]:
        return [_spec(port, name) for name, port in zip(self._names[1], self._loaded().outputs)]

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        """Inputs are copied into the request's own buffers and outputs out of them (the next call
        overwrites them): `infer(dict)` wraps both in new objects and cost digits-cnn ~0.05 ms a call,
        more than half of its inference."""
        request = self._request
        try:
            for name, value in feeds.items():
                self._feed(name, value)
            request.infer()
            return [np.array(request.get_output_tensor(i).data) for i in range(self._output_count)]
        except Exception as error:
            raise InputError(cause_line(error)) from None

    def _feed(self, name: str, value: np.ndarray) -> None:
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != value.shape or buffer.dtype != value.dtype:
            tensor = self._ov.Tensor(np.array(value, copy=True))  # a dynamic shape, another batch
            self._request.set_tensor(name, tensor)
            self._buffers[name] = tensor.data
        else:
            buffer[...] = value

    def info(self) -> RuntimeInfo:
        return RuntimeInfo(
            name=self.name,
            version=str(self._ov.get_version()).split("-")[0],
            device=self._used_device(),
            warning=self._note,
        )

    def close(self) -> None:
        self._request = self._compiled = self._core = None

    def _used_device(self) -> str:
        """AUTO picks a device itself; the compiled model names the one it chose."""
        if self._compiled is None:
            return self._device
        try:
            used: Sequence[str] = self._compiled.get_property("EXECUTION_DEVICES")
        except Exception:
            return self._device
        return ",".join(str(d) for d in used) or self._device

    def _loaded(self) -> Any:
        if self._compiled is None:
            raise ArtifactError("no model is loaded")
        return self._compiled


def import_openvino() -> Any:
    """`import openvino` without its usage telemetry. Importing openvino sends an event by default
    (no consent file counts as yes) from a forked process: on a measuring machine that is traffic
    and a fork in the middle of a timed session (JAX, loaded by litert-torch, warns that a fork
    deadlocks it). openvino and NNCF fall back to their own stubs when the telemetry module cannot
    be imported, which is what blocking it here does; a process that loaded it already keeps it."""
    sys.modules.setdefault(TELEMETRY, None)  # type: ignore[arg-type]
    return import_module("openvino")


def choose_device(asked: Optional[str], available: Tuple[str, ...]) -> Tuple[str, Optional[str]]:
    """The profile's device when this machine has it (`GPU` matches `GPU.0`), else the CPU with
    the note the row carries: a row must never claim a GPU that did not run it."""
    wanted = (asked or DEFAULT_DEVICE).upper()
    if wanted == "AUTO" or wanted == DEFAULT_DEVICE:
        return wanted, None
    if any(d.upper() == wanted or d.upper().startswith(wanted + ".") for d in available):
        return wanted, None
    found = ", ".join(available) or "none"
    return DEFAULT_DEVICE, f"OpenVINO device {wanted} is not available here (found {found}): ran on the CPU"


def compile_config(device: str, threads: int) -> Dict[str, object]:
    """Latency mode with one stream everywhere; threads and f32 precision where the CPU plugin
    compiles. The CPU plugin's default precision is bf16 on CPUs with avx512_bf16 or AMX (digits
    then differs from ONNX Runtime by 0.064), and AUTO does not pass a top-level hint on to the
    device it picks: its CPU settings go in DEVICE_PROPERTIES."""
    config: Dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
    cpu: Dict[str, object] = {
        "INFERENCE_NUM_THREADS": int(threads),
        "NUM_STREAMS": 1,
        "INFERENCE_PRECISION_HINT": "f32",
    }
    if device == DEFAULT_DEVICE:
        config.update(cpu)
    elif device == "AUTO":
        config["DEVICE_PROPERTIES"] = {DEFAULT_DEVICE: cpu}
    return config


def file_names(model: Any, compiled: Any) -> Tuple[List[str], List[str]]:
    """Ports named as the file names them, in the compiled model's order: compiling fuses an FP16
    file's output Cast into the node before it, whose port then also carries the Cast's input
    name, and `get_any_name()` picked `graph_output_cast_0` for YOLOv8n's `output0`."""

    def named(read: Sequence[Any], built: Sequence[Any]) -> List[str]:
        if len(read) != len(built):
            return [str(p.get_any_name()) for p in built]
        return [_own_name(r, b) for r, b in zip(read, built)]

    return named(model.inputs, compiled.inputs), named(model.outputs, compiled.outputs)


def _own_name(read: Any, built: Any) -> str:
    """The read model's name where the compiled port still carries it, else the compiled one's."""
    name = str(read.get_any_name())
    return name if name in set(built.get_names()) else str(built.get_any_name())


def _spec(port: Any, name: str) -> TensorSpec:
    shape = tuple(None if d.is_dynamic else d.get_length() for d in port.get_partial_shape())
    try:
        dtype = np.dtype(port.get_element_type().to_dtype()).name
    except Exception:
        dtype = "float32"
    return TensorSpec(name=name, shape=shape, dtype=dtype)
