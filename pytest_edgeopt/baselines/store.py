"""BaselineStore: `baselines/<platform>/<test module path>.json`, loaded once, validated, written
atomically and only by the xdist controller.

A write locks the file's directory and re-reads the file first, so two update runs at once (say
`-k fp32` and `-k int8`) merge instead of dropping each other's entries. A damaged file is
reported with its path, the JSON path of the problem and the flag that regenerates it; it is
rewritten only by an update run of its whole module, and a file from a newer pytest-edgeopt
never is.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from pytest_edgeopt._fs import atomic_write_text, directory_lock
from pytest_edgeopt.baselines.entry import BaselineEntry, stored_measurement
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.measure.result import Measurement

SCHEMA_VERSION = 1
MAX_FILE_CHARS = 256 * 1024 * 1024  # far above any real suite's file; a bigger one is not ours
REGENERATE = "regenerate it with --update-baselines"


class BaselineFileError(EdgeOptError):
    """A baseline file that cannot be trusted: not JSON, or not valid against the schema."""


class NewerBaselineFile(BaselineFileError):
    """Written by a newer pytest-edgeopt: never rewritten by this one, which would lose its fields."""


@dataclass
class Update:
    """What one module's file write did, for the old -> new table."""

    path: Path
    added: List[str] = field(default_factory=list)
    changed: List[Tuple[str, BaselineEntry, BaselineEntry]] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


class BaselineStore:
    def __init__(self, *, root: Path, platform: str) -> None:
        self.root = Path(root)
        self.platform = platform
        self._files: Dict[str, Dict[str, Any]] = {}  # module -> the file's JSON, as loaded
        self._entries: Dict[str, Dict[str, BaselineEntry]] = {}
        self._errors: Dict[str, BaselineFileError] = {}

    def path_for(self, module: str) -> Path:
        """`suites/test_digits.py` -> `baselines/host/suites/test_digits.json`."""
        return self.root / self.platform / Path(module).with_suffix(".json")

    def entries(self, module: str) -> Dict[str, BaselineEntry]:
        """The module's entries ({} when it has no file); raises BaselineFileError when damaged."""
        if module not in self._files and module not in self._errors:
            self._load(module)
        if module in self._errors:
            raise self._errors[module]
        return self._entries[module]

    def entry(self, module: str, key: str) -> Optional[BaselineEntry]:
        return self.entries(module).get(key)

    def write(self, module: str, *, new: Dict[str, BaselineEntry], remove: Set[str], regenerate: bool) -> Update:
        """Merge `new` into the file as it is on disk now and drop `remove`; untouched entries stay
        byte for byte. A damaged file is replaced only when `regenerate` (its whole module ran)."""
        path = self.path_for(module)
        if not new and not remove:
            return Update(path=path)  # nothing to do: take no lock, create no directory
        with directory_lock(path.parent):
            parsed, raw = self._current(module, regenerate=regenerate)
            update = Update(path=path)
            for key, entry in sorted(new.items()):
                (update.changed.append((key, parsed[key], entry)) if key in parsed else update.added.append(key))
                raw[key] = entry.to_dict()
            for key in sorted(remove & set(raw)):
                update.removed.append(key)
                del raw[key]
            if not update.empty:
                self._save(module, raw)
        return update

    def _current(self, module: str, *, regenerate: bool) -> Tuple[Dict[str, BaselineEntry], Dict[str, Any]]:
        """The file as another run may have just written it (re-read under the lock)."""
        self._files.pop(module, None)
        self._errors.pop(module, None)
        try:
            return dict(self.entries(module)), dict(self._files[module]["entries"])
        except NewerBaselineFile:
            raise
        except BaselineFileError as error:
            if not regenerate:
                raise BaselineFileError(
                    f"{error}; it was not rewritten: only --update-baselines over the "
                    "whole module regenerates a damaged file"
                ) from None
            return {}, {}

    def _load(self, module: str) -> None:
        path = self.path_for(module)
        if not path.exists():
            self._files[module], self._entries[module] = {"entries": {}}, {}
            return
        try:
            self._files[module], self._entries[module] = read_file(path)
        except BaselineFileError as error:
            self._errors[module] = error

    def _save(self, module: str, entries: Dict[str, Any]) -> None:
        data = {"schema_version": SCHEMA_VERSION, "platform": self.platform, "module": module, "entries": entries}
        path = self.path_for(module)
        _remove_orphans(path)
        atomic_write_text(path, dumps(data))
        self._files[module] = data
        self._entries[module] = {key: BaselineEntry.from_dict(e) for key, e in entries.items()}
        self._errors.pop(module, None)


