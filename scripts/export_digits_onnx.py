"""Export the zoo's digits-cnn to the ONNX fixtures the torch-free agent tests run.

Run after scripts/train_digits_cnn.py (needs the torch and onnx extras):
    python scripts/export_digits_onnx.py
Writes tests/data/onnx/digits_{fp32,int8}.onnx with the same plugin functions that export and
quantize at test time, so the agent tests on the oldest supported Python (no torch wheel there)
run exactly what users get.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
from pathlib import Path

from pytest_edgeopt.models.zoo import load_zoo_model
from pytest_edgeopt.optimize.artifacts import build_artifact
from pytest_edgeopt.optimize.cache import ArtifactCache
from pytest_edgeopt.optimize.precisions import get_precision

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "onnx"


def main() -> None:
    model = load_zoo_model("digits-cnn")
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "int8"):
            artifact = build_artifact(
                model,
                precision=get_precision(precision),
                batch=1,
                arch=platform.machine(),
                cache=ArtifactCache(Path(tmp)),
            )
            shutil.copyfile(artifact.path, FIXTURES / f"digits_{precision}.onnx")
    for path in sorted(FIXTURES.glob("digits_*.onnx")):
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
