"""EdgeSession: the state of one pytest run: platform, cache, FP32 references and the table rows.

The plugin module wires hooks to it; everything that persists across tests lives here, in
`config.stash`, and crosses xdist as JSON (workers send rows, the controller renders the table).
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any, Dict, List, Optional, Tuple

import pytest

from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.measure.assemble import Reference, assemble
from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.optimize.artifacts import Artifact, build_artifact, eval_inputs_file
from pytest_edgeopt.optimize.cache import ArtifactCache
from pytest_edgeopt.optimize.precisions import REFERENCE, get_precision
from pytest_edgeopt.platforms.profiles import Platform
from pytest_edgeopt.platforms.transport import Transport
from pytest_edgeopt.runtimes import RUNTIMES
from pytest_edgeopt.settings import Settings

session_key = pytest.StashKey["EdgeSession"]()
ROWS_KEY = "edgeopt_rows"


class EdgeSession:
    def __init__(self, *, settings: Settings, platform: Platform, transport: Transport) -> None:
        self.settings = settings
        self.platform = platform
        self.transport = transport
        self.cache = ArtifactCache(settings.cache_dir)
        self.rows: List[Measurement] = []
        self.usage_errors: List[str] = []
        self._measurements: Dict[Tuple[Any, ...], Reference] = {}

    def measure(self, model: EdgeModel, *, precision: str, runtime: str, batch: int, nodeid: str) -> Measurement:
        """Measure once per session per (model content, precision, runtime, batch); reuse after."""
        measured = self._measured(model, precision=precision, runtime=runtime, batch=batch)[0]
        measurement = replace(measured, nodeid=nodeid)
        self.rows.append(measurement)
        return measurement

    def reference(self, model: EdgeModel, *, runtime: str, batch: int) -> Reference:
        """The FP32 measurement of `model` and its predictions, the yardstick of every precision."""
        return self._measured(model, precision=REFERENCE, runtime=runtime, batch=batch)

    def _measured(self, model: EdgeModel, *, precision: str, runtime: str, batch: int) -> Reference:
        key = (model.content_hash(), model.data_hash("eval"), precision, runtime, batch)
        if key not in self._measurements:
            reference = None if precision == REFERENCE else self.reference(model, runtime=runtime, batch=batch)
            artifact = self._artifact(model, precision, batch)
            result = self._run(artifact, model, runtime=runtime, batch=batch)
            measured = assemble(result, model=model, artifact=artifact, platform=self.platform,
                                reference=reference, nodeid="")
            self._measurements[key] = (measured, result["top_k"])
        return self._measurements[key]

    def merge_rows(self, payload: str) -> None:
        self.rows.extend(Measurement.from_dict(row) for row in json.loads(payload))

    def rows_payload(self) -> str:
        return json.dumps([row.to_dict() for row in self.rows])

    def _artifact(self, model: EdgeModel, precision: str, batch: int) -> Artifact:
        return build_artifact(model, precision=get_precision(precision), batch=batch,
                              arch=self.platform.target_arch, cache=self.cache)

    def _run(self, artifact: Artifact, model: EdgeModel, *, runtime: str, batch: int) -> Dict[str, Any]:
        job = self._job(artifact, model, runtime=runtime, batch=batch)
        result = self.transport.run(job, timeout_s=self.settings.timeout_s)
        if result.get("ok"):
            return result
        if result.get("kind") == "missing-runtime":
            _, _, package, extra = RUNTIMES[runtime]
            raise MissingDependency(package=package, extra=extra, purpose=f"the {runtime} runtime")
        raise EdgeOptError(f"{model.name} [{artifact.precision.name}]: {result.get('error')}")

    def _job(self, artifact: Artifact, model: EdgeModel, *, runtime: str, batch: int) -> Dict[str, Any]:
        return {
            "artifact": str(artifact.path), "runtime": runtime, "batch": batch,
            "threads": self.settings.threads or self.platform.threads,
            "options": {"providers": list(self.platform.providers)},
            "inputs": str(eval_inputs_file(model, self.cache)), "plan": asdict(self.settings.plan),
            "topk": 5,
        }
