"""Every skip's install hint names a command that installs the package it says is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_edgeopt.errors import MissingDependency
from pytest_edgeopt.plugins.executorch import EXECUTORCH
from pytest_edgeopt.runtimes import BUILTIN_RUNTIMES
from pytest_edgeopt.runtimes.install import COMMANDS, EXECUTORCH_VERSION, install_command

pytest.importorskip("tomllib")
from tests.deps_helpers import closure, extras, normal, not_installed

ROOT = Path(__file__).resolve().parents[2]
NAMED = re.compile(r'MissingDependency\(package="([^"]+)", extra="([^"]+)"')


def hints() -> set:
    """(package, extra) of every MissingDependency the code raises by name, and of every runtime."""
    source = " ".join(p.read_text(encoding="utf-8") for p in (ROOT / "pytest_edgeopt").rglob("*.py"))
    named = {(package, extra) for package, extra in NAMED.findall(" ".join(source.split()))}
    return named | {(spec.package, spec.extra) for spec in (*BUILTIN_RUNTIMES, EXECUTORCH) if spec.extra}


def test_every_extra_a_hint_names_installs_its_package() -> None:
    found = hints()
    assert ("onnxruntime", "onnx") in found and ("executorch", "executorch") in found and len(found) > 10
    declared = extras()
    unknown = {}
    for package, extra in sorted(found):
        assert extra in declared, (package, extra)
        if extra in COMMANDS or normal(package) in closure(extra):
            continue
        # pip's view goes through installed metadata: a package the extra brings indirectly (pillow
        # through scikit-image) is found only where the extra is installed, which the floor venv is not
        missing = not_installed(extra)
        assert missing, f'pip install "pytest-edgeopt[{extra}]" does not bring {package}'
        unknown[package] = f"[{extra}] without {', '.join(missing)}"
    if unknown:
        pytest.skip(f"not installed here, so not followed: {unknown}")


def test_the_executorch_hint_names_the_commands_that_install_it() -> None:
    pinned = re.search(r"^executorch==(\S+)$", (ROOT / "constraints.txt").read_text(encoding="utf-8"), re.M)
    assert pinned and pinned.group(1) == EXECUTORCH_VERSION
    assert "executorch" not in closure("executorch")  # the extra alone does not install it
    text = str(MissingDependency(package="executorch", extra="executorch", purpose="ExecuTorch export"))
    assert text == (
        'executorch is not installed (ExecuTorch export): pip install "pytest-edgeopt[executorch]" '
        f"&& pip install --no-deps executorch=={EXECUTORCH_VERSION}"
    )
    assert EXECUTORCH.install_hint().endswith(install_command("executorch"))
