"""LiteRT's per-op profile, reachable only through the C profiler API of the wheel's libLiteRt.so.

ai-edge-litert 2.3.0 has no profiling in its Python API; its libLiteRt.so exports the LiteRT C
profiler, driven here by ctypes. That ABI is undocumented (its event struct was 104 bytes where
the header says 88, and a wrong layout crashed the process), so everything about it stays in this
one module, and the profiled pass runs in a child process (`python -m
pytest_edgeopt.runtimes.litert_profile REQUEST.json`): a wrong signature in a LiteRT version the
ABI was not checked on kills the child, never the agent, and the row says why it has no profile.

The profile is read from the summary text (the TFLite benchmark tables), not from the structured
events whose layout differs from the header: the text is what the library itself formats. The
warm-up run is left out by stopping, resetting and restarting the profiler after it (a reset while
it runs leaves nothing recorded at all in 2.3.0).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from importlib import util
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from pytest_edgeopt.runtimes.base import NodeKernel, ProfilerUnavailable

LIBRARY = "libLiteRt.so"
ABI_VERSION = "2.3.0"  # the ai-edge-litert whose libLiteRt.so the signatures below were checked on
TIMEOUT_S = 600.0  # the child's whole pass: load, compile, warm-up and the profiled runs


def library_path(package: str = "ai_edge_litert") -> Optional[Path]:
    """The wheel's libLiteRt.so, found next to the package without importing it."""
    spec = util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / LIBRARY
    return path if path.is_file() else None


def missing_symbols(path: Path) -> Tuple[str, ...]:
    """The profiler symbols the library does not export (all of them when it cannot be loaded)."""
    try:
        library = ctypes.CDLL(str(path), mode=ctypes.RTLD_LOCAL)
    except OSError:
        return SYMBOLS
    return tuple(name for name in SYMBOLS if not hasattr(library, name))


def unavailable_reason(version: str) -> Optional[str]:
    """Why a LiteRT row can have no per-op profile here, naming what is missing; None: it can try."""
    path = library_path()
    if path is None:
        return f"ai-edge-litert {version} ships no {LIBRARY}: LiteRT's per-op profile needs its C profiler API"
    missing = missing_symbols(path)
    if missing:
        return f"{LIBRARY} of ai-edge-litert {version} lacks {', '.join(missing)}: no per-op profile for LiteRT"
    return None


# --- the host side: one child process per profiled pass --------------------------------------------


@dataclass(frozen=True)
class PassRequest:
    """What the child profiles: the model, its feeds (an .npz of `b{batch}_i{input}` arrays already
    in the inputs' own dtypes), and where it writes its PassResult."""

    model: str
    feeds: str
    inputs: Tuple[str, ...]  # the input tensor names, in the npz's `i` order
    batches: int
    threads: int
    runs: int
    kernel_mode: str  # LiteRT's CPU kernel mode: "delegate" (XNNPACK) or "builtin" (TFLite's kernels)
    result: str

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["inputs"] = list(self.inputs)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PassRequest":
        return cls(
            model=str(data["model"]),
            feeds=str(data["feeds"]),
            inputs=tuple(str(name) for name in data["inputs"]),
            batches=int(data["batches"]),
            threads=int(data["threads"]),
            runs=int(data["runs"]),
            kernel_mode=str(data["kernel_mode"]),
            result=str(data["result"]),
        )


@dataclass(frozen=True)
class PassResult:
    """The child's answer: LiteRT's summary text, or why there is none."""

    summary: Optional[str] = None
    error: Optional[str] = None

    def to_dict(self) -> Dict[str, Optional[str]]:
        return {"summary": self.summary, "error": self.error}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PassResult":
        summary, error = data.get("summary"), data.get("error")
        return cls(summary=None if summary is None else str(summary), error=None if error is None else str(error))


