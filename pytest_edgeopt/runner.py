"""EdgeRunner: the `edge_runner` fixture's object, one per test, bound to the session's platform.

It turns whatever the test passes (a zoo name, an EdgeModel, a .onnx path) into a measurement,
and turns a missing optional package into a skip that names the install command.
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

import pytest

from pytest_edgeopt.budgets import Row, check, raise_if_failed
from pytest_edgeopt.errors import DeviceUnreachable, EdgeOptError, EdgeOptWarning, MissingDependency, MissingOnDevice
from pytest_edgeopt.measure.compare import INCONCLUSIVE
from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.models.zoo import ZOO, load_zoo_model, unknown_model_message
from pytest_edgeopt.optimize.precisions import PRECISIONS
from pytest_edgeopt.platforms.profiles import Platform
from pytest_edgeopt.runtimes import RUNTIMES, artifact_format

ModelRef = Union[str, Path, EdgeModel]
MODEL_FILE_SUFFIXES = (".onnx", ".tflite")
Recorder = Callable[[str, Any], None]


class EdgeRunner:
    def __init__(self, session: Any, *, nodeid: str, record: Recorder, budgets: Optional[Dict[str, Any]] = None,
                 runtime: Optional[str] = None) -> None:
        self._session = session
        self._runtime = runtime  # the test's @pytest.mark.edge_runtimes parameter, if it has one
        self._nodeid = nodeid
        self._record = record
        self._budgets = {**session.settings.budgets, **(budgets or {})}

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
            self._check_supported(precision)
            row = self._session.measure(edge_model, precision=precision, batch=batch, nodeid=self._nodeid,
                                        runtime=runtime or self._runtime or self._default_runtime(edge_model))
        except (MissingDependency, MissingOnDevice) as missing:
            pytest.skip(str(missing))
        except DeviceUnreachable as unreachable:
            if unreachable.skip:
                pytest.skip(str(unreachable))
            raise
        checker = _Checker(self._session, row, edge_model)
        measurement = replace(row.measurement, _checker=checker)
        self._record_properties(measurement)
        return checker(measurement, self._budgets)

    def _check_supported(self, precision: str) -> None:
        """A precision the target cannot run (e.g. fp16 on a CPU without fp16 kernels) skips."""
        allowed = self.platform.precisions
        if allowed is not None and precision not in allowed:
            pytest.skip(f"{precision} is not among the {self.platform.name} platform's precisions "
                        f"({', '.join(allowed)})")

    def _default_runtime(self, model: EdgeModel) -> str:
        """The platform's runtime, unless the model is a .tflite file it cannot load: a user who
        hands over a .tflite file and names no runtime means LiteRT."""
        if model.kind == "tflite" and artifact_format(self.platform.runtime) != "tflite":
            return "tflite"
        return self.platform.runtime

    def _record_properties(self, m: Measurement) -> None:
        prefix = f"edgeopt.{m.model}.{m.precision}"
        labelled = m.top1 is not None and m.reference_top1 is not None
        for name, value in (("latency_ms", m.latency_ms), ("top1", m.top1), ("agreement", m.agreement),
                            ("top5_agreement", m.top5_agreement), ("size_mb", m.size_mb),
                            ("storage_mb", m.storage_mb), ("params", m.params), ("gflops", m.gflops),
                            ("peak_rss_mb", m.peak_rss_mb), ("throughput", m.throughput)):
            self._record(f"{prefix}.{name}", value)
        for name, value in (("accuracy_drop", m.accuracy_drop if labelled else None), ("energy_w", m.energy_w),
                            ("energy_mj", m.energy_mj)):
            if value is not None:  # only what this measurement has
                self._record(f"{prefix}.{name}", value)


class _Checker:
    """Judges a measurement against budgets and the baseline, and records the verdict in its row."""

    def __init__(self, session: Any, row: Row, model: EdgeModel) -> None:
        self._session, self._row, self._model = session, row, model

    def __call__(self, m: Measurement, budgets: Dict[str, Any]) -> Measurement:
        context = self._session.context(m, self._model, reference=self._reference(m), remeasure=self._remeasure(m))
        judged, judgement = check(m, budgets, context)
        self._row.merge(replace(judged, _checker=None), judgement)
        if judgement.verdict == INCONCLUSIVE and self._session.settings.inconclusive == "warn":
            warnings.warn(EdgeOptWarning(f"{m.nodeid}: latency verdict inconclusive after "
                                         f"{context.attempts} re-measurements: {'; '.join(judgement.violations)}"))
        raise_if_failed(judged, judgement, inconclusive_fails=self._session.settings.inconclusive == "fail")
        return replace(judged, _checker=self)

    def _reference(self, m: Measurement) -> Callable[[str], Measurement]:
        def measure(precision: str) -> Measurement:
            return self._session.measure_quietly(self._model, precision=precision, runtime=m.runtime, batch=m.batch)
        return measure

    def _remeasure(self, m: Measurement) -> Callable[[], Measurement]:
        return lambda: self._session.remeasure(self._model, precision=m.precision, runtime=m.runtime, batch=m.batch)


def resolve_model(model: ModelRef) -> EdgeModel:
    if isinstance(model, EdgeModel):
        return model
    if isinstance(model, Path) or (isinstance(model, str) and model.endswith(MODEL_FILE_SUFFIXES)):
        return EdgeModel.from_tflite(model) if str(model).endswith(".tflite") else EdgeModel.from_onnx(model)
    if isinstance(model, str):
        if model not in ZOO:
            raise EdgeOptError(unknown_model_message(model))
        return load_zoo_model(model)
    raise EdgeOptError(f"cannot measure a {type(model).__name__}: pass a zoo name, an EdgeModel, "
                       "or a .onnx or .tflite path")


def _check_arguments(precision: str, runtime: Optional[str], batch: int) -> None:
    if precision not in PRECISIONS:
        raise EdgeOptError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if runtime is not None and runtime not in RUNTIMES:
        raise EdgeOptError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    if not isinstance(batch, int) or batch < 1:
        raise EdgeOptError(f"batch must be a whole number >= 1, got {batch!r}")
