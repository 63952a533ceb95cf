"""PyTorch -> FP32 .tflite (litert-torch) and FP32 .tflite -> FP16/INT8 (ai-edge-quantizer).

Neither step needs TensorFlow. ONNX -> TFLite is deliberately absent: the one converter for it,
onnx2tf, hard-pins TensorFlow, numpy and pytest itself and downloads calibration data
(notes/litert-feasibility.md), so an ONNX model runs on ONNX Runtime only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import numpy as np

from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.inspect.facts import Quantization
from pytest_edgeopt.optimize.export import Exported

# Calibration runs the float model once per sample: this bounds its time on big calibration sets.
MAX_CALIBRATION_SAMPLES = 256


def require_litert_torch() -> Any:
    try:
        import litert_torch
    except ImportError:
        raise MissingDependency(
            package="litert-torch", extra="tflite-torch", purpose="converting PyTorch models to .tflite"
        ) from None
    return litert_torch


def require_quantizer() -> Any:
    try:
        from ai_edge_quantizer import quantizer
    except ImportError:
        raise MissingDependency(
            package="ai-edge-quantizer", extra="tflite-quant", purpose="FP16/INT8 quantization of .tflite models"
        ) from None
    return quantizer


def convert_torch(module: Any, example: np.ndarray, *, batch: int, dest: Path) -> Exported:
    """Convert at a fixed batch with the model's own (NCHW) input layout, so the same eval data
    feeds the ONNX and the TFLite artifact; the runtime reads the layout back from the file."""
    from pytest_edgeopt.optimize.export import _batched, require_torch, torch_flops

    torch = require_torch()
    with _quiet():  # importing it logs torch pytree deprecations on stderr
        litert_torch = require_litert_torch()
    sample = torch.from_numpy(_batched(example, batch))
    try:
        with _quiet(), torch.no_grad():
            litert_torch.convert(module.eval(), (sample,)).export(str(dest))
    except Exception as error:
        raise EdgeOptError(f"TFLite conversion (litert-torch) failed: {_first_line(error)}") from None
    return Exported(params=int(sum(p.numel() for p in module.parameters())), flops=torch_flops(module, (sample,)))


def to_fp16(src: Path, dest: Path) -> Quantization:
    quantizer = require_quantizer()
    from ai_edge_quantizer import qtyping

    def configure(q: Any) -> None:
        q.add_weight_only_config(
            regex=".*",
            operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
            num_bits=16,
            algorithm_key=quantizer.AlgorithmName.FLOAT_CASTING,
        )

    _quantize(src, dest, configure, calibration=None)
    return Quantization(
        weight_type="float16",
        activation_type="float32 (weights dequantized at load)",
        io_type="float32",
        tool="ai-edge-quantizer",
        bitwidth="FP16/FP32",
    )


def to_int8_dynamic(src: Path, dest: Path) -> Quantization:
    require_quantizer()
    from ai_edge_quantizer import recipe

    _quantize(src, dest, lambda q: q.load_quantization_recipe(recipe.dynamic_wi8_afp32()), calibration=None)
    return Quantization(
        weight_type="int8", activation_type="float32 (int8 at run time)", io_type="float32", tool="ai-edge-quantizer"
    )


def to_int8_static(src: Path, dest: Path, *, calibration: np.ndarray, batch: int) -> Quantization:
    """Full integer: int8 weights and activations, int8 input and output tensors."""
    require_quantizer()
    from ai_edge_quantizer import recipe

    batches = _batches(calibration, batch)
    _quantize(src, dest, lambda q: q.load_quantization_recipe(recipe.static_wi8_ai8()), calibration=batches)
    return Quantization(
        weight_type="int8",
        activation_type="int8",
        io_type="int8",
        calibration_samples=len(batches) * batch,
        tool="ai-edge-quantizer",
    )


def _quantize(src: Path, dest: Path, configure: Callable[[Any], None], *, calibration: Any) -> None:
    quantizer = require_quantizer()
    try:
        with _quiet():
            q = quantizer.Quantizer(str(src))
            configure(q)
            ranges = q.calibrate(_calibration_set(src, calibration)) if q.need_calibration else None
            q.quantize(ranges).export_model(str(dest), overwrite=True)
    except EdgeOptError:
        raise
    except Exception as error:
        raise EdgeOptError(f"TFLite quantization (ai-edge-quantizer) failed: {_first_line(error)}") from None


def _calibration_set(src: Path, batches: Any) -> Dict[str, Any]:
    if batches is None:
        raise EdgeOptError("static INT8 needs calibration data: pass calibration_data to the EdgeModel")
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer.utils import tfl_interpreter_utils

    runner = Interpreter(model_path=str(src)).get_signature_runner()
    names = list(runner.get_input_details())
    if len(names) != 1:
        raise EdgeOptError(f"{src.name} has {len(names)} inputs; only single-input models are supported")
    return {tfl_interpreter_utils.DEFAULT_SIGNATURE_KEY: [{names[0]: b} for b in batches]}


def _batches(calibration: np.ndarray, batch: int) -> List[np.ndarray]:
    data = np.asarray(calibration, dtype=np.float32)[:MAX_CALIBRATION_SAMPLES]
    usable = len(data) - len(data) % batch if len(data) >= batch else 0
    if usable == 0:
        raise EdgeOptError(f"calibration needs at least {batch} samples (one batch), got {len(data)}")
    return [np.ascontiguousarray(data[i : i + batch]) for i in range(0, usable, batch)]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The converter and the quantizer print banners, progress bars and debug warnings; a test
    run under `-W error` must not fail on them and the terminal must not fill with them."""
    log = io.StringIO()
    root = logging.getLogger()
    level = root.level
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            root.setLevel(level)


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] if text else type(error).__name__
