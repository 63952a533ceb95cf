"""EdgeSession: the state of one pytest run, and what each pytest hook asks of it.

The plugin module wires hooks here, one call each (syrupy's __init__.py -> session.py). The
session composes the stages: the Measurer measures, the BaselineBook decides what is stored,
the report renders. It lives in `config.stash`, and crosses xdist as JSON: workers send rows and
what they collected, the controller renders the table and is the only process that writes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import pytest

from pytest_edgeopt.agent.power import PowerMeterSpec
from pytest_edgeopt.baselines.bookkeeping import BaselineBook, Collection
from pytest_edgeopt.baselines.entry import key_of, module_of
from pytest_edgeopt.baselines.store import BaselineStore, Update
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.judge.types import Row
from pytest_edgeopt.kinds import TableColumns, Verdict
from pytest_edgeopt.measure.compare import parse_percent
from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.optimize.cache import prune
from pytest_edgeopt.platforms.profiles import Platform
from pytest_edgeopt.platforms.transport import Transport
from pytest_edgeopt.report.files import append_step_summary, write_report
from pytest_edgeopt.report.recommend import recommendation_lines
from pytest_edgeopt.report.table import baseline_lines, device_lines, table_lines, unchecked_lines
from pytest_edgeopt.runtimes import RuntimeSpec
from pytest_edgeopt.session import parametrize
from pytest_edgeopt.session.mcu import measurer_for
from pytest_edgeopt.session.measuring import Case, PairRequest
from pytest_edgeopt.session.mixed import MixedSearch, goal_of, search, search_key
from pytest_edgeopt.settings import Settings

session_key = pytest.StashKey["EdgeSession"]()
ROWS_KEY, COLLECTED_KEY, USAGE_ERRORS_KEY = "edgeopt_rows", "edgeopt_collected", "edgeopt_usage_errors"
Section = Tuple[str, List[str]]


TEST_FAILED = "test: failed its own assertion after measuring (see its report)"


class EdgeSession:
    def __init__(
        self,
        *,
        settings: Settings,
        platform: Platform,
        transport: Transport,
        runtimes: Dict[str, RuntimeSpec],
        meters: Optional[Dict[str, PowerMeterSpec]] = None,
    ) -> None:
        self.settings = settings
        self.platform = platform
        self.transport = transport
        self.runtimes = runtimes
        self.measurer = measurer_for(
            settings=settings, platform=platform, transport=transport, runtimes=runtimes, meters=meters or {}
        )
        self.collection = Collection()
        self.restore_signals: Callable[[], None] = lambda: None  # see signals.end_like_sigint
        self.book = BaselineBook(
            BaselineStore(root=settings.baselines_dir, platform=platform.name),
            self.collection,
            mode=settings.update_baselines,
        )
        self.rows: List[Row] = []
        self.usage_errors: List[str] = []
        self.collected_nodeids: List[str] = []
        self.updates: List[Update] = []
        self.errors: List[str] = []  # what the end of the run could not do (a write that failed)
        self.written_reports: List[Path] = []
        self.cache_lines: List[str] = []
        self.started = time.time() - 1.0  # entries used from here on are this run's: never pruned

    def close(self) -> None:
        """The device link and the session's outputs files end with the run."""
        self.transport.close()
        self.measurer.close()
        self.restore_signals()

    def measure(self, case: Case, *, nodeid: str, budgets: Mapping[str, object]) -> Row:
        """A row for this test; the measurement itself is made once per session per case. When
        the test's budgets compare latency with the baseline, the job pairs with its artifact."""
        pair = self._baseline_pair(case, nodeid, budgets)
        row = Row(measurement=replace(self.measurer.measurement(case, pair), nodeid=nodeid))
        self.rows.append(row)
        return row

    def mixed(self, case: Case, *, nodeid: str, budgets: Mapping[str, object]) -> Tuple[Case, MixedSearch]:
        """int8-mixed's float layers: the baseline entry's list when it was found for this very
        model, data and goal (no search), else a search within the run's caps."""
        goal = goal_of(budgets, where=case.label)
        key = search_key(case, goal)
        stored = self._stored_mixed(case, nodeid, key)
        if stored is not None:
            found = MixedSearch(stored, True, 0, 0.0)
        else:
            settings = self.settings
            found = search(self.measurer, case, goal, max_s=settings.mixed_max_s, max_layers=settings.mixed_max_layers)
        return replace(case, keep_float=found.keep_float, search_key=key), found

    def _stored_mixed(self, case: Case, nodeid: str, key: str) -> Optional[Tuple[str, ...]]:
        if self.settings.update_baselines:
            return None
        entry_key = key_of(
            nodeid, model=case.model.name, precision=case.precision, runtime=case.runtime, batch=case.batch
        )
        try:
            entry = self.book.entry(module_of(nodeid), entry_key)
        except EdgeOptError:  # the gate reports a damaged file itself
            return None
        if entry is None or entry.info.get("search_key") != key:
            return None
        kept = entry.info.get("kept_float")
        return tuple(str(n) for n in kept) if isinstance(kept, list) else None

    def _baseline_pair(self, case: Case, nodeid: str, budgets: Mapping[str, object]) -> Optional[PairRequest]:
        if "max_latency_regression" not in budgets or self.settings.update_baselines:
            return None
        key = key_of(nodeid, model=case.model.name, precision=case.precision, runtime=case.runtime, batch=case.batch)
        try:
            entry = self.book.entry(module_of(nodeid), key)
            limit = 1.0 + parse_percent(budgets["max_latency_regression"], name="max_latency_regression")
        except (EdgeOptError, ValueError):  # the gate reports a damaged file or a bad budget itself
            return None
        artifact = self.measurer.cached(case, entry.artifact_sha) if entry is not None else None
        return PairRequest("baseline", artifact, limit) if artifact is not None else None

    def measurements(self) -> List[Measurement]:
        return [row.measurement for row in self.rows]

    # -- collection -------------------------------------------------------------------------

    def generate(self, metafunc: pytest.Metafunc) -> None:
        parametrize.generate(
            metafunc,
            default_precisions=self.settings.default_precisions,
            runtimes=tuple(self.runtimes),
            errors=self.usage_errors,
        )

    def select(self, config: pytest.Config, items: List[pytest.Item]) -> None:
        parametrize.check_budget_markers(items, self.usage_errors)
        if self.usage_errors:
            raise pytest.UsageError("\n".join(dict.fromkeys(self.usage_errors)))
        drop = parametrize.deselected(
            items, {"edge_precision": self.settings.precisions, "edge_runtime": self.settings.runtimes}
        )
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = [item for item in items if item not in drop]

    def collection_finished(self, items: Sequence[pytest.Item]) -> None:
        selected = {item.nodeid for item in items}
        for nodeid in self.collected_nodeids:
            self.collection.note_collected(nodeid, selected=nodeid in selected)

    # -- the end of the run -----------------------------------------------------------------

    def finish(self, session: pytest.Session) -> None:
        """Workers hand their rows to the controller; the controller alone writes. A write that
        fails is one line in the summary and a failed run, never a traceback that hides the table."""
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput.update(self.worker_payload())
            return
        self.updates, self.errors = self.book.write(self.measurements())
        self.rows = [self._with_outcome(row) for row in self.rows]
        for path in self.settings.reports:
            try:
                write_report(path, self.rows, platform=self.platform.name)
            except OSError as error:
                self.errors.append(f"{path}: cannot write the report ({error.strerror or error})")
            else:
                self.written_reports.append(path)
        self._step_summary()
        self._prune_cache()
        if self.errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _step_summary(self) -> None:
        """On GitHub Actions ($GITHUB_STEP_SUMMARY set) the table and findings go to the run's page."""
        target = os.environ.get("GITHUB_STEP_SUMMARY")
        if not target or not self.rows:
            return
        try:
            append_step_summary(
                Path(target), self.rows, platform=self.platform.name, findings=unchecked_lines(self.rows)
            )
        except OSError as error:
            self.errors.append(f"{target}: cannot append the step summary ($GITHUB_STEP_SUMMARY): {error}")

    def _with_outcome(self, row: Row) -> Row:
        """A test that failed its own assert (or raised) after measuring shows `fail`, not `-`: the
        row's verdict is the test's when no budget judged it."""
        if row.judgement.verdict != Verdict.NONE or self.collection.outcomes.get(row.measurement.nodeid) != "failed":
            return row
        failed = replace(row.judgement, verdict=Verdict.FAIL, violations=(*row.judgement.violations, TEST_FAILED))
        return Row(measurement=row.measurement, judgement=failed)

    def _prune_cache(self) -> None:
        cap = self.settings.cache_max_mb
        if cap is None:
            return
        try:
            removed = list(prune(self.settings.cache_dir, max_bytes=int(cap * 1e6), keep_since=self.started))
        except OSError as error:
            self.errors.append(f"{self.settings.cache_dir}: cannot prune the artifact cache ({error})")
            return
        if removed:
            self.cache_lines.append(f"pruned {len(removed)} least recently used artifact(s) to stay under {cap:g} MB")

    def summary(self, *, terminal_width: Optional[int] = None, verbosity: int = 0) -> List[Section]:
        """The sections after the test outcomes. The table fits `terminal_width` unless -v or
        --edge-table-columns=all asks for every column."""
        stale = self.book.stale_report(self.measurements())
        full = verbosity > 0 or self.settings.table_columns == TableColumns.ALL
        width = None if full else terminal_width
        sections = [
            ("pytest-edgeopt: comparison table", table_lines(self.rows, width=width) if self.settings.table else []),
            ("pytest-edgeopt: what to deploy", recommendation_lines(self.rows) if self.settings.table else []),
            ("pytest-edgeopt: not checked", unchecked_lines(self.rows)),
            (
                "pytest-edgeopt: devices",
                device_lines(self.rows) if self.platform.remote or self.platform.fingerprint else [],
            ),
            ("pytest-edgeopt: baselines", baseline_lines(self.updates, stale, updating=self.settings.update_baselines)),
        ]
        if self.written_reports and self.rows:
            sections.append(("pytest-edgeopt: report", [f"wrote {path}" for path in self.written_reports]))
        if self.collection.incomplete:
            sections.append(("pytest-edgeopt: baselines", [f"no entry is stale: {self.collection.incomplete}"]))
        sections.append(("pytest-edgeopt: cache", self.cache_lines))
        sections.append(("pytest-edgeopt: errors", [f"ERROR {line}" for line in self.errors]))
        return sections

    # -- xdist ------------------------------------------------------------------------------

    def worker_payload(self) -> Dict[str, object]:
        collection = {
            "collected": {m: sorted(v) for m, v in self.collection.collected.items()},
            "selected": {m: sorted(v) for m, v in self.collection.selected.items()},
        }
        return {
            ROWS_KEY: json.dumps([row.to_dict() for row in self.rows]),
            COLLECTED_KEY: json.dumps(collection),
            USAGE_ERRORS_KEY: list(dict.fromkeys(self.usage_errors)),
        }

    def node_down(self, node: object, error: object) -> None:
        """xdist controller: a worker's rows; a worker that died sent none, so nothing is stale."""
        payload = getattr(node, "workeroutput", None)
        if error is not None or not payload or ROWS_KEY not in payload:
            name = getattr(getattr(node, "gateway", None), "id", "a worker")
            self.collection.incomplete = f"{name} ended without reporting its rows ({error or 'no result'})"
        if payload:
            self.merge_worker(payload)

    def merge_worker(self, payload: Dict[str, object]) -> None:
        errors = payload.get(USAGE_ERRORS_KEY)
        if isinstance(errors, list) and errors:
            # the worker's UsageError never reaches the user: xdist only sees a worker that collected
            # items and ran none, and ends the run with an INTERNALERROR; raise it here instead
            raise pytest.UsageError("\n".join(str(e) for e in errors))
        rows = json.loads(str(payload.get(ROWS_KEY, "[]")))
        self.rows.extend(Row.from_dict(row) for row in rows)
        collection = json.loads(str(payload.get(COLLECTED_KEY, "{}")))
        self.collection.merge(collection.get("collected", {}), collection.get("selected", {}))


class OutcomeRecorder:
    """Test outcomes decide which baseline entries are stale (reports reach the xdist controller too)."""

    def __init__(self, session: EdgeSession) -> None:
        self._session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            self._session.collection.note_outcome(report.nodeid, report.outcome)


def edge(config: pytest.Config) -> Optional[EdgeSession]:
    """The run's session; None before configure made it (or when configure failed)."""
    return config.stash.get(session_key, None)


def edge_session(config: pytest.Config) -> EdgeSession:
    """The run's session, in a hook that runs only after configure made it."""
    return config.stash[session_key]