def read_file(path: Path) -> Tuple[Dict[str, Any], Dict[str, BaselineEntry]]:
    """A baseline file's JSON and its entries; BaselineFileError names the file and the fix."""
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineFileError(f"{path}: unreadable ({error}); {REGENERATE}") from None
    except json.JSONDecodeError as error:
        raise BaselineFileError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); {REGENERATE}"
        ) from None
    except (ValueError, RecursionError) as error:  # NaN, 1e999, a 5000-digit integer, deep nesting
        raise BaselineFileError(f"{path}: not a baseline ({_why(error)}); {REGENERATE}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise NewerBaselineFile(
            f"{path}: written by a newer pytest-edgeopt (schema_version {version}; this one reads and writes "
            f"{SCHEMA_VERSION}): upgrade pytest-edgeopt; the file is left as it is"
        )
    try:
        problem = validate(data)
    except RecursionError:
        problem = "nested too deeply"
    if problem:
        raise BaselineFileError(f"{path}: {problem}; {REGENERATE}")
    return data, {key: BaselineEntry.from_dict(e) for key, e in data["entries"].items()}


def parse_json(text: str) -> Any:
    """json.loads that refuses what a measurement never holds: NaN, Infinity and numbers that
    overflow to them (a NaN sample once turned a latency gate into `inconclusive`, a pass)."""
    if len(text) > MAX_FILE_CHARS:
        raise ValueError(f"{len(text)} characters, more than the {MAX_FILE_CHARS} a baseline file may hold")
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a baseline may hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _bounded_int(text: str) -> int:
    """Counts and sizes fit in 18 digits; a longer integer overflows a float or stalls int()."""
    if len(text.lstrip("-")) > 18:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits is not a count a baseline holds")
    return int(text)


def _why(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error).split(";")[0].split("\n")[0]


@dataclass
class StoredTree:
    """Every platform's baseline files under one directory, as the stored-baselines table reads them."""

    measurements: List[Measurement] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)  # one line per file that cannot be read
    files: int = 0


def read_tree(root: Path) -> StoredTree:
    """`baselines/<platform>/**/*.json`: each entry as a Measurement (one note per file and date
    says where it came from); a damaged file is one error line and the others still count."""
    tree = StoredTree()
    for path in sorted(Path(root).glob("*/**/*.json")):
        tree.files += 1
        try:
            _, entries = read_file(path)
        except BaselineFileError as error:
            tree.errors.append(str(error))
            continue
        for key, entry in entries.items():
            note = f"stored in {path.relative_to(root).as_posix()}, {_provenance(entry)}"
            tree.measurements.append(stored_measurement(entry, nodeid=key.split("::", 1)[0], note=note))
    return tree


def _provenance(entry: BaselineEntry) -> str:
    date = entry.provenance.date[:10] or "undated"
    return f"measured {date} at commit {entry.provenance.commit}" if entry.provenance.commit else f"measured {date}"


_NUMBER_LIST = re.compile(r"\[\s*([-+0-9.eE,\s]+?)\s*\]")


def _remove_orphans(path: Path) -> None:
    """Temp files a killed writer left beside `path`; every writer holds the file's lock, so none is live."""
    for orphan in path.parent.glob(f".{path.name}.*.tmp"):
        orphan.unlink(missing_ok=True)


def dumps(data: Dict[str, Any]) -> str:
    """Sorted keys, two-space indent, each number list on one line: stable, reviewable git diffs."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    return _NUMBER_LIST.sub(lambda match: "[" + " ".join(match.group(1).split()) + "]", text) + "\n"


def validate(data: Any) -> Optional[str]:
    """The first schema violation as `at $.entries['k'].metrics: 'top1' is a required property`."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))), None)
    if error is None:
        return None
    return f"schema violation at {_json_path(error.absolute_path)}: {error.message}"


def _json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if str(part).isidentifier() else f"[{part!r}]"
    return path


def _schema() -> Dict[str, Any]:
    text = resources.files("pytest_edgeopt").joinpath("schemas/baseline.schema.json").read_text(encoding="utf-8")
    schema: Dict[str, Any] = json.loads(text)
    return schema
