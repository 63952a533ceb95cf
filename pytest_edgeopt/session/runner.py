"""EdgeRunner: the `edge_runner` fixture's object, one per test, bound to the session's platform.

It turns whatever the test passes (a zoo name, an EdgeModel, a .onnx path) into a measurement,
and turns a missing optional package into a skip that names the install command.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import pytest

from pytest_edgeopt.errors import DeviceUnreachable, EdgeOptError, MissingDependency, NotOnPlatform
from pytest_edgeopt.judge.budgets import validate_budgets
from pytest_edgeopt.kinds import ModelKind, Note, NoteKind
from pytest_edgeopt.measure.registry import METRICS, Junit
from pytest_edgeopt.measure.result import Measurement, measured_value
from pytest_edgeopt.models.base import MODEL_FILE_SUFFIXES, EdgeModel, within
from pytest_edgeopt.models.zoo import ZOO, load_zoo_model, unknown_model_message
from pytest_edgeopt.optimize.precisions import MIXED, unknown_precision
from pytest_edgeopt.platforms.profiles import Platform
from pytest_edgeopt.runtimes import RuntimeSpec
from pytest_edgeopt.session.gate import Checker
from pytest_edgeopt.session.measuring import Case, explainable

if TYPE_CHECKING:
    from pytest_edgeopt.session.edge_session import EdgeSession

ModelRef = Union[str, Path, EdgeModel]
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
        keep_float: Optional[Sequence[str]] = None,
        **budgets: object,
    ) -> Measurement:
        """Optimize `model` to `precision`, measure it on this runner's platform, record the row.
        `reference=` judges it against another model's FP32 (the teacher of a pruned, distilled
        or low-rank student): accuracy drop, agreement, fidelity, metric drop and the latency and
        size ratios are then against that model. `keep_float=` leaves layers (names, globs on
        names or torch module paths, op types) in float in an INT8 file; `budgets` (e.g.
        `max_accuracy_drop=1.0`) join the test's, and are the goal of precision='int8-mixed'."""
        merged = {**self._budgets, **budgets}
        try:
            cap = int(self._session.settings.max_eval_mb * 1e6)
            edge_model = within(resolve_model(model), max_bytes=cap)
            teacher = within(resolve_model(reference), max_bytes=cap) if reference is not None else None
            _check_arguments(precision, runtime, batch, self._session.runtimes)
            validate_budgets(budgets, where=f"edge_runner.measure({edge_model.name!r})")
            self._refuse_float_layers_on_mcu(keep_float, precision)
            self._check_supported(precision)
            case = Case(
                model=edge_model,
                precision=precision,
                batch=batch,
                runtime=runtime or self._runtime or default_runtime(edge_model, self.platform, self._session.runtimes),
                reference=teacher,
                keep_float=_keep_float(keep_float, precision),
            )
            self._check_keep_float(case)
            search = None
            if precision == MIXED:
                case, search = self._session.mixed(case, nodeid=self._nodeid, budgets=merged)
            row = self._session.measure(case, nodeid=self._nodeid, budgets=merged)
            if search is not None:
                row.measurement = row.measurement.replace(
                    notes=row.measurement.notes + (Note(NoteKind.ARTIFACT, search.note()),), search_key=case.search_key
                )
        except (MissingDependency, NotOnPlatform) as missing:  # not installed here / not runnable on this target
            pytest.skip(str(missing))
        except DeviceUnreachable as unreachable:  # MissingOnDevice too: the platform's on_unreachable decides
            if unreachable.skip:
                pytest.skip(str(unreachable))
            raise
        checker = Checker(self._session, row, case)
        measurement = replace(row.measurement, _checker=checker)
        self._record_properties(measurement)
        return checker(measurement, merged)

    def _refuse_float_layers_on_mcu(self, keep_float: Optional[Sequence[str]], precision: str) -> None:
        """Before the platform's precision list skips it: asking for float layers on a board is an error."""
        if self.platform.mcu is not None and (keep_float or precision == MIXED):
            asked = "int8-mixed" if precision == MIXED else "keep_float="
            raise EdgeOptError(
                f"{asked} on {self.platform.name}: an MCU model cannot keep float layers (TFLite Micro runs "
                "whole-integer files); measure precision='int8'"
            )

    def _check_keep_float(self, case: Case) -> None:
        """Float layers exist in ONNX Runtime's QDQ .onnx files, NNCF's IR (OpenVINO) and
        ai-edge-quantizer's .tflite files (LiteRT)."""
        if not case.keep_float and case.precision != MIXED:
            return
        if not explainable(self._session.runtimes[case.runtime], case.precision):
            asked = "int8-mixed" if case.precision == MIXED else "keep_float="
            raise EdgeOptError(
                f"{asked} is supported on runtime='onnxruntime', 'openvino' and 'tflite' so far, "
                f"not on {case.runtime!r}: measure the case with runtime='onnxruntime', 'openvino' or 'tflite'"
            )

    def _check_supported(self, precision: str) -> None:
        """A precision the target cannot run (e.g. fp16 on a CPU without fp16 kernels) skips."""
        allowed = self.platform.precisions
        if allowed is not None and precision not in allowed:
            pytest.skip(
                f"{precision} is not among the {self.platform.name} platform's precisions ({', '.join(allowed)})"
            )

    def _record_properties(self, m: Measurement) -> None:
        """Every metric of the registry on the JUnit test case; ALWAYS ones even when not measured."""
        prefix = f"edgeopt.{m.model}.{m.precision}"
        for spec in METRICS:
            value = measured_value(m, spec.id)
            if value is not None or spec.junit == Junit.ALWAYS:
                self._record(f"{prefix}.{spec.id}", value)


