"""Run one measurement job: load, evaluate every eval input, time the latency loop, report.

Everything the judge needs travels in the result (raw samples, top-k predictions, the device);
labels stay on the host, so the agent cannot be wrong about accuracy, only about outputs.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from pytest_edgeopt.agent import device, feeds, power, profiling
from pytest_edgeopt.agent.contract import (
    DeviceFacts,
    Evaluation,
    Failure,
    FailureKind,
    Job,
    OutputInfo,
    PairedTiming,
    Pairing,
    PairStop,
    ProfileWhen,
    Result,
    Success,
    Timing,
    failure,
)
from pytest_edgeopt.agent.outputs import OutputsTooLarge, OutputsWriter, batch_first
from pytest_edgeopt.agent.sampling import Samples, paired_sample, reference_workload, sample, warm_up
from pytest_edgeopt.runtimes import RuntimeMissing, create_runtime
from pytest_edgeopt.runtimes.base import ArtifactError, InputError, Runtime, TensorSpec

HEAD_SAMPLES = 16
HEAD_VALUES = 4096
ARGSORT_MAX = 4096  # values per sample past which top-k uses argpartition (dense maps: 65k+ values)
NEAR_TOP_CAP = 10
DEFAULT_IDLE_S = 1.0  # idle power sampled before the loop, subtracted from the loop's
SINGLE_INPUT_KEY = "inputs"  # the .npz key of a single-input model's eval inputs

Feeds = Dict[str, np.ndarray]


class JobError(Exception):
    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def run_job(data: object) -> Result:
    """Never raises: every way a job can go wrong comes back as a Failure with one line."""
    try:
        job = Job.from_dict(data)
    except ValueError as error:  # ContractError, or a malformed sampling plan
        return failure(FailureKind.BAD_JOB, f"the job does not follow the agent contract: {error}")
    result = _answer(job)
    if isinstance(result, Failure) and job.outputs_file and os.path.exists(job.outputs_file):
        os.remove(job.outputs_file)  # a failed job's outputs are never read: leave nothing behind
    return result


def _answer(job: Job) -> Result:
    try:
        return _run(job)
    except JobError as error:
        return failure(error.kind, str(error))
    except RuntimeMissing as missing:
        if missing.module == job.runtime.module:  # not the runtime's package: the runtime itself is unknown
            return failure(FailureKind.BAD_JOB, f"unknown runtime {job.runtime.name!r}: no module {job.runtime.module}")
        return _missing(job, missing.module)
    except Exception as error:  # the host turns this into one line; the agent must always answer
        return failure(FailureKind.INTERNAL, f"agent error: {type(error).__name__}: {error}")


# import names whose pip name differs, for the one-line hint of a runtime's missing dependency
PIP_NAMES = {"yaml": "PyYAML", "ruamel": "ruamel.yaml", "google": "protobuf"}


def _missing(job: Job, module: Optional[str]) -> Failure:
    """The runtime's own package, or one of its dependencies named as itself: "flatbuffers is not
    installed (executorch needs it)" says what to install, "executorch is not installed" would not."""
    top = (module or "").split(".")[0]
    runtime_package = job.runtime.package.replace("-", "_").lower()
    if not top or top.lower() == runtime_package or not job.runtime.package:
        return failure(FailureKind.MISSING_RUNTIME, job.runtime.install_hint())
    dependency = PIP_NAMES.get(top, top.replace("_", "-"))
    return failure(
        FailureKind.MISSING_RUNTIME,
        f"{dependency} is not installed ({job.runtime.package} needs it): pip install {dependency}",
        package=dependency,
    )


def _run(job: Job) -> Success:
    _check_copies(job)
    runtime = create_runtime(job.runtime.module, job.runtime.cls)
    load_ms = _timed_load(runtime, job)
    batches, count = _eval_batches(runtime, job)
    first_ms, evaluation = _evaluate(runtime, batches, count, job)
    info = runtime.info()
    if job.evaluate_only:
        runtime.close()
        return Success(
            runtime=info,
            evaluation=evaluation,
            batch=job.batch,
            threads=job.threads,
            load_ms=load_ms,
            first_inference_ms=first_ms,
        )
    profiled = None
    if job.pairing is not None:
        timing, pair, facts = _paired_timing(runtime, batches, job, job.pairing)
        if pair.profile is not None:
            profiled = profiling.profile(runtime, batches, runs=_profile_runs(job))
    else:
        (timing, facts), pair = _timing(runtime, batches, job), None
        if job.profile is not None and job.profile.when == ProfileWhen.ALWAYS:
            profiled = profiling.profile(runtime, batches, runs=_profile_runs(job))
    runtime.close()
    return Success(
        runtime=info,
        evaluation=evaluation,
        batch=job.batch,
        threads=job.threads,
        load_ms=load_ms,
        first_inference_ms=first_ms,
        timing=timing,
        fingerprint=facts,
        paired=pair,
        profile=profiled,
    )


