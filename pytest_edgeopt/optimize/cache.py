"""Content-addressed artifact cache under `.edgeopt_cache/`.

Exports and quantization take seconds to minutes; keying on a hash of everything that shapes the
file (model content and code, precision, calibration data, tool versions) makes a second run free
and a stale file impossible. Builders write to a temporary name that is fsynced and renamed into
place, a lock per key keeps two xdist workers from building the same file at once, and a reused
file is checked against the size and sha256 recorded when it was built: a truncated or edited
file is rebuilt, never measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Mapping, Optional, Tuple

from pytest_edgeopt._fs import atomic_build, atomic_write_text, file_lock
from pytest_edgeopt.errors import EdgeOptError

Info = Dict[str, Any]  # what a builder reports about the file it built, stored as JSON beside it
Builder = Callable[[Path], Info]
# "exporting digits-cnn to ONNX" -> a context around the build: the session shows it in the terminal
Progress = Callable[[str], ContextManager[None]]
KEY_PATTERN = re.compile(r"^[0-9a-f]{20}$")


def cache_key(parts: Mapping[str, object]) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def file_sha256(path: Path) -> str:
    """Hashed once per version of a file in a process (a 100 MB ResNet-50 takes ~0.3 s)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHED:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


_HASHED: Dict[Tuple[str, int, int], str] = {}


class ArtifactCache:
    """One directory; each entry is `<key><suffix>` plus `<key>.json` with what the builder reported."""

    def __init__(self, root: Path, *, progress: Optional[Progress] = None, build_lock: Optional[Path] = None) -> None:
        self.root = Path(root)
        self.progress = progress
        self.build_lock = build_lock  # held shared while building: the host's timing lock (see _building)

    def get_or_build(
        self,
        parts: Mapping[str, object],
        *,
        suffix: str,
        build: Builder,
        what: str = "",
        companions: Tuple[str, ...] = (),
    ) -> Tuple[Path, Info]:
        """Return (path, info) for the entry, building it once; info is the builder's metadata.
        `what` names the work for the progress line, shown only when the entry is really built.
        `companions`: suffixes of the files the build writes beside the entry (an IR's `.bin`),
        recorded and checked like the entry itself."""
        key = cache_key(parts)
        path, meta = self.root / f"{key}{suffix}", self.root / f"{key}.json"
        try:
            self._check_root()
            with file_lock(self.root / f"{key}.lock"):
                found = _intact(path, meta)
                if found is None:
                    with self._building(what):
                        info = atomic_build(path, build, companions=companions)
                    record = {
                        "parts": dict(parts),
                        "info": info,
                        "size": path.stat().st_size,
                        "sha256": file_sha256(path),
                    }
                    if companions:
                        record["companions"] = {s: _fingerprint(path.with_suffix(s)) for s in companions}
                    atomic_write_text(meta, json.dumps(record, default=str))
                    found = info
                _touch(meta)
                return path, found
        except OSError as error:  # a full disk, a read-only or foreign cache: one line, not a traceback
            raise EdgeOptError(
                f"artifact cache {self.root}: {error.strerror or error} ({error.filename or path.name}); "
                "free space or choose a writable cache with --edge-cache-dir"
            ) from None

    def _check_root(self) -> None:
        """The cached files are what gets measured: a cache directory another user owns could swap
        them (as a remote_dir could the agent's code), and nobody else may write into ours."""
        self.root.mkdir(parents=True, exist_ok=True)
        found = self.root.stat()
        if hasattr(os, "getuid") and found.st_uid != os.getuid():
            raise EdgeOptError(
                f"artifact cache {self.root} belongs to uid {found.st_uid}, not to you (uid {os.getuid()}): "
                "choose a cache directory of your own with --edge-cache-dir"
            )
        if found.st_mode & 0o002:
            os.chmod(self.root, found.st_mode & ~0o002 & 0o7777)

    @contextlib.contextmanager
    def _building(self, what: str) -> Iterator[None]:
        """An export or a quantization keeps both cores busy for seconds to minutes: holding the
        host's timing lock shared, no xdist worker times a latency case beside it (the local
        transport times under the same lock held exclusively). On a 2-vCPU VM a neighbour's build
        inflates even CPU time (the likely reason CI with `-n 2` once timed a 0.055 ms model at 0.085 ms)."""
        shared = file_lock(self.build_lock, shared=True) if self.build_lock else contextlib.nullcontext()
        shown = self.progress(what) if self.progress and what else contextlib.nullcontext()
        with shared, shown:
            yield

    def lookup(self, key: str, *, suffix: str) -> Optional[Tuple[Path, Info]]:
        """An intact entry by key (e.g. the artifact a baseline names), or None. The key comes from
        a baseline file a pull request can edit: anything but a cache key is refused."""
        if not KEY_PATTERN.match(key):
            return None
        path, meta = self.root / f"{key}{suffix}", self.root / f"{key}.json"
        info = _intact(path, meta)
        if info is None:
            return None
        _touch(meta)
        return path, info


