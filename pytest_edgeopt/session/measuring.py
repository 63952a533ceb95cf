"""The Measurer protocol and the host's measurer: builds the artifact, sends the job (Jobs, shared
with the microcontroller's measurer in session/mcu.py), turns the Result into a Measurement.

One measurement per session per (model content, precision, runtime, batch): a second test that
asks for the same case reuses it, and every precision is judged against the FP32 reference of
the same session and device.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Optional, Protocol, Tuple

from pytest_edgeopt._fs import machine_lock_dir
from pytest_edgeopt._isolate import run_isolated
from pytest_edgeopt.agent.contract import (
    Failure,
    FailureKind,
    Job,
    Pairing,
    ProfileRequest,
    ProfileWhen,
    Result,
    RuntimeRef,
    Success,
)
from pytest_edgeopt.agent.power import PowerMeterSpec
from pytest_edgeopt.errors import DeviceUnreachable, EdgeOptError, MissingDependency, MissingOnDevice
from pytest_edgeopt.judge.validity import fingerprint_note, timing_problem
from pytest_edgeopt.kinds import DataSplit, ModelKind, Note, NoteKind, OnUnreachable
from pytest_edgeopt.measure import parity
from pytest_edgeopt.measure.compare import choose_signal
from pytest_edgeopt.measure.result import LatencyStats, LayerError, Measurement, PairedComparison
from pytest_edgeopt.models.base import EdgeModel, InputData, array_hash
from pytest_edgeopt.optimize.artifacts import Artifact, build_artifact, cached_artifact, eval_inputs_file
from pytest_edgeopt.optimize.cache import ArtifactCache
from pytest_edgeopt.optimize.precisions import REFERENCE, get_precision, is_static_int8
from pytest_edgeopt.platforms.profiles import Platform
from pytest_edgeopt.platforms.transport import Transport, host_timing_lock
from pytest_edgeopt.runtimes import RuntimeSpec
from pytest_edgeopt.runtimes.base import RuntimeOptions
from pytest_edgeopt.session.assemble import Reference, assemble
from pytest_edgeopt.settings import Settings

PARITY_RUNTIME, PARITY_FORMAT = "onnxruntime", "onnx"  # every other runtime's FP32 is compared with it
PROFILE_RUNS = 10  # profiled inferences per side, after the timed samples
CaseKey = Tuple[str, str, str, Optional[str], Optional[str], str, str, int, Optional[str], str, Tuple[str, ...]]
PairKey = Optional[Tuple[str, str, float]]


@dataclass(frozen=True)
class PairRequest:
    """Time the case against another artifact (A) in the same agent process."""

    against: str  # "baseline", or the precision compared with
    artifact: Artifact  # A
    limit: float  # the largest allowed median ratio, for the job's sequential stopping

    def key(self) -> Tuple[str, str, float]:
        return (self.against, self.artifact.key, self.limit)


@dataclass(frozen=True)
class Case:
    """What is measured: a model at a precision on a runtime, at a batch size."""

    model: EdgeModel
    precision: str
    runtime: str
    batch: int
    reference: Optional[EdgeModel] = None  # reference=: judged against this model's FP32 (a teacher)
    keep_float: Tuple[str, ...] = ()  # layer patterns left in float (keep_float=, or int8-mixed's choice)
    search_key: str = ""  # int8-mixed: what its search saw (stored with the baseline beside keep_float)

    def at(self, precision: str) -> "Case":
        return replace(self, precision=precision, keep_float=())

    def yardstick(self) -> Optional["Case"]:
        """The FP32 case this one is judged against; None for the FP32 reference itself."""
        if self.reference is not None:
            return Case(model=self.reference, precision=REFERENCE, runtime=self.runtime, batch=self.batch)
        return None if self.precision == REFERENCE else self.at(REFERENCE)

    @property
    def label(self) -> str:
        return f"{self.model.name} [{self.precision}, {self.runtime}]"

    def key(self) -> CaseKey:
        """All that shapes a Measurement, so reuse never hands one model's row to another: the
        name and labels go into the row, the calibration data into every quantized artifact."""
        model = self.model
        labels = None if model.eval_labels is None else array_hash(model.eval_labels)
        calibration = None if self.precision == REFERENCE else model.data_hash(DataSplit.CALIBRATION)
        return (
            model.name,
            model.content_hash(),
            model.data_hash(DataSplit.EVAL),
            labels,
            calibration,
            self.precision,
            self.runtime,
            self.batch,
            self.reference.content_hash() if self.reference is not None else None,
            _scoring_key(model),
            self.keep_float,
        )


class Measurer(Protocol):
    """What the session and the gate ask of a measurer: the host's (HostMeasurer) or a
    microcontroller's (session/mcu.py McuMeasurer). Both build, send and read jobs with one Jobs."""

    @property
    def cache(self) -> ArtifactCache: ...

    def measurement(self, case: Case, pair: Optional[PairRequest] = None) -> Measurement:
        """Measured once per session (per pairing); later calls reuse it."""

    def paired(self, case: Case, pair: PairRequest) -> Optional[PairedComparison]:
        """The case against A in one process; None when that cannot be done."""

    def remeasure(self, case: Case) -> Measurement:
        """A fresh run of the same artifact, for an inconclusive latency verdict."""

    def cached(self, case: Case, sha: Optional[str]) -> Optional[Artifact]:
        """The artifact a baseline was measured on, if this cache still holds it intact."""

    def artifact_of(self, case: Case) -> Artifact: ...

    def sensitivity(self, case: Case) -> Optional[Tuple[LayerError, ...]]:
        """The case's per-layer errors, worst first; None where its runtime's INT8 cannot say."""

    def close(self) -> None: ...