def _profile_runs(job: Job) -> int:
    return job.profile.runs if job.profile is not None else 0


def _wants_profile(job: Job, stopped: PairStop) -> bool:
    """A paired job profiles both sides when asked always, or when its sampling stopped regressed."""
    return job.profile is not None and (job.profile.when == ProfileWhen.ALWAYS or stopped == PairStop.REGRESSED)


def _paired_timing(
    runtime: Runtime, batches: Sequence[Feeds], job: Job, pairing: Pairing
) -> Tuple[Timing, PairedTiming, DeviceFacts]:
    """B (this job's artifact) against A (the pairing's), interleaved in this process."""
    other = _load_other(job, pairing)
    try:
        warm_up(lambda feeds: (other.run(feeds), runtime.run(feeds)), batches, job.plan)
        throttled_before = device.throttled()
        busy0, own0 = device.busy_cpu_seconds(), time.process_time()
        samples = paired_sample(other.run, runtime.run, batches, pairing)
        foreign = _foreign_cores(busy0, own0, samples.seconds)
        throttled_after = device.throttled()
        # after the timed samples, on separate profiling sessions: A here, B by the caller
        other_profile = (
            profiling.profile(other, batches, runs=_profile_runs(job)) if _wants_profile(job, samples.stopped) else None
        )
    finally:
        other.close()
    timing = Timing(
        wall_ms=tuple(samples.b.wall_ms),
        cpu_ms=tuple(samples.b.cpu_ms),
        capped=samples.stopped == PairStop.CAP,
        peak_rss_mb=device.peak_rss_mb(),
        foreign_cores=foreign,
        throttled_before=throttled_before,
        throttled_after=throttled_after,
    )
    pair = PairedTiming(
        wall_ms=tuple(samples.a.wall_ms),
        cpu_ms=tuple(samples.a.cpu_ms),
        ratios=tuple(samples.ratios),
        signal=pairing.signal,
        looks=samples.looks,
        stopped=samples.stopped,
        seconds=samples.seconds,
        profile=other_profile,
    )
    return timing, pair, device.fingerprint()


def _load_other(job: Job, pairing: Pairing) -> Runtime:
    """The A side: the same runtime and threads, the other artifact, the same inputs."""
    if pairing.artifact_sha256 and _sha256(pairing.artifact) != pairing.artifact_sha256:
        raise JobError(FailureKind.STALE_FILE, f"{_basename(pairing.artifact)} on the device does not match its sha256")
    other = create_runtime(job.runtime.module, job.runtime.cls)
    try:
        other.load(pairing.artifact, threads=job.threads, options=job.options)
    except ArtifactError as error:
        raise JobError(FailureKind.BAD_ARTIFACT, f"cannot load {_basename(pairing.artifact)}: {error}") from None
    return other


def _timing(runtime: Runtime, batches: Sequence[Feeds], job: Job) -> Tuple[Timing, DeviceFacts]:
    meter = _meter(job.power)
    run: Callable[[Feeds], object] = runtime.run
    warmups = warm_up(run, batches, job.plan)
    throttled_before = device.throttled()
    busy0, own0 = device.busy_cpu_seconds(), time.process_time()
    reference = reference_workload() if job.reference_workload else None
    samples, reading = _timed(meter, lambda: sample(run, batches, job.plan, reference), job.power)
    foreign = _foreign_cores(busy0, own0, sum(samples.wall_ms) / 1e3)
    timing = Timing(
        wall_ms=tuple(samples.wall_ms),
        cpu_ms=tuple(samples.cpu_ms),
        capped=samples.capped,
        warmup_runs=warmups,
        reference_wall_ms=tuple(samples.reference_wall_ms),
        reference_cpu_ms=tuple(samples.reference_cpu_ms),
        peak_rss_mb=device.peak_rss_mb(),
        foreign_cores=foreign,
        throttled_before=throttled_before,
        throttled_after=device.throttled(),
        power=reading,
    )
    return timing, device.fingerprint()


