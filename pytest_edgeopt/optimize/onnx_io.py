"""Reading ONNX files with errors a user can act on (a corrupt file is bad input, not a crash)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_edgeopt.errors import EdgeOptError, MissingDependency


def require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise MissingDependency(package="onnx", extra="onnx", purpose="reading ONNX models") from None
    return onnx


def load_onnx(path: Path, *, load_external_data: bool = True) -> Any:
    onnx = require_onnx()
    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except Exception as error:  # protobuf raises DecodeError, onnx raises its own: all mean "bad file"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise EdgeOptError(f"{Path(path).name} is not a readable ONNX model ({reason})") from None