def profile_nodes(
    *,
    model: str,
    feeds: Sequence[Mapping[str, np.ndarray]],
    threads: int,
    runs: int,
    version: str,
    kernel_mode: str = "delegate",
) -> List[NodeKernel]:
    """Kernel time per node over `runs` runs after one warm-up, from a child process that drives
    the C profiler; `feeds` are keyed by input tensor name, in the inputs' own dtypes."""
    reason = unavailable_reason(version)
    if reason is not None:
        raise ProfilerUnavailable(reason)
    if not feeds or runs < 1:
        raise ProfilerUnavailable("LiteRT's C profiler needs at least one batch and one run")
    with tempfile.TemporaryDirectory(prefix="edgeopt-litert-") as tmp:
        request = _write_request(
            Path(tmp), model=model, feeds=feeds, threads=threads, runs=runs, kernel_mode=kernel_mode
        )
        result = _run_child(request)
    if result.error is not None or result.summary is None:
        raise ProfilerUnavailable(_with_version(result.error or "LiteRT's C profiler returned no summary", version))
    kernels = parse_summary(result.summary)
    if not kernels:
        raise ProfilerUnavailable(_with_version("LiteRT's profile summary lists no node", version))
    return kernels


def _write_request(
    tmp: Path, *, model: str, feeds: Sequence[Mapping[str, np.ndarray]], threads: int, runs: int, kernel_mode: str
) -> PassRequest:
    names = tuple(feeds[0])
    arrays = {
        f"b{b}_i{i}": np.ascontiguousarray(batch[n]) for b, batch in enumerate(feeds) for i, n in enumerate(names)
    }
    save: Callable[..., None] = np.savez  # numpy's stubs type **kwds as its allow_pickle flag
    save(tmp / "feeds.npz", **arrays)
    request = PassRequest(
        model=str(Path(model).resolve()),
        feeds=str(tmp / "feeds.npz"),
        inputs=names,
        batches=len(feeds),
        threads=int(threads),
        runs=int(runs),
        kernel_mode=kernel_mode,
        result=str(tmp / "result.json"),
    )
    (tmp / "request.json").write_text(json.dumps(request.to_dict()), encoding="utf-8")
    return request


def _run_child(request: PassRequest) -> PassResult:
    """The pass in `python -m` this module, this package first on its path; a crash is a reason."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", __name__, str(Path(request.result).with_name("request.json"))]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return PassResult(error=f"LiteRT's C profiler did not finish in {TIMEOUT_S:.0f} s")
    result_file = Path(request.result)
    if done.returncode != 0 or not result_file.is_file():
        return PassResult(error=_crash(done.returncode, done.stderr))
    return PassResult.from_dict(json.loads(result_file.read_text(encoding="utf-8")))


def _crash(returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "a signal"
        how = f"crashed ({name}, signal {-returncode})"
    else:
        how = f"exited with status {returncode}"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return f"LiteRT's C profiler {how}" + (f": {lines[-1][:300]}" if lines else "")


def _with_version(reason: str, version: str) -> str:
    if version == ABI_VERSION:
        return reason
    return f"{reason} (ai-edge-litert {version}; the C profiler ABI was checked on {ABI_VERSION} only)"


# --- the summary text ------------------------------------------------------------------------------

_TABLE = "Run Order"  # one row per node, in execution order (no row is cut, as "Top by" may be)
_ROW = re.compile(
    r"^\s*(?P<type>\S.*?)\s+(?P<start>[\d.]+)\s+(?P<first>[\d.]+)\s+(?P<avg_ms>[\d.]+)\s+[\d.]+%"
    r"\s+[\d.]+%\s+(?P<mem_kb>[\d.]+)\s+(?P<calls>\d+)\s+(?P<name>\S.*?)\s*$"
)
FIRST_DELEGATE_NODE = "[Delegate]:0"  # where a partition starts in execution order
DELEGATE = "Delegate/"  # the prefix of an op XNNPACK ran, e.g. "Delegate/Convolution (NHWC, QC8) IGEMM"


def parse_summary(text: str) -> List[NodeKernel]:
    """NodeKernel per row of the summary's "Run Order" table: its avg ms times its calls (the
    profiled runs), whole microseconds as LiteRT measures them. XNNPACK's op text is kept as the
    op type (without "Delegate/"); TFLite's builtin kernels keep their op name (CONV_2D). Each
    XNNPACK partition numbers its nodes from 0: the second one's are "[Delegate]:0 #2", ..."""
    kernels: List[NodeKernel] = []
    partition = 0
    for row in filter(None, (_ROW.match(line) for line in _table_rows(text, _TABLE))):
        node_type, name = row.group("type"), row.group("name")
        delegated = node_type.startswith(DELEGATE)
        if delegated and name == FIRST_DELEGATE_NODE:
            partition += 1
        kernels.append(
            NodeKernel(
                name=f"{name} #{partition}" if delegated and partition > 1 else name,
                op_type=node_type[len(DELEGATE) :] if delegated else node_type,
                provider="XNNPACK" if delegated else "TFLite",
                total_us=round(float(row.group("avg_ms")) * 1000.0 * int(row.group("calls")), 3),
            )
        )
    return kernels


