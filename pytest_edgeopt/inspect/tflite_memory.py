"""A microcontroller's RAM for a .tflite model, from the file alone: TFLite Micro's arena.

TFLM allocates one arena: a planned "head" that holds the activations (tensors that are neither
constant nor variable, overlapped where their lifetimes allow) and a persistent "tail" of
structs, kernel data and per-channel requantization arrays. `greedy_head_bytes` replays TFLM's
GreedyMemoryPlanner on the tensor lifetimes; it matched TFLM's head to the byte on 11 models
(tflite-micro 0.dev20261023, x86 reference kernels). `peak_live_bytes` is the lower bound a plan
without holes would reach. `persistent_tail_bytes` is a rule fitted on 8 models, within 48 B of
TFLM's tail on all 11. None of them includes the scratch buffers CMSIS-NN or ESP-NN kernels ask
for on a board, and the tail is for the 64-bit host build (a 32-bit MCU has smaller structs).

ai-edge-quantizer stores the weights of large models after the flatbuffer (Buffer.offset > 1).
TFLM ignores offset and size: it plans those weights as activations and computes with whatever
the arena holds, with no error. `inline_buffers` rewrites such a file with the data inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.tflite_graph import (
    ALIGNMENT,
    FILE_IDENTIFIER,
    Graph,
    Operator,
    align_up,
    object_api,
    read_graph,
)


@dataclass(frozen=True)
class Lifetime:
    tensor: int
    first: int  # the op that creates it (0 for graph inputs; -1 when no op touches it)
    last: int  # the last op that reads it (the last op for graph outputs)
    size: int  # bytes, aligned as TFLM plans them


@dataclass(frozen=True)
class ArenaEstimate:
    """TFLM's arena as the file predicts it; `total` is what the board must hold."""

    head: int  # planned activations (greedy replay of TFLM's planner)
    tail: int  # persistent allocations (fitted rule, 64-bit host sizes)
    peak_live: int  # the lower bound: peak of live activation bytes in execution order

    @property
    def total(self) -> int:
        return self.head + self.tail


def arena_estimate(graph: Graph) -> ArenaEstimate:
    lifetimes = tensor_lifetimes(graph)
    return ArenaEstimate(
        head=greedy_head_bytes(lifetimes),
        tail=persistent_tail_bytes(graph),
        peak_live=peak_live_bytes(lifetimes, len(graph.operators)),
    )


def tensor_lifetimes(graph: Graph) -> List[Lifetime]:
    """Non-constant, non-variable tensors with [first, last] op indices, as TFLM's
    AllocationInfoBuilder assigns them: graph inputs from op 0, graph outputs to the last op."""
    first: Dict[int, int] = {t: 0 for t in graph.inputs}
    last: Dict[int, int] = {t: 0 for t in graph.inputs}
    for i, op in enumerate(graph.operators):
        for t in op.inputs + op.intermediates + op.outputs:
            first.setdefault(t, i)
            last[t] = max(last.get(t, i), i)
    for t in graph.outputs:
        first.setdefault(t, 0)
        last[t] = max(len(graph.operators) - 1, 0)
    planned = [t for t in graph.tensors if t.index not in graph.constants and not t.variable and t.nbytes > 0]
    # tensors no op touches are planned too, with lifetime (-1, -1): they add up
    return [Lifetime(t.index, first.get(t.index, -1), last.get(t.index, -1), align_up(t.nbytes)) for t in planned]


def greedy_head_bytes(lifetimes: Sequence[Lifetime]) -> int:
    """TFLM's GreedyMemoryPlanner: largest buffers first, each at the lowest offset that does
    not overlap a placed buffer alive at the same time. TFLM fills its sort array from the end
    and sorts it stably, so among equal sizes the highest tensor index is placed first (index
    order instead gave 64,512 B for MLPerf's VWW model, TFLM 73,728 B)."""
    order = sorted(sorted(lifetimes, key=lambda lt: lt.tensor, reverse=True), key=lambda lt: -lt.size)
    placed: List[Tuple[int, Lifetime]] = []  # (offset, lifetime), sorted by offset
    end = 0
    for lt in order:
        offset = _lowest_offset(lt, placed)
        placed.append((offset, lt))
        placed.sort(key=lambda p: p[0])
        end = max(end, offset + lt.size)
    return end


def _lowest_offset(lt: Lifetime, placed: Sequence[Tuple[int, Lifetime]]) -> int:
    offset = 0
    for other_offset, other in placed:
        if other.last < lt.first or other.first > lt.last:
            continue  # never alive at the same time
        if other_offset - offset >= lt.size:
            break  # the gap before this buffer is big enough
        offset = max(offset, other_offset + other.size)
    return offset


def peak_live_bytes(lifetimes: Sequence[Lifetime], n_ops: int) -> int:
    live = (sum(lt.size for lt in lifetimes if lt.first <= i <= lt.last) for i in range(-1, max(n_ops, 1)))
    return max(live, default=0)


