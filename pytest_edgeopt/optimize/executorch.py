"""ExecuTorch's artifacts: torch.export -> to_edge_transform_and_lower(XNNPACK) -> .pte.

ExecuTorch lowers a torch.nn.Module, not an ONNX file, so it builds its FP32 and INT8 files
itself from the model's module (EdgeModel.from_torch or the zoo). INT8 is PyTorch's PT2E flow
with the XNNPACK quantizer (symmetric int8, per-channel weights): prepare_pt2e, the model's
calibration data through the observed module in the graph's batch, convert_pt2e, then the same
lowering. Both are exported at a fixed batch, as the ONNX files are.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Tuple

import numpy as np

from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.inspect.facts import ArtifactStats, Quantization
from pytest_edgeopt.kinds import ModelKind
from pytest_edgeopt.models.base import EdgeModel, InputData, count_of
from pytest_edgeopt.optimize.export import require_torch, sample_args, torch_flops
from pytest_edgeopt.optimize.formats import ArtifactRecord, BuildRequest
from pytest_edgeopt.optimize.precisions import REFERENCE
from pytest_edgeopt.runtimes.causes import cause_line

PRECISIONS = (REFERENCE, "int8")


class ExecuTorchBuilder:
    """Every ExecuTorch precision is built here, from the torch module."""

    suffix = ".pte"
    companions: Tuple[str, ...] = ()
    packages = ("executorch", "torch", "torchao")
    owns = PRECISIONS

    def check(self, model: EdgeModel, precision: str) -> None:
        if model.kind != ModelKind.TORCH:
            raise EdgeOptError(
                f"{model.name} is a {model.kind.value} file and ExecuTorch lowers a torch.nn.Module: pass the module "
                "(EdgeModel.from_torch) to measure it with runtime='executorch'"
            )
        if precision not in PRECISIONS:
            raise EdgeOptError(f"runtime='executorch' builds {' and '.join(PRECISIONS)}, not {precision}")

    def build(self, request: BuildRequest) -> ArtifactRecord:
        torch = require_torch()
        model = request.model
        module = model.torch_module().eval()
        _, args = sample_args(model.examples(), request.batch)  # forward's arguments, in its order
        with _quiet(), torch.no_grad():
            if request.precision == REFERENCE:
                lowered = lower(torch.export.export(module, args))
                quantization = Quantization()
            else:
                calibrated, samples = quantize_int8(module, args, model.calibration, batch=request.batch)
                lowered = lower(torch.export.export(calibrated, args))
                quantization = _int8_quantization(samples)
        program, weight_bytes = lowered.program, lowered.weight_bytes
        request.dest.write_bytes(program)
        params = int(sum(p.numel() for p in module.parameters()))
        return ArtifactRecord(
            stats=_stats(request.dest.stat().st_size, params=params, weight_bytes=weight_bytes, int8=quantization),
            quantization=quantization,
            graph_batch=request.batch,
            params=params,
            flops=torch_flops(module, args),
            notes=(lowered.note,) if lowered.note else (),
            converter="executorch (XNNPACK)" if not lowered.note else "executorch (portable kernels)",
        )


BUILDER = ExecuTorchBuilder()


def require_exir() -> Any:
    """The export stack; a missing dependency of executorch (installed with --no-deps) is named as itself."""
    try:
        from executorch import exir
        from executorch.backends.xnnpack.partition import xnnpack_partitioner
    except ImportError as error:
        missing = (error.name or "executorch").split(".")[0]
        package = {"ruamel": "ruamel.yaml"}.get(missing, missing)
        purpose = "ExecuTorch export" if package == "executorch" else "ExecuTorch export needs it"
        raise MissingDependency(package=package, extra="executorch", purpose=purpose) from None
    return exir, xnnpack_partitioner


@dataclass(frozen=True)
class Lowered:
    program: bytes  # the .pte
    weight_bytes: int  # what the exported program stores, at the stored types (int8 after convert_pt2e)
    note: str = ""  # why the XNNPACK delegate is not in it, when it is not


def lower(exported: Any) -> Lowered:
    """The program lowered to XNNPACK; where XNNPACK's lowering fails (MTCNN's O-Net: its
    ChannelsLastTaggedReshapePass), the same program on ExecuTorch's portable kernels, and the
    row says so. Failing both, one line with both reasons."""
    exir, partitioner = require_exir()
    weight_bytes = _weight_bytes(exported)
    try:
        edge = exir.to_edge_transform_and_lower(exported, partitioner=[partitioner.XnnpackPartitioner()])
        return Lowered(bytes(edge.to_executorch().buffer), weight_bytes)
    except Exception as error:
        refused = cause_line(error)
    try:
        portable = exir.to_edge_transform_and_lower(exported, partitioner=[]).to_executorch()
    except Exception as error:
        raise EdgeOptError(
            f"ExecuTorch lowering failed: XNNPACK: {refused}; portable kernels: {cause_line(error)}"
        ) from None
    note = f"XNNPACK could not lower it ({refused}): measured on ExecuTorch's portable kernels, without the delegate"
    return Lowered(bytes(portable.buffer), weight_bytes, note=note)


def quantize_int8(module: Any, args: Tuple[Any, ...], calibration: InputData, *, batch: int) -> Tuple[Any, int]:
    """PT2E with the XNNPACK quantizer, calibrated on every whole batch of the calibration data
    (several inputs: a dict in forward's argument order, each batch-first)."""
    torch = require_torch()
    require_exir()
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    count = count_of(calibration)
    usable = (count // batch) * batch
    if usable == 0:
        raise EdgeOptError(f"calibration needs at least {batch} samples (one batch), got {count}")
    arrays = list(calibration.values()) if isinstance(calibration, dict) else [calibration]
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(module, args).module(), quantizer)
    for start in range(0, usable, batch):
        prepared(*(torch.from_numpy(np.ascontiguousarray(a[start : start + batch])) for a in arrays))
    return convert_pt2e(prepared), usable


def _weight_bytes(exported: Any) -> int:
    """Only tensors the graph reads: after convert_pt2e the module still holds its FP32 weights
    beside the int8 ones the graph uses instead."""
    signature = exported.graph_signature
    names = {
        **signature.inputs_to_parameters,
        **signature.inputs_to_buffers,
        **signature.inputs_to_lifted_tensor_constants,
    }
    used = {names[n.name] for n in exported.graph.nodes if n.op == "placeholder" and n.name in names and n.users}
    tensors = {**exported.state_dict, **getattr(exported, "constants", {})}
    return int(sum(t.numel() * t.element_size() for name, t in tensors.items() if name in used))


def _int8_quantization(samples: int) -> Quantization:
    return Quantization(
        weight_type="int8 per-channel",
        activation_type="int8",
        format="PT2E XNNPACK",
        per_channel=True,
        calibration_samples=samples,
        tool="torchao pt2e",
    )


def _stats(size: int, *, params: int, weight_bytes: int, int8: Quantization) -> ArtifactStats:
    """A .pte has no inspector here: params from the module, weight bytes from the exported program."""
    types = ("int8", "float32") if int8.weight_type else ("float32",)
    return ArtifactStats(
        params=params,
        weight_bytes=weight_bytes,
        storage_bytes=size,
        flops=0,
        weight_types=tuple(sorted(types)),
        flops_exact=False,  # not counted from the file: the record carries torch's count of the module
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch.export and the lowering passes warn and log about their internals."""
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        yield
