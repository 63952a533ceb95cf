"""The accuracy signals that need the outputs themselves: fidelity vs the reference, the task metric.

The agent sends every output of the eval set as a file (agent/outputs.py); here the host compares
them with the reference's FP32 outputs one output at a time (two models' worth of one output in
memory, never all of them) and runs the user's metric over them with the labels, which never
leave the host.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy as np

from pytest_edgeopt.agent.contract import Evaluation
from pytest_edgeopt.agent.outputs import check_outputs, output_names, read_outputs
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.measure.metric import Fidelity, Metric, fidelity
from pytest_edgeopt.models.base import EdgeModel

HOST_OUTPUTS_CAP = 16 << 30  # bytes an outputs file may declare: within a 24 GiB machine, whatever a device says
IDENTICAL = Fidelity(sqnr_db=math.inf, cosine=1.0, max_abs=0.0, mean_abs=0.0)  # the reference vs itself


@dataclass(frozen=True)
class Scores:
    fidelity: Dict[str, Fidelity] = field(default_factory=dict)
    metric: Optional[float] = None
    reference_metric: Optional[float] = None


def score(
    evaluation: Evaluation,
    *,
    model: EdgeModel,
    reference_file: Optional[str],
    reference_metric: Optional[float],
    is_reference: bool,
) -> Scores:
    """Fidelity of every output against the reference's (identical for the reference itself),
    and the metric on this artifact's outputs; the reference's metric comes with it, or is
    computed here on the reference's outputs (a teacher measured without this metric)."""
    for path in (evaluation.outputs_file, reference_file):
        _check_outputs(path, model=model)
    if is_reference:
        metric = _metric(model, evaluation.outputs_file)
        return Scores(fidelity={o.name: IDENTICAL for o in evaluation.outputs}, metric=metric, reference_metric=metric)
    fidelities = _fidelities(evaluation.outputs_file, reference_file) if reference_file else {}
    metric = _metric(model, evaluation.outputs_file)
    if metric is not None and reference_metric is None:
        reference_metric = _metric(model, reference_file)
    return Scores(fidelity=fidelities, metric=metric, reference_metric=reference_metric)


def _check_outputs(path: Optional[str], *, model: EdgeModel) -> None:
    if path is None:
        return
    try:
        check_outputs(path, rows=model.eval_count, max_bytes=HOST_OUTPUTS_CAP)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise EdgeOptError(f"model {model.name!r}: {error}") from None


def _fidelities(current: Optional[str], reference: str) -> Dict[str, Fidelity]:
    """Outputs the two files share by name and shape; others (a teacher's extra head) are left out."""
    if current is None:
        return {}
    theirs_names = set(output_names(reference))
    shared = [name for name in output_names(current) if name in theirs_names]
    result: Dict[str, Fidelity] = {}
    for name in shared:
        mine, theirs = read_outputs(current, names=[name])[name], read_outputs(reference, names=[name])[name]
        if mine.shape == theirs.shape:
            result[name] = fidelity(mine, theirs)
    return result


def _metric(model: EdgeModel, outputs_file: Optional[str]) -> Optional[float]:
    metric: Optional[Metric] = model.metric
    if metric is None:
        return None
    if outputs_file is None:
        raise EdgeOptError(f"model {model.name!r}: the agent sent no outputs for its metric {metric.name!r}")
    outputs: Dict[str, np.ndarray] = read_outputs(outputs_file)
    labels: Any = model.eval_labels
    return metric.score(outputs, labels, model=model.name)
