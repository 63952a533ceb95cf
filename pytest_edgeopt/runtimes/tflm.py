"""TensorFlow Lite Micro (the `tflite-micro` wheel) behind the Runtime protocol: the MCU platform's
runtime. It runs the INT8 model with TFLM's reference kernels on this machine, which compute what
a board's TFLM build computes with them, and reports the tensor arena TFLM allocated.

Where tflite-micro has no wheel (it is an x86-64 Linux nightly), LiteRT's BUILTIN_REF kernels
stand in: the same integer arithmetic (equal outputs on every op checked but FULLY_CONNECTED,
within 2 LSB there), but no arena, which the host then estimates; the row says which ran.

TFLM says why it failed only on the C-level stderr (fd 2), so calls are made with fd 2 sent to
a temporary file, never a pipe (a failing large model prints more than a pipe holds).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import struct
import sys
import tempfile
from dataclasses import replace
from importlib import import_module
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, TypeVar

import numpy as np

from pytest_edgeopt.runtimes.base import (
    ArenaUse,
    ArtifactError,
    InputError,
    Runtime,
    RuntimeInfo,
    RuntimeOptions,
    TensorSpec,
    package_version,
)
from pytest_edgeopt.runtimes.tflite import LiteRT

T = TypeVar("T")
KIB = 1024
ARENA_MARGIN = 1.25  # over the host's estimate: the estimate leaves out what a kernel's Prepare takes
ARENA_SLACK = 64 * KIB
ARENA_GROWTH = 4
MAX_ARENA = 1 << 30
FALLBACK_NOTE = (
    "tflite-micro is not installed here: LiteRT's reference kernels ran the model (TFLM's arithmetic; "
    'FULLY_CONNECTED within 2 LSB) and the arena is estimated; pip install "pytest-edgeopt[mcu]" on x86-64 Linux'
)
_ALLOCATION = re.compile(r"\[RecordingMicroAllocator\] Arena allocation (total|head|tail) (\d+) bytes")
_SHORT = re.compile(r"Failed to (allocate|resize buffer)|Failed starting model allocation|missing: \d+")
_MISSING = re.compile(r"missing: (\d+)")


class TFLM:
    """`runtime="tflm"`: TFLite Micro when installed, else LiteRT's reference kernels."""

    name = "tflm"

    def __init__(self) -> None:
        try:
            self._engine: Runtime = MicroEngine()
        except ImportError:
            self._engine = LiteRTReferenceKernels()  # without LiteRT either: RuntimeMissing, install tflite-micro

    def load(self, artifact: str, *, threads: int, options: RuntimeOptions) -> None:
        self._engine.load(artifact, threads=threads, options=options)

    def inputs(self) -> Sequence[TensorSpec]:
        return self._engine.inputs()

    def outputs(self) -> Sequence[TensorSpec]:
        return self._engine.outputs()

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        return self._engine.run(feeds)

    def info(self) -> RuntimeInfo:
        return self._engine.info()

    def close(self) -> None:
        self._engine.close()


class LiteRTReferenceKernels(LiteRT):
    """LiteRT's BUILTIN_REF resolver: the reference kernels TFLM's are ported from (not the
    optimized builtin ones, which differed by up to 25 LSB on MobileNetV2 INT8)."""

    name = "tflm"
    resolver = "BUILTIN_REF"
    reference_kernels = True

    def info(self) -> RuntimeInfo:
        litert = super().info()
        return replace(
            litert,
            version=f"absent (LiteRT {litert.version} reference kernels)",
            xnnpack=None,
            reference_kernels=None,  # LiteRT's flag for its own reference mode; TFLM's are all reference kernels
            warning=FALLBACK_NOTE,
            extra={"engine": "litert-reference"},
        )


