"""The gate inside a test: a measurement judged against its budgets and its stored baseline, the
verdict recorded in the row, a broken budget raised as the test's failure."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple

from pytest_edgeopt.baselines.entry import BaselineEntry, case_key, mismatch_reason, module_of
from pytest_edgeopt.errors import EdgeOptWarning
from pytest_edgeopt.judge.budgets import ACCURACY_BUDGETS
from pytest_edgeopt.judge.checks import check, raise_if_failed
from pytest_edgeopt.judge.types import Context, Judgement, Row
from pytest_edgeopt.kinds import Policy, UpdateMode, Verdict
from pytest_edgeopt.measure.result import LayerError, Measurement, PairedComparison
from pytest_edgeopt.optimize.precisions import MIXED, REFERENCE
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
        judged, judgement = self._explained(judged, judgement)
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

    def _explained(self, m: Measurement, judgement: Judgement) -> Tuple[Measurement, Judgement]:
        """A broken accuracy, metric or fidelity budget of a quantized row names the layers that
        lose the most (m.sensitivity, computed now if --edge-explain did not) and how to keep them."""
        broken = any(v.split(":", 1)[0] in ACCURACY_BUDGETS for v in judgement.violations)
        if not broken or judgement.verdict not in (Verdict.FAIL, Verdict.REGRESSED) or m.precision == REFERENCE:
            return m, judgement
        ranking = m.sensitivity
        if ranking is None:
            case = replace(self._case, precision=m.precision, runtime=m.runtime, batch=m.batch)
            ranking = self._session.measurer.sensitivity(case)
            m = m.replace(sensitivity=ranking)
        return m, replace(judgement, diagnosis=judgement.diagnosis + sensitivity_lines(ranking, m))

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


TOP_LAYERS = 5  # the layers a failure message names


def sensitivity_lines(ranking: Optional[Tuple[LayerError, ...]], m: Measurement) -> Tuple[str, ...]:
    """The failure's next step: the worst layers and the two ways to keep them in float."""
    if ranking is None:
        return (
            f"no per-layer ranking on {m.runtime}: m.sensitivity is computed on static INT8 files of "
            "ONNX Runtime, OpenVINO and LiteRT",
        )
    if not ranking:
        return ()
    top = ranking[:TOP_LAYERS]
    names = ", ".join(repr(name) for name in dict.fromkeys(n for e in top[:3] for n in e.float_set))
    lines = ["the layers INT8 hurts most (SQNR of their outputs against FP32 on eval samples), worst first:"]
    lines += [f"  {e.describe()}" for e in top]
    if m.precision == MIXED:
        return (*lines,)
    lines.append(f"keep them in float: keep_float=[{names}], or precision='int8-mixed' with this budget")
    return tuple(lines)


@dataclass(frozen=True)
class _Stored:
    baseline: Optional[BaselineEntry] = None
    note: Optional[str] = None
    missing: Optional[str] = None
    mismatch: Optional[str] = None
    pair: Optional[Callable[[float], Optional[PairedComparison]]] = None
