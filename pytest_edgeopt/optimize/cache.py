"""Content-addressed artifact cache under `.edgeopt_cache/`.

Exports and quantization take seconds to minutes; keying on a hash of everything that shapes the
file (model content, precision, calibration data, tool versions) makes a second run free and a
stale file impossible. Builders write to a temporary name and are renamed into place, and a lock
per key keeps two xdist workers from building the same file at once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from pytest_edgeopt._fs import atomic_build, atomic_write_text, file_lock

Info = Dict[str, Any]  # what a builder reports about the file it built, stored as JSON beside it
Builder = Callable[[Path], Info]


def cache_key(parts: Mapping[str, object]) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ArtifactCache:
    """One directory; each entry is `<key><suffix>` plus `<key>.json` with what the builder reported."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def get_or_build(self, parts: Mapping[str, object], *, suffix: str, build: Builder) -> Tuple[Path, Info]:
        """Return (path, info) for the entry, building it once; info is the builder's metadata."""
        key = cache_key(parts)
        path, meta = self.root / f"{key}{suffix}", self.root / f"{key}.json"
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / f"{key}.lock"):
            if not (path.exists() and meta.exists()):
                info = atomic_build(path, build)
                atomic_write_text(meta, json.dumps({"parts": dict(parts), "info": info}, default=str))
            return path, json.loads(meta.read_text())["info"]

    def lookup(self, key: str, *, suffix: str) -> Optional[Tuple[Path, Info]]:
        """An existing entry by key (e.g. the artifact a baseline names), or None."""
        path, meta = self.root / f"{key}{suffix}", self.root / f"{key}.json"
        if not (path.exists() and meta.exists()):
            return None
        return path, json.loads(meta.read_text())["info"]
