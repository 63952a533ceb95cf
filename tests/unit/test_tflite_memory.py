"""The MCU estimators on the committed .tflite files: TFLM's arena without TFLM, MACs per kernel
class, the full-integer check, and the external-buffer rewrite. The expected arenas are what
TFLM (tflite-micro 0.dev20261023182759, x86) allocated for these files."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ai_edge_litert")

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.inspect.tflite_graph import read_graph
from pytest_edgeopt.inspect.tflite_kernels import KernelWork, integer_check, kernel_work
from pytest_edgeopt.inspect.tflite_memory import (
    Lifetime,
    arena_estimate,
    greedy_head_bytes,
    has_external_buffers,
    inline_buffers,
    peak_live_bytes,
)
from pytest_edgeopt.inspect.tflite_stats import artifact_stats
from tests.mcu_helpers import DATA, DIGITS_INT8, externalized

TFLM_ARENA = {  # file -> (head, tail) TFLM printed
    "digits_int8": (3072, 3280),
    "digits_fp32": (12288, 2608),
}


def graph(name: str):  # type: ignore[no-untyped-def]
    return read_graph((DATA / f"{name}.tflite").read_bytes())


@pytest.mark.parametrize("name", sorted(TFLM_ARENA))
def test_the_arena_estimate_is_what_tflm_allocated(name: str) -> None:
    estimate = arena_estimate(graph(name))
    assert (estimate.head, estimate.tail) == TFLM_ARENA[name]
    assert estimate.total == sum(TFLM_ARENA[name]) and estimate.peak_live == estimate.head


def test_the_greedy_plan_leaves_holes_the_peak_of_live_bytes_does_not() -> None:
    """Largest first, then the highest tensor index among equals: tensor 1 finds no gap of 32 B
    between tensors 3 and 2, as TFLM's GreedyMemoryPlanner places them (MLPerf's VWW: +33%)."""
    lifetimes = [Lifetime(0, 0, 1, 48), Lifetime(1, 3, 3, 32), Lifetime(2, 0, 3, 32), Lifetime(3, 3, 3, 32)]
    assert peak_live_bytes(lifetimes, 4) == 96
    assert greedy_head_bytes(lifetimes) == 112


def test_macs_per_kernel_class_add_up_to_the_files_flops() -> None:
    work = kernel_work(graph("digits_int8"))
    assert work == KernelWork(conv=294_912, depthwise=9_216, fully_connected=33_408, other=3_136)
    for name in ("digits_fp32", "digits_int8", "digits_int8_dynamic", "digits_fp16"):
        assert 2 * kernel_work(graph(name)).macs == artifact_stats(DATA / f"{name}.tflite").flops


@pytest.mark.parametrize(
    "name, ok, reason",
    [
        ("digits_int8", True, "integer weights (int8) and activations (int8)"),
        ("digits_fp32", False, "float compute in RESHAPE x2, DEPTHWISE_CONV_2D, CONV_2D, MAX_POOL_2D, TRANSPOSE"),
        ("digits_fp16", False, "float16 weights (dequantized to float32 at run time)"),
        ("digits_int8_dynamic", False, "hybrid (dynamic-range) quantization: int8 weights feeding float activations"),
    ],
)
def test_only_the_full_integer_model_passes_the_check(name: str, ok: bool, reason: str) -> None:
    check = integer_check(graph(name))
    assert check.ok is ok and check.reason.startswith(reason)
    assert check.hybrid is (name == "digits_int8_dynamic") and check.float16 is (name == "digits_fp16")


def test_external_buffers_are_found_and_inlined_without_changing_the_model() -> None:
    original = DIGITS_INT8.read_bytes()
    outside = externalized(original)
    assert not has_external_buffers(original) and has_external_buffers(outside)
    assert read_graph(outside).external_buffers == 6  # the weights and biases; shapes stay inside
    inlined = inline_buffers(outside)
    assert not has_external_buffers(inlined)
    before, after = read_graph(original), read_graph(inlined)
    assert after.tensors == before.tensors and after.operators == before.operators
    assert after.constants == before.constants
    # the weights count as constants where they are, so the estimate does not fall into the trap
    assert arena_estimate(read_graph(outside)) == arena_estimate(before) == arena_estimate(after)


def test_an_external_buffer_past_the_end_of_the_file_is_one_line() -> None:
    outside = externalized(DIGITS_INT8.read_bytes())
    with pytest.raises(EdgeOptError, match=r"an external buffer \[\d+, \d+\) lies past the file's end"):
        inline_buffers(outside[:-64])


def test_a_file_that_is_not_a_flatbuffer_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(EdgeOptError, match=r"broken\.tflite is not a readable TFLite model"):
        read_graph(b"\0" * 64, name="broken.tflite")