class MicroEngine:
    """The tflite-micro interpreter: all allocation happens when it is created, so the arena is
    known after `load`; inputs and outputs are addressed by index, in the file's order."""

    name = "tflm"

    def __init__(self) -> None:
        self._api = import_module("tflite_micro").runtime  # ImportError -> the LiteRT stand-in
        self._version = package_version("tflite-micro")
        self._sink = _Fd2()
        self._it: Any = None
        self._arena: Optional[ArenaUse] = None
        self._inputs: List[Dict[str, Any]] = []
        self._outputs: List[Dict[str, Any]] = []
        self._names: Tuple[List[str], List[str]] = ([], [])

    def load(self, artifact: str, *, threads: int, options: RuntimeOptions) -> None:
        data = Path(artifact).read_bytes()
        _refuse_external_buffers(data)
        self.load_bytes(data, arena_size=first_arena(len(data), options.arena_bytes))

    def load_bytes(self, data: bytes, *, arena_size: int) -> ArenaUse:
        """Create the interpreter (TFLM allocates everything then), growing the arena as needed;
        no check of the file beyond TFLM's own."""
        self._it, size = self._create(data, arena_size)
        self._arena = self._allocations(size)
        self._inputs = self._details(self._it.get_input_details)
        self._outputs = self._details(self._it.get_output_details)
        self._names = io_names(data, len(self._inputs), len(self._outputs))
        return self._arena

    def _create(self, data: bytes, size: int) -> Tuple[Any, int]:
        """Grow the arena while TFLM reports it short, by what it says is missing when it says it."""
        while True:
            it, error, log = self._sink.call(functools.partial(self._api.Interpreter.from_bytes, data, arena_size=size))
            if it is not None:
                return it, size
            if not _SHORT.search(log) or size >= MAX_ARENA:
                raise ArtifactError(failure_reason(log, error))
            size = grown(size, log)

    def _allocations(self, size: int) -> ArenaUse:
        _, _, log = self._sink.call(self._it.print_allocations)
        found = {kind: int(n) for kind, n in _ALLOCATION.findall(log)}
        if set(found) != {"total", "head", "tail"}:
            raise ArtifactError(f"TFLM printed no arena report ({' '.join(log.split())[:160]!r})")
        return ArenaUse(total=found["total"], head=found["head"], tail=found["tail"], arena_size=size)

    def _details(self, get: Callable[[int], Dict[str, Any]]) -> List[Dict[str, Any]]:
        """TFLM has no count of inputs or outputs: ask by index until it says out of range."""
        found: List[Dict[str, Any]] = []
        while True:
            detail, error, _ = self._sink.call(functools.partial(get, len(found)))
            if error is not None or detail is None:
                return found
            found.append(dict(detail))

    def inputs(self) -> Sequence[TensorSpec]:
        return [_spec(name, d) for name, d in zip(self._names[0], self._inputs)]

    def outputs(self) -> Sequence[TensorSpec]:
        """Named as the file names them (as LiteRT does): the metric and fidelity read them by name."""
        return [_spec(name, d) for name, d in zip(self._names[1], self._outputs)]

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        it = self._it
        for i, (name, detail) in enumerate(zip(self._names[0], self._inputs)):
            value = feeds.get(name)
            if value is None:
                raise InputError(f"no data for input {name}")
            _, error, log = self._sink.call(functools.partial(it.set_input, quantize(value, detail), i))
            if error is not None:
                raise InputError(_one_line(f"{error} {log}"))
        _, error, log = self._sink.call(it.invoke)
        if error is not None:
            raise InputError(f"TFLM invoke failed: {failure_reason(log, error)}")
        return [dequantize(np.array(it.get_output(j)), d) for j, d in enumerate(self._outputs)]

    def info(self) -> RuntimeInfo:
        first_in, first_out = self._inputs[0], self._outputs[0]
        return RuntimeInfo(
            name=self.name,
            version=self._version,
            io=f"{np.dtype(first_in['dtype']).name} in, {np.dtype(first_out['dtype']).name} out",
            output_step=_scale(first_out),
            arena=self._arena,
            extra={"engine": "tflite-micro"},
        )

    def close(self) -> None:
        self._it = None
        self._sink.close()


