"""Errors name the user's model file, never only the cache entry the runtime loaded."""

from __future__ import annotations

from pathlib import Path

from pytest_edgeopt.inspect.facts import ArtifactStats, Quantization
from pytest_edgeopt.kinds import ModelKind
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.optimize.artifacts import Artifact
from pytest_edgeopt.optimize.precisions import get_precision
from pytest_edgeopt.session.measuring import users_file

STATS = ArtifactStats(params=1, weight_bytes=1, storage_bytes=1, flops=1, weight_types=(), flops_exact=True)


def artifact(precision: str) -> Artifact:
    path = Path("/cache/.edgeopt_cache/e45e1b0c9d8a7f6e5d4c.tflite")
    return Artifact(path, get_precision(precision), path.stem, Quantization(), STATS, params=1, flops=1)


def test_a_runtime_error_names_the_users_file_and_the_derived_precision() -> None:
    model = EdgeModel(name="face", kind=ModelKind.TFLITE, eval_inputs=None, path=Path("models/face.tflite"))  # type: ignore[arg-type]
    error = "cannot load /cache/.edgeopt_cache/e45e1b0c9d8a7f6e5d4c.tflite: custom op Convolution2DTransposeBias"
    assert users_file(error, model, artifact("fp32")) == "cannot load face.tflite: custom op Convolution2DTransposeBias"
    assert users_file("e45e1b0c9d8a7f6e5d4c.tflite: bad", model, artifact("int8")) == "face.tflite (int8): bad"


def test_a_torch_model_is_named_by_its_name() -> None:
    model = EdgeModel(name="mynet", kind=ModelKind.TORCH, eval_inputs=None)  # type: ignore[arg-type]
    assert (
        users_file("e45e1b0c9d8a7f6e5d4c.tflite: bad", model, artifact("fp16")) == "mynet's exported file (fp16): bad"
    )
