"""inspect/tflite_rewrite.py and the TFLM runtime's own name reader, on published files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from pytest_edgeopt.inspect.tflite_rewrite import plain_fp32
from pytest_edgeopt.inspect.tflite_stats import stored_bitwidth
from pytest_edgeopt.optimize.tflite import same_outputs
from pytest_edgeopt.runtimes.tflm import io_names

ROOT = Path(__file__).resolve().parents[2]
FACE = ROOT / "suites" / "models" / "face_detection_short_range.tflite"
NABU = ROOT / "suites" / "models" / "okay_nabu.tflite"
DIGITS_FP32 = ROOT / "tests" / "data" / "tflite" / "digits_fp32.tflite"


def test_mediapipes_file_becomes_a_plain_fp32_file_with_the_same_outputs(tmp_path: Path) -> None:
    dest = tmp_path / "face.tflite"
    rewrite = plain_fp32(FACE, dest)
    assert rewrite.upcast_weights == 74 and len(rewrite.steps) == 3
    assert stored_bitwidth(FACE) == "FP16/FP32" and stored_bitwidth(dest) == "FP32/FP32"
    assert same_outputs(FACE, dest) == 0.0
    from ai_edge_litert.interpreter import Interpreter

    assert Interpreter(model_path=str(dest)).get_signature_list() == {
        "serving_default": {"inputs": ["input"], "outputs": ["classificators", "regressors"]}
    }


def test_a_plain_fp32_file_is_left_as_it_is(tmp_path: Path) -> None:
    dest = tmp_path / "digits.tflite"
    assert plain_fp32(DIGITS_FP32, dest).steps == () and not dest.exists()


def test_tflm_names_tensors_as_the_file_does_and_numbers_them_when_it_cannot_read_them() -> None:
    assert io_names(FACE.read_bytes(), 1, 2) == (["input"], ["regressors", "classificators"])
    assert io_names(NABU.read_bytes(), 1, 1) == (["serving_default_input_audio:0"], ["StatefulPartitionedCall:0"])
    garbage = np.random.default_rng(0).integers(0, 255, 64, dtype=np.uint8).tobytes()
    assert io_names(garbage, 1, 1) == (["input_0"], ["output_0"])
    assert io_names(FACE.read_bytes(), 1, 3) == (["input_0"], ["output_0", "output_1", "output_2"])  # counts differ


def test_a_failed_quantization_names_the_users_file_not_the_cache_entry(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_quantizer")
    from pytest_edgeopt import EdgeModel
    from pytest_edgeopt.errors import EdgeOptError
    from pytest_edgeopt.optimize.formats import BuildRequest
    from pytest_edgeopt.optimize.tflite_builder import BUILDER

    cached = tmp_path / "3f9c2a71e0b4d5c6a7b8.tflite"  # a cache entry's name: a content hash
    cached.write_bytes(FACE.read_bytes()[:5000])  # cut short: the quantizer cannot read it
    model = EdgeModel.from_tflite(FACE, eval_data=np.zeros((1, 128, 128, 3), np.float32))
    request = BuildRequest(model=model, precision="fp16", dest=tmp_path / "out.tflite", batch=1, source=cached)
    with pytest.raises(EdgeOptError) as raised:
        BUILDER.build(request)
    said = str(raised.value)
    assert said.startswith("face_detection_short_range.tflite (fp16): TFLite quantization (ai-edge-quantizer) failed")
    assert cached.stem not in said and len(said.splitlines()) == 1
