"""Every output of the eval set as one compressed `.npz`, written batch by batch.

A host-side metric (IoU on a probability map, a speech detector's frame accuracy) and the fidelity
of every output against FP32 need the outputs themselves, not top-k indices. Written as the eval
set runs, one zip member per output per batch, so the agent never holds a large model's outputs
of the whole set (and never twice); past a size cap the job stops with one line naming the cap.
Batch axis first in the file whatever axis the model put it on. Numpy and zipfile only.
"""

from __future__ import annotations

import os
import re
import zipfile
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from pytest_edgeopt.agent.feeds import Shape

NAMES_MEMBER = "names.npy"
MB = 1e6


class OutputsTooLarge(Exception):
    """The eval set's outputs passed the job's cap."""


class OutputsWriter:
    """Members `<output index>.<batch index>.npy`, renamed into place only when complete."""

    def __init__(self, path: str, names: Sequence[str], *, max_mb: float) -> None:
        self.path, self.names, self.max_mb = path, list(names), max_mb
        self.partial = f"{path}.partial"
        self.bytes = 0
        handle = os.fdopen(os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        self._zip: Optional[zipfile.ZipFile] = zipfile.ZipFile(  # private: a device's cache dir is 0700 too
            handle, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True
        )
        self._handle = handle
        self._batches = 0

    def add(self, outputs: Sequence[np.ndarray]) -> None:
        """One batch, every output batch-first and trimmed of padding rows."""
        self.bytes += sum(int(o.nbytes) for o in outputs)
        if self.bytes > self.max_mb * MB:
            raise OutputsTooLarge(f"{self.bytes / MB:.3g} MB")
        for index, output in enumerate(outputs):
            self._write(f"{index}.{self._batches:06d}.npy", np.ascontiguousarray(output))
        self._batches += 1

    def close(self) -> None:
        self._write(NAMES_MEMBER, np.asarray(self.names, dtype=np.str_))
        self._finish()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        self._finish()
        if os.path.exists(self.partial):
            os.remove(self.partial)

    def _write(self, member: str, array: np.ndarray) -> None:
        assert self._zip is not None
        with self._zip.open(member, "w", force_zip64=True) as handle:
            np.lib.format.write_array(handle, array, allow_pickle=False)

    def _finish(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._handle.close()
            self._zip = None


def read_outputs(path: str, *, names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """Output name -> (eval_count, ...) array; only `names` when given (one output at a time
    keeps the host's memory to one output of two models)."""
    with np.load(path, allow_pickle=False) as data:
        stored = [str(n) for n in data["names"]]
        members = _members(data.files)
        wanted = stored if names is None else [n for n in names if n in stored]
        return {name: _joined(data, members.get(stored.index(name), [])) for name in wanted}


_MEMBER = re.compile(r"^(names|\d{1,6}(\.\d{1,9})?)\.npy$")


def check_outputs(path: str, *, rows: int, max_bytes: int) -> None:
    """A file from a device is untrusted: before numpy reads it, every member is a name this
    contract writes, holds `rows` samples per output in total, declares at most `max_bytes`, and
    inflates to no more than its header declares (a 0.4 MB file once expanded to 25M rows).
    ValueError says what is wrong, in one line."""
    declared, counts = 0, {}  # type: Tuple[int, Dict[int, int]]
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not _MEMBER.match(info.filename):
                raise ValueError(f"the outputs file holds a member this agent never writes: {info.filename[:80]!r}")
            shape, size, header = _npy_header(archive, info)
            if info.file_size > size + header:
                raise ValueError(f"the outputs member {info.filename} inflates past the size its header declares")
            declared += size
            if declared > max_bytes:
                raise ValueError(f"the outputs file declares more than the cap of {max_bytes / 1e6:g} MB")
            if info.filename != "names.npy":
                index = int(info.filename.split(".")[0])
                counts[index] = counts.get(index, 0) + (shape[0] if shape else 1)
    wrong = {i: n for i, n in counts.items() if n != rows}
    if wrong:
        index, count = next(iter(sorted(wrong.items())))
        raise ValueError(f"the outputs file holds {count} rows of output {index} for {rows} eval inputs")


def _npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Tuple[Tuple[int, ...], int, int]:
    """(shape, data bytes, header bytes) from the member's first bytes, without inflating the rest."""
    with archive.open(info) as handle:
        try:
            version = np.lib.format.read_magic(handle)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = reader(handle, max_header_size=10_000)
        except (ValueError, SyntaxError, EOFError) as error:
            raise ValueError(f"the outputs member {info.filename} is not an array ({error})") from None
        header = handle.tell()
    if dtype.hasobject:
        raise ValueError(f"the outputs member {info.filename} holds Python objects")
    return tuple(shape), int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, header


def output_names(path: str) -> Tuple[str, ...]:
    with np.load(path, allow_pickle=False) as data:
        return tuple(str(n) for n in data["names"])


def batch_first(output: np.ndarray, declared: Shape, *, batch: int) -> np.ndarray:
    """The output with its batch axis first: the axis the model declares dynamic (or fixed to the
    batch) whose size is the batch, axis 0 first; an output with no batch axis is one value per
    call, repeated for every sample of the batch."""
    axis = _output_axis(output.shape, declared, batch=batch)
    if axis is None:
        return np.broadcast_to(output[None], (batch,) + output.shape)
    return output if axis == 0 else np.moveaxis(output, axis, 0)


def _output_axis(actual: Tuple[int, ...], declared: Shape, *, batch: int) -> Optional[int]:
    sized = [a for a, d in enumerate(actual) if d == batch]
    if len(declared) == len(actual):
        dynamic = [a for a in sized if declared[a] is None]
        fixed = [a for a in sized if declared[a] == batch]
        if dynamic or fixed:
            return (dynamic or fixed)[0]
    return sized[0] if sized else None


def _members(files: Sequence[str]) -> Mapping[int, List[str]]:
    members: Dict[int, List[str]] = {}
    for name in sorted(f for f in files if f != "names"):
        index = int(name.split(".")[0])
        members.setdefault(index, []).append(name)
    return members


def _joined(data: "np.lib.npyio.NpzFile", members: Sequence[str]) -> np.ndarray:
    parts = [data[m] for m in members]
    return np.concatenate(parts) if len(parts) > 1 else parts[0]
