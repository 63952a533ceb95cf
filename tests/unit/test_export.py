"""The exported ONNX file must not depend on where the venv or the user's source lives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_edgeopt.optimize.export import export_torch

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3)
    ).eval()


def test_export_carries_no_source_paths(tmp_path: Path) -> None:
    dest = tmp_path / "net.onnx"
    info = export_torch(_net(), np.zeros((1, 1, 8, 8), np.float32), batch=1, dest=dest)
    data = dest.read_bytes()
    assert b"stack_trace" not in data
    assert str(Path(torch.__file__).parent).encode() not in data
    assert info.params == 4 * 9 + 4 + 144 * 3 + 3


def test_export_is_byte_identical_across_runs(tmp_path: Path) -> None:
    example = np.zeros((1, 1, 8, 8), np.float32)
    net = _net()
    export_torch(net, example, batch=1, dest=tmp_path / "a.onnx")
    export_torch(net, example, batch=1, dest=tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
