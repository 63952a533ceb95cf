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
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from pytest_edgeopt._isolate import run_isolated
from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.inspect.facts import Quantization
from pytest_edgeopt.models.base import InputData, count_of
from pytest_edgeopt.optimize.export import Exported
from pytest_edgeopt.runtimes.causes import cause_line

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


def convert_torch(module: Any, example: InputData, *, batch: int, dest: Path) -> Exported:
    """Convert at a fixed batch with the model's own (NCHW) input layout, so the same eval data
    feeds the ONNX and the TFLite artifact; the runtime reads the layout back from the file."""
    from pytest_edgeopt.optimize.export import require_torch, sample_args, torch_flops

    torch = require_torch()
    with _quiet():  # importing it logs torch pytree deprecations on stderr
        litert_torch = require_litert_torch()
    _, args = sample_args(example, batch)  # several inputs become args_0, args_1, ... in forward's order
    try:
        with _quiet(), torch.no_grad():
            litert_torch.convert(module.eval(), args).export(str(dest))
    except Exception as error:
        raise EdgeOptError(f"TFLite conversion (litert-torch) failed: {cause_line(error)}") from None
    return Exported(params=int(sum(p.numel() for p in module.parameters())), flops=torch_flops(module, args))


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


def to_int8_static(
    src: Path, dest: Path, *, calibration: InputData, batch: int, float_scopes: Tuple[str, ...] = ()
) -> Quantization:
    """Full integer: int8 weights and activations, int8 input and output tensors, but for the ops
    whose scope one of `float_scopes` matches (regexes: tflite_sensitivity.float_scopes), which
    stay float. Calibration runs the user's graph: in a child process under the job's deadline
    (isolate.py)."""
    require_quantizer()
    batches = calibration_batches(calibration, batch)
    run_isolated("TFLite INT8 calibration", _static_int8, src, dest, batches, float_scopes)
    return Quantization(
        weight_type="int8",
        activation_type="int8",
        io_type="int8",
        calibration_samples=len(batches) * batch,
        tool="ai-edge-quantizer",
    )


def _static_int8(src: Path, dest: Path, batches: Any, float_scopes: Tuple[str, ...]) -> None:
    """ai-edge-quantizer's static recipe, calibrated on `batches` (in the child process); a
    NO_QUANTIZE entry per float scope, after the recipe's own (the later entry wins)."""
    quantizer = require_quantizer()
    from ai_edge_quantizer import qtyping, recipe

    def configure(q: Any) -> None:
        q.load_quantization_recipe(recipe.static_wi8_ai8())
        for regex in float_scopes:
            q.update_quantization_recipe(
                regex=regex,
                operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                algorithm_key=quantizer.AlgorithmName.NO_QUANTIZE,
            )

    _quantize(src, dest, configure, calibration=batches)


def same_outputs(first: Path, second: Path) -> Optional[float]:
    """The largest output difference of two .tflite files of one graph on one seeded input (float
    inputs uniform in [-1, 1]); None when either cannot be loaded."""
    outputs = []
    for path in (first, second):
        rng = np.random.default_rng(0)
        it = _interpreter(path)
        if it is None:
            return None
        for detail in it.get_input_details():
            it.set_tensor(detail["index"], rng.uniform(-1, 1, detail["shape"]).astype(detail["dtype"]))
        it.invoke()
        outputs.append({d["name"]: it.get_tensor(d["index"]).astype(np.float64) for d in it.get_output_details()})
    return max(float(np.max(np.abs(outputs[0][name] - outputs[1][name]))) for name in outputs[0])


def _interpreter(path: Path) -> Any:
    """TFLite's builtin kernels; XNNPACK where they lack an op (MediaPipe's custom ops); None
    when neither loads the file."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    for resolver in (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, OpResolverType.AUTO):
        try:
            it = Interpreter(model_path=str(path), experimental_op_resolver_type=resolver)
            it.allocate_tensors()
            return it
        except (RuntimeError, ValueError):
            continue
    return None


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
        raise EdgeOptError(f"TFLite quantization (ai-edge-quantizer) failed: {cause_line(error)}") from None


def _calibration_set(src: Path, batches: Any) -> Dict[str, Any]:
    if batches is None:
        raise EdgeOptError("static INT8 needs calibration data: pass calibration_data to the EdgeModel")
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer.utils import tfl_interpreter_utils

    details = Interpreter(model_path=str(src)).get_signature_runner().get_input_details()
    keys = signature_keys(src, details, batches[0])
    return {
        tfl_interpreter_utils.DEFAULT_SIGNATURE_KEY: [
            {signature: rows[key] for signature, key in keys.items()} for rows in batches
        ]
    }


def signature_keys(src: Path, details: Dict[str, Any], rows: Dict[str, np.ndarray]) -> Dict[str, str]:
    """Signature input -> eval array: by signature name, by tensor name (what the agent feeds
    by), else in order (litert-torch names them args_0, args_1, ... in forward's order)."""
    if len(rows) != len(details):
        raise EdgeOptError(
            f"{src.name} has {len(details)} inputs ({', '.join(details)}) but the calibration data {len(rows)}"
        )
    if len(details) == 1:
        return {next(iter(details)): next(iter(rows))}
    named = {sig: sig if sig in rows else str(d["name"]) for sig, d in details.items()}
    if all(key in rows for key in named.values()):
        return named
    return dict(zip(details, rows))


def calibration_batches(calibration: InputData, batch: int) -> List[Dict[str, np.ndarray]]:
    """Whole batches (at most MAX_CALIBRATION_SAMPLES samples), each input batch-first as given."""
    arrays = calibration if isinstance(calibration, dict) else {"inputs": calibration}
    data = {
        k: (v.astype(np.float32) if v.dtype == np.float64 else v)[:MAX_CALIBRATION_SAMPLES] for k, v in arrays.items()
    }
    count = count_of(data)
    usable = count - count % batch if count >= batch else 0
    if usable == 0:
        raise EdgeOptError(f"calibration needs at least {batch} samples (one batch), got {count}")
    return [{k: np.ascontiguousarray(v[i : i + batch]) for k, v in data.items()} for i in range(0, usable, batch)]


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
