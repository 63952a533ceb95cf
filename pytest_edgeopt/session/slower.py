"""Why an INT8 row ran slower than its FP32 reference: said in the row, never hidden.

Seen on PP-OCR's text-direction classifier (0.03 GFLOPs, 53 convolutions): every heavy op was
quantized, yet INT8 took 1.8-2.4x FP32's time, because on a net that small the QuantizeLinear /
DequantizeLinear around each op costs more than the int8 arithmetic saves, and an x86 CPU without
VNNI does int8 dot products in several instructions. The note names those facts; it judges nothing
(a budget such as `max_latency_ratio_vs="fp32"` does that).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from pytest_edgeopt.agent.contract import DeviceFacts
from pytest_edgeopt.kinds import Note, NoteKind
from pytest_edgeopt.optimize.artifacts import Artifact

SLOWER = 1.25  # median ratio above which the row says so: well beyond the drift of separate processes
_X86 = ("x86_64", "amd64", "i686", "x86")
_INT8_DOT = ("avx512_vnni", "avx_vnni", "asimddp")


def slower_note(
    samples_ms: Sequence[float], reference_ms: Sequence[float], *, artifact: Artifact, facts: DeviceFacts
) -> Optional[Note]:
    """A note when this INT8 row's median is clearly above FP32's (same signal, same session)."""
    if not artifact.precision.name.startswith("int8") or not samples_ms or not reference_ms:
        return None
    ratio = float(np.median(samples_ms)) / max(float(np.median(reference_ms)), 1e-9)
    if ratio < SLOWER:
        return None
    reasons = [_graph_reason(artifact), _cpu_reason(facts)]
    why = "; ".join(reason for reason in reasons if reason)
    return Note(NoteKind.ARTIFACT, f"INT8 ran {ratio:.1f}x FP32's time" + (f": {why}" if why else ""))


def _graph_reason(artifact: Artifact) -> str:
    if artifact.path.suffix != ".onnx":
        return ""
    from pytest_edgeopt.inspect.onnx_file import float_ops, op_counts

    counts = op_counts(artifact.path)
    quantize_ops = counts.get("QuantizeLinear", 0) + counts.get("DequantizeLinear", 0)
    left = float_ops(artifact.path)
    parts = []
    if quantize_ops:
        per_op = (artifact.flops or 0) / max(quantize_ops, 1) / 1e6
        parts.append(f"{quantize_ops} Quantize/DequantizeLinear ops around {per_op:.2f} MFLOPs of work each")
    if left:
        parts.append("left in float: " + ", ".join(f"{op} x{n}" for op, n in list(left.items())[:4]))
    return "; ".join(parts)


def _cpu_reason(facts: DeviceFacts) -> str:
    if facts.arch.lower() not in _X86 or not facts.cpu_flags:
        return ""
    if any(flag in facts.cpu_flags for flag in _INT8_DOT):
        return ""
    return "this CPU has no VNNI (no avx512_vnni/avx_vnni): int8 dot products take several instructions"