def _meter(spec: Optional[Mapping[str, object]]) -> Optional[power.PowerMeter]:
    """Made before timing, so a misconfigured meter fails the job before minutes of sampling."""
    try:
        return power.make_meter(dict(spec) if spec is not None else None)
    except power.PowerMeterError as error:
        raise JobError(FailureKind.POWER, str(error)) from None


def _timed(
    meter: Optional[power.PowerMeter], run: Callable[[], Samples], spec: Optional[Mapping[str, object]]
) -> Tuple[Samples, Optional[power.PowerReading]]:
    """The latency loop, inside the power meter's tracking when there is one (idle measured first)."""
    if meter is None:
        return run(), None
    idle = (spec or {}).get("idle_s", DEFAULT_IDLE_S)
    try:
        samples, reading = power.measure(meter, run, idle_s=float(idle) if isinstance(idle, (int, float)) else -1.0)
    except power.PowerMeterError as error:
        raise JobError(FailureKind.POWER, str(error)) from None
    return samples, reading


def _check_copies(job: Job) -> None:
    """Files on a device are reused by name; their content must still be what the host sent
    (another user's process, a disk error or a half-done copy would otherwise be measured)."""
    for path, expected in ((job.artifact, job.artifact_sha256), (job.inputs, job.inputs_sha256)):
        if expected and _sha256(path) != expected:
            raise JobError(FailureKind.STALE_FILE, f"{_basename(path)} on the device does not match its sha256")


def _sha256(path: str) -> Optional[str]:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _timed_load(runtime: Runtime, job: Job) -> float:
    start = time.perf_counter()
    try:
        runtime.load(job.artifact, threads=job.threads, options=job.options)
    except ArtifactError as error:
        raise JobError(FailureKind.BAD_ARTIFACT, f"cannot load {_basename(job.artifact)}: {error}") from None
    return (time.perf_counter() - start) * 1e3


def _eval_batches(runtime: Runtime, job: Job) -> Tuple[List[Feeds], int]:
    """Split the eval inputs into batches, padding the last one by repetition (outputs dropped);
    each input's batch goes on the axis the model declares for it (feeds.py)."""
    specs = list(runtime.inputs())
    arrays = _inputs_by_name(job.inputs, specs)
    count = _common_count(arrays)
    placed = [_placement(spec, arrays[spec.name], job.batch, several=len(specs) > 1) for spec in specs]
    padded = {name: _padded(array, job.batch) for name, array in arrays.items()}
    total = len(next(iter(padded.values())))
    try:
        return [feeds.feed(feeds.rows(padded, i, i + job.batch), placed) for i in range(0, total, job.batch)], count
    except feeds.FeedError as error:
        raise JobError(FailureKind.BAD_INPUT, str(error)) from None


def _placement(spec: TensorSpec, array: np.ndarray, batch: int, *, several: bool) -> feeds.Placement:
    """Where the input's batch goes; a single input's shape that fits nowhere gets the axis-0
    explanation (a fixed batch, NCHW vs NHWC); a constant must be one value in every row."""
    sample = tuple(int(d) for d in array.shape[1:])
    try:
        axis = feeds.batch_axis(spec.name, spec.shape, sample, batch=batch)
    except feeds.FeedError as error:
        if not several and len(spec.shape) != len(sample):
            _check_shape(array.shape, spec.shape, batch, name=None)
        raise JobError(FailureKind.BAD_INPUT, str(error)) from None
    if axis is None:
        try:
            feeds.check_constant(spec.name, array)
        except feeds.FeedError as error:
            raise JobError(FailureKind.BAD_INPUT, str(error)) from None
    return feeds.Placement(name=spec.name, axis=axis, dtype=spec.dtype)


def _inputs_by_name(path: str, specs: Sequence[TensorSpec]) -> Dict[str, np.ndarray]:
    with np.load(path) as data:
        stored = {key: np.asarray(data[key]) for key in data.files}
    if len(specs) == 1 and SINGLE_INPUT_KEY in stored and specs[0].name not in stored:
        return {specs[0].name: stored[SINGLE_INPUT_KEY]}
    missing = [spec.name for spec in specs if spec.name not in stored]
    if missing and _positional(specs) and len(stored) == len(specs):
        return {spec.name: stored[key] for spec, key in zip(specs, stored)}  # the eval dict's order: forward's
    if missing:
        given = ", ".join(sorted(stored)) or "none"
        raise JobError(
            FailureKind.BAD_INPUT,
            f"the model's input(s) {', '.join(missing)} have no eval data "
            f"(given: {given}): name the eval arrays after the inputs",
        )
    return {spec.name: stored[spec.name] for spec in specs}


