"""The Runtime protocol: what the agent needs from any inference engine."""
from __future__ import annotations

from typing import Any, Dict, Optional, Protocol, Tuple

import numpy as np


class Runtime(Protocol):
    """Load one artifact, run batches through it, describe itself for the device fingerprint."""

    name: str

    def load(self, artifact: str, *, threads: int, options: Dict[str, Any]) -> None: ...

    def input_spec(self) -> Tuple[Tuple[Optional[int], ...], np.dtype]: ...

    def run(self, batch: np.ndarray) -> np.ndarray: ...

    def info(self) -> Dict[str, Any]: ...

    def close(self) -> None: ...


class ArtifactError(Exception):
    """The artifact cannot be loaded: corrupt, not a model, or an op the runtime lacks."""


class InputError(Exception):
    """The inputs do not fit the model (shape or type)."""