@dataclass(frozen=True)
class PersistentSizes:
    """Bytes of TFLM's persistent allocations on the 64-bit host build, read from its
    RecordingMicroAllocator breakdown and fitted on 8 models (EfficientNet-Lite0 held out:
    190,944 B estimated, 190,912 B measured)."""

    fixed: int = 580  # allocator and interpreter objects, subgraph tables
    per_tensor: int = 33  # TfLiteEvalTensor and bookkeeping, every tensor of every subgraph
    per_op: int = 64  # NodeAndRegistration
    per_io_tensor: int = 64  # the persistent TfLiteTensor of each graph input and output
    per_quantized_io: int = 32  # its TfLiteAffineQuantization with scale and zero-point arrays
    op_data: Mapping[str, int] = field(
        default_factory=lambda: {
            "CONV_2D": 96,
            "DEPTHWISE_CONV_2D": 64,
            "FULLY_CONNECTED": 80,
            "ADD": 32,
            "MUL": 32,
            "AVERAGE_POOL_2D": 32,
            "MAX_POOL_2D": 16,
            "SOFTMAX": 48,
            "MEAN": 64,
            "RESHAPE": 0,
            "TRANSPOSE": 0,
        }
    )
    other_op_data: int = 32


HOST_64BIT = PersistentSizes()
_PER_CHANNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")


def persistent_tail_bytes(graph: Graph, sizes: PersistentSizes = HOST_64BIT) -> int:
    """Fixed + per tensor + per op + I/O tensor structs + kernel OpData + two int32 arrays per
    output channel (requantization multiplier and shift) for convolutions and per-channel fully
    connected layers; those arrays dominate the tail of large CNNs."""
    io = graph.inputs + graph.outputs
    total = sizes.fixed + sizes.per_tensor * graph.all_tensors + sizes.per_op * graph.all_operators
    total += sizes.per_io_tensor * len(io)
    total += sizes.per_quantized_io * sum(1 for t in io if graph.tensors[t].scales > 0)
    for op in graph.operators:
        total += sizes.op_data.get(op.name, sizes.other_op_data)
        total += 2 * align_up(4 * _requant_channels(graph, op))
    return align_up(total)


def _requant_channels(graph: Graph, op: Operator) -> int:
    if op.name in _PER_CHANNEL_OPS and op.outputs:
        shape = graph.tensors[op.outputs[0]].shape
        return shape[-1] if shape else 1
    if op.name == "FULLY_CONNECTED" and len(op.inputs) > 1 and graph.tensors[op.inputs[1]].scales > 1:
        return graph.tensors[op.inputs[1]].scales
    return 0


# -- weights stored outside the flatbuffer ------------------------------------------------------


def has_external_buffers(data: bytes) -> bool:
    """True when a Buffer keeps its data after the flatbuffer (offset > 1; offset 1 is the
    placeholder a writer uses while it builds the file)."""
    return read_graph(data).external_buffers > 0


def inline_buffers(data: bytes) -> bytes:
    """The same model with every buffer's data inside the flatbuffer, 16-byte aligned as the
    converter writes them, and offset/size cleared. Metadata, signatures and options go through
    the object API unchanged; the result is checked to keep every operator's options."""
    with object_api() as fb:
        model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
        for buffer in model.buffers or []:
            _inline(buffer, data)
            buffer.__class__ = _aligned_buffer_class(fb)
        builder = fb.flatbuffers.Builder(len(data) + 1024)
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
        out = bytes(builder.Output())
    _check_options_kept(fb, data, out)
    return out


def _inline(buffer: Any, data: bytes) -> None:
    import numpy as np

    if (buffer.offset or 0) > 1:
        start, size = int(buffer.offset), int(buffer.size)
        if start + size > len(data):
            raise EdgeOptError(f"an external buffer [{start}, {start + size}) lies past the file's end ({len(data)} B)")
        buffer.data = np.frombuffer(data, dtype=np.uint8, count=size, offset=start)
    buffer.offset, buffer.size = 0, 0


_ALIGNED: Dict[int, type] = {}


def _aligned_buffer_class(fb: Any) -> type:
    """BufferT whose Pack writes its bytes 16-byte aligned (int32 biases and int16 kernels are
    read with aligned loads on an MCU); one class per schema module."""
    if id(fb) not in _ALIGNED:

        class AlignedBufferT(fb.BufferT):  # type: ignore[misc]
            def Pack(self, builder: Any) -> int:
                vector = _aligned_vector(builder, self.data) if self.data is not None and len(self.data) else None
                fb.BufferStart(builder)
                if vector is not None:
                    fb.BufferAddData(builder, vector)
                fb.BufferAddOffset(builder, 0)
                fb.BufferAddSize(builder, 0)
                return int(fb.BufferEnd(builder))

        _ALIGNED[id(fb)] = AlignedBufferT
    return _ALIGNED[id(fb)]


def _aligned_vector(builder: Any, data: Any) -> int:
    import numpy as np

    payload = np.asarray(data, dtype=np.uint8).tobytes()
    builder.StartVector(1, len(payload), ALIGNMENT)
    builder.head = builder.head - len(payload)
    builder.Bytes[builder.head : builder.head + len(payload)] = payload
    return int(builder.EndVector())


def _check_options_kept(fb: Any, before: bytes, after: bytes) -> None:
    """The object API drops a union it cannot decode without a word; a rewritten model that lost
    a convolution's stride would compute another function, so a loss is an error here."""
    old, new = fb.Model.GetRootAs(before, 0).Subgraphs(0), fb.Model.GetRootAs(after, 0).Subgraphs(0)
    lost = [i for i in range(old.OperatorsLength()) if _has_options(old, i) and not _has_options(new, i)]
    if lost or new.OperatorsLength() != old.OperatorsLength():
        raise EdgeOptError(
            f"inlining the external buffers lost the options of {len(lost)} operator(s): "
            "report this with the model file; re-export the model below 2 GB with buffers inside"
        )


def _has_options(graph: Any, index: int) -> bool:
    """Whether the operator's builtin-options table is present (its type survives a lost union)."""
    return bool(graph.Operators(index)._tab.Offset(12) != 0)
