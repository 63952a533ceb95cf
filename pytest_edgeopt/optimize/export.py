"""PyTorch -> ONNX with the dynamo exporter, self-contained (no external-data side file)."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Dict

import numpy as np

from pytest_edgeopt.errors import EdgeOptError, MissingDependency

OPSET = 20


def require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependency(package="torch", extra="torch", purpose="PyTorch models") from None
    return torch


def export_torch(module: Any, example: np.ndarray, *, batch: int, dest: Path) -> Dict[str, Any]:
    """Export at a fixed batch: static shapes run ~25% faster on ORT than a dynamic batch axis."""
    torch = require_torch()
    _require_onnxscript()
    sample = torch.from_numpy(_batched(example, batch))
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), torch.no_grad():
            torch.onnx.export(
                module, (sample,), str(dest), input_names=["input"], output_names=["output"],
                dynamo=True, external_data=False, opset_version=OPSET, verbose=False,
            )
    except Exception as error:
        raise EdgeOptError(f"ONNX export failed: {_first_line(error)}") from None
    return {"params": int(sum(p.numel() for p in module.parameters())),
            "flops": torch_flops(module, sample), "opset": OPSET}


def torch_flops(module: Any, sample: Any) -> int:
    """FLOPs of one forward pass as torch counts them (conv and matmul; MACs = FLOPs / 2)."""
    torch = require_torch()
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(sample)
    return int(counter.get_total_flops())


def _batched(example: np.ndarray, batch: int) -> np.ndarray:
    sample = np.asarray(example)[:1]
    return np.ascontiguousarray(np.repeat(sample, batch, axis=0))


def _require_onnxscript() -> None:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter imports it lazily and fails late)
    except ImportError:
        raise MissingDependency(package="onnxscript", extra="torch",
                                purpose="the dynamo ONNX exporter") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
