"""The only file utilities: atomic writes and inter-process locks, shared by the cache, the
baseline store, the reports and the transports.

Readers must see the old file or the new one, never half of either (a killed run, a full disk),
and two processes (xdist workers, two CI jobs on one runner) must not interleave their writes.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple, TypeVar

from pytest_edgeopt.errors import EdgeOptError

T = TypeVar("T")


@contextmanager
def file_lock(lock_path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold an exclusive (or a shared) lock on `lock_path`; without fcntl (Windows) it serializes
    nothing. Shared holders exclude only exclusive ones: many builds at once, no timing beside them.
    The file is opened without following a link and without blocking, and refused unless it is a
    regular file: a planted `<key>.lock` symlink would create a file elsewhere, a FIFO hang the run.
    It is opened read-only (flock needs no more), so another user's machine lock still serves."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    handle = _open_lock(lock_path)
    try:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def _open_lock(lock_path: Path) -> int:
    flags = os.O_RDONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(lock_path, flags | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as error:
        kind = "a symbolic link" if lock_path.is_symlink() else f"not usable ({error.strerror})"
        raise EdgeOptError(f"lock file {lock_path} is {kind}: remove it, or choose another directory") from None
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        raise EdgeOptError(f"lock file {lock_path} is not a regular file: remove it")
    return handle


def machine_lock_dir() -> Path:
    """One directory per machine, whatever the cache dir: two runs with different caches must
    not time at the same moment. $EDGEOPT_LOCK_DIR overrides it (a container with its own /tmp
    sharing CPUs with others)."""
    chosen = os.environ.get("EDGEOPT_LOCK_DIR")
    if chosen:
        return Path(chosen)
    path = Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / "pytest-edgeopt-locks"
    try:
        path.mkdir()
        os.chmod(path, 0o1777)  # like /tmp: every user's runs share it, none removes another's files
    except OSError:
        pass  # there already (another run made it); a lock that cannot be opened there says so
    return path


@contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive lock on a directory itself (created if missing): no lock file is left among
    the files it guards, and a file replaced by rename is still guarded (its inode changes, the
    directory's does not)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    handle = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers see the old or the new file, never half."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_build(path, lambda tmp: tmp.write_bytes(data))


# files that only work together: an OpenVINO IR's weights (.bin) beside its graph (.xml), found
# by read_model under the same stem. The IR's builder writes them, the cache and SSH carry them.
COMPANIONS: Dict[str, Tuple[str, ...]] = {".xml": (".bin",)}


def companions_of(path: Path) -> List[Path]:
    """The files that travel with `path`, where they exist."""
    found = [path.with_suffix(suffix) for suffix in COMPANIONS.get(path.suffix, ())]
    return [beside for beside in found if beside.is_file()]


def atomic_build(path: Path, build: Callable[[Path], T], *, companions: Tuple[str, ...] = ()) -> T:
    """`build(tmp)` writes the file; it is fsynced and renamed into place only when complete.
    `companions` are suffixes of files the build writes beside it (an OpenVINO IR's `.bin` next to
    its `.xml`: `tmp.with_suffix(".bin")`): they are renamed into place first, so a file in place
    always has its companions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    shareable(tmp)
    beside = [(tmp.with_suffix(suffix), path.with_suffix(suffix)) for suffix in companions]
    try:
        result = build(tmp)
        for written, final in beside:
            fsync_file(written)
            os.replace(written, final)
        fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        for written, _ in beside:
            written.unlink(missing_ok=True)
    return result


def fsync_file(path: Path) -> None:
    """A rename is durable only after the data is: a crash otherwise leaves a renamed empty file."""
    with open(path, "rb") as stream:
        os.fsync(stream.fileno())


def shareable(path: Path) -> None:
    """mkstemp creates 0600; give the file the mode a plain open() would (a cache or a baseline
    directory is often shared between users or CI steps)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
