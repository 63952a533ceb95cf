"""Where the suites' third-party pretrained models come from: the installed package, else the copy
shipped in suites/models/ (the same files; see its README for versions, licences and hashes)."""

from __future__ import annotations

from importlib import util
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent / "models"


def packaged_model(package: str, member: str) -> Path:
    """`member` inside the installed `package` (e.g. silero_vad, data/silero_vad.onnx) when it is
    installed, without importing it (silero_vad imports torch); the shipped copy otherwise."""
    spec = util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        installed = Path(next(iter(spec.submodule_search_locations))) / member
        if installed.is_file():
            return installed
    shipped = SHIPPED / Path(member).name
    if not shipped.is_file():
        raise FileNotFoundError(f"{member} is neither in an installed {package} nor shipped at {shipped}")
    return shipped
