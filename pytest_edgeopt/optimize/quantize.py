"""Precision transforms on ONNX files, with onnxruntime.quantization doing the quantizing.

Each transform returns the exact types it used, so the table can say U8S8 vs S8S8: on x86 without
VNNI, U8S8 ran ResNet-50 at 0.52x FP32 time while S8S8 ran at 0.86x (notes/onnxruntime-feasibility).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from pytest_edgeopt._isolate import run_isolated
from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.inspect.facts import Quantization
from pytest_edgeopt.inspect.onnx_file import default_opset, load_onnx, require_onnx
from pytest_edgeopt.measure.result import LayerError
from pytest_edgeopt.models.base import InputData
from pytest_edgeopt.optimize.calibration import onnx_batches
from pytest_edgeopt.runtimes.causes import cause_line, own_warning_filters


def require_quantization() -> Any:
    try:
        from onnxruntime import quantization
    except ImportError:
        raise MissingDependency(package="onnxruntime", extra="onnx", purpose="ONNX Runtime quantization") from None
    return quantization


def int8_activation_type(arch: str) -> str:
    """uint8 activations on x86 (its int8 dot products, VNNI included, are u8 x s8); int8 on Arm."""
    return "uint8" if arch.lower() in ("x86_64", "amd64", "i686", "x86") else "int8"


def to_fp16(src: Path, dest: Path) -> Quantization:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(load_onnx(src), keep_io_types=True)
    require_onnx().save(model, str(dest))
    return Quantization(weight_type="float16", activation_type="float16", io_type="float32")


def to_int8_dynamic(src: Path, dest: Path) -> Quantization:
    q = require_quantization()
    _quantize(lambda pre: q.quantize_dynamic(str(pre), str(dest), weight_type=q.QuantType.QInt8), src)
    return Quantization(
        weight_type="int8", activation_type="uint8 (dynamic, per batch)", format="IntegerOps", per_channel=False
    )


def to_int8_static(
    src: Path,
    dest: Path,
    *,
    calibration: InputData,
    batch: int,
    activation: str,
    keep_float: Tuple[str, ...] = (),
    shown_as: str = "",
) -> Quantization:
    """Calibration runs the user's graph: in a child process under the job's deadline (isolate.py),
    which fails the build naming `shown_as` when the graph does not finish. `keep_float`: patterns
    of nodes left in float (sensitivity.resolve_keep_float), resolved on the pre-processed graph
    the quantizer reads; the names it kept are in the returned record."""
    require_quantization()
    batches = onnx_batches(src, calibration, batch=batch)
    samples, kept = run_isolated(
        f"ONNX Runtime INT8 calibration of {shown_as or src.name}",
        _static_int8,
        src,
        dest,
        batches,
        batch,
        activation,
        keep_float,
        shown_as or src.name,
    )
    return Quantization(
        weight_type="int8 per-channel",
        activation_type=activation,
        format="QDQ",
        per_channel=True,
        calibration_samples=samples,
        bitwidth=f"INT8 mixed, {len(kept)} layers float" if keep_float else None,
        kept_float=kept if keep_float else None,
    )


def _static_int8(
    src: Path,
    dest: Path,
    batches: List[Dict[str, np.ndarray]],
    batch: int,
    activation: str,
    keep_float: Tuple[str, ...],
    where: str,
) -> Tuple[int, Tuple[str, ...]]:
    """quantize_static with MinMax calibration (in the child process), `keep_float` resolved on the
    pre-processed graph and passed as nodes_to_exclude; returns the samples used and the kept names."""
    q = require_quantization()
    act = q.QuantType.QUInt8 if activation == "uint8" else q.QuantType.QInt8
    reader = _CalibrationReader(batches, batch)
    kept: List[Tuple[str, ...]] = [()]

    def run(pre: Path) -> None:
        if keep_float:
            from pytest_edgeopt.optimize.sensitivity import graph_layers, node_sources, resolve_keep_float

            kept[0] = resolve_keep_float(keep_float, graph_layers(pre, node_sources(src)), where=where)
        q.quantize_static(
            str(pre),
            str(dest),
            reader,
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=act,
            weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
            nodes_to_exclude=list(kept[0]),
        )

    _quantize(run, src)
    return reader.samples, kept[0]


@contextlib.contextmanager
def preprocessed(src: Path) -> Iterator[Path]:
    """`src` as every INT8 quantizer here reads it: upgraded to opset 13 (per-channel weights) and
    pre-processed (shape inference, BN/const folding), in a scratch directory removed afterwards.
    ONNX Runtime's and NNCF's paths share it: NNCF on an opset 11 file kept every weight float32
    behind Q/DQ pairs (PP-OCR's classifier: INT8 storage 0.71 MB vs FP32's 0.59 MB)."""
    with tempfile.TemporaryDirectory(prefix="edgeopt-quant-") as scratch:
        pre = Path(scratch) / "pre.onnx"
        _preprocess(src, pre)
        yield pre


def isolated_sensitivity(
    root: Path, quantized: Path, batches: Sequence[Dict[str, np.ndarray]]
) -> Tuple[LayerError, ...]:
    """sensitivity.onnx_sensitivity on `root` pre-processed as the quantizers read it: the body
    of the child process (_isolate.run_isolated) that runs the user's graph for the ranking."""
    from pytest_edgeopt.optimize.sensitivity import onnx_sensitivity

    with preprocessed(root) as pre:
        return onnx_sensitivity(root, pre, quantized, batches)