# MediaPipe's custom ops that XNNPACK runs although TFLite's own kernels do not have them
XNNPACK_CUSTOM_OPS = frozenset({"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D"})


def user_error(error: str, case: Case, artifact: Artifact) -> str:
    """The error with the user's file in place of the cache entry (users_file), and a custom op
    the runtime has no kernel for said as such, with the file that uses it."""
    custom = re.search(r"unresolved custom op: (\w+)", error)
    if custom is None:
        return users_file(error, case.model, artifact)
    source = case.model.path.name if case.model.path is not None else case.model.name
    op = custom.group(1)
    hint = " (runtime='tflite' runs it through XNNPACK)" if op in XNNPACK_CUSTOM_OPS else ""
    return f"{source} uses the custom op {op}, which {case.runtime} has no kernel for{hint}"


class Jobs:
    """The part every measurer shares: a case's artifact, its job, the job sent to a transport and
    a failed one turned into the exception that fails or skips the test."""

    def __init__(
        self,
        *,
        settings: Settings,
        platform: Platform,
        transport: Transport,
        runtimes: Dict[str, RuntimeSpec],
        meters: Dict[str, PowerMeterSpec],
    ) -> None:
        self.settings = settings
        self.platform = platform
        self.transport = transport
        self.runtimes = runtimes
        self.meters = meters
        self.cache = ArtifactCache(settings.cache_dir, build_lock=host_timing_lock(machine_lock_dir()))
        self._outputs_dir: Optional[Path] = None

    def artifact(self, case: Case) -> Artifact:
        """The case's artifact in the runtime's format, built once and cached by content."""
        return build_artifact(
            case.model,
            precision=get_precision(case.precision),
            batch=case.batch,
            arch=self.platform.target_arch,
            cache=self.cache,
            fmt=self.runtimes[case.runtime].format,
            builder=self.runtimes[case.runtime].builder,
            keep_float=case.keep_float,
        )

    def sensitivity(self, case: Case, artifact: Artifact) -> Optional[Tuple[LayerError, ...]]:
        """Per-layer SQNR of the case's INT8 file (ONNX Runtime's QDQ .onnx, NNCF's IR, ai-edge-
        quantizer's .tflite) against its FP32 file on up to SENSITIVITY_SAMPLES eval samples; None
        where the runtime has no ranking (a microcontroller) or the file came quantized. The user's
        graph runs in a child process under the job's deadline, as calibration does (_isolate.py)."""
        spec = self.runtimes[case.runtime]
        if not explainable(spec, case.precision) or self.platform.mcu is not None or artifact.quantization.as_given:
            return None
        from pytest_edgeopt.optimize.calibration import onnx_batches
        from pytest_edgeopt.optimize.quantize import isolated_sensitivity
        from pytest_edgeopt.optimize.sensitivity import SENSITIVITY_SAMPLES

        root = self.artifact(case.at(REFERENCE))
        count = max(case.batch, (SENSITIVITY_SAMPLES // case.batch) * case.batch)
        what = f"the per-layer INT8 ranking of {case.label}"
        if spec.format == LITERT_FORMAT:
            from pytest_edgeopt.optimize.tflite_sensitivity import isolated_ranking

            return isolated_ranking(what, root.path, artifact.path, _head(case.model.eval_inputs, count), case.batch)
        batches = onnx_batches(root.path, _head(case.model.eval_inputs, count), batch=case.batch)
        if artifact.path.suffix == IR_SUFFIX:  # NNCF's IR, ranked on OpenVINO's own execution
            from pytest_edgeopt.optimize.openvino_sensitivity import isolated_ir_sensitivity

            return run_isolated(what, isolated_ir_sensitivity, root.path, artifact.path, batches)
        return run_isolated(what, isolated_sensitivity, root.path, artifact.path, batches)

    def cached(self, case: Case, sha: Optional[str]) -> Optional[Artifact]:
        """The artifact a baseline was measured on, if this cache still holds it intact."""
        if not sha:
            return None
        spec = self.runtimes[case.runtime]
        return cached_artifact(
            sha, precision=get_precision(case.precision), cache=self.cache, fmt=spec.format, builder=spec.builder
        )

    def send(self, job: Job, case: Case, artifact: Artifact, *, transport: Optional[Transport] = None) -> Success:
        """The job on the platform's transport (or `transport`); a failure raises."""
        result: Result = (transport or self.transport).run(job, timeout_s=self.settings.timeout_s)
        if isinstance(result, Failure):
            named = replace(result, error=user_error(result.error, case, artifact))
            raise self.failure(named, f"{case.model.name} [{artifact.precision.name}, {case.runtime}]", case.runtime)
        return result

    def failure(self, result: Failure, label: str, runtime: str) -> EdgeOptError:
        """A failed job as the exception that fails or skips the test (policy: the platform's)."""
        spec, device, python = self.runtimes[runtime], result.device_address, self.platform.ssh.python
        skip = self.platform.on_unreachable == OnUnreachable.SKIP
        if result.kind == FailureKind.MISSING_RUNTIME and device:
            return MissingOnDevice(package=result.package or spec.package, device=device, python=python, skip=skip)
        if result.kind == FailureKind.MISSING_RUNTIME and result.package:  # one of the runtime's dependencies
            purpose = f"the {runtime} runtime needs it"
            return MissingDependency(package=result.package, extra=spec.extra, purpose=purpose)
        if result.kind == FailureKind.MISSING_RUNTIME:
            return MissingDependency(package=spec.package, extra=spec.extra, purpose=f"the {runtime} runtime")
        if result.kind == FailureKind.MISSING_PACKAGE and device:
            return MissingOnDevice(package=result.package or "numpy", device=device, python=python, skip=skip)
        if result.kind == FailureKind.MISSING_PYTHON and device:
            return MissingOnDevice(package="python3", device=device, message=result.error, skip=skip)
        if result.kind == FailureKind.UNREACHABLE:
            return DeviceUnreachable(f"{label}: {result.error}", skip=skip)
        return EdgeOptError(f"{label}: {result.error}")

    def job(
        self,
        artifact: Artifact,
        case: Case,
        *,
        evaluate_only: bool,
        keep_outputs: bool,
        pair: Optional[PairRequest] = None,
        outputs: bool = False,
    ) -> Job:
        """`outputs`: write every output to the outputs file although only evaluating (a
        microcontroller's run, where the metric and fidelity read them)."""
        spec = self.runtimes[case.runtime]
        threads = self.settings.threads or self.platform.threads
        return Job(
            artifact=str(artifact.path),
            inputs=str(eval_inputs_file(case.model, self.cache)),
            runtime=RuntimeRef(
                name=spec.name, module=spec.module, cls=spec.cls, package=spec.package, extra=spec.extra
            ),
            batch=case.batch,
            threads=threads,
            options=RuntimeOptions(
                providers=tuple(self.platform.providers),
                device=self.platform.runtime_device,
                keep_float_weights=bool(artifact.quantization.kept_float),
            ),
            plan=self.settings.plan,
            topk=5,
            power=self._power(),
            evaluate_only=evaluate_only,
            keep_outputs=keep_outputs,
            pairing=self._pairing(pair, threads) if pair is not None else None,
            profile=None if evaluate_only else self._profile_request(pair),
            output=None if case.model.output is None else str(case.model.output),
            outputs_file=str(self._outputs_path(case)) if outputs or not evaluate_only else None,
            max_outputs_mb=self.settings.max_outputs_mb,
        )

    def _outputs_path(self, case: Case) -> Path:
        """One file per case in a directory of this session, removed with it: outputs are
        compared within the session (against its FP32 reference), never reused by the next."""
        if self._outputs_dir is None:
            self._outputs_dir = Path(tempfile.mkdtemp(prefix="edgeopt-outputs-"))
        return self._outputs_dir / f"{hashlib.sha256(repr(case.key()).encode()).hexdigest()[:20]}.npz"

    def close(self) -> None:
        """The session's outputs files go with it."""
        if self._outputs_dir is not None:
            shutil.rmtree(self._outputs_dir, ignore_errors=True)
            self._outputs_dir = None

    def _profile_request(self, pair: Optional[PairRequest]) -> Optional[ProfileRequest]:
        """--edge-profile: every timed job; otherwise a paired job profiles both sides when it
        stops on "regressed", so the failure can say where the time went."""
        if self.settings.profile:
            return ProfileRequest(when=ProfileWhen.ALWAYS, runs=PROFILE_RUNS)
        return ProfileRequest(when=ProfileWhen.REGRESSED, runs=PROFILE_RUNS) if pair is not None else None

    def _pairing(self, pair: PairRequest, threads: int) -> Pairing:
        """One thread: process CPU time, which other work on the cores leaves nearly alone."""
        return Pairing(
            artifact=str(pair.artifact.path),
            limit=pair.limit,
            signal=choose_signal(threads=threads, has_cpu_samples=True),
            max_s=self.settings.plan.max_s,
        )

    def _power(self) -> Optional[Dict[str, object]]:
        """The profile's meter; a plugin's meter carries where the agent finds its factory."""
        power = self.platform.power
        if power is None:
            return None
        spec = power.to_dict()
        plugin = self.meters.get(power.kind)
        if plugin is not None:
            spec.update(module=plugin.module, factory=plugin.factory)
        return spec


class HostMeasurer:
    """The Measurer of a CPU platform (this machine or a device): timed jobs, paired jobs, the
    FP32 reference of the same session and device, parity of other formats with ONNX Runtime."""

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs
        self.platform = jobs.platform
        self.runtimes = jobs.runtimes
        self._measured: Dict[Tuple[CaseKey, PairKey], Reference] = {}

    @property
    def cache(self) -> ArtifactCache:
        return self.jobs.cache

    def measurement(self, case: Case, pair: Optional[PairRequest] = None) -> Measurement:
        """Measured once per session (per pairing); later calls reuse it."""
        return self._once(case, pair).measurement

    def paired(self, case: Case, pair: PairRequest) -> Optional[PairedComparison]:
        """The case against A in one process, for a budget the measurement job did not pair for;
        None when A cannot run on today's inputs (the caller falls back, and says so)."""
        artifact = self.jobs.artifact(case)
        if artifact.key == pair.artifact.key:
            return None
        try:
            result = self._run(artifact, case, pair=pair)
        except EdgeOptError:
            return None
        return paired_comparison(result, pair)

    def cached(self, case: Case, sha: Optional[str]) -> Optional[Artifact]:
        return self.jobs.cached(case, sha)

    def artifact_of(self, case: Case) -> Artifact:
        return self.jobs.artifact(case)

    def sensitivity(self, case: Case) -> Optional[Tuple[LayerError, ...]]:
        return self.jobs.sensitivity(case, self.jobs.artifact(case))

    def remeasure(self, case: Case) -> Measurement:
        """A fresh run of the same artifact, for an inconclusive latency verdict."""
        return self._fresh(case).measurement

    def close(self) -> None:
        self.jobs.close()

    def _once(self, case: Case, pair: Optional[PairRequest] = None) -> Reference:
        key = (case.key(), pair.key() if pair else None)
        if key not in self._measured:
            self._measured[key] = self._fresh(case, pair)
        return self._measured[key]

    def _fresh(self, case: Case, pair: Optional[PairRequest] = None) -> Reference:
        yardstick = case.yardstick()
        reference = self._once(_checked_yardstick(case, yardstick)) if yardstick is not None else None
        artifact = self.jobs.artifact(case)
        needs_parity = case.precision == REFERENCE and self._compared_with_parity_runtime(case.runtime)
        if pair is not None and pair.artifact.key == artifact.key:
            pair = None  # the same file as the baseline: nothing to pair
        result = self._run_paired_or_alone(artifact, case, pair, keep_outputs=needs_parity)
        measured = assemble(
            result,
            model=case.model,
            artifact=artifact,
            platform=self.platform,
            reference=reference,
            teacher=case.reference is not None,
        )
        if pair is not None and result.paired is not None:
            measured = measured.replace(paired=paired_comparison(result, pair))
        measured = _with_note(measured, fingerprint_note(measured, self.platform))
        if self.jobs.settings.explain and case.precision != REFERENCE:
            measured = measured.replace(sensitivity=self.jobs.sensitivity(case, artifact))
        if needs_parity:
            checked = self._parity(case, result)
            if checked is not None:
                measured = measured.replace(
                    parity=checked, notes=measured.notes + (Note(NoteKind.PARITY, checked.text()),)
                )
        return Reference(
            measurement=measured, top_k=result.evaluation.top_k, outputs_file=result.evaluation.outputs_file
        )

    def _compared_with_parity_runtime(self, runtime: str) -> bool:
        """Another format, or another runtime's own build of it (OpenVINO reads the same .onnx with
        its own kernels): either can compute a different function from ONNX Runtime's."""
        spec = self.runtimes[runtime]
        return runtime != PARITY_RUNTIME and (spec.format != PARITY_FORMAT or bool(spec.builder))

    def _parity(self, case: Case, result: Success) -> Optional[parity.Parity]:
        """The same FP32 model on ONNX Runtime, value by value: a converter that changed the
        function shows up here before any precision is blamed for it."""
        if case.model.kind == ModelKind.TFLITE:  # a user's .tflite has no ONNX twin to compare with
            return None
        twin_case = replace(case, runtime=PARITY_RUNTIME)
        try:
            twin = self._run(self.jobs.artifact(twin_case), twin_case, evaluate_only=True, keep_outputs=True)
        except (MissingDependency, EdgeOptError) as why:  # parity informs a row; it never fails one
            return parity.skipped(PARITY_RUNTIME, str(why).splitlines()[0])
        return parity.compare(result.evaluation, twin.evaluation, runtime=PARITY_RUNTIME)

    def _run_paired_or_alone(
        self, artifact: Artifact, case: Case, pair: Optional[PairRequest], *, keep_outputs: bool
    ) -> Success:
        """Paired when asked; when A cannot run (today's inputs do not fit the baseline's file),
        measured alone, and the judge falls back to the stored samples."""
        if pair is None:
            return self._run(artifact, case, keep_outputs=keep_outputs)
        try:
            return self._run(artifact, case, keep_outputs=keep_outputs, pair=pair)
        except EdgeOptError:
            return self._run(artifact, case, keep_outputs=keep_outputs)

    def _run(
        self,
        artifact: Artifact,
        case: Case,
        *,
        evaluate_only: bool = False,
        keep_outputs: bool = False,
        pair: Optional[PairRequest] = None,
    ) -> Success:
        job = self.jobs.job(artifact, case, evaluate_only=evaluate_only, keep_outputs=keep_outputs, pair=pair)
        return self.jobs.send(job, case, artifact)


QDQ_BUILDERS = ("", "pytest_edgeopt.optimize.openvino:BUILDER")  # ONNX Runtime's quantizer, NNCF
LITERT_FORMAT = "tflite"  # ai-edge-quantizer's full-integer file (the TFLite format's own builder)
WHOLE_INTEGER = ("tflm",)  # TFLite Micro runs integer files only: no float layer, nothing to rank
IR_SUFFIX = ".xml"  # NNCF's INT8 for OpenVINO is an IR


def explainable(spec: RuntimeSpec, precision: str) -> bool:
    """Static INT8 by ONNX Runtime's quantizer (the ONNX format's own builder, a QDQ .onnx), by
    NNCF for OpenVINO (an IR) or by ai-edge-quantizer for LiteRT (a full-integer .tflite): the
    files whose quantized graph sensitivity and keep_float read and write."""
    qdq = spec.format == PARITY_FORMAT and spec.builder in QDQ_BUILDERS
    litert = spec.format == LITERT_FORMAT and not spec.builder and spec.name not in WHOLE_INTEGER
    return (qdq or litert) and is_static_int8(precision)


def _head(data: InputData, count: int) -> InputData:
    return {k: v[:count] for k, v in data.items()} if isinstance(data, dict) else data[:count]


def users_file(error: str, model: EdgeModel, artifact: Artifact) -> str:
    """A runtime names the file it loaded, which is a cache entry (`e45e1b...tflite`): the user
    knows their own file, or their model's name and the precision derived from it."""
    source = model.path.name if model.path is not None else f"{model.name}'s exported file"
    shown = source if artifact.precision.name == REFERENCE else f"{source} ({artifact.precision.name})"
    return error.replace(str(artifact.path), shown).replace(artifact.path.name, shown)


def paired_comparison(result: Success, pair: PairRequest) -> PairedComparison:
    paired = result.paired
    if paired is None:
        raise EdgeOptError("the agent answered a paired job without the pairing's samples")
    return PairedComparison(
        against=pair.against,
        artifact_sha=pair.artifact.key,
        limit=pair.limit,
        signal=paired.signal,
        ratios=paired.ratios,
        looks=paired.looks,
        stopped=paired.stopped,
        seconds=paired.seconds,
        other=LatencyStats.from_values(paired.wall_ms),
        invalid=timing_problem(result.timed()),
        op_profile=paired.profile,
        current_op_profile=result.profile,
    )


def _scoring_key(model: EdgeModel) -> str:
    """The scored output, whether it holds class scores, and the metric shape the row as much as
    the weights do."""
    metric = model.metric
    fn = (
        f"{getattr(metric.fn, '__module__', '')}.{getattr(metric.fn, '__qualname__', repr(metric.fn))}"
        if metric
        else ""
    )
    scored = f"{model.output!r}|{model.classifier}"
    return f"{scored}|{metric.name if metric else ''}|{fn}|{metric.higher_is_better if metric else ''}"


def _checked_yardstick(case: Case, yardstick: Case) -> Case:
    """A teacher judged on other eval data would compare outputs of different inputs."""
    if case.reference is not None and case.reference.data_hash(DataSplit.EVAL) != case.model.data_hash(DataSplit.EVAL):
        raise EdgeOptError(
            f"reference={case.reference.name!r} is evaluated on other eval data than {case.model.name!r}: "
            "build both EdgeModels with the same eval_data"
        )
    return yardstick


def _with_note(m: Measurement, note: Optional[Note]) -> Measurement:
    return m if note is None else replace(m, notes=m.notes + (note,))