def _table_rows(text: str, title: str) -> List[str]:
    """The lines of one titled table ("==== Run Order ===="), after its column header, to the blank line."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip("= ").strip() == title and "=" in line), None)
    if start is None:
        return []
    rows: List[str] = []
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        rows.append(line)
    return rows


# --- the child side: the C API by ctypes -----------------------------------------------------------

_STATUS = ctypes.c_int  # LiteRtStatus: 0 is kLiteRtStatusOk
_HANDLE = ctypes.c_void_p  # every LiteRt* object is an opaque pointer
_OUT = ctypes.POINTER(ctypes.c_void_p)
_SIZE = ctypes.c_size_t  # LiteRtParamIndex and counts
_COUNT = ctypes.POINTER(ctypes.c_size_t)
_CPU = 1  # kLiteRtHwAcceleratorCpu
_LOCK_WRITE = 1  # kLiteRtTensorBufferLockModeWrite
_MAX_RANK = 8  # LITERT_TENSOR_MAX_RANK


class _Layout(ctypes.Structure):
    """LiteRtLayout (68 bytes): `unsigned rank : 7, has_strides : 1` share the first 32-bit word."""

    _fields_ = [
        ("bits", ctypes.c_uint32),
        ("dimensions", ctypes.c_int32 * _MAX_RANK),
        ("strides", ctypes.c_uint32 * _MAX_RANK),
    ]


class _RankedTensorType(ctypes.Structure):
    """LiteRtRankedTensorType (72 bytes): the element type, then the layout at offset 4."""

    _fields_ = [("element_type", ctypes.c_int), ("layout", _Layout)]


_SIGNATURES: Dict[str, Tuple[Any, List[Any]]] = {
    "LiteRtCreateEnvironment": (_STATUS, [ctypes.c_int, _HANDLE, _OUT]),
    "LiteRtDestroyEnvironment": (None, [_HANDLE]),
    "LiteRtCreateModelFromBuffer": (_STATUS, [_HANDLE, _HANDLE, _SIZE, _OUT]),
    "LiteRtDestroyModel": (None, [_HANDLE]),
    "LiteRtGetModelSignature": (_STATUS, [_HANDLE, _SIZE, _OUT]),
    "LiteRtGetNumSignatureInputs": (_STATUS, [_HANDLE, _COUNT]),
    "LiteRtGetNumSignatureOutputs": (_STATUS, [_HANDLE, _COUNT]),
    "LiteRtGetSignatureInputTensorByIndex": (_STATUS, [_HANDLE, _SIZE, _OUT]),
    "LiteRtGetSignatureOutputTensorByIndex": (_STATUS, [_HANDLE, _SIZE, _OUT]),
    "LiteRtGetTensorName": (_STATUS, [_HANDLE, ctypes.POINTER(ctypes.c_char_p)]),
    "LiteRtGetRankedTensorType": (_STATUS, [_HANDLE, ctypes.POINTER(_RankedTensorType)]),
    "LiteRtCreateOptions": (_STATUS, [_OUT]),
    "LiteRtDestroyOptions": (None, [_HANDLE]),
    "LiteRtSetOptionsHardwareAccelerators": (_STATUS, [_HANDLE, ctypes.c_int]),
    "LiteRtCreateOpaqueOptions": (_STATUS, [ctypes.c_char_p, _HANDLE, _HANDLE, _OUT]),
    "LiteRtDestroyOpaqueOptions": (None, [_HANDLE]),
    "LiteRtAddOpaqueOptions": (_STATUS, [_HANDLE, _HANDLE]),
    "LiteRtCreateCompiledModel": (_STATUS, [_HANDLE, _HANDLE, _HANDLE, _OUT]),
    "LiteRtDestroyCompiledModel": (None, [_HANDLE]),
    "LiteRtCompiledModelGetProfiler": (_STATUS, [_HANDLE, _OUT]),
    "LiteRtCompiledModelResizeInputTensorNonStrict": (
        _STATUS,
        [_HANDLE, _SIZE, _SIZE, ctypes.POINTER(ctypes.c_int), _SIZE],
    ),
    "LiteRtGetCompiledModelOutputTensorLayouts": (
        _STATUS,
        [_HANDLE, _SIZE, _SIZE, ctypes.POINTER(_Layout), ctypes.c_bool],
    ),
    "LiteRtGetCompiledModelInputBufferRequirements": (_STATUS, [_HANDLE, _SIZE, _SIZE, _OUT]),
    "LiteRtGetCompiledModelOutputBufferRequirements": (_STATUS, [_HANDLE, _SIZE, _SIZE, _OUT]),
    "LiteRtCreateManagedTensorBufferFromRequirements": (
        _STATUS,
        [_HANDLE, ctypes.POINTER(_RankedTensorType), _HANDLE, _OUT],
    ),
    "LiteRtDestroyTensorBuffer": (None, [_HANDLE]),
    "LiteRtGetTensorBufferPackedSize": (_STATUS, [_HANDLE, _COUNT]),
    "LiteRtLockTensorBuffer": (_STATUS, [_HANDLE, _OUT, ctypes.c_int]),
    "LiteRtUnlockTensorBuffer": (_STATUS, [_HANDLE]),
    "LiteRtRunCompiledModel": (_STATUS, [_HANDLE, _SIZE, _SIZE, _OUT, _SIZE, _OUT]),
    "LiteRtStartProfiler": (_STATUS, [_HANDLE]),
    "LiteRtResetProfiler": (_STATUS, [_HANDLE]),
    "LiteRtStopProfiler": (_STATUS, [_HANDLE]),
    "LiteRtGetProfileSummary": (_STATUS, [_HANDLE, _HANDLE, _OUT]),
}


SYMBOLS: Tuple[str, ...] = tuple(_SIGNATURES)  # all of them checked before the child is started


class _Api:
    """libLiteRt.so with the 2.3.0 signatures set, and libc's strdup/free for the option payloads."""

    def __init__(self, path: Path) -> None:
        self._lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_LOCAL)
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(self._lib, name)
            function.restype, function.argtypes = restype, argtypes
        libc = ctypes.CDLL(None)
        self.strdup, self.free = libc.strdup, libc.free
        self.strdup.restype, self.strdup.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        self.free.restype, self.free.argtypes = None, [ctypes.c_void_p]
        self.free_address = ctypes.cast(self.free, ctypes.c_void_p)

    def call(self, name: str, *args: Any) -> None:
        status = getattr(self._lib, name)(*args)
        if status != 0:
            raise ProfilerUnavailable(f"{name} failed with status {status}")

    def handle(self, name: str, *args: Any) -> ctypes.c_void_p:
        out = ctypes.c_void_p()
        self.call(name, *args, ctypes.byref(out))
        return out

    def count(self, name: str, *args: Any) -> int:
        out = ctypes.c_size_t()
        self.call(name, *args, ctypes.byref(out))
        return int(out.value)

    def releaser(self, name: str) -> Callable[[ctypes.c_void_p], None]:
        function: Callable[[ctypes.c_void_p], None] = getattr(self._lib, name)
        return function


