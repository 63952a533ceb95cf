"""EdgeRunner: the `edge_runner` fixture's object, one per test, bound to the session's platform.

It turns whatever the test passes (a zoo name, an EdgeModel, a .onnx path) into a measurement,
and turns a missing optional package into a skip that names the install command.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Mapping, Optional, Union

import pytest

from pytest_edgeopt.errors import DeviceUnreachable, EdgeOptError, MissingDependency, NotOnPlatform
from pytest_edgeopt.kinds import ModelKind
from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.measure.values import measured_values
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.models.zoo import ZOO, load_zoo_model, unknown_model_message
from pytest_edgeopt.optimize.precisions import PRECISIONS
from pytest_edgeopt.platforms.profiles import Platform
from pytest_edgeopt.runtimes import RuntimeSpec
from pytest_edgeopt.session.gate import Checker
from pytest_edgeopt.session.measuring import Case

if TYPE_CHECKING:
    from pytest_edgeopt.session import EdgeSession

ModelRef = Union[str, Path, EdgeModel]
MODEL_FILE_SUFFIXES = (".onnx", ".tflite")
Recorder = Callable[[str, object], None]


class EdgeRunner:
    def __init__(
        self,
        session: "EdgeSession",
        *,
        nodeid: str,
        record: Recorder,
        budgets: Optional[Mapping[str, object]] = None,
        runtime: Optional[str] = None,
    ) -> None:
        self._session = session
        self._runtime = runtime  # the test's @pytest.mark.edge_runtimes parameter, if it has one
        self._nodeid = nodeid
        self._record = record
        self._budgets: Dict[str, object] = {**session.settings.budgets, **(budgets or {})}

    @property
    def platform(self) -> Platform:
        return self._session.platform

    def measure(
        self,
        model: ModelRef,
        *,
        precision: str,
        runtime: Optional[str] = None,
        batch: int = 1,
        reference: Optional[ModelRef] = None,
    ) -> Measurement:
        """Optimize `model` to `precision`, measure it on this runner's platform, record the row.
        `reference=` judges it against another model's FP32 (the teacher of a pruned, distilled
        or low-rank student): accuracy drop, agreement, fidelity, metric drop and the latency and
        size ratios are then against that model."""
        try:
            edge_model = resolve_model(model)
            teacher = resolve_model(reference) if reference is not None else None
            _check_arguments(precision, runtime, batch, self._session.runtimes)
            self._check_supported(precision)
            case = Case(
                model=edge_model,
                precision=precision,
                batch=batch,
                runtime=runtime or self._runtime or default_runtime(edge_model, self.platform, self._session.runtimes),
                reference=teacher,
            )
            row = self._session.measure(case, nodeid=self._nodeid, budgets=self._budgets)
        except (MissingDependency, NotOnPlatform) as missing:  # not installed here / not runnable on this target
            pytest.skip(str(missing))
        except DeviceUnreachable as unreachable:  # MissingOnDevice too: the platform's on_unreachable decides
            if unreachable.skip:
                pytest.skip(str(unreachable))
            raise
        checker = Checker(self._session, row, case)
        measurement = replace(row.measurement, _checker=checker)
        self._record_properties(measurement)
        return checker(measurement, self._budgets)

    def _check_supported(self, precision: str) -> None:
        """A precision the target cannot run (e.g. fp16 on a CPU without fp16 kernels) skips."""
        allowed = self.platform.precisions
        if allowed is not None and precision not in allowed:
            pytest.skip(
                f"{precision} is not among the {self.platform.name} platform's precisions ({', '.join(allowed)})"
            )

    def _record_properties(self, m: Measurement) -> None:
        """Every measured number on the JUnit XML test case: `edgeopt.<model>.<precision>.<name>`."""
        prefix = f"edgeopt.{m.model}.{m.precision}"
        for name, value in measured_values(m).items():
            self._record(f"{prefix}.{name}", value)


def default_runtime(model: EdgeModel, platform: Platform, runtimes: Mapping[str, RuntimeSpec]) -> str:
    """The platform's runtime, unless the model is a .tflite file it cannot load: a user who
    hands over a .tflite file and names no runtime means LiteRT."""
    if model.kind == ModelKind.TFLITE and runtimes[platform.runtime].format != "tflite":
        return "tflite"
    return platform.runtime


def resolve_model(model: ModelRef) -> EdgeModel:
    if isinstance(model, EdgeModel):
        return model
    if isinstance(model, Path) or (isinstance(model, str) and model.endswith(MODEL_FILE_SUFFIXES)):
        return EdgeModel.from_tflite(model) if str(model).endswith(".tflite") else EdgeModel.from_onnx(model)
    if isinstance(model, str):
        if model not in ZOO:
            raise EdgeOptError(unknown_model_message(model))
        return load_zoo_model(model)
    raise EdgeOptError(
        f"cannot measure a {type(model).__name__}: pass a zoo name, an EdgeModel, or a .onnx or .tflite path"
    )


def _check_arguments(precision: str, runtime: Optional[str], batch: int, runtimes: Mapping[str, RuntimeSpec]) -> None:
    if precision not in PRECISIONS:
        raise EdgeOptError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if runtime is not None and runtime not in runtimes:
        raise EdgeOptError(f"unknown runtime {runtime!r}; choose from {', '.join(runtimes)}")
    if not isinstance(batch, int) or batch < 1:
        raise EdgeOptError(f"batch must be a whole number >= 1, got {batch!r}")
