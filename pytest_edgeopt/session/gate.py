"""The gate inside a test: a measurement judged against its budgets and its stored baseline, the
verdict recorded in the row, a broken budget raised as the test's failure."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Dict, Optional

from pytest_edgeopt.baselines.entry import BaselineEntry, case_key, mismatch_reason, module_of
from pytest_edgeopt.errors import EdgeOptWarning
from pytest_edgeopt.judge.checks import check, raise_if_failed
from pytest_edgeopt.judge.types import Context, Row
from pytest_edgeopt.kinds import Policy, UpdateMode, Verdict
from pytest_edgeopt.measure.result import Measurement, PairedComparison
from pytest_edgeopt.session.mcu import fit_limits
from pytest_edgeopt.session.measuring import Case, PairRequest

if TYPE_CHECKING:
    from pytest_edgeopt.session.edge_session import EdgeSession


class Checker:
    """Bound to one row: `m.check(...)` and the marker's budgets both land here."""

    def __init__(self, session: "EdgeSession", row: Row, case: Case) -> None:
        self._session, self._row, self._case = session, row, case

    def __call__(self, m: Measurement, budgets: Dict[str, object]) -> Measurement:
        settings = self._session.settings
        context = self._context(m)
        judged, judgement = check(m, budgets, context)
        self._row.merge(replace(judged, _checker=None), judgement)
        if judgement.verdict == Verdict.INCONCLUSIVE and settings.inconclusive == Policy.WARN:
            warnings.warn(  # noqa: B028  (the default stacklevel points at this gate, not at pytest)
                EdgeOptWarning(
                    f"{m.nodeid}: latency verdict inconclusive after "
                    f"{context.attempts} re-measurements: {'; '.join(judgement.violations)}"
                )
            )
        raise_if_failed(judged, judgement, inconclusive_fails=settings.inconclusive == Policy.FAIL)
        return replace(judged, _checker=self)

    def _context(self, m: Measurement) -> Context:
        session = self._session
        case = replace(self._case, precision=m.precision, runtime=m.runtime, batch=m.batch)
        measurer, stored = session.measurer, self._stored(m, case)
        return Context(
            baseline=stored.baseline,
            note=stored.note,
            missing=stored.missing,
            mismatch=stored.mismatch,
            mismatch_fails=session.settings.fingerprint_mismatch == Policy.FAIL,
            pair_baseline=stored.pair,
            pair_reference=lambda precision, ratio: measurer.paired(
                case, PairRequest(precision, measurer.artifact_of(case.at(precision)), ratio)
            ),
            reference=lambda precision: measurer.measurement(case.at(precision)),
            remeasure=lambda: measurer.remeasure(case),
            attempts=session.settings.remeasure,
            fit=fit_limits(session.platform, session.settings),
        )

    def _stored(self, m: Measurement, case: Case) -> "_Stored":
        """The stored entry to judge `m` against, or why there is none."""
        session, mode = self._session, self._session.settings.update_baselines
        if mode == UpdateMode.ALL:
            return _Stored(note="baseline being rewritten (--update-baselines)")
        module, key = module_of(m.nodeid), case_key(m.nodeid, m)
        entry = session.book.entry(module, key)
        if entry is None and mode == UpdateMode.NEW:
            return _Stored(note="new baseline entry (--add-baselines)")
        if entry is None:
            return _Stored(
                missing=f"no baseline for {key} on {session.platform.name} in "
                f"{session.book.store.path_for(module)}: run with --update-baselines"
            )
        reason = mismatch_reason(entry, m)
        return _Stored(baseline=entry, note=reason, mismatch=reason, pair=self._baseline_pairing(case, entry))

    def _baseline_pairing(self, case: Case, entry: BaselineEntry) -> Callable[[float], Optional[PairedComparison]]:
        """A paired job against the baseline's own artifact, if the cache holds it."""
        measurer = self._session.measurer

        def pair(limit: float) -> Optional[PairedComparison]:
            artifact = measurer.cached(case, entry.artifact_sha)
            return measurer.paired(case, PairRequest("baseline", artifact, limit)) if artifact else None

        return pair


@dataclass(frozen=True)
class _Stored:
    baseline: Optional[BaselineEntry] = None
    note: Optional[str] = None
    missing: Optional[str] = None
    mismatch: Optional[str] = None
    pair: Optional[Callable[[float], Optional[PairedComparison]]] = None