def _quantize(run: Callable[[Path], object], src: Path) -> None:
    """Pre-process in a scratch dir, then quantize."""
    with own_warning_filters(), preprocessed(src) as pre:
        try:
            run(pre)
        except EdgeOptError:
            raise
        except Exception as error:
            raise EdgeOptError(f"quantization of {src.name} failed: {cause_line(error)}") from None


# per-channel DequantizeLinear (the axis attribute) exists from opset 13; older files are upgraded
PER_CHANNEL_OPSET = 13


def _preprocess(src: Path, dest: Path) -> None:
    """What ORT's own examples run before static quantization (shape inference, constant and BN
    folding): without it paddle2onnx-style graphs (PP-OCR) came out larger and slower than FP32.
    Symbolic shape inference asserts on some graphs; ONNX's own pass is then enough, and only a
    graph both refuse is quantized as it is."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    upgraded = _with_per_channel_opset(src, dest.with_name("opset.onnx"))
    for skip_symbolic in (False, True):
        try:
            with _working_dir(
                dest.resolve().parent
            ):  # a failed symbolic pass saves sym_shape_infer_temp.onnx in the cwd
                quant_pre_process(str(upgraded.resolve()), str(dest.resolve()), skip_symbolic_shape=skip_symbolic)
            return
        except Exception:  # each stage is the fallback of the one before
            continue
    shutil.copyfile(upgraded, dest)


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    """ORT's symbolic shape inference writes its partial model to the current directory: the
    user's project would keep a stray sym_shape_infer_temp.onnx (and its external data)."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@lru_cache(maxsize=256)
def needs_opset_upgrade(src: Path) -> bool:
    """Asked for every INT8 case's cache key: parsed once per file (cache files never change)."""
    opset = default_opset(src)
    return opset is not None and opset < PER_CHANNEL_OPSET


def _with_per_channel_opset(src: Path, scratch: Path) -> Path:
    """An opset 11 file has no per-channel DequantizeLinear: per-channel weights would fail or stay float."""
    if not needs_opset_upgrade(src):
        return src
    from onnx import version_converter

    onnx = require_onnx()
    try:
        converted = version_converter.convert_version(onnx.load(str(src)), PER_CHANNEL_OPSET)
    except Exception:  # an op the converter cannot move: quantize at the file's own opset
        return src
    onnx.save(converted, str(scratch))
    return scratch


class _CalibrationReader:
    """Feeds the model's calibration data in the batch size the graph was exported with."""

    def __init__(self, batches: List[Dict[str, np.ndarray]], batch: int) -> None:
        self.samples = len(batches) * batch
        self._batches: Iterator[Dict[str, np.ndarray]] = iter(batches)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self._batches, None)
