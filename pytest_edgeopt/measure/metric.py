"""Task metrics and output fidelity: what "accuracy" means for a model that is not a classifier.

Top-1 and argmax agreement say nothing about a detector's probability map or a speech detector's
score (PP-OCR's text detector scored 0.0% "agreement" at INT8 while its map was nearly unchanged).
A `Metric` is the user's own score over the outputs of the whole eval set, run on the host; the
fidelity of every output against FP32 (SQNR, cosine, max/mean absolute error) needs no labels at
all. Pure numpy: it takes arrays, never artifacts.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from pytest_edgeopt.errors import EdgeOptError

SILENT_REFERENCE_DB = -1000.0  # an all-zero reference with a non-zero output: no signal, only noise
MetricFn = Callable[[Dict[str, np.ndarray], Any], float]


@dataclass(frozen=True)
class Metric:
    """`fn(outputs, labels) -> float`, outputs a dict of output name -> array (eval_count, ...);
    `higher_is_better` decides which way a drop points (IoU up, word error rate down)."""

    name: str
    fn: MetricFn
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise EdgeOptError("Metric(name, fn): the name must be a non-empty string, e.g. Metric('IoU', iou)")
        if not callable(self.fn):
            raise EdgeOptError(f"Metric({self.name!r}, fn): fn must be a function (outputs, labels) -> float")

    def score(self, outputs: Dict[str, np.ndarray], labels: Any, *, model: str) -> float:
        """The metric's value; a raising metric or a non-number is one line naming it."""
        try:
            value = self.fn(outputs, labels)
        except Exception as error:
            raise EdgeOptError(f"metric {self.name!r} of model {model!r} raised {_where(error)}") from None
        if isinstance(value, np.ndarray) and value.size == 1:
            value = value.reshape(()).item()
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
            raise EdgeOptError(
                f"metric {self.name!r} of model {model!r} returned {value!r}: it must return one finite number"
            )
        return float(value)

    def drop(self, value: float, reference: float) -> float:
        return metric_drop(value, reference, higher_is_better=self.higher_is_better)


def metric_drop(value: float, reference: float, *, higher_is_better: bool) -> float:
    """Percent of the reference's value lost (positive: worse), so one budget reads the same
    for an IoU of 0.7 and a PSNR of 32 dB; 0 when both are 0."""
    worse = (reference - value) if higher_is_better else (value - reference)
    if reference == 0:
        return 0.0 if worse == 0 else math.copysign(math.inf, worse)
    return 100.0 * worse / abs(reference)


@dataclass(frozen=True)
class Fidelity:
    """One output against the same output of the reference model, over the whole eval set."""

    sqnr_db: float  # signal-to-quantization-noise ratio: 10 log10(sum ref^2 / sum (ref - out)^2); inf: identical
    cosine: float  # of the flattened outputs
    max_abs: float
    mean_abs: float

    def to_dict(self) -> Dict[str, Optional[float]]:
        return {k: (None if math.isinf(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Fidelity":
        sqnr = data.get("sqnr_db")
        return cls(
            sqnr_db=math.inf if sqnr is None else float(sqnr),
            cosine=float(data["cosine"]),
            max_abs=float(data["max_abs"]),
            mean_abs=float(data["mean_abs"]),
        )


def fidelity(output: np.ndarray, reference: np.ndarray) -> Fidelity:
    """float64 sums, so a map of millions of values keeps its precision."""
    out = np.asarray(output, dtype=np.float64).reshape(-1)
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if out.shape != ref.shape:
        raise EdgeOptError(f"output has {out.size} values but the reference's has {ref.size}")
    error = out - ref
    noise, signal = float(np.dot(error, error)), float(np.dot(ref, ref))
    sqnr = math.inf if noise == 0 else (10.0 * math.log10(signal / noise) if signal > 0 else SILENT_REFERENCE_DB)
    norms = float(np.linalg.norm(out) * np.linalg.norm(ref))
    cosine = float(np.dot(out, ref) / norms) if norms > 0 else (1.0 if noise == 0 else 0.0)
    return Fidelity(
        sqnr_db=sqnr,
        cosine=cosine,
        max_abs=float(np.max(np.abs(error))) if error.size else 0.0,
        mean_abs=float(np.mean(np.abs(error))) if error.size else 0.0,
    )


def _where(error: BaseException) -> str:
    """The exception and the metric's own line that raised it (the last frame of its traceback)."""
    frames = traceback.extract_tb(error.__traceback__)
    last = frames[-1] if frames else None
    at = f" at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} ({(last.line or '').strip()})" if last else ""
    return f"{type(error).__name__}: {' '.join(str(error).split())}{at}"
