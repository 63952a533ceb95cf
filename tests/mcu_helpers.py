"""Model files for the MCU tests: the committed digits INT8 model with its weights moved after the
flatbuffer, as ai-edge-quantizer writes large models
(EfficientNet-Lite0 INT8: 69 of its 106 buffers). Kept free of torch for the runtime-only venv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

from pytest_edgeopt.inspect.tflite_graph import object_api

DATA = Path(__file__).resolve().parent / "data" / "tflite"
DIGITS_INT8 = DATA / "digits_int8.tflite"
PLACEHOLDER = 1  # the offset a writer puts first; any value > 1 is a real file offset


def externalized(data: bytes, *, min_bytes: int = 128) -> bytes:
    """The same model with the bytes of every buffer of `min_bytes` or more (the weights and
    biases; shapes and permutations stay) after the flatbuffer, addressed by Buffer.offset/size
    and 16-byte aligned: the layout TFLite Micro does not read."""
    with object_api() as fb:
        return _externalized(fb, data, min_bytes)


def _externalized(fb: Any, data: bytes, min_bytes: int) -> bytes:
    import numpy as np

    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    blobs: List[bytes] = []
    for buffer in model.buffers or []:
        if buffer.data is not None and len(buffer.data) >= min_bytes:
            blobs.append(np.asarray(buffer.data, dtype=np.uint8).tobytes())
            buffer.data, buffer.offset, buffer.size = None, PLACEHOLDER, len(blobs[-1])

    def pack() -> bytes:
        builder = fb.flatbuffers.Builder(len(data))
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    head = pack()  # offsets are non-default values already, so real ones do not change its size
    offsets, end = [], _align(len(head))
    for blob in blobs:
        offsets.append(end)
        end = _align(end + len(blob))
    external = [b for b in model.buffers or [] if b.offset == PLACEHOLDER]
    for buffer, offset in zip(external, offsets):
        buffer.offset = offset
    head = pack()
    out = bytearray(head)
    for blob, offset in zip(blobs, offsets):
        out += b"\0" * (offset - len(out)) + blob
    return bytes(out)


def _align(n: int) -> int:
    return (n + 15) // 16 * 16