def _profiled_pass(request: PassRequest) -> str:
    """The summary text of `runs` profiled runs after one warm-up; everything released in reverse."""
    path = library_path()
    if path is None:
        raise ProfilerUnavailable(f"no {LIBRARY} next to ai_edge_litert")
    api, batches = _Api(path), _load_feeds(request)
    blob = Path(request.model).read_bytes()
    model_bytes = ctypes.create_string_buffer(blob, len(blob))  # must outlive the model
    with ExitStack() as stack:
        env = api.handle("LiteRtCreateEnvironment", 0, None)
        stack.callback(api.releaser("LiteRtDestroyEnvironment"), env)
        model = api.handle("LiteRtCreateModelFromBuffer", env, model_bytes, len(blob))
        stack.callback(api.releaser("LiteRtDestroyModel"), model)
        compiled = _compile(api, stack, env=env, model=model, threads=request.threads, kernel_mode=request.kernel_mode)
        profiler = api.handle("LiteRtCompiledModelGetProfiler", compiled)  # owned by the compiled model
        buffers = _Buffers(api, stack, env=env, model=model, compiled=compiled)
        buffers.create(request.inputs, batches[0])
        return _profiled_runs(api, buffers, profiler=profiler, compiled=compiled, batches=batches, runs=request.runs)