def io_names(data: bytes, inputs: int, outputs: int) -> Tuple[List[str], List[str]]:
    """The main graph's input and output tensor names, read from the flatbuffer with struct (TFLM's
    interpreter gives none, and the device has no flatbuffers package); `input_0`, `output_0`, ...
    when the file names them not, or not apart."""
    fallback = ([f"input_{i}" for i in range(inputs)], [f"output_{i}" for i in range(outputs)])
    try:
        found = _FlatGraph(data).io_names()
    except (struct.error, IndexError, UnicodeDecodeError):
        return fallback
    usable = all(found) and len(found[0]) == inputs and len(found[1]) == outputs
    usable = usable and len(set(found[0])) == inputs and len(set(found[1])) == outputs
    return found if usable and all(all(n) for n in found) else fallback


class _FlatGraph:
    """Just enough of the TFLite flatbuffer: Model.subgraphs[0], its tensors' names, inputs, outputs."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def io_names(self) -> Tuple[List[str], List[str]]:
        model = self._deref(0)
        graph = self._deref(self._vector(self._field(model, 2))[0])
        tensors = self._vector(self._field(graph, 0))
        names = [self._name(self._deref(t)) for t in tensors]
        return [names[i] for i in self._ints(graph, 1)], [names[i] for i in self._ints(graph, 2)]

    def _u32(self, at: int) -> int:
        return int(struct.unpack_from("<I", self.data, at)[0])

    def _deref(self, at: int) -> int:
        return at + self._u32(at)

    def _field(self, table: int, index: int) -> int:
        vtable = table - int(struct.unpack_from("<i", self.data, table)[0])
        if 4 + 2 * index >= struct.unpack_from("<H", self.data, vtable)[0]:
            return 0
        offset = int(struct.unpack_from("<H", self.data, vtable + 4 + 2 * index)[0])
        return table + offset if offset else 0

    def _vector(self, at: int) -> List[int]:
        """The positions of a vector's elements (4 bytes each), empty when the field is absent."""
        if not at:
            return []
        start = self._deref(at)
        count = self._u32(start)
        if start + 4 + 4 * count > len(self.data):
            raise IndexError("a vector runs past the end of the file")
        return [start + 4 + 4 * i for i in range(count)]

    def _ints(self, table: int, index: int) -> List[int]:
        return [int(struct.unpack_from("<i", self.data, p)[0]) for p in self._vector(self._field(table, index))]

    def _name(self, tensor: int) -> str:
        at = self._field(tensor, 3)
        if not at:
            return ""
        start = self._deref(at)
        return self.data[start + 4 : start + 4 + self._u32(start)].decode("utf-8")


def first_arena(model_bytes: int, estimate: Optional[int]) -> int:
    """The host's estimate with a margin, else TFLM's own default (10 x the model), a multiple of
    16: the tail's alignment padding, and so the total, shifts with the arena's end address."""
    size = int(estimate * ARENA_MARGIN) + ARENA_SLACK if estimate else max(10 * model_bytes, ARENA_SLACK)
    return _round16(size)


def grown(size: int, log: str) -> int:
    missing = [int(m) for m in _MISSING.findall(log)]
    return _round16(size + max(missing) + ARENA_SLACK) if missing else size * ARENA_GROWTH


