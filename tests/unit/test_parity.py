"""Cross-runtime parity of an FP32 model, and how a failed parity fails the row."""

from __future__ import annotations

from typing import List

import numpy as np
import pytest

from pytest_edgeopt.agent.contract import Evaluation
from pytest_edgeopt.judge.checks import check
from pytest_edgeopt.judge.types import Context
from pytest_edgeopt.measure.parity import Parity, compare, skipped
from tests.unit.test_result import make_measurement


def result(outputs: np.ndarray, top1: List[int]) -> Evaluation:
    return Evaluation(
        top_k=tuple((c,) for c in top1),
        eval_count=len(top1),
        output_shape=outputs.shape[1:],
        outputs_head=tuple(tuple(row) for row in outputs.tolist()),
    )


def parity(ours: Evaluation, theirs: Evaluation, *, runtime: str) -> Parity:
    return compare(ours, theirs, runtime=runtime)


def parity_text(p: Parity) -> str:
    return p.text()


LOGITS = np.random.default_rng(0).normal(size=(16, 10))
TOP1 = LOGITS.argmax(1).tolist()


def test_identical_and_reassociated_outputs_agree() -> None:
    assert parity(result(LOGITS, TOP1), result(LOGITS, TOP1), runtime="onnxruntime").ok
    close = parity(result(LOGITS + 1e-6, TOP1), result(LOGITS, TOP1), runtime="onnxruntime")
    assert close.ok and close.top1 == 1.0 and close.max_abs < 2e-6
    assert parity_text(close).startswith("parity vs onnxruntime: top-1 100.0%, max |diff| 1e-06")


def test_a_changed_function_fails_even_when_top1_holds() -> None:
    checked = parity(result(LOGITS + 0.5, TOP1), result(LOGITS, TOP1), runtime="onnxruntime")
    assert not checked.ok and checked.top1 == 1.0 and checked.max_abs == pytest.approx(0.5)
    assert parity_text(checked).startswith("PARITY FAILED vs onnxruntime: top-1 100.0%, max |diff| 0.5")


def test_the_tolerance_grows_with_the_output_magnitude() -> None:
    """1e-4 + 1e-3 x max|output|: 0.5 apart is float noise on logits of 1000, a bug on logits of 1."""
    big = LOGITS * 1000
    checked = parity(result(big + 0.5, TOP1), result(big, TOP1), runtime="onnxruntime")
    assert checked.ok and checked.tolerance == pytest.approx(1e-4 + 1e-3 * np.abs(big).max())
    assert not parity(result(big + 5.0, TOP1), result(big, TOP1), runtime="onnxruntime").ok


def test_non_finite_outputs_never_pass() -> None:
    nan = LOGITS.copy()
    nan[3, 4] = np.nan
    assert not parity(result(nan, TOP1), result(LOGITS, TOP1), runtime="onnxruntime").ok


def test_top1_disagreement_alone_fails() -> None:
    flipped = [t if i % 10 else (t + 1) % 10 for i, t in enumerate(TOP1 * 4)]  # 10% flipped
    ours = result(LOGITS, flipped)
    theirs = result(LOGITS, TOP1 * 4)
    checked = parity(ours, theirs, runtime="onnxruntime")
    assert not checked.ok and checked.top1 == 57 / 64 and checked.max_abs == 0.0


def test_different_output_shapes_fail_with_the_reason() -> None:
    checked = parity(result(LOGITS[:, :5], TOP1), result(LOGITS, TOP1), runtime="onnxruntime")
    assert not checked.ok
    assert parity_text(checked) == "PARITY FAILED vs onnxruntime: output shapes differ: [16, 5] vs [16, 10]"


def test_a_skipped_parity_says_why() -> None:
    text = parity_text(skipped("onnxruntime", "onnxruntime is not installed"))
    assert text == "parity vs onnxruntime not checked: onnxruntime is not installed"


def test_failed_parity_fails_the_row_without_any_budget() -> None:
    failed = parity(result(LOGITS + 0.5, TOP1), result(LOGITS, TOP1), runtime="onnxruntime")
    m = (make_measurement(precision="fp32", runtime="tflite")).replace(parity=failed)
    _, judgement = check(m, {}, Context(baseline=None))
    assert judgement.verdict == "fail"
    assert judgement.violations[0].startswith("parity: PARITY FAILED vs onnxruntime")
    ok = m.replace(parity=parity(result(LOGITS, TOP1), result(LOGITS, TOP1), runtime="onnxruntime"))
    assert check(ok, {}, Context(baseline=None))[1].verdict == "-"
