"""Measuring on a microcontroller profile: a Measurer with the MCU's rules, on the shared Jobs.

- Only full-integer models run (TFLite Micro refuses hybrid and FP16 models; FP32 is not what a
  board runs): other cases skip with the reason before any job is sent.
- The artifact is the INT8 .tflite with its weights inside the flatbuffer (optimize/mcu.py).
- The job goes to the platform's transport. The local agent runs TFLM on this machine for the
  outputs and the arena, without a latency loop (this machine's time is not the board's); a
  board's own runner, carried by a transport from the transport hook, may time it on the board.
- The FP32 yardstick of accuracy and agreement runs here with LiteRT, never on the board.
- Everything but the outputs is a function of the graph, so a case is never re-measured.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, Optional, Tuple

from pytest_edgeopt._fs import machine_lock_dir
from pytest_edgeopt.agent.contract import Success
from pytest_edgeopt.agent.power import PowerMeterSpec
from pytest_edgeopt.errors import NotOnPlatform
from pytest_edgeopt.judge.fit import FitLimits
from pytest_edgeopt.judge.validity import fingerprint_note
from pytest_edgeopt.kinds import McuFit
from pytest_edgeopt.measure.result import LayerError, Measurement, PairedComparison
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.optimize.cache import ArtifactCache
from pytest_edgeopt.optimize.mcu import for_mcu
from pytest_edgeopt.optimize.precisions import REFERENCE
from pytest_edgeopt.platforms.mcu import McuBoard
from pytest_edgeopt.platforms.profiles import Platform
from pytest_edgeopt.platforms.transport import LocalTransport, Transport
from pytest_edgeopt.runtimes import RuntimeSpec
from pytest_edgeopt.session.assemble import Reference
from pytest_edgeopt.session.mcu_assemble import GraphFacts, assemble_mcu
from pytest_edgeopt.session.measuring import Case, CaseKey, HostMeasurer, Jobs, Measurer, PairRequest
from pytest_edgeopt.settings import Settings

HOST_RUNTIME = "tflite"  # the FP32 yardstick: LiteRT on this machine
NOT_INTEGER = {
    "fp16": "TFLite Micro takes no float16 weights",
    "int8-dynamic": "TFLite Micro refuses hybrid (dynamic-range) models, int8 weights with float activations",
}


class McuMeasurer:
    """The Measurer of a microcontroller profile: TFLM outputs and arena, the board's latency and
    energy estimated from the graph, the FP32 yardstick on this machine's LiteRT."""

    def __init__(self, jobs: Jobs) -> None:
        if jobs.platform.mcu is None:
            raise ValueError(f"platform {jobs.platform.name} is not a microcontroller profile")
        self.jobs = jobs
        self.platform = jobs.platform
        self.board: McuBoard = jobs.platform.mcu
        self._host: Transport = LocalTransport(lock_dir=machine_lock_dir())
        self._references: Dict[CaseKey, Reference] = {}
        self._measured: Dict[CaseKey, Measurement] = {}

    @property
    def cache(self) -> ArtifactCache:
        return self.jobs.cache

    def measurement(self, case: Case, pair: Optional[PairRequest] = None) -> Measurement:
        """Never paired: an estimate is compared exactly with the stored one."""
        if case.precision in NOT_INTEGER:
            raise self._not_here(case, NOT_INTEGER[case.precision])
        key = case.key()
        if key not in self._measured:
            self._measured[key] = self._measure(case)
        return self._measured[key]

    def paired(self, case: Case, pair: PairRequest) -> Optional[PairedComparison]:
        return None

    def remeasure(self, case: Case) -> Measurement:
        """The same graph gives the same estimate: nothing to gain from another run."""
        return self.measurement(case)

    def cached(self, case: Case, sha: Optional[str]) -> Optional[Artifact]:
        return self.jobs.cached(case, sha)

    def artifact_of(self, case: Case) -> Artifact:
        """The INT8 .tflite with its weights inside the flatbuffer, as a board flashes it."""
        return for_mcu(self.jobs.artifact(case), self.cache, case.model)

    def sensitivity(self, case: Case) -> Optional[Tuple[LayerError, ...]]:
        """An MCU model is whole-integer: no layer can stay float, so none is ranked for it."""
        return None

    def close(self) -> None:
        self.jobs.close()

    def reference(self, case: Case) -> Reference:
        """The FP32 model on this machine's LiteRT, evaluated only: the board never runs it."""
        ref = replace(case.at(REFERENCE), runtime=HOST_RUNTIME)
        key = ref.key()
        if key not in self._references:
            artifact = self.jobs.artifact(ref)
            job = self.jobs.job(artifact, ref, evaluate_only=True, keep_outputs=False, outputs=True)
            result = self.jobs.send(replace(job, threads=1), ref, artifact, transport=self._host)
            self._references[key] = Reference(
                measurement=self._assemble(result, ref, artifact, GraphFacts.of(artifact.path), reference=None),
                top_k=result.evaluation.top_k,
                outputs_file=result.evaluation.outputs_file,
            )
        return self._references[key]

    def _measure(self, case: Case) -> Measurement:
        reference = None if case.precision == REFERENCE else self.reference(case)
        artifact = self.artifact_of(case)
        facts = GraphFacts.of(artifact.path)
        if not facts.check.ok:
            raise self._not_here(case, facts.check.reason)
        job = self.jobs.job(artifact, case, evaluate_only=self.simulated, keep_outputs=False, outputs=True)
        job = replace(job, options=replace(job.options, arena_bytes=facts.arena.total))
        result = self.jobs.send(job, case, artifact)
        measured = self._assemble(result, case, artifact, facts, reference=reference)
        note = fingerprint_note(measured, self.platform)  # a board runner's device against the profile
        return replace(measured, notes=measured.notes + (note,)) if note else measured

    @property
    def simulated(self) -> bool:
        """The local agent stands in for the board: its own latency loop would time this machine."""
        return isinstance(self.jobs.transport, LocalTransport)

    def _assemble(
        self, result: Success, case: Case, artifact: Artifact, facts: GraphFacts, *, reference: Optional[Reference]
    ) -> Measurement:
        return assemble_mcu(
            result,
            model=case.model,
            artifact=artifact,
            platform=self.platform,
            board=self.board,
            facts=facts,
            reference=reference,
        )

    def _not_here(self, case: Case, why: str) -> NotOnPlatform:
        """An int8 file TFLite Micro still cannot run names its ops (a custom op, ops the quantizer
        left float); another precision is pointed at int8."""
        fix = (
            "TFLite Micro runs full-integer builtin ops only"
            if case.precision == "int8"
            else "a microcontroller runs full-integer models: measure precision int8"
        )
        return NotOnPlatform(f"{case.precision} does not run on {self.platform.name}: {why}; {fix}")


def fit_limits(platform: Platform, settings: Settings) -> Optional[FitLimits]:
    """The board's SRAM and flash, which every row of an MCU profile must fit (unless turned off)."""
    if platform.mcu is None or settings.mcu_fit == McuFit.OFF:
        return None
    return FitLimits(platform=platform.name, sram_kb=platform.mcu.sram_kb, flash_kb=platform.mcu.flash_kb)


def measurer_for(
    *,
    settings: Settings,
    platform: Platform,
    transport: Transport,
    runtimes: Dict[str, RuntimeSpec],
    meters: Dict[str, PowerMeterSpec],
) -> Measurer:
    """The MCU measurer for a microcontroller profile, the host's otherwise; both on one Jobs."""
    jobs = Jobs(settings=settings, platform=platform, transport=transport, runtimes=runtimes, meters=meters)
    return McuMeasurer(jobs) if platform.mcu is not None else HostMeasurer(jobs)
