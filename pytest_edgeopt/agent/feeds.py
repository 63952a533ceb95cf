"""Eval and calibration data as the model takes it: several named inputs, each batch-first.

Users hand every input batch-first (one row per sample), but models do not all batch on axis 0:
Silero VAD's recurrent state is `[2, N, 128]`, and its sample rate `sr` is a scalar fed once per
call. The axis is read from the runtime's own input shape (the dynamic dim the per-sample shape
leaves over), and an input whose declared rank equals the per-sample rank is a constant: every
sample must carry the same value, fed once. One module for the agent and the host's calibration,
so quantization sees the model's inputs exactly as the timed runs do. Numpy only: runs on devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

Shape = Tuple[Optional[int], ...]  # None: a dynamic dim
Arrays = Mapping[str, np.ndarray]  # batch-first, every array the same number of rows


class FeedError(ValueError):
    """The data does not fit the model's input; the message names the input and the fix."""


@dataclass(frozen=True)
class Placement:
    """Where one input's batch goes in the model's tensor: an axis, or nowhere (a constant)."""

    name: str
    axis: Optional[int]  # None: not batched by the model; fed as the first sample's value
    dtype: str


def placements(specs: Sequence[Tuple[str, Shape, str]], arrays: Arrays, *, batch: int) -> Tuple[Placement, ...]:
    """Each model input's batch axis, from its declared shape and the data's per-sample shape."""
    return tuple(
        Placement(name=name, axis=batch_axis(name, shape, _sample_shape(arrays, name), batch=batch), dtype=dtype)
        for name, shape, dtype in specs
    )


def batch_axis(name: str, declared: Shape, sample: Tuple[int, ...], *, batch: int) -> Optional[int]:
    """Axis 0 when it fits (the common case); else the one dynamic dim whose removal leaves the
    sample's shape; None when the model declares the sample's own rank (a constant input)."""
    if not declared and not sample:
        return None  # a scalar input (e.g. a sample rate), given once per sample
    if len(declared) == len(sample) and _fits(declared, sample):
        return None
    if len(declared) == len(sample) + 1:
        fitting = [a for a in range(len(declared)) if _fits(declared[:a] + declared[a + 1 :], sample)]
        dynamic = [a for a in fitting if declared[a] is None]  # a dynamic dim before a fixed one equal to
        fixed = [a for a in fitting if declared[a] == batch]  # the batch: state [2, N, 128] at batch 2
        if dynamic or fixed:
            return (dynamic or fixed)[0]
    shown = "(" + ", ".join("?" if d is None else str(d) for d in declared) + ("," if len(declared) == 1 else "") + ")"
    raise FeedError(
        f"input {name!r}: the model takes shape {shown} but one eval sample has shape {tuple(sample)} "
        "(pass every input batch-first: one row per sample)"
    )


def feed(rows: Arrays, placed: Sequence[Placement]) -> Dict[str, np.ndarray]:
    """One batch of batch-first rows as the model's tensors (moved axis, constants once, dtype)."""
    tensors: Dict[str, np.ndarray] = {}
    for place in placed:
        array = rows[place.name]
        if place.axis is None:
            check_constant(place.name, array)
            tensors[place.name] = np.array(
                array[0], dtype=place.dtype
            )  # keeps a scalar 0-d (ascontiguousarray would not)
        else:
            moved = array if place.axis == 0 else np.moveaxis(array, 0, place.axis)
            tensors[place.name] = np.ascontiguousarray(moved, dtype=place.dtype)
    return tensors


def rows(arrays: Arrays, start: int, stop: int) -> Dict[str, np.ndarray]:
    return {name: array[start:stop] for name, array in arrays.items()}


def sample_count(arrays: Arrays) -> int:
    """The common number of rows; different counts name every input's."""
    counts = {name: len(array) for name, array in arrays.items()}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{name}: {n}" for name, n in counts.items())
        raise FeedError(
            f"the eval inputs hold different numbers of samples ({shown}): give every input one row per sample"
        )
    return next(iter(counts.values()), 0)


def check_constant(name: str, array: np.ndarray) -> None:
    if len(array) > 1 and not np.all(array == array[:1]):
        raise FeedError(
            f"input {name!r} is not batched by the model (it takes one value per call) but its eval "
            "samples differ: give it the same value in every row"
        )


def _sample_shape(arrays: Arrays, name: str) -> Tuple[int, ...]:
    if name not in arrays:
        given = ", ".join(sorted(arrays)) or "none"
        raise FeedError(
            f"the model's input {name!r} has no eval data (given: {given}): name the eval arrays after the inputs"
        )
    return tuple(int(d) for d in arrays[name].shape[1:])


def _fits(declared: Shape, sample: Tuple[int, ...]) -> bool:
    return len(declared) == len(sample) and all(d is None or d == s for d, s in zip(declared, sample))
