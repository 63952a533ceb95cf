"""A microcontroller row: what TFLM reported, the graph's facts and the board's figures, assembled.

When TFLM simulated the board on this machine, the result carries outputs and the arena but no
board timing; it is completed as the board would have answered, with one "sample" of the
estimated latency, the board's active power and the board's facts, and then assembled like any
other row, so the judge, the baselines and the reports need nothing of their own. Every field
so filled is named in `Measurement.estimates`, and every cell of it says "est.". A board runner
that times its own inferences (the transport hook) sends timing and the board's fingerprint: that
latency counts as measured.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import List, Optional, Tuple

from pytest_edgeopt.agent.contract import DeviceFacts, Success, Timing
from pytest_edgeopt.agent.power import PowerReading
from pytest_edgeopt.inspect.tflite_graph import read_graph
from pytest_edgeopt.inspect.tflite_kernels import IntegerCheck, KernelWork, integer_check, kernel_work
from pytest_edgeopt.inspect.tflite_memory import ArenaEstimate, arena_estimate
from pytest_edgeopt.kinds import Note, NoteKind
from pytest_edgeopt.measure.mcu import KB, McuEstimate, estimate
from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.platforms.mcu import McuBoard
from pytest_edgeopt.platforms.profiles import Platform
from pytest_edgeopt.session.assemble import Reference, assemble

LATENCY_ESTIMATES = ("latency_ms", "throughput", "gflops_per_s", "first_inference_ms")
ENERGY_ESTIMATES = ("energy_w", "energy_mj")


@dataclass(frozen=True)
class GraphFacts:
    """What the artifact file says about its run on a microcontroller, read once."""

    arena: ArenaEstimate
    work: KernelWork
    check: IntegerCheck
    file_bytes: int

    @classmethod
    def of(cls, path: Path) -> "GraphFacts":
        graph = read_graph(path.read_bytes(), name=path.name)
        return cls(
            arena=arena_estimate(graph),
            work=kernel_work(graph),
            check=integer_check(graph),
            file_bytes=graph.file_bytes,
        )


def assemble_mcu(
    result: Success,
    *,
    model: EdgeModel,
    artifact: Artifact,
    platform: Platform,
    board: McuBoard,
    facts: GraphFacts,
    reference: Optional[Reference],
) -> Measurement:
    guess = estimate(facts.work, cpm=board.cycles_per_mac, clock_mhz=board.clock_mhz, active_mw=board.active_mw)
    timed = on_the_board(result, board)
    completed = result if timed else as_board_answer(result, platform=platform, board=board, guess=guess)
    m = assemble(completed, model=model, artifact=artifact, platform=platform, reference=reference)
    measured_arena = result.runtime.arena
    estimates = _estimated(timed=timed, powered=bool(result.timing and result.timing.power), arena=measured_arena)
    return m.replace(
        device=m.device if timed else f"{board.core} at {board.clock_mhz:g} MHz, {board.board}: TFLM on this machine",
        arena_kb=(measured_arena.total if measured_arena else facts.arena.total) / KB,
        flash_kb=facts.file_bytes / KB + board.runtime_code_kb,
        estimates=estimates,
        notes=m.notes + _notes(platform.name, board, estimates, measured_arena is not None),
    )


def on_the_board(result: Success, board: McuBoard) -> bool:
    """Timing counts only when the board itself sent it: this package's agent never runs on a
    microcontroller, so a result from it (here, or on a Pi over ssh) is a simulation."""
    facts = result.fingerprint
    return result.timing is not None and facts is not None and facts.arch == board.arch


def as_board_answer(result: Success, *, platform: Platform, board: McuBoard, guess: McuEstimate) -> Success:
    """The simulated board's result: one sample of the estimated latency, its active power."""
    latency = (guess.latency_ms,)  # the graph's own batch: one sample is one call, as the agent times it
    power = PowerReading(
        source=f"{platform.name} active power",
        average_w=guess.active_w,
        idle_w=0.0,
        seconds=latency[0] / 1e3,
        samples=1,
        estimated=True,
    )
    return replace(
        result,
        load_ms=0.0,
        first_inference_ms=latency[0],
        timing=Timing(wall_ms=latency, cpu_ms=latency, power=power),
        fingerprint=board_facts(board),
    )


def board_facts(board: McuBoard) -> DeviceFacts:
    """The board as a device fingerprint: what a baseline measured for it must match."""
    return DeviceFacts(
        arch=board.arch,
        cpu_model=f"{board.core} at {board.clock_mhz:g} MHz",
        cpu_count=1,
        device_model=board.board,
        os_bits=32,
    )


def _estimated(*, timed: bool, powered: bool, arena: object) -> Tuple[str, ...]:
    names: List[str] = [] if timed else list(LATENCY_ESTIMATES)
    names += [] if powered else list(ENERGY_ESTIMATES)
    names += [] if arena is not None else ["arena_kb"]
    return (*names, "flash_kb")


def _notes(platform: str, board: McuBoard, estimates: Tuple[str, ...], tflm_arena: bool) -> Tuple[Note, ...]:
    notes = []
    if "latency_ms" in estimates:
        notes.append(
            f"latency est.: MACs per kernel class x {board.engine} cycles per MAC at {board.clock_mhz:g} MHz, "
            f"{board.calibration}"
        )
    if "energy_mj" in estimates:
        notes.append(f"energy est.: {board.active_mw:g} mW x the latency ({board.power_source})")
    if tflm_arena:
        notes.append(
            "arena: what TFLM allocated on this machine (reference kernels, 64-bit structs); on a board "
            "CMSIS-NN/ESP-NN scratch buffers add to it and 32-bit structs take less"
        )
    else:
        notes.append("arena est.: TFLM's memory planner replayed on the tensor lifetimes, plus the persistent tail")
    notes.append(
        f"flash est.: the model file + {board.runtime_code_kb:g} KB of inference code "
        f"({platform}'s runtime_code_kb: set it from your firmware's linker map)"
    )
    return tuple(Note(NoteKind.ESTIMATE, text) for text in notes)