def _intact(path: Path, meta: Path) -> Optional[Info]:
    """The builder's info when the file is the one that was built; None means rebuild."""
    if not (path.is_file() and meta.is_file()):
        return None
    try:
        record = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("info"), dict):
        return None
    size, sha = record.get("size"), record.get("sha256")
    if size is not None and path.stat().st_size != size:
        return None
    if sha is not None and file_sha256(path) != sha:
        return None
    for suffix, recorded in (record.get("companions") or {}).items():
        beside = path.with_suffix(str(suffix))
        if not beside.is_file() or _fingerprint(beside) != recorded:
            return None
    info: Info = record["info"]
    return info


def _fingerprint(path: Path) -> Dict[str, object]:
    """What a companion file is checked against on reuse, as the entry itself is."""
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def _touch(meta: Path) -> None:
    """Last use, for pruning the least recently used entries first."""
    try:
        os.utime(meta)
    except OSError:
        pass


@dataclass(frozen=True)
class Entry:
    key: str
    files: Tuple[Path, ...]  # regular files only: a directory or a link named like an entry is not ours
    used: float  # last use (the record's mtime)

    @property
    def size(self) -> int:
        return sum(_regular_size(f) for f in self.files)


def entries(root: Path) -> List[Entry]:
    """Every entry of the cache, most recently used first. A record whose file is gone, a link or
    a directory named like an entry is skipped, never a traceback."""
    found: List[Entry] = []
    for meta in Path(root).glob("*.json"):
        key = meta.stem
        used = _regular_mtime(meta)
        if KEY_PATTERN.match(key) and used is not None:
            files = tuple(
                p for p in Path(root).glob(f"{key}*") if p.suffix != ".lock" and _regular_mtime(p) is not None
            )
            found.append(Entry(key=key, files=files, used=used))
    return sorted(found, key=lambda e: e.used, reverse=True)


def _regular_mtime(path: Path) -> Optional[float]:
    try:
        found = path.lstat()
    except OSError:
        return None
    return found.st_mtime if stat.S_ISREG(found.st_mode) else None


def _regular_size(path: Path) -> int:
    try:
        found = path.lstat()
    except OSError:
        return 0
    return found.st_size if stat.S_ISREG(found.st_mode) else 0


def prune(root: Path, *, max_bytes: int, keep_since: Optional[float] = None) -> Iterator[Entry]:
    """Remove least recently used entries until the cache holds at most `max_bytes`; entries used
    since `keep_since` (this run) are kept whatever the size. Yields what it removed."""
    total = 0
    for entry in entries(root):
        total += entry.size
        recent = keep_since is not None and entry.used >= keep_since
        if total <= max_bytes or recent:
            continue
        total -= entry.size
        with file_lock(Path(root) / f"{entry.key}.lock"):
            for path in entry.files:
                path.unlink(missing_ok=True)
        yield entry