LITERT = "tflite"  # the runtime (and the format) a .tflite file means


def default_runtime(model: object, platform: Platform, runtimes: Mapping[str, RuntimeSpec]) -> str:
    """The platform's runtime, unless the model is a .tflite file it cannot load: a user who
    hands over a .tflite file and names no runtime means LiteRT. `model` is an EdgeModel, or a
    test's parameter before it is resolved (a zoo name or a path): the one rule for both."""
    tflite = model.kind == ModelKind.TFLITE if isinstance(model, EdgeModel) else str(model).endswith(".tflite")
    if tflite and runtimes[platform.runtime].format != LITERT:
        return LITERT
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


def _keep_float(patterns: Optional[Sequence[str]], precision: str) -> Tuple[str, ...]:
    """keep_float= as given: a list of non-empty strings, on a static INT8 precision."""
    if patterns is None:
        return ()
    if isinstance(patterns, str) or not all(isinstance(p, str) and p for p in patterns):
        raise EdgeOptError(
            f"keep_float={patterns!r}: expected a list of node names, glob patterns or op types, "
            'e.g. keep_float=["/model.22/*", "Sigmoid"]'
        )
    if precision == MIXED:
        raise EdgeOptError("keep_float= is int8-mixed's own result: pass it with precision='int8', or drop it")
    if not precision.startswith("int8") or precision == "int8-dynamic":
        raise EdgeOptError(f"keep_float= keeps layers float in a static INT8 file, not in {precision}")
    return tuple(patterns)


def _check_arguments(precision: str, runtime: Optional[str], batch: int, runtimes: Mapping[str, RuntimeSpec]) -> None:
    why = unknown_precision(precision)
    if why is not None:
        raise EdgeOptError(why)
    if runtime is not None and runtime not in runtimes:
        raise EdgeOptError(f"unknown runtime {runtime!r}; choose from {', '.join(runtimes)}")
    if not isinstance(batch, int) or batch < 1:
        raise EdgeOptError(f"batch must be a whole number >= 1, got {batch!r}")