def _load_feeds(request: PassRequest) -> List[List[np.ndarray]]:
    with np.load(request.feeds) as data:
        return [[data[f"b{b}_i{i}"] for i in range(len(request.inputs))] for b in range(request.batches)]


def _compile(api: _Api, stack: ExitStack, *, env: Any, model: Any, threads: int, kernel_mode: str) -> ctypes.c_void_p:
    """CPU at the runtime's thread count, XNNPACK (`delegate`) or TFLite's `builtin` kernels,
    profiling on: TOML payloads of opaque options (2.3.0 does not export the Lrt*Options builders)."""
    options = api.handle("LiteRtCreateOptions")
    stack.callback(api.releaser("LiteRtDestroyOptions"), options)  # after the compiled model
    api.call("LiteRtSetOptionsHardwareAccelerators", options, _CPU)
    _add_opaque(api, options, "runtime_options_string", "enable_profiling = true\n")
    _add_opaque(api, options, "xnnpack", f'num_threads = {int(threads)}\nkernel_mode = "{kernel_mode}"\n')
    compiled = api.handle("LiteRtCreateCompiledModel", env, model, options)
    stack.callback(api.releaser("LiteRtDestroyCompiledModel"), compiled)
    return compiled


def _add_opaque(api: _Api, options: Any, identifier: str, toml: str) -> None:
    """One opaque option; the options own it (and free the strdup'ed payload) once added."""
    payload = api.strdup(toml.encode())
    opaque = ctypes.c_void_p()
    try:
        api.call("LiteRtCreateOpaqueOptions", identifier.encode(), payload, api.free_address, ctypes.byref(opaque))
    except ProfilerUnavailable:
        api.free(payload)
        raise
    try:
        api.call("LiteRtAddOpaqueOptions", options, opaque)
    except ProfilerUnavailable:
        api.releaser("LiteRtDestroyOpaqueOptions")(opaque)
        raise


class _Buffers:
    """The signature's input and output tensor buffers, shaped by the first batch of feeds."""

    def __init__(self, api: _Api, stack: ExitStack, *, env: Any, model: Any, compiled: Any) -> None:
        self._api, self._stack, self._env, self._compiled = api, stack, env, compiled
        self._signature = api.handle("LiteRtGetModelSignature", model, 0)
        self.inputs: List[ctypes.c_void_p] = []
        self.outputs: List[ctypes.c_void_p] = []
        self.order: List[int] = []  # the feed (npz `i`) of each signature input
        self._sizes: List[int] = []

    def create(self, names: Sequence[str], first: Sequence[np.ndarray]) -> None:
        api, resized = self._api, False
        for index in range(api.count("LiteRtGetNumSignatureInputs", self._signature)):
            tensor = api.handle("LiteRtGetSignatureInputTensorByIndex", self._signature, index)
            name = _tensor_name(api, tensor)
            self.order.append(names.index(name) if name in names else index)
            if self.order[-1] >= len(first):
                raise ProfilerUnavailable(f"no feed for LiteRT input {name!r}")
            resized |= self._input(index, tensor, first[self.order[-1]])
        self._outputs(resized)

    def _input(self, index: int, tensor: Any, feed: np.ndarray) -> bool:
        """One input buffer at the feed's shape (a -1 dim, or a resized batch, pinned first)."""
        api, tensor_type = self._api, _ranked_type(self._api, tensor)
        dims = _dims(tensor_type.layout)
        if len(dims) != feed.ndim:
            raise ProfilerUnavailable(f"LiteRT input {index} has rank {len(dims)}, its feed {feed.ndim}")
        resize = dims != tuple(feed.shape)
        if resize:
            shape = (ctypes.c_int * feed.ndim)(*feed.shape)
            api.call("LiteRtCompiledModelResizeInputTensorNonStrict", self._compiled, 0, index, shape, feed.ndim)
            for axis, size in enumerate(feed.shape):
                tensor_type.layout.dimensions[axis] = int(size)
        requirements = api.handle("LiteRtGetCompiledModelInputBufferRequirements", self._compiled, 0, index)
        self.inputs.append(self._buffer(tensor_type, requirements))
        self._sizes.append(api.count("LiteRtGetTensorBufferPackedSize", self.inputs[-1]))
        if self._sizes[-1] != feed.nbytes:
            raise ProfilerUnavailable(f"LiteRT input {index} holds {self._sizes[-1]} bytes, its feed {feed.nbytes}")
        return resize

    def _outputs(self, resized: bool) -> None:
        api = self._api
        count = api.count("LiteRtGetNumSignatureOutputs", self._signature)
        types = [
            _ranked_type(api, api.handle("LiteRtGetSignatureOutputTensorByIndex", self._signature, index))
            for index in range(count)
        ]
        if resized or any(min(_dims(t.layout), default=0) < 0 for t in types):
            layouts = (_Layout * count)()
            api.call("LiteRtGetCompiledModelOutputTensorLayouts", self._compiled, 0, count, layouts, True)
            for tensor_type, layout in zip(types, layouts):
                tensor_type.layout = layout
        for index, tensor_type in enumerate(types):
            requirements = api.handle("LiteRtGetCompiledModelOutputBufferRequirements", self._compiled, 0, index)
            self.outputs.append(self._buffer(tensor_type, requirements))

    def _buffer(self, tensor_type: _RankedTensorType, requirements: Any) -> ctypes.c_void_p:
        created = self._api.handle(
            "LiteRtCreateManagedTensorBufferFromRequirements", self._env, ctypes.byref(tensor_type), requirements
        )
        self._stack.callback(self._api.releaser("LiteRtDestroyTensorBuffer"), created)
        return created

    def write(self, batch: Sequence[np.ndarray]) -> None:
        """The batch's feeds into the input buffers (lock for writing, copy, unlock)."""
        for buffer, feed_index, size in zip(self.inputs, self.order, self._sizes):
            feed = np.ascontiguousarray(batch[feed_index])
            if feed.nbytes != size:
                raise ProfilerUnavailable(f"a LiteRT feed holds {feed.nbytes} bytes where its buffer holds {size}")
            host = ctypes.c_void_p()  # the out-parameter comes before the lock mode here
            self._api.call("LiteRtLockTensorBuffer", buffer, ctypes.byref(host), _LOCK_WRITE)
            ctypes.memmove(host, feed.ctypes.data, size)
            self._api.call("LiteRtUnlockTensorBuffer", buffer)


