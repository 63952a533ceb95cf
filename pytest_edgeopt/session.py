"""EdgeSession: the state of one pytest run: platform, cache, measurements, baselines and rows.

The plugin module wires hooks to it; everything that persists across tests lives here, in
`config.stash`, and crosses xdist as JSON (workers send rows and what they collected, the
controller renders the table and is the only process that writes baselines).
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import pytest

from pytest_edgeopt.baselines.entry import case_key, changed, entry_from_measurement, mismatch_reason, module_of, test_name
from pytest_edgeopt.baselines.store import BaselineStore, Update
from pytest_edgeopt.budgets import Context, Row
from pytest_edgeopt.errors import DeviceUnreachable, EdgeOptError, MissingDependency, MissingOnDevice
from pytest_edgeopt.measure.assemble import Reference, assemble, parity, parity_text
from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.models.base import EdgeModel, array_hash
from pytest_edgeopt.optimize.artifacts import Artifact, build_artifact, cached_artifact, eval_inputs_file
from pytest_edgeopt.optimize.cache import ArtifactCache
from pytest_edgeopt.optimize.precisions import REFERENCE, get_precision
from pytest_edgeopt.platforms.fingerprint import MISMATCH_NOTE, device_facts, mismatches
from pytest_edgeopt.platforms.profiles import Platform
from pytest_edgeopt.platforms.transport import Transport
from pytest_edgeopt.runtimes import RUNTIMES, artifact_format
from pytest_edgeopt.settings import Settings

session_key = pytest.StashKey["EdgeSession"]()
ROWS_KEY = "edgeopt_rows"
PARITY_RUNTIME, PARITY_FORMAT = "onnxruntime", "onnx"  # every other format's FP32 is compared with it
COLLECTED_KEY = "edgeopt_collected"


class EdgeSession:
    def __init__(self, *, settings: Settings, platform: Platform, transport: Transport) -> None:
        self.settings = settings
        self.platform = platform
        self.transport = transport
        self.cache = ArtifactCache(settings.cache_dir)
        self.store = BaselineStore(root=settings.baselines_dir, platform=platform.name)
        self.rows: List[Row] = []
        self.usage_errors: List[str] = []
        self.collected_nodeids: List[str] = []
        self.collected: Dict[str, Set[str]] = {}  # module -> test names collected
        self.selected: Dict[str, Set[str]] = {}  # module -> test names that were to run
        self.narrowed: Set[str] = set()  # modules the command line named by node id (`test_x.py::test_a`)
        self.outcomes: Dict[str, str] = {}  # nodeid -> passed / failed / skipped
        self.updates: List[Update] = []
        self._measurements: Dict[Tuple[Any, ...], Reference] = {}

    # -- measuring ---------------------------------------------------------------------------

    def measure(self, model: EdgeModel, *, precision: str, runtime: str, batch: int, nodeid: str) -> Row:
        """Measure once per session per (model content, precision, runtime, batch); reuse after."""
        measured = self._measured(model, precision=precision, runtime=runtime, batch=batch)[0]
        row = Row(measurement=replace(measured, nodeid=nodeid))
        self.rows.append(row)
        return row

    def measure_quietly(self, model: EdgeModel, *, precision: str, runtime: str, batch: int) -> Measurement:
        """A measurement for a paired gate (e.g. vs fp32) without adding a row to the table."""
        return self._measured(model, precision=precision, runtime=runtime, batch=batch)[0]

    def reference(self, model: EdgeModel, *, runtime: str, batch: int) -> Reference:
        """The FP32 measurement of `model` and its predictions, the yardstick of every precision."""
        return self._measured(model, precision=REFERENCE, runtime=runtime, batch=batch)

    def remeasure(self, model: EdgeModel, *, precision: str, runtime: str, batch: int) -> Measurement:
        """A fresh run of the same artifact, for an inconclusive latency verdict."""
        return self._fresh(model, precision=precision, runtime=runtime, batch=batch)[0]

    def _measured(self, model: EdgeModel, *, precision: str, runtime: str, batch: int) -> Reference:
        key = _measurement_key(model, precision=precision, runtime=runtime, batch=batch)
        if key not in self._measurements:
            self._measurements[key] = self._fresh(model, precision=precision, runtime=runtime, batch=batch)
        return self._measurements[key]

    def _fresh(self, model: EdgeModel, *, precision: str, runtime: str, batch: int) -> Reference:
        reference = None if precision == REFERENCE else self.reference(model, runtime=runtime, batch=batch)
        artifact = self._artifact(model, precision, batch, runtime)
        needs_parity = precision == REFERENCE and artifact_format(runtime) != PARITY_FORMAT
        result = self._run(artifact, model, runtime=runtime, batch=batch, keep_outputs=needs_parity)
        measured = self._device_checked(assemble(result, model=model, artifact=artifact, platform=self.platform,
                                                 reference=reference, nodeid=""))
        if needs_parity:
            checked = self._parity(model, result, batch=batch)
            if checked is not None:
                measured = replace(measured, parity=checked, notes=measured.notes + (parity_text(checked),))
        return measured, result["top_k"]

    def _device_checked(self, m: Measurement) -> Measurement:
        """The device that answered against the profile's expected fingerprint, per its policy."""
        if self.platform.on_host or not self.platform.fingerprint:
            return m
        problems = mismatches(self.platform.fingerprint, device_facts(m.fingerprint))
        if not problems:
            return m
        if self.platform.fingerprint_policy == "fail":
            raise EdgeOptError(
                f"{m.device} is not the device the {self.platform.name} profile describes: {'; '.join(problems)}; "
                f"name the right device, or set fingerprint_policy = \"warn\" in "
                f"[tool.edgeopt.platforms.{self.platform.name}]")
        return replace(m, notes=m.notes + (f"{MISMATCH_NOTE}: {'; '.join(problems)}",))

    def _parity(self, model: EdgeModel, result: Dict[str, Any], *, batch: int) -> Optional[Dict[str, Any]]:
        """The same FP32 model on ONNX Runtime, value by value: a converter that changed the
        function shows up here before any precision is blamed for it."""
        if model.kind != "torch":  # a user's .tflite has no ONNX twin to compare with
            return None
        try:
            artifact = self._artifact(model, REFERENCE, batch, PARITY_RUNTIME)
            twin = self._run(artifact, model, runtime=PARITY_RUNTIME, batch=batch, evaluate_only=True,
                             keep_outputs=True)
        except (MissingDependency, EdgeOptError) as why:  # parity informs a row; it never fails one
            return {"runtime": PARITY_RUNTIME, "skipped": str(why).splitlines()[0]}
        return parity(result, twin, runtime=PARITY_RUNTIME)

    def _artifact(self, model: EdgeModel, precision: str, batch: int, runtime: str) -> Artifact:
        return build_artifact(model, precision=get_precision(precision), batch=batch,
                              arch=self.platform.target_arch, cache=self.cache, fmt=artifact_format(runtime))

    def _run(self, artifact: Artifact, model: EdgeModel, *, runtime: str, batch: int,
             evaluate_only: bool = False, keep_outputs: bool = False) -> Dict[str, Any]:
        job = {**self._job(artifact, model, runtime=runtime, batch=batch), "evaluate_only": evaluate_only,
               "keep_outputs": keep_outputs}
        result = self.transport.run(job, timeout_s=self.settings.timeout_s)
        if result.get("ok"):
            return result
        raise self._failure(result, f"{model.name} [{artifact.precision.name}, {runtime}]", runtime)

    def _failure(self, result: Dict[str, Any], case: str, runtime: str) -> EdgeOptError:
        """A failed job as the exception that fails or skips the test (policy: the platform's)."""
        kind, device = result.get("kind"), result.get("device_address")
        if kind == "missing-runtime" and device:
            return MissingOnDevice(package=RUNTIMES[runtime].package, device=device,
                                   python=self.platform.ssh.get("python", "python3"))
        if kind == "missing-runtime":
            spec = RUNTIMES[runtime]
            return MissingDependency(package=spec.package, extra=spec.extra, purpose=f"the {runtime} runtime")
        if kind == "missing-package" and device:
            return MissingOnDevice(package=result.get("package", "numpy"), device=device,
                                   python=self.platform.ssh.get("python", "python3"))
        if kind == "missing-python" and device:
            return MissingOnDevice(package="python3", device=device, message=str(result.get("error")))
        if kind == "unreachable":
            return DeviceUnreachable(f"{case}: {result.get('error')}", skip=self.platform.on_unreachable == "skip")
        return EdgeOptError(f"{case}: {result.get('error')}")

    def _job(self, artifact: Artifact, model: EdgeModel, *, runtime: str, batch: int) -> Dict[str, Any]:
        return {
            "artifact": str(artifact.path), "runtime": runtime, "batch": batch,
            "threads": self.settings.threads or self.platform.threads,
            "options": {"providers": list(self.platform.providers)},
            "inputs": str(eval_inputs_file(model, self.cache)), "plan": asdict(self.settings.plan),
            "topk": 5, "power": self.platform.power or None,
        }

    # -- baselines ---------------------------------------------------------------------------

    def context(self, m: Measurement, model: EdgeModel, *, reference: Callable[[str], Measurement],
                remeasure: Callable[[], Measurement]) -> Context:
        """The stored entry to judge `m` against, or why there is none."""
        common = {"reference": reference, "remeasure": remeasure, "attempts": self.settings.remeasure}
        if self.settings.update_baselines == "all":
            return Context(baseline=None, note="baseline being rewritten (--update-baselines)", **common)
        module, key = module_of(m.nodeid), case_key(m.nodeid, m)
        entry = self._entry(module, key)
        if entry is None:
            if self.settings.update_baselines == "new":
                return Context(baseline=None, note="new baseline entry (--update-baselines=new)", **common)
            missing = (f"no baseline for {key} on {self.platform.name} in {self.store.path_for(module)}: "
                       "run with --update-baselines")
            return Context(baseline=None, missing=missing, **common)
        reason = mismatch_reason(entry, m)
        rerun = self._baseline_rerun(entry, m, model)
        return Context(baseline=None if reason else entry, note=reason, rerun_baseline=rerun, **common)

    def _baseline_rerun(self, entry: Dict[str, Any], m: Measurement, model: EdgeModel) -> Callable[[], Optional[Measurement]]:
        """Measure the baseline's own artifact now, if the cache still holds it."""
        sha = entry["fingerprint"]["info"].get("artifact_sha")

        def rerun() -> Optional[Measurement]:
            artifact = cached_artifact(sha, precision=get_precision(m.precision), cache=self.cache,
                                       fmt=artifact_format(m.runtime)) if sha else None
            if artifact is None:
                return None
            try:
                result = self._run(artifact, model, runtime=m.runtime, batch=m.batch)
            except EdgeOptError:  # e.g. the model's input shape changed: today's inputs do not fit it
                return None
            return assemble(result, model=model, artifact=artifact, platform=self.platform, reference=None, nodeid="")

        return rerun

    def _entry(self, module: str, key: str) -> Optional[Dict[str, Any]]:
        try:
            return self.store.entry(module, key)
        except EdgeOptError:
            if self.settings.update_baselines:
                return None
            raise

    def write_baselines(self) -> List[Update]:
        """Controller only, at the end: new/changed entries of what ran, stale ones per syrupy's rule."""
        mode = self.settings.update_baselines
        if mode is None:
            return []
        for module, entries in sorted(self._pending().items()):
            remove = self.stale(module) if mode == "all" else set()
            update = self.store.write(module, new=entries, remove=remove)
            if not update.empty:
                self.updates.append(update)
        return self.updates

    def _pending(self) -> Dict[str, Dict[str, Dict[str, Any]]]:
        pending: Dict[str, Dict[str, Dict[str, Any]]] = {}
        for row in self.rows:
            m = row.measurement
            if m.invalid:  # a throttled device's numbers must not become the yardstick
                continue
            module, key = module_of(m.nodeid), case_key(m.nodeid, m)
            old = self._entry(module, key)
            if old is not None and self.settings.update_baselines == "new":
                continue
            new = entry_from_measurement(m)
            if old is None or changed(old, new):
                pending.setdefault(module, {})[key] = new
        for module in self.selected:  # modules with only stale entries still get cleaned
            pending.setdefault(module, {})
        return pending

    def stale(self, module: str) -> Set[str]:
        """Entries whose test is gone or no longer measures them; only for modules that ran whole."""
        if not self._ran_whole(module):
            return set()
        try:
            stored = self.store.entries(module)
        except EdgeOptError:
            return set()
        produced = {case_key(r.measurement.nodeid, r.measurement) for r in self.rows
                    if module_of(r.measurement.nodeid) == module}
        return {key for key in stored if key not in produced and self._entry_unused(module, key)}

    def stale_report(self) -> Dict[str, Set[str]]:
        return {m: keys for m in sorted(self.selected) if (keys := self.stale(m))}

    def _entry_unused(self, module: str, key: str) -> bool:
        name = key.rsplit("::", 1)[0]
        if name not in self.collected.get(module, set()):
            return True
        return self.outcomes.get(f"{module}::{name}") == "passed"

    def _ran_whole(self, module: str) -> bool:
        """`test_x.py::test_a` collects only test_a, so collected == selected proves nothing there."""
        collected, selected = self.collected.get(module, set()), self.selected.get(module, set())
        if not collected or collected != selected or module in self.narrowed:
            return False
        return all(f"{module}::{name}" in self.outcomes for name in selected)

    # -- collection and xdist ----------------------------------------------------------------

    def note_collected(self, nodeid: str, *, selected: bool) -> None:
        self.collected.setdefault(module_of(nodeid), set()).add(test_name(nodeid))
        if selected:
            self.selected.setdefault(module_of(nodeid), set()).add(test_name(nodeid))

    def note_outcome(self, nodeid: str, outcome: str) -> None:
        if self.outcomes.get(nodeid) in (None, "passed"):
            self.outcomes[nodeid] = outcome

    def worker_payload(self) -> Dict[str, str]:
        collection = {"collected": {m: sorted(v) for m, v in self.collected.items()},
                      "selected": {m: sorted(v) for m, v in self.selected.items()}}
        return {ROWS_KEY: json.dumps([row.to_dict() for row in self.rows]),
                COLLECTED_KEY: json.dumps(collection)}

    def merge_worker(self, payload: Dict[str, Any]) -> None:
        self.rows.extend(Row.from_dict(row) for row in json.loads(payload.get(ROWS_KEY, "[]")))
        collection = json.loads(payload.get(COLLECTED_KEY, "{}"))
        for kind, target in (("collected", self.collected), ("selected", self.selected)):
            for module, names in collection.get(kind, {}).items():
                target.setdefault(module, set()).update(names)


def _measurement_key(model: EdgeModel, *, precision: str, runtime: str, batch: int) -> Tuple[Any, ...]:
    """All that shapes a Measurement, so reuse never hands one model's row to another: the name
    and labels go into the row, the calibration data into every quantized artifact."""
    labels = None if model.eval_labels is None else array_hash(model.eval_labels)
    calibration = None if precision == REFERENCE else model.data_hash("calibration")
    return (model.name, model.content_hash(), model.data_hash("eval"), labels, calibration, precision,
            runtime, batch)
