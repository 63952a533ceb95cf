"""Rewrite a vendor's .tflite into the plain FP32 file every precision derives from.

Vendors publish files the tools downstream cannot take as they are. MediaPipe ships its float
models with float16 weights (each feeding a DEQUANTIZE op), no SignatureDef and the old opcode
schema (only `deprecated_builtin_code` set): ai-edge-quantizer reads every op of such a table as
ADD, refuses a file without a signature ("SignatureDef signature_key is None and model has 0
Signatures") and cannot derive a precision from weights already in float16. Each rewrite here is
exact: a float16 value widens to float32 without loss, and the DEQUANTIZE op it replaces did that
very widening at run time, so the rewritten file computes what the shipped one computes.

The object API of LiteRT's own schema reads and writes the file; the file itself is never edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import numpy as np

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.tflite_graph import object_api

SIGNATURE_KEY = "serving_default"  # the key converters write and ai-edge-quantizer looks up
_FLOAT16, _FLOAT32 = 1, 0  # schema.TensorType


@dataclass(frozen=True)
class Rewrite:
    """What was changed, each step one sentence for the row's notes (empty: the file is kept)."""

    steps: Tuple[str, ...] = ()
    upcast_weights: int = 0  # float16 weight tensors widened to float32


def plain_fp32(src: Path, dest: Path) -> Rewrite:
    """Write `dest` as `src` with its float16 weights widened, a signature added and the opcode
    table in the current schema, when any of these is needed; `dest` is not written otherwise."""
    with object_api() as schema:
        model = schema.ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
        steps: List[str] = []
        if _normalize_opcodes(model):
            steps.append("opcode table moved from the old schema (deprecated_builtin_code) to builtin_code")
        upcast = _upcast_fp16_weights(model, schema)
        if upcast:
            steps.append(f"{upcast} float16 weight tensors widened to float32 (their DEQUANTIZE ops folded; exact)")
        if _add_signature(model, schema):
            steps.append(f"a SignatureDef {SIGNATURE_KEY!r} added (the file has none)")
        if steps:
            dest.write_bytes(_pack(model, src, schema))
    return Rewrite(steps=tuple(steps), upcast_weights=upcast)


def _normalize_opcodes(model: Any) -> bool:
    """The schema's rule: the real code is max(builtin_code, deprecated_builtin_code); old
    writers set only the deprecated one (a byte), which tools reading builtin_code see as ADD."""
    changed = False
    for code in model.operatorCodes or ():
        real = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        if code.builtinCode != real:
            code.builtinCode, changed = real, True
    return changed


def _upcast_fp16_weights(model: Any, schema: Any) -> int:
    """Fold every DEQUANTIZE of a constant float16 tensor: its float32 output takes the widened
    values as its own buffer, the op and the float16 tensor go. Returns how many were folded."""
    dequantize = schema.BuiltinOperator.DEQUANTIZE
    folded = 0
    for graph in model.subgraphs or ():
        keep, dropped = [], set()
        for op in graph.operators or ():
            if _is_fp16_constant_dequantize(model, graph, op, dequantize):
                source, target = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
                data = np.frombuffer(bytes(model.buffers[source.buffer].data), dtype="<f2")
                target.buffer = _new_buffer(model, schema, data.astype("<f4").tobytes())
                dropped.add(int(op.inputs[0]))
                folded += 1
            else:
                keep.append(op)
        graph.operators = keep
        _drop_tensors(graph, dropped - _still_used(graph))
    if folded:
        _empty_unused_buffers(model)
    return folded


def _empty_unused_buffers(model: Any) -> None:
    """The float16 copies no tensor reads any more leave the file (the buffer table keeps its
    indices: entries are emptied, not removed)."""
    used = {int(t.buffer) for graph in model.subgraphs for t in graph.tensors}
    used |= {int(m.buffer) for m in model.metadata or ()}
    for i, buffer in enumerate(model.buffers):
        if i not in used:
            buffer.data = None


def _is_fp16_constant_dequantize(model: Any, graph: Any, op: Any, dequantize: int) -> bool:
    code = model.operatorCodes[op.opcodeIndex]
    if max(int(code.builtinCode), int(code.deprecatedBuiltinCode)) != dequantize:
        return False
    source = graph.tensors[op.inputs[0]]
    buffer = model.buffers[source.buffer] if 0 < source.buffer < len(model.buffers) else None
    return source.type == _FLOAT16 and buffer is not None and buffer.data is not None and len(buffer.data) > 0


def _new_buffer(model: Any, schema: Any, data: bytes) -> int:
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(data, dtype=np.uint8)
    model.buffers.append(buffer)
    return len(model.buffers) - 1


def _still_used(graph: Any) -> Set[int]:
    used = {int(i) for op in graph.operators or () for i in list(op.inputs) + list(op.outputs)}
    return used | {int(i) for i in list(graph.inputs) + list(graph.outputs)}


def _drop_tensors(graph: Any, dropped: Set[int]) -> None:
    """Remove tensors no op uses any longer, renumbering every reference to the rest."""
    if not dropped:
        return
    old = list(graph.tensors)
    index: Dict[int, int] = {}
    graph.tensors = []
    for i, tensor in enumerate(old):
        if i not in dropped:
            index[i] = len(graph.tensors)
            graph.tensors.append(tensor)

    def renumber(refs: Any) -> List[int]:
        return [index[int(i)] if int(i) >= 0 else -1 for i in refs]

    for op in graph.operators:
        op.inputs, op.outputs = renumber(op.inputs), renumber(op.outputs)
        if op.intermediates is not None and len(op.intermediates):
            op.intermediates = renumber(op.intermediates)
    graph.inputs, graph.outputs = renumber(graph.inputs), renumber(graph.outputs)


def _add_signature(model: Any, schema: Any) -> bool:
    """One signature over the main graph's inputs and outputs, named as the tensors are."""
    if model.signatureDefs:
        return False
    graph = model.subgraphs[0]
    signature = schema.SignatureDefT()
    signature.signatureKey = SIGNATURE_KEY
    signature.subgraphIndex = 0
    signature.inputs = [_tensor_map(schema, graph, int(i)) for i in graph.inputs]
    signature.outputs = [_tensor_map(schema, graph, int(i)) for i in graph.outputs]
    model.signatureDefs = [signature]
    return True


def _tensor_map(schema: Any, graph: Any, index: int) -> Any:
    entry = schema.TensorMapT()
    name = graph.tensors[index].name
    entry.name = name.decode() if isinstance(name, bytes) else str(name)
    entry.tensorIndex = index
    return entry


def _pack(model: Any, src: Path, schema: Any) -> bytes:
    _check_options_kept(model, src)
    builder = schema.flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _check_options_kept(model: Any, src: Path) -> None:
    """The object API drops an op's options it could not decode instead of failing: writing
    that file would change what the model computes."""
    for graph in model.subgraphs or ():
        for op in graph.operators or ():
            if op.builtinOptionsType and op.builtinOptions is None:
                raise EdgeOptError(f"{src.name}: an op's options could not be read, so the file cannot be rewritten")