def _positional(specs: Sequence[TensorSpec]) -> bool:
    """A file that keeps no input names (ExecuTorch numbers them `input_0`, litert-torch
    `serving_default_args_0`): the eval arrays are taken in the order they were given, which for
    a torch model is forward's."""
    return all(spec.name == f"input_{i}" or spec.name.endswith(f"args_{i}") for i, spec in enumerate(specs))


def _common_count(arrays: Mapping[str, np.ndarray]) -> int:
    try:
        return feeds.sample_count(arrays)
    except feeds.FeedError as error:
        raise JobError(FailureKind.BAD_INPUT, str(error)) from None


def _padded(array: np.ndarray, batch: int) -> np.ndarray:
    if len(array) % batch == 0:
        return array
    return np.concatenate([array, np.repeat(array[-1:], batch - len(array) % batch, axis=0)])


def _check_shape(
    given: Tuple[int, ...], expected: Tuple[Optional[int], ...], batch: int, *, name: Optional[str]
) -> None:
    want = (batch,) + tuple(given[1:])
    fits = len(want) == len(expected) and all(e is None or e == w for e, w in zip(expected, want))
    if not fits and expected and expected[0] not in (None, batch) and tuple(expected[1:]) == tuple(given[1:]):
        raise JobError(
            FailureKind.BAD_INPUT,
            f"the model file has a fixed batch of {expected[0]}: measure it "
            f"with batch={expected[0]}, or export it with that batch",
        )
    if not fits:
        shown = tuple("?" if e is None else e for e in expected)
        which = f"input {name!r}" if name else "input"
        raise JobError(
            FailureKind.BAD_INPUT,
            f"the model takes {which} shape {shown} but the eval data gives "
            f"{want} at batch {batch}{_layout_hint(want, expected)}",
        )


def _layout_hint(given: Tuple[int, ...], expected: Tuple[Optional[int], ...]) -> str:
    """NCHW data for an NHWC file (or the reverse) is the usual cause with .tflite models."""
    if len(given) != 4 or len(expected) != 4 or None in expected[1:]:
        return ""
    for order, hint in (
        ((2, 3, 1), "NCHW and the model NHWC: pass x.transpose(0, 2, 3, 1)"),
        ((3, 1, 2), "NHWC and the model NCHW: pass x.transpose(0, 3, 1, 2)"),
    ):
        if tuple(given[i] for i in order) == tuple(expected[1:]):
            return f"; the data looks {hint}"
    return ""


def _evaluate(runtime: Runtime, batches: List[Feeds], count: int, job: Job) -> Tuple[float, Evaluation]:
    """Every eval batch once, reduced as it goes (top-k of the scored output, the parity head)
    and, when the host asked, every output streamed to the outputs file."""
    specs = list(runtime.outputs())
    names = [spec.name for spec in specs]
    scored = _scored_index(job.output, names)
    writer = OutputsWriter(job.outputs_file, names, max_mb=job.max_outputs_mb) if job.outputs_file else None
    reduced = _Reduced(step=runtime.info().output_step)
    start = time.perf_counter()
    first_ms = 0.0
    try:
        for index, batch in enumerate(batches):
            raw = _checked(_run_once(runtime, batch))
            first_ms = first_ms or (time.perf_counter() - start) * 1e3
            valid = min(job.batch, count - index * job.batch)
            outputs = [batch_first(o, _declared(specs, j), batch=job.batch)[:valid] for j, o in enumerate(raw)]
            reduced.add(outputs, scored, job.topk)
            if writer is not None:
                writer.add(outputs)
        if writer is not None:
            writer.close()
    except OutputsTooLarge as size:
        raise JobError(FailureKind.BAD_OUTPUT, _too_large(job, size, done=reduced.count, count=count)) from None
    finally:
        if writer is not None and not os.path.exists(writer.path):
            writer.abort()
    return first_ms, reduced.evaluation(count, names, scored, job, writer)


def _run_once(runtime: Runtime, batch: Feeds) -> List[np.ndarray]:
    try:
        return list(runtime.run(batch))
    except InputError as error:
        raise JobError(FailureKind.BAD_INPUT, f"inference failed: {error}") from None


def _checked(outputs: List[np.ndarray]) -> List[np.ndarray]:
    """Every output must be finite."""
    arrays = [np.asarray(output) for output in outputs]
    for array in arrays:
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            bad = int(np.sum(~np.isfinite(array)))
            raise JobError(FailureKind.BAD_OUTPUT, f"the model produced {bad} NaN/inf output values")
    return arrays


