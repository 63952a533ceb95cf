"""Parity: the same FP32 model in two formats, compared value by value.

A converter that changed the function (a dropped op, a wrong layout) shows up here before any
precision is blamed for it; FP32 -> FP32 across runtimes differs by float reassociation only
(4.3e-6 measured on the digits CNN).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Mapping, Optional

import numpy as np

from pytest_edgeopt.agent.contract import Evaluation

PARITY_ATOL, PARITY_RTOL = 1e-4, 1e-3
PARITY_MIN_TOP1 = 0.99


@dataclass(frozen=True)
class Parity:
    runtime: str  # what the row was compared with (ONNX Runtime)
    ok: bool
    top1: Optional[float] = None  # top-1 agreement over every eval input
    max_abs: Optional[float] = None  # over the first outputs
    tolerance: Optional[float] = None
    reason: Optional[str] = None  # why the outputs could not even be compared
    skipped: Optional[str] = None  # why no comparison was made (it informs a row, never fails it)

    def to_dict(self) -> Dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "Parity":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> object:
        """`m.parity["ok"]`, as the record was read before it was typed."""
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    @property
    def failed(self) -> bool:
        return self.skipped is None and not self.ok

    def text(self) -> str:
        if self.skipped is not None:
            return f"parity vs {self.runtime} not checked: {self.skipped}"
        if self.reason:
            return f"PARITY FAILED vs {self.runtime}: {self.reason}"
        head = "parity" if self.ok else "PARITY FAILED"
        return (
            f"{head} vs {self.runtime}: top-1 {(self.top1 or 0.0) * 100:.1f}%, max |diff| {self.max_abs or 0.0:.2g} "
            f"(tolerance {self.tolerance or 0.0:.2g})"
        )


def compare(ours: Evaluation, theirs: Evaluation, *, runtime: str) -> Parity:
    """Top-1 agreement over all eval inputs and the largest absolute output difference over the
    first ones; not ok when either says the two files compute different functions."""
    mine = np.asarray(ours.outputs_head or (), np.float64)
    other = np.asarray(theirs.outputs_head or (), np.float64)
    if mine.shape != other.shape:
        return Parity(
            runtime=runtime,
            ok=False,
            top1=0.0,
            reason=f"output shapes differ: {list(mine.shape)} vs {list(other.shape)}",
        )
    top1 = float(np.mean([a[0] == b[0] for a, b in zip(ours.top_k, theirs.top_k)]))
    max_abs = float(np.max(np.abs(mine - other))) if mine.size else 0.0
    tolerance = PARITY_ATOL + PARITY_RTOL * float(np.max(np.abs(other))) if other.size else PARITY_ATOL
    return Parity(
        runtime=runtime,
        top1=top1,
        max_abs=max_abs,
        tolerance=tolerance,
        ok=bool(max_abs <= tolerance and top1 >= PARITY_MIN_TOP1),
    )


def skipped(runtime: str, why: str) -> Parity:
    return Parity(runtime=runtime, ok=True, skipped=why)