def _tensor_name(api: _Api, tensor: Any) -> str:
    name = ctypes.c_char_p()
    api.call("LiteRtGetTensorName", tensor, ctypes.byref(name))
    return (name.value or b"").decode("utf-8", "replace")


def _ranked_type(api: _Api, tensor: Any) -> _RankedTensorType:
    tensor_type = _RankedTensorType()
    api.call("LiteRtGetRankedTensorType", tensor, ctypes.byref(tensor_type))
    return tensor_type


def _dims(layout: _Layout) -> Tuple[int, ...]:
    rank = int(layout.bits) & 0x7F
    return tuple(int(layout.dimensions[axis]) for axis in range(min(rank, _MAX_RANK)))


def _profiled_runs(
    api: _Api, buffers: _Buffers, *, profiler: Any, compiled: Any, batches: Sequence[Sequence[np.ndarray]], runs: int
) -> str:
    """One warm-up run, a reset (so it is left out), then `runs` runs; the summary freed with free()."""
    inputs = (ctypes.c_void_p * len(buffers.inputs))(*buffers.inputs)
    outputs = (ctypes.c_void_p * len(buffers.outputs))(*buffers.outputs)

    def run(batch: Sequence[np.ndarray]) -> None:
        buffers.write(batch)
        api.call("LiteRtRunCompiledModel", compiled, 0, len(inputs), inputs, len(outputs), outputs)

    api.call("LiteRtStartProfiler", profiler)
    run(batches[0])
    api.call("LiteRtStopProfiler", profiler)  # a reset while started leaves nothing recorded after it
    api.call("LiteRtResetProfiler", profiler)
    api.call("LiteRtStartProfiler", profiler)
    for index in range(runs):
        run(batches[index % len(batches)])
    api.call("LiteRtStopProfiler", profiler)
    summary = api.handle("LiteRtGetProfileSummary", profiler, compiled)
    try:
        return (ctypes.string_at(summary) if summary.value else b"").decode("utf-8", "replace")
    finally:
        api.free(summary)


def main(argv: Sequence[str]) -> int:
    request = PassRequest.from_dict(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    try:
        result = PassResult(summary=_profiled_pass(request))
    except ProfilerUnavailable as why:
        result = PassResult(error=str(why))
    Path(request.result).write_text(json.dumps(result.to_dict()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