def _scored_index(output: Optional[str], names: Sequence[str]) -> int:
    """`output=` by name or index; the first output by default."""
    if output is None:
        return 0
    if output in names:
        return list(names).index(output)
    if output.lstrip("-").isdigit() and -len(names) <= int(output) < len(names):
        return int(output) % len(names)
    raise JobError(
        FailureKind.BAD_INPUT,
        f"the model has no output {output!r} (its outputs: {', '.join(names)}): pass output= one of them or its index",
    )


def _declared(specs: Sequence[TensorSpec], index: int) -> feeds.Shape:
    return specs[index].shape if index < len(specs) else ()


def _too_large(job: Job, size: OutputsTooLarge, *, done: int, count: int) -> str:
    return (
        f"the eval set's outputs pass the cap of {job.max_outputs_mb:g} MB ({size} after {done} of {count} "
        "samples): evaluate fewer samples, or raise edgeopt_max_outputs_mb"
    )


class _Reduced:
    """What the host needs of the scored output, gathered batch by batch."""

    def __init__(self, *, step: Optional[float]) -> None:
        self.step = step
        self.top_k: List[Tuple[int, ...]] = []
        self.near: List[Tuple[int, ...]] = []
        self.head: List[np.ndarray] = []
        self.count = 0
        self.shapes: List[Tuple[Tuple[int, ...], str]] = []

    def add(self, outputs: Sequence[np.ndarray], scored: int, k: int) -> None:
        flat = np.asarray(outputs[scored]).reshape(len(outputs[scored]), -1)
        self.top_k += _top_k_rows(flat, k)
        if self.step:
            self.near += _near_rows(flat, self.step)
        if self.count < HEAD_SAMPLES:
            self.head.append(flat[: HEAD_SAMPLES - self.count, :HEAD_VALUES].astype(np.float32))
        self.count += len(flat)
        self.shapes = [(tuple(int(d) for d in o.shape[1:]), o.dtype.name) for o in outputs]

    def evaluation(
        self, count: int, names: Sequence[str], scored: int, job: Job, writer: Optional[OutputsWriter]
    ) -> Evaluation:
        named = list(names) or [f"output_{i}" for i in range(len(self.shapes))]
        head = np.concatenate(self.head)
        return Evaluation(
            top_k=tuple(self.top_k),
            eval_count=count,
            output_shape=self.shapes[scored][0],
            outputs_head=tuple(tuple(float(v) for v in row) for row in head) if job.keep_outputs else None,
            near_top1=tuple(self.near) if self.step else None,
            outputs=tuple(OutputInfo(name=n, shape=sh, dtype=dt) for n, (sh, dt) in zip(named, self.shapes)),
            scored=named[scored],
            outputs_file=writer.path if writer is not None else None,
            outputs_mb=round(writer.bytes / 1e6, 6) if writer is not None else 0.0,
        )


def _top_k_rows(flat: np.ndarray, k: int) -> List[Tuple[int, ...]]:
    """Top-k indices per sample, best first (stable among ties); a dense map's top-k by
    argpartition (its agreement is not reported, and argsort of 65k+ values per sample is waste)."""
    k = min(k, flat.shape[1])
    values = flat.astype(np.float64)
    if flat.shape[1] > ARGSORT_MAX:
        part = np.argpartition(-values, k - 1, axis=1)[:, :k]
        best = np.argsort(-np.take_along_axis(values, part, axis=1), axis=1, kind="stable")
        order = np.take_along_axis(part, best, axis=1)
    else:
        order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return [tuple(int(i) for i in row) for row in order]


def _near_rows(flat: np.ndarray, step: float) -> List[Tuple[int, ...]]:
    """With quantized outputs, classes within one output step of the maximum are indistinguishable
    to the model; the host counts the reference top-1 among them as agreement, and says so."""
    cap = min(NEAR_TOP_CAP, flat.shape[1])
    order = np.argsort(-flat, axis=1, kind="stable")[:, :cap]  # closest to the maximum first
    best = np.take_along_axis(flat, order, axis=1)
    near = best >= best[:, :1] - step * 1.001
    return [tuple(int(i) for i in row[keep]) for row, keep in zip(order, near)]


def _foreign_cores(busy0: Optional[float], own0: float, wall_s: float) -> Optional[float]:
    busy1 = device.busy_cpu_seconds()
    if busy0 is None or busy1 is None or wall_s <= 0:
        return None
    foreign = (busy1 - busy0) - (time.process_time() - own0)
    return round(max(foreign, 0.0) / wall_s, 3)


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]
