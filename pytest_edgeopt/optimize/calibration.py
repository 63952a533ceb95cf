"""Calibration batches as the model takes them, for every quantizer that reads an ONNX file.

Calibration data has the eval data's shapes (one array, or a dict of batch-first arrays by input
name), and goes through the same placement as the timed runs (agent/feeds.py): a recurrent state
batched on axis 1 and a constant sample rate reach ORT's and NNCF's calibrators exactly as they
reach the runtime, so the ranges they observe are the ranges the model will see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np

from pytest_edgeopt.agent import feeds
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.onnx_file import input_specs
from pytest_edgeopt.models.base import InputData, count_of


def onnx_batches(src: Path, data: InputData, *, batch: int) -> List[Dict[str, np.ndarray]]:
    """Every whole batch of the calibration data, as feeds of the file's inputs."""
    specs = input_specs(src)
    arrays = _named(data, [name for name, _, _ in specs])
    usable = (count_of(data) // batch) * batch
    if usable == 0:
        raise EdgeOptError(f"calibration needs at least {batch} samples (one batch), got {count_of(data)}")
    try:
        placed = feeds.placements(specs, arrays, batch=batch)
        return [feeds.feed(feeds.rows(arrays, i, i + batch), placed) for i in range(0, usable, batch)]
    except feeds.FeedError as error:
        raise EdgeOptError(f"calibration data of {src.name}: {error}") from None


def _named(data: InputData, names: List[str]) -> Dict[str, np.ndarray]:
    if isinstance(data, dict):
        return dict(data)
    if len(names) != 1:
        raise EdgeOptError(
            f"the model takes {len(names)} inputs ({', '.join(names)}): pass eval and calibration data "
            "as a dict of arrays by those names"
        )
    return {names[0]: data}
