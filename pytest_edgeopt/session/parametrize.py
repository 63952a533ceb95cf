"""Collection: the markers expand tests into cases, their arguments are validated, the
`--edge-precision` / `--edge-runtime` filters deselect cases. A wrong name in a marker is one
UsageError listing every mistake at once, before anything is measured."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import pytest

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.judge.budgets import validate_budgets
from pytest_edgeopt.models.base import MODEL_FILE_SUFFIXES, EdgeModel
from pytest_edgeopt.models.zoo import ZOO, unknown_model_message
from pytest_edgeopt.optimize.precisions import unknown_precision

ModelParam = Union[str, Path, EdgeModel]

MARKERS = (
    "edge_models(*names): measure the test for each zoo model name or .onnx/.tflite path (edge_model fixture)",
    "edge_precisions(*names): run the test for each precision, e.g. fp32, int8 (edge_precision fixture)",
    "edge_runtimes(*names): run the test for each runtime, e.g. onnxruntime, tflite (edge_runtime fixture; "
    "edge_runner.measure uses it unless given runtime=)",
    "edge_budget(**budgets): budgets checked after every edge_runner.measure in the test, "
    "e.g. max_storage_mb=5, max_latency_regression='10%'",
)


def generate(
    metafunc: pytest.Metafunc, *, default_precisions: Sequence[str], runtimes: Sequence[str], errors: List[str]
) -> None:
    if "edge_model" in metafunc.fixturenames:
        _parametrize_models(metafunc, errors)
    if "edge_precision" in metafunc.fixturenames:
        _parametrize_precisions(metafunc, default_precisions, errors)
    if "edge_runtime" in metafunc.fixturenames:
        _parametrize_runtimes(metafunc, runtimes, errors)


def _parametrize_models(metafunc: pytest.Metafunc, errors: List[str]) -> None:
    marker = metafunc.definition.get_closest_marker("edge_models")
    if marker is None:
        return
    base = Path(str(metafunc.definition.fspath)).parent
    models = [_model_param(name, base, errors, metafunc.definition.nodeid) for name in marker.args]
    metafunc.parametrize("edge_model", models, indirect=True, ids=[_model_id(m) for m in models])


def _model_param(name: object, base: Path, errors: List[str], nodeid: str) -> ModelParam:
    if isinstance(name, EdgeModel) or (isinstance(name, str) and name in ZOO):
        return name
    if isinstance(name, (str, Path)) and str(name).endswith(MODEL_FILE_SUFFIXES):
        return base / name
    errors.append(f"{nodeid}: @pytest.mark.edge_models: {unknown_model_message(str(name))}")
    return str(name)


def _model_id(model: ModelParam) -> str:
    return model.name if isinstance(model, EdgeModel) else Path(model).stem if isinstance(model, Path) else str(model)


def _parametrize_precisions(metafunc: pytest.Metafunc, defaults: Sequence[str], errors: List[str]) -> None:
    marker = metafunc.definition.get_closest_marker("edge_precisions")
    names = marker.args if marker else tuple(defaults)
    for name in names:
        why = unknown_precision(name)
        if why is not None:
            errors.append(f"{metafunc.definition.nodeid}: @pytest.mark.edge_precisions: {why}")
    metafunc.parametrize("edge_precision", list(names), ids=[str(n) for n in names])


def _parametrize_runtimes(metafunc: pytest.Metafunc, runtimes: Sequence[str], errors: List[str]) -> None:
    """Without the marker the fixture is the platform's runtime and the ids stay as they were."""
    marker = metafunc.definition.get_closest_marker("edge_runtimes")
    if marker is None:
        return
    for name in marker.args:
        if name not in runtimes:
            errors.append(
                f"{metafunc.definition.nodeid}: @pytest.mark.edge_runtimes: unknown runtime "
                f"{name!r}; choose from {', '.join(runtimes)}"
            )
    metafunc.parametrize("edge_runtime", list(marker.args), ids=[str(n) for n in marker.args])


def check_budget_markers(items: Sequence[pytest.Item], errors: List[str]) -> None:
    for item in items:
        where = f"{item.nodeid}: @pytest.mark.edge_budget"
        if any(mark.args for mark in item.iter_markers("edge_budget")):
            errors.append(f"{where} takes keyword budgets only, e.g. edge_budget(max_storage_mb=5)")
            continue
        try:
            validate_budgets(marker_budgets(item), where=where)
        except EdgeOptError as error:
            errors.append(str(error))


def marker_budgets(item: pytest.Item) -> Dict[str, object]:
    """All edge_budget markers of the item; the closest (the function's) wins per budget."""
    budgets: Dict[str, object] = {}
    for mark in reversed(list(item.iter_markers("edge_budget"))):
        budgets.update(mark.kwargs)
    return budgets


def deselected(items: Sequence[pytest.Item], filters: Dict[str, Optional[Tuple[str, ...]]]) -> List[pytest.Item]:
    """The cases a `--edge-precision` / `--edge-runtime` filter leaves out."""
    drop = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(
            wanted is not None and name in params and params[name] not in wanted for name, wanted in filters.items()
        ):
            drop.append(item)
    return drop
