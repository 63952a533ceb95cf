"""The command that installs what a skip says is missing: one place for every hint.

`pip install "pytest-edgeopt[executorch]"` does not install executorch (its wheel declares ~20
packages that export and run never import, and pins typing-extensions against a pinned tool), so
its hint names the two commands CI runs. Standard library only: the agent words the same hint."""

from __future__ import annotations

EXECUTORCH_VERSION = "1.5.1"  # as constraints.txt pins it (tests/unit/test_install_hints.py holds them equal)
# an extra whose `pip install` does not bring its package: the commands that do
COMMANDS = {
    "executorch": f'pip install "pytest-edgeopt[executorch]" && pip install --no-deps executorch=={EXECUTORCH_VERSION}',
}


def install_command(extra: str) -> str:
    return COMMANDS.get(extra, f'pip install "pytest-edgeopt[{extra}]"')


def install_hint(package: str, extra: str) -> str:
    """`onnxruntime is not installed: pip install "pytest-edgeopt[onnx]" (or pip install onnxruntime)`."""
    if not extra:
        return f"{package} is not installed: pip install {package}"
    alternative = "" if extra in COMMANDS else f" (or pip install {package})"
    return f"{package} is not installed: {install_command(extra)}{alternative}"
