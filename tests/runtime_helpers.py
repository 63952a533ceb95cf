"""Shared by the tests of the runtimes with their own artifact build (OpenVINO, ExecuTorch)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Sequence

import pytest


def build_in_process(shared_cache: Path, *, precisions: Sequence[str], fmt: str, builder: str) -> None:
    """Build digits-cnn's files in this process before any pytester run: pytester drops the modules
    an inner run imported, and a second import of the quantizers' C extensions can abort the process.
    The shared artifact cache then serves every inner run."""
    from pytest_edgeopt.models.zoo import load_zoo_model
    from pytest_edgeopt.optimize.artifacts import build_artifact
    from pytest_edgeopt.optimize.cache import ArtifactCache
    from pytest_edgeopt.optimize.precisions import get_precision

    for precision in precisions:
        build_artifact(
            load_zoo_model("digits-cnn"),
            precision=get_precision(precision),
            batch=1,
            arch=platform.machine(),
            cache=ArtifactCache(shared_cache),
            fmt=fmt,
            builder=builder,
        )


def shadow_package(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Child processes (the agent) cannot import `name`: a package of that name that raises what a
    missing one raises comes first on their PYTHONPATH."""
    shadow = tmp_path / "shadow" / name
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(f"raise ModuleNotFoundError(\"No module named '{name}'\", name='{name}')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")])))
