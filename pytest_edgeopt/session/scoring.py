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


# a scored output whose FP32 argmax leaves the labels' classes this often does not score those classes
OUTSIDE_LABELS_MAX = 0.5


def class_scores(evaluation: Evaluation, *, model: EdgeModel, is_reference: bool) -> bool:
    """Whether the scored output holds class scores, so top-1 and agreement mean something: the
    user says so (`classifier=True`, the zoo's classifiers), or labels are class ids that fit it.
    An output of coordinates, a box regression or per-anchor scores has a "class axis" by shape
    only: it is judged by fidelity. Labels that do not fit the scored output fail in one line
    (checked on the reference, whose run every other precision waits for)."""
    if evaluation.classes is None:
        if is_reference and _class_id_labels(model):
            raise EdgeOptError(_misfit(model, evaluation, "has no class axis"))
        return False
    if model.classifier:
        return True
    if not _class_id_labels(model):
        return False
    if is_reference:
        _check_labels_fit(model, evaluation)
    return True


def _class_id_labels(model: EdgeModel) -> bool:
    return model.metric is None and model.eval_labels is not None


def _check_labels_fit(model: EdgeModel, evaluation: Evaluation) -> None:
    labels = np.asarray(model.eval_labels)
    classes = evaluation.classes or 0
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise EdgeOptError(
            _misfit(model, evaluation, f"has {classes} classes, the labels run {labels.min()}..{labels.max()}")
        )
    known = set(np.unique(labels).tolist())
    top1 = float(np.mean([row[0] == label for row, label in zip(evaluation.top_k, labels)]))
    majority = float(np.max(np.unique(labels, return_counts=True)[1])) / max(labels.size, 1)
    if len(known) < classes and top1 < majority:
        why = (
            f"does not score the labels' classes: its FP32 top-1 {top1:.2f} is below always answering the "
            f"commonest label ({majority:.2f}), and {classes - len(known)} of its {classes} classes are no label"
        )
        raise EdgeOptError(_misfit(model, evaluation, why))
    outside = float(np.mean([row[0] not in known for row in evaluation.top_k])) if evaluation.top_k else 0.0
    if outside > OUTSIDE_LABELS_MAX:
        why = f"does not score the labels' classes: its FP32 argmax falls outside them on {outside:.0%} of samples"
        raise EdgeOptError(_misfit(model, evaluation, why))


def _misfit(model: EdgeModel, evaluation: Evaluation, why: str) -> str:
    outputs = ", ".join(f"{o.name!r} {list(o.shape)}" for o in evaluation.outputs)
    return (
        f"model {model.name!r}: the eval labels are class ids, but the scored output {evaluation.scored!r} "
        f"{list(evaluation.output_shape)} {why}: name the class-score output with output= (outputs: {outputs}), "
        "pass a Metric that reads these labels, or classifier=True if it does hold their classes"
    )


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
