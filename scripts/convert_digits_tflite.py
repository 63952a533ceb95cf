"""Convert the zoo's digits-cnn to the FP32 .tflite the package ships, and derive the test fixtures.

Run after scripts/train_digits_cnn.py (needs the tflite-torch extra):
    python scripts/convert_digits_tflite.py
Writes pytest_edgeopt/models/data/digits_cnn.tflite (what runtime="tflite" measures for digits-cnn
without a converter) and tests/data/tflite/digits_{fp32,fp16,int8,int8_dynamic}.tflite (fixtures
for the runtime tests, which then need only the tflite extra). The same plugin functions that
convert and quantize at test time make them, so the fixtures are what users get.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pytest_edgeopt.models.digits import TFLITE_PATH, load_digits_cnn
from pytest_edgeopt.optimize.tflite import convert_torch, to_fp16, to_int8_dynamic, to_int8_static

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "tflite"


def main() -> None:
    model = load_digits_cnn()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.tflite"
        convert_torch(model.module, model.example_input, batch=1, dest=fp32)
        shutil.copyfile(fp32, TFLITE_PATH)
        shutil.copyfile(fp32, FIXTURES / "digits_fp32.tflite")
        to_fp16(fp32, FIXTURES / "digits_fp16.tflite")
        to_int8_static(fp32, FIXTURES / "digits_int8.tflite", calibration=model.calibration, batch=1)
        to_int8_dynamic(fp32, FIXTURES / "digits_int8_dynamic.tflite")
    for path in [TFLITE_PATH, *sorted(FIXTURES.glob("digits_*.tflite"))]:
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
