"""Which entries an update writes and which are stale, by syrupy's rule: only what ran is touched,
and an entry is removed only when its whole module ran and nothing produced it any more.

The controller alone calls `write`: xdist workers report what they collected, selected and how
their tests ended, and the controller merges that here before deciding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

from pytest_edgeopt.baselines.entry import (
    BaselineEntry,
    case_key,
    changed,
    entry_from_measurement,
    module_of,
    test_name,
)
from pytest_edgeopt.baselines.store import BaselineStore, Update
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.kinds import UpdateMode
from pytest_edgeopt.measure.result import Measurement


@dataclass
class Collection:
    """What pytest collected and selected per module, and how each test ended."""

    collected: Dict[str, Set[str]] = field(default_factory=dict)  # module -> test names collected
    selected: Dict[str, Set[str]] = field(default_factory=dict)  # module -> test names that were to run
    narrowed: Set[str] = field(default_factory=set)  # modules named by node id (`test_x.py::test_a`)
    outcomes: Dict[str, str] = field(default_factory=dict)  # nodeid -> passed / failed / skipped
    incomplete: Optional[str] = None  # why some rows never arrived (an xdist worker died): nothing is stale

    def note_collected(self, nodeid: str, *, selected: bool) -> None:
        self.collected.setdefault(module_of(nodeid), set()).add(test_name(nodeid))
        if selected:
            self.selected.setdefault(module_of(nodeid), set()).add(test_name(nodeid))

    def note_outcome(self, nodeid: str, outcome: str) -> None:
        if self.outcomes.get(nodeid) in (None, "passed"):
            self.outcomes[nodeid] = outcome

    def merge(self, collected: Dict[str, Iterable[str]], selected: Dict[str, Iterable[str]]) -> None:
        for source, target in ((collected, self.collected), (selected, self.selected)):
            for module, names in source.items():
                target.setdefault(module, set()).update(names)

    def passed(self, nodeid: str) -> bool:
        return self.outcomes.get(nodeid) == "passed"

    def ran_whole(self, module: str) -> bool:
        """`test_x.py::test_a` collects only test_a, so collected == selected proves nothing there;
        a worker that died took its rows with it, so no module ran whole then."""
        collected, selected = self.collected.get(module, set()), self.selected.get(module, set())
        if not collected or collected != selected or module in self.narrowed or self.incomplete:
            return False
        return all(f"{module}::{name}" in self.outcomes for name in selected)


class BaselineBook:
    def __init__(self, store: BaselineStore, collection: Collection, *, mode: Optional[UpdateMode]) -> None:
        self.store = store
        self.collection = collection
        self.mode = mode  # None: compare only

    def entry(self, module: str, key: str) -> Optional[BaselineEntry]:
        """The stored entry; a damaged file raises unless this run is rewriting baselines."""
        try:
            return self.store.entry(module, key)
        except EdgeOptError:
            if self.mode:
                return None
            raise

    def write(self, measurements: List[Measurement]) -> Tuple[List[Update], List[str]]:
        """New/changed entries of the tests that passed, stale ones removed per syrupy's rule;
        one module's damaged file or full disk does not stop the others (errors, one line each)."""
        if self.mode is None:
            return [], []
        updates, errors = [], []
        for module, entries in sorted(self._pending(measurements).items()):
            try:
                update = self._write(module, entries, measurements)
            except (EdgeOptError, OSError) as error:
                errors.append(_one_line(error, self.store.path_for(module)))
                continue
            if not update.empty:
                updates.append(update)
        return updates, errors

    def _write(self, module: str, entries: Dict[str, BaselineEntry], measurements: List[Measurement]) -> Update:
        remove = self.stale(module, measurements) if self.mode == UpdateMode.ALL else set()
        regenerate = self.mode == UpdateMode.ALL and self.collection.ran_whole(module)
        return self.store.write(module, new=entries, remove=remove, regenerate=regenerate)

    def _pending(self, measurements: List[Measurement]) -> Dict[str, Dict[str, BaselineEntry]]:
        pending: Dict[str, Dict[str, BaselineEntry]] = {}
        for m in measurements:
            if m.invalid or not self.collection.passed(m.nodeid):  # a failing row is no yardstick
                continue
            module, key = module_of(m.nodeid), case_key(m.nodeid, m)
            old = self.entry(module, key)
            if old is not None and self.mode == UpdateMode.NEW:
                continue
            new = entry_from_measurement(m)
            if old is None or changed(old, new):
                pending.setdefault(module, {})[key] = new
        for module in self.collection.selected:  # modules with only stale entries still get cleaned
            pending.setdefault(module, {})
        return pending

    def stale(self, module: str, measurements: List[Measurement]) -> Set[str]:
        """Entries whose test is gone or no longer measures them; only for modules that ran whole."""
        if not self.collection.ran_whole(module):
            return set()
        try:
            stored = self.store.entries(module)
        except EdgeOptError:
            return set()
        produced = {case_key(m.nodeid, m) for m in measurements if module_of(m.nodeid) == module}
        return {key for key in stored if key not in produced and self._entry_unused(module, key)}

    def stale_report(self, measurements: List[Measurement]) -> Dict[str, Set[str]]:
        return {m: keys for m in sorted(self.collection.selected) if (keys := self.stale(m, measurements))}

    def _entry_unused(self, module: str, key: str) -> bool:
        name = key.rsplit("::", 1)[0]
        if name not in self.collection.collected.get(module, set()):
            return True
        return self.collection.outcomes.get(f"{module}::{name}") == "passed"


def _one_line(error: BaseException, path: Path) -> str:
    """A baseline write that failed, as the summary shows it: the file and what to do."""
    if isinstance(error, OSError):
        return f"{path}: cannot write the baseline file ({error.strerror or error}); nothing of it was changed"
    return " ".join(str(error).split())
