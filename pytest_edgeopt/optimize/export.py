"""PyTorch -> ONNX with the dynamo exporter, self-contained (no external-data side file)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.runtimes.causes import cause_line, own_warning_filters

OPSET = 20


@dataclass(frozen=True)
class Exported:
    """What torch counted while exporting: its own parameter count and FLOPs of one forward."""

    params: int
    flops: int


def require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependency(package="torch", extra="torch", purpose="PyTorch models") from None
    return torch


def export_torch(module: Any, example: Union[np.ndarray, Dict[str, np.ndarray]], *, batch: int, dest: Path) -> Exported:
    """Export at a fixed batch: static shapes run ~25% faster on ORT than a dynamic batch axis.
    Several inputs (a dict in forward's argument order) keep their names in the graph, so the
    eval data's names find them; a single tensor out is named `output`, several keep torch's."""
    torch = require_torch()
    _require_onnxscript()
    names, args = sample_args(example, batch)
    log = io.StringIO()
    try:
        with own_warning_filters(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), torch.no_grad():
            torch.onnx.export(
                module,
                args,
                str(dest),
                input_names=names,
                output_names=_output_names(module, args),
                dynamo=True,
                external_data=False,
                opset_version=OPSET,
                verbose=False,
            )
    except Exception as error:
        raise EdgeOptError(f"ONNX export failed: {cause_line(error)}") from None
    strip_source_paths(dest)
    return Exported(params=int(sum(p.numel() for p in module.parameters())), flops=torch_flops(module, args))


def sample_args(example: Union[np.ndarray, Dict[str, np.ndarray]], batch: int) -> Tuple[List[str], Tuple[Any, ...]]:
    """forward's positional arguments at `batch`, and the graph's input names."""
    torch = require_torch()
    if isinstance(example, dict):
        return list(example), tuple(torch.from_numpy(_batched(a, batch)) for a in example.values())
    return ["input"], (torch.from_numpy(_batched(example, batch)),)


def _output_names(module: Any, args: Tuple[Any, ...]) -> Optional[List[str]]:
    """`output` for one tensor out (the zoo's graphs and their baselines use it); None for a
    tuple or dict out, whose names the exporter takes from the module."""
    torch = require_torch()
    with torch.no_grad():
        result = module(*args)
    return ["output"] if isinstance(result, torch.Tensor) else None


def strip_source_paths(path: Path) -> None:
    """Drop the exporter's per-node Python stack traces: they embed the absolute paths of the
    venv and the user's source, so the same model exported from another checkout (CI) changed
    size and broke a storage-regression budget with no change to the deployed graph."""
    from pytest_edgeopt.inspect.onnx_file import load_onnx, require_onnx

    onnx = require_onnx()
    proto = load_onnx(path)
    if _strip_graph(proto.graph) + sum(_strip_nodes(f.node) for f in proto.functions):
        onnx.save(proto, str(path))


def _strip_graph(graph: Any) -> int:
    return _strip_nodes(graph.node)


def _strip_nodes(nodes: Any) -> int:
    removed = 0
    for node in nodes:
        kept = [prop for prop in node.metadata_props if prop.key not in _PATH_KEYS]
        if len(kept) != len(node.metadata_props):
            removed += len(node.metadata_props) - len(kept)
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
        for attribute in node.attribute:
            subgraphs = ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs)
            removed += sum(_strip_graph(graph) for graph in subgraphs)
    return removed


_PATH_KEYS = frozenset({"pkg.torch.onnx.stack_trace"})


def torch_flops(module: Any, args: Tuple[Any, ...]) -> int:
    """FLOPs of one forward pass as torch counts them (conv and matmul; MACs = FLOPs / 2)."""
    torch = require_torch()
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with own_warning_filters(), counter, torch.no_grad():
        module(*args)
    return int(counter.get_total_flops())


def _batched(example: np.ndarray, batch: int) -> np.ndarray:
    sample = np.asarray(example)[:1]
    return np.ascontiguousarray(np.repeat(sample, batch, axis=0))


def _require_onnxscript() -> None:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter imports it lazily and fails late)
    except ImportError:
        raise MissingDependency(package="onnxscript", extra="torch", purpose="the dynamo ONNX exporter") from None