def failure_reason(log: str, error: Optional[BaseException]) -> str:
    """One line from TFLM's fd-2 text: hybrid and FP16 models, a missing kernel, the arena."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    node = next((x for x in lines if "failed to prepare" in x or "failed to invoke" in x), "")
    for line in lines:
        if "Hybrid models are not supported" in line:
            return _one_line(
                f"hybrid (dynamic-range INT8) model: Hybrid models are not supported on TFLite Micro ({node})"
            )
        if "dequantize_common.cc" in line and "kTfLiteInt8" in line:
            return _one_line(f"float16 weights: TFLM's DEQUANTIZE takes int8/int16/uint8 inputs only ({node})")
        if "Didn't find op for builtin opcode" in line or "unsupported" in line.lower():
            return _one_line(f"an operator TFLM lacks: {line}")
    short = next((x for x in lines if _SHORT.search(x)), "")
    if short:
        return _one_line(f"the arena could not be allocated: {short}")
    detail = "; ".join(x for x in (lines[0] if lines else "", node) if x)
    return _one_line(f"{error}: {detail}" if detail else str(error))


def quantize(value: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    """Float eval data -> the input tensor's integer type with its scale and zero point."""
    dtype = np.dtype(detail["dtype"])
    scale = _scale(detail)
    if dtype.kind == "f" or scale is None:
        return np.ascontiguousarray(value, dtype=dtype)
    zero = int(np.asarray(detail["quantization_parameters"]["zero_points"]).reshape(-1)[0])
    info = np.iinfo(dtype)
    q = np.clip(np.round(np.asarray(value, dtype=np.float64) / scale) + zero, info.min, info.max)
    return np.ascontiguousarray(q.astype(dtype))


def dequantize(value: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    scale = _scale(detail)
    if value.dtype.kind == "f" or scale is None:
        return value
    zero = int(np.asarray(detail["quantization_parameters"]["zero_points"]).reshape(-1)[0])
    return ((value.astype(np.float32) - zero) * scale).astype(np.float32)


def _scale(detail: Mapping[str, Any]) -> Optional[float]:
    """The per-tensor scale of an integer I/O tensor, None for float tensors."""
    if np.dtype(detail["dtype"]).kind not in "iu":
        return None
    scales = np.asarray(detail["quantization_parameters"]["scales"]).reshape(-1)
    if scales.size != 1:
        raise ArtifactError(f"an integer input or output has {scales.size} scales: TFLM I/O needs one")
    return float(scales[0])


def _spec(name: str, detail: Mapping[str, Any]) -> TensorSpec:
    """Integer I/O takes float data, quantized in `run`, so eval data is the same at every precision."""
    dtype = "float32" if _scale(detail) is not None else np.dtype(detail["dtype"]).name
    return TensorSpec(name=name, shape=tuple(int(d) for d in detail["shape"]), dtype=dtype)


def _refuse_external_buffers(data: bytes) -> None:
    """TFLM ignores Buffer.offset: weights ai-edge-quantizer stored after the flatbuffer would be
    planned as activations and the model would compute with garbage, without an error."""
    schema = _schema()
    if schema is None:
        return
    model = schema.Model.GetRootAs(data, 0)
    if any(model.Buffers(i).Offset() > 1 for i in range(model.BuffersLength())):
        raise ArtifactError(
            "weights stored outside the flatbuffer (Buffer.offset > 1, as ai-edge-quantizer writes large models): "
            "TFLM would compute with garbage; inline them first (the MCU platform does: optimize/mcu.py)"
        )


def _schema() -> Any:
    for name in ("tflite_micro.tensorflow.lite.micro.python.schema_py_generated", "ai_edge_litert.schema_py_generated"):
        try:
            return import_module(name)
        except ImportError:
            continue
    return None


class _Fd2:
    """fd 2 sent to one temporary file for the duration of a call; its text read back after."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile()

    def call(self, fn: Callable[[], T]) -> Tuple[Optional[T], Optional[BaseException], str]:
        result: Optional[T] = None
        error: Optional[BaseException] = None
        with self._redirected():
            try:
                result = fn()
            except Exception as raised:  # the wrapper raises RuntimeError, IndexError, ValueError
                error = raised
        return result, error, self._drain()

    @contextlib.contextmanager
    def _redirected(self) -> Iterator[None]:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)

    def _drain(self) -> str:
        """Raw fd calls: the C library wrote through fd 2, behind the Python file object's back."""
        fd = self._file.fileno()
        size = os.lseek(fd, 0, os.SEEK_CUR)
        if size == 0:
            return ""
        text = os.pread(fd, size, 0).decode(errors="replace").replace("\r\n", "\n")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        return text

    def close(self) -> None:
        self._file.close()


def _round16(n: int) -> int:
    return (n + 15) // 16 * 16


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]
