"""Measuring on a microcontroller profile: the Measurer with the MCU's rules.

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
from typing import Dict, Optional

from pytest_edgeopt._fs import machine_lock_dir
from pytest_edgeopt.agent.contract import Failure, Job, Success
from pytest_edgeopt.agent.power import PowerMeterSpec
from pytest_edgeopt.errors import NotOnPlatform
from pytest_edgeopt.judge.fit import FitLimits
from pytest_edgeopt.judge.validity import fingerprint_note
from pytest_edgeopt.measure.result import Measurement, PairedComparison
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.optimize.mcu import for_mcu
from pytest_edgeopt.optimize.precisions import REFERENCE
from pytest_edgeopt.platforms.mcu import McuBoard
from pytest_edgeopt.platforms.profiles import Platform
from pytest_edgeopt.platforms.transport import LocalTransport, Transport
from pytest_edgeopt.runtimes import RuntimeSpec
from pytest_edgeopt.session.assemble import Reference
from pytest_edgeopt.session.mcu_assemble import GraphFacts, assemble_mcu
from pytest_edgeopt.session.measuring import Case, CaseKey, Measurer, PairRequest
from pytest_edgeopt.settings import Settings

HOST_RUNTIME = "tflite"  # the FP32 yardstick: LiteRT on this machine
NOT_INTEGER = {
    "fp16": "TFLite Micro takes no float16 weights",
    "int8-dynamic": "TFLite Micro refuses hybrid (dynamic-range) models, int8 weights with float activations",
}


class McuMeasurer(Measurer):
    def __init__(
        self,
        *,
        settings: Settings,
        platform: Platform,
        transport: Transport,
        runtimes: Dict[str, RuntimeSpec],
        meters: Dict[str, PowerMeterSpec],
    ) -> None:
        super().__init__(settings=settings, platform=platform, transport=transport, runtimes=runtimes, meters=meters)
        if platform.mcu is None:
            raise ValueError(f"platform {platform.name} is not a microcontroller profile")
        self.board: McuBoard = platform.mcu
        self._host: Transport = LocalTransport(lock_dir=machine_lock_dir())
        self._references: Dict[CaseKey, Reference] = {}

    def measurement(self, case: Case, pair: Optional[PairRequest] = None) -> Measurement:
        """Never paired: an estimate is compared exactly with the stored one."""
        if case.precision in NOT_INTEGER:
            raise self._not_here(case, NOT_INTEGER[case.precision])
        return super().measurement(case)

    def paired(self, case: Case, pair: PairRequest) -> Optional[PairedComparison]:
        return None

    def remeasure(self, case: Case) -> Measurement:
        """The same graph gives the same estimate: nothing to gain from another run."""
        return self.measurement(case)

    def reference(self, case: Case) -> Reference:
        """The FP32 model on this machine's LiteRT, evaluated only: the board never runs it."""
        ref = replace(case.at(REFERENCE), runtime=HOST_RUNTIME)
        key = ref.key()
        if key not in self._references:
            artifact = super()._artifact(ref)
            job = replace(self._job(artifact, ref, evaluate_only=True, keep_outputs=False), threads=1)
            result = self._send(self._host, job, ref, artifact)
            self._references[key] = Reference(
                measurement=self._assemble(result, ref, artifact, GraphFacts.of(artifact.path), reference=None),
                top_k=result.evaluation.top_k,
            )
        return self._references[key]

    def _fresh(self, case: Case, pair: Optional[PairRequest] = None) -> Reference:
        reference = None if case.precision == REFERENCE else self.reference(case)
        artifact = self._artifact(case)
        facts = GraphFacts.of(artifact.path)
        if not facts.check.ok:
            raise self._not_here(case, facts.check.reason)
        job = self._job(artifact, case, evaluate_only=self.simulated, keep_outputs=False)
        job = replace(job, options=replace(job.options, arena_bytes=facts.arena.total))
        result = self._send(self.transport, job, case, artifact)
        measured = self._assemble(result, case, artifact, facts, reference=reference)
        note = fingerprint_note(measured, self.platform)  # a board runner's device against the profile
        measured = replace(measured, notes=measured.notes + (note,)) if note else measured
        return Reference(measurement=measured, top_k=result.evaluation.top_k)

    @property
    def simulated(self) -> bool:
        """The local agent stands in for the board: its own latency loop would time this machine."""
        return isinstance(self.transport, LocalTransport)

    def _artifact(self, case: Case) -> Artifact:
        return for_mcu(super()._artifact(case), self.cache)

    def _send(self, transport: Transport, job: Job, case: Case, artifact: Artifact) -> Success:
        result = transport.run(job, timeout_s=self.settings.timeout_s)
        if isinstance(result, Failure):
            raise self._failure(result, f"{case.model.name} [{artifact.precision.name}, {case.runtime}]", case.runtime)
        return result

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
        return NotOnPlatform(
            f"{case.precision} does not run on {self.platform.name}: {why}; a microcontroller runs "
            "full-integer models: measure precision int8"
        )


def fit_limits(platform: Platform, settings: Settings) -> Optional[FitLimits]:
    """The board's SRAM and flash, which every row of an MCU profile must fit (unless turned off)."""
    if platform.mcu is None or settings.mcu_fit == "off":
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
    """The MCU measurer for a microcontroller profile, the plain one otherwise."""
    kind = McuMeasurer if platform.mcu is not None else Measurer
    return kind(settings=settings, platform=platform, transport=transport, runtimes=runtimes, meters=meters)
