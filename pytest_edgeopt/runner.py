"""EdgeRunner: the `edge_runner` fixture's object, one per test, bound to the session's platform.

It turns whatever the test passes (a zoo name, an EdgeModel, a .onnx path) into a measurement,
and turns a missing optional package into a skip that names the install command.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Union

import pytest

from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.models.zoo import ZOO, load_zoo_model, unknown_model_message
from pytest_edgeopt.optimize.precisions import PRECISIONS
from pytest_edgeopt.platforms.profiles import Platform
from pytest_edgeopt.runtimes import RUNTIMES

ModelRef = Union[str, Path, EdgeModel]
Recorder = Callable[[str, Any], None]


class EdgeRunner:
    def __init__(self, session: Any, *, nodeid: str, record: Recorder) -> None:
        self._session = session
        self._nodeid = nodeid
        self._record = record

    @property
    def platform(self) -> Platform:
        return self._session.platform

    def measure(
        self, model: ModelRef, *, precision: str, runtime: Optional[str] = None, batch: int = 1
    ) -> Measurement:
        """Optimize `model` to `precision`, measure it on this runner's platform, record the row."""
        try:
            edge_model = resolve_model(model)
            _check_arguments(precision, runtime, batch)
            measurement = self._session.measure(
                edge_model, precision=precision, runtime=runtime or self.platform.runtime,
                batch=batch, nodeid=self._nodeid)
        except MissingDependency as missing:
            pytest.skip(str(missing))
        self._record_properties(measurement)
        return measurement

    def _record_properties(self, m: Measurement) -> None:
        prefix = f"edgeopt.{m.model}.{m.precision}"
        for name, value in (("latency_ms", m.latency_ms), ("top1", m.top1), ("agreement", m.agreement),
                            ("size_mb", m.size_mb), ("storage_mb", m.storage_mb),
                            ("peak_rss_mb", m.peak_rss_mb), ("throughput", m.throughput)):
            self._record(f"{prefix}.{name}", value)


def resolve_model(model: ModelRef) -> EdgeModel:
    if isinstance(model, EdgeModel):
        return model
    if isinstance(model, Path) or (isinstance(model, str) and model.endswith(".onnx")):
        return EdgeModel.from_onnx(model)
    if isinstance(model, str):
        if model not in ZOO:
            raise EdgeOptError(unknown_model_message(model))
        return load_zoo_model(model)
    raise EdgeOptError(f"cannot measure a {type(model).__name__}: pass a zoo name, an EdgeModel or a .onnx path")


def _check_arguments(precision: str, runtime: Optional[str], batch: int) -> None:
    if precision not in PRECISIONS:
        raise EdgeOptError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if runtime is not None and runtime not in RUNTIMES:
        raise EdgeOptError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    if not isinstance(batch, int) or batch < 1:
        raise EdgeOptError(f"batch must be a whole number >= 1, got {batch!r}")
