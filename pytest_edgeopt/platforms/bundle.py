"""The agent as one zip file a device runs with `python3 agent-<sha>.pyz`.

Only the agent and the runtimes go in (stdlib + numpy + the runtime), so nothing of
pytest-edgeopt need be installed on the device; the bytes are deterministic, so the file name
(its content hash) tells whether the device already has this version. A runtime or power meter
that a plugin adds travels in the same zip when it is one module file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import zipfile
from pathlib import Path
from typing import List, Tuple

import pytest_edgeopt

PACKAGES = ("agent", "runtimes")
_MAIN = b"from pytest_edgeopt.agent.__main__ import main\nraise SystemExit(main())\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)


@functools.lru_cache(maxsize=8)
def agent_bundle(extra_modules: Tuple[str, ...] = ()) -> Tuple[str, bytes]:
    """(file name, bytes) of the agent zipapp, with the plugin modules the jobs name."""
    root = Path(pytest_edgeopt.__file__).resolve().parent
    files = [("__main__.py", _MAIN), ("pytest_edgeopt/__init__.py", (root / "__init__.py").read_bytes())]
    for package in PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            files.append((f"pytest_edgeopt/{package}/{path.name}", path.read_bytes()))
    files += [_module_file(name) for name in sorted(set(extra_modules)) if not name.startswith("pytest_edgeopt.")]
    data = _zip(files)
    return f"agent-{hashlib.sha256(data).hexdigest()[:16]}.pyz", data


def _module_file(name: str) -> Tuple[str, bytes]:
    """A single-file module at its import path; a package would need its whole tree, and its
    own dependencies belong on the device, installed there."""
    spec = importlib.util.find_spec(name)
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    if origin is None or origin.suffix != ".py" or origin.name == "__init__.py":
        raise ValueError(f"{name} is not a single .py module: install it on the device instead")
    return f"{name.replace('.', '/')}.py", origin.read_bytes()


def _zip(files: List[Tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()
