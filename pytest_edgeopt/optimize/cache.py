"""Content-addressed artifact cache under `.edgeopt_cache/`.

Exports and quantization take seconds to minutes; keying on a hash of everything that shapes the
file (model content, precision, calibration data, tool versions) makes a second run free and a
stale file impossible. Builders write to a temporary name and are renamed into place, and a lock
per key keeps two xdist workers from building the same file at once.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from pytest_edgeopt.locking import file_lock

Builder = Callable[[Path], Dict[str, Any]]


def cache_key(parts: Mapping[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ArtifactCache:
    """One directory; each entry is `<key><suffix>` plus `<key>.json` with what the builder reported."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def get_or_build(self, parts: Mapping[str, Any], *, suffix: str, build: Builder) -> tuple:
        """Return (path, info) for the entry, building it once; info is the builder's metadata."""
        key = cache_key(parts)
        path, meta = self.root / f"{key}{suffix}", self.root / f"{key}.json"
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / f"{key}.lock"):
            if not (path.exists() and meta.exists()):
                info = _build_atomically(path, build)
                atomic_write_text(meta, json.dumps({"parts": dict(parts), "info": info}, default=str))
            return path, json.loads(meta.read_text())["info"]


    def lookup(self, key: str, *, suffix: str) -> Optional[Tuple[Path, Dict[str, Any]]]:
        """An existing entry by key (e.g. the artifact a baseline names), or None."""
        path, meta = self.root / f"{key}{suffix}", self.root / f"{key}.json"
        if not (path.exists() and meta.exists()):
            return None
        return path, json.loads(meta.read_text())["info"]


def _build_atomically(path: Path, build: Builder) -> Dict[str, Any]:
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    _shareable(tmp)
    try:
        info = build(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return info


def _shareable(path: Path) -> None:
    """mkstemp creates 0600; give the file the mode a plain open() would (a cache or a baseline
    directory is often shared between users or CI steps)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    _shareable(Path(tmp_name))
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
