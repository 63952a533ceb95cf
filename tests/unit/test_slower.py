"""The note an INT8 row gets when it ran slower than FP32: real QDQ file, given samples."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import pytest

from pytest_edgeopt.agent.contract import DeviceFacts
from pytest_edgeopt.inspect.facts import ArtifactStats, Quantization
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.optimize.precisions import get_precision
from pytest_edgeopt.session.slower import slower_note

pytest.importorskip("onnx")

INT8 = Path(__file__).resolve().parent.parent / "data" / "onnx" / "digits_int8.onnx"
STATS = ArtifactStats(params=1, weight_bytes=1, storage_bytes=1, flops=1, weight_types=("int8",), flops_exact=True)


def _artifact(precision: str) -> Artifact:
    return Artifact(
        path=INT8,
        precision=get_precision(precision),
        key="k",
        quantization=Quantization(),
        stats=STATS,
        params=1,
        flops=2_000_000,
    )


def _facts(*flags: str) -> DeviceFacts:
    return DeviceFacts(arch="x86_64", cpu_model="test", cpu_flags=tuple(flags))


FP32_MS: Tuple[float, ...] = (1.0, 1.0, 1.1)


def test_a_clearly_slower_int8_row_says_why() -> None:
    note = slower_note((2.0, 2.1, 2.2), FP32_MS, artifact=_artifact("int8"), facts=_facts("avx2", "fma"))
    assert note is not None
    assert note.text.startswith("INT8 ran 2.1x FP32's time: ")
    assert "Quantize/DequantizeLinear ops around" in note.text
    assert "this CPU has no VNNI" in note.text


def test_a_cpu_with_int8_dot_products_is_not_blamed() -> None:
    note = slower_note((2.0,), FP32_MS, artifact=_artifact("int8"), facts=_facts("avx2", "avx512_vnni"))
    assert note is not None and "VNNI" not in note.text


@pytest.mark.parametrize("samples", [(1.2, 1.2), (0.5, 0.6)])
def test_drift_sized_or_faster_rows_get_no_note(samples: Tuple[float, ...]) -> None:
    assert slower_note(samples, FP32_MS, artifact=_artifact("int8"), facts=_facts("avx2")) is None


def test_only_int8_rows_are_explained() -> None:
    assert slower_note((3.0,), FP32_MS, artifact=_artifact("fp16"), facts=_facts("avx2")) is None
