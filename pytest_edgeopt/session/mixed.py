"""int8-mixed: the fewest layers kept in float that meet the case's accuracy budget.

The layers are ranked once by their own SQNR loss on the INT8 file (m.sensitivity), then the worst
are reverted to float in growing steps (1, 2, 3, 4, 6, 8, ...), each candidate measured on the
eval set, until one meets the goal or a cap (time, layers) stops the search; then the candidate
nearest the goal is the row, which fails with its gap. The same search serves ONNX Runtime
(quantize_static's nodes_to_exclude), OpenVINO (NNCF's IgnoredScope) and LiteRT (ai-edge-quantizer's
no_quantize recipe entries): each candidate is that
runtime's own INT8 file, measured by its agent like any row. The chosen list is stored with the baseline
entry (with the key of what the search saw): the next run rebuilds that file without searching.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.judge.budgets import ABSOLUTE, ACCURACY_BUDGETS, limit_of
from pytest_edgeopt.kinds import DataSplit
from pytest_edgeopt.measure.result import LayerError, Measurement
from pytest_edgeopt.optimize.precisions import MIXED
from pytest_edgeopt.session.measuring import Case, Measurer


@dataclass(frozen=True)
class MixedSearch:
    """What a search found (or what the baseline said it found), for the row's note."""

    keep_float: Tuple[str, ...]
    met: bool
    candidates: int  # files measured (0: the stored list was reused)
    seconds: float
    gap: str = ""  # how far the best candidate is from the goal, when it was not met
    stopped: str = ""  # which cap ended a search that did not meet the goal

    def note(self) -> str:
        kept = f"{len(self.keep_float)} layers kept float"
        if self.candidates == 0:
            return f"int8-mixed: {kept} (stored with the baseline, not searched again)"
        found = "met the goal" if self.met else f"did not meet the goal ({self.stopped}); best: {self.gap}"
        return f"int8-mixed: {kept} after {self.candidates} candidate(s) in {self.seconds:.1f} s; {found}"


def goal_of(budgets: Mapping[str, object], *, where: str) -> Dict[str, object]:
    """The accuracy budgets the search meets; none is a usage error naming them."""
    goal = {name: value for name, value in budgets.items() if name in ACCURACY_BUDGETS}
    if not goal:
        raise EdgeOptError(
            f"{where}: precision='int8-mixed' needs an accuracy goal: pass max_accuracy_drop=, max_metric_drop= "
            "or min_sqnr_db= (to edge_runner.measure, a budget marker or [tool.edgeopt.budgets])"
        )
    return goal


def search_key(case: Case, goal: Mapping[str, object]) -> str:
    """What the stored list depends on: the model, its calibration and eval data, and the goal."""
    model = case.model
    text = json.dumps(
        [model.content_hash(), model.data_hash(DataSplit.CALIBRATION), model.data_hash(DataSplit.EVAL),
         case.runtime, case.batch, sorted((k, str(v)) for k, v in goal.items())]
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shortfall(m: Measurement, goal: Mapping[str, object]) -> Tuple[float, List[str]]:
    """How far `m` is from the goal: a sum of relative excesses (0: met) and each broken budget."""
    total, broken = 0.0, []
    for name, value in goal.items():
        metric, limit = ABSOLUTE[name], limit_of(name, value)
        try:
            got = getattr(m, metric.attribute)
        except EdgeOptError as error:
            raise EdgeOptError(f"{m.model} [int8-mixed]: {error}") from None
        if got is None:
            continue
        excess = float(got) - limit if metric.upper else limit - float(got)
        if excess > 1e-9:
            total += excess / max(abs(limit), 1.0)
            broken.append(f"{name}: {got:.4g} vs {limit:g}")
    return total, broken


def steps(ranked: int, cap: int) -> List[int]:
    """How many of the worst layers each candidate keeps float: one at a time, then growing."""
    out, k, top = [], 1, min(ranked, cap)
    while k <= top:
        out.append(k)
        k = k + 1 if k < 4 else int(k * 1.5 + 0.5)
    if top and (not out or out[-1] != top):
        out.append(top)
    return out


def search(
    measurer: Measurer,
    case: Case,
    goal: Mapping[str, object],
    *,
    max_s: float,
    max_layers: int,
    clock: Callable[[], float] = time.monotonic,
) -> MixedSearch:
    """The greedy search on `case` (precision int8-mixed); plain INT8 first, as no layer float."""
    start = clock()
    first = measurer.measurement(replace(case, precision=MIXED, keep_float=()))
    score, broken = shortfall(first, goal)
    if score == 0:
        return MixedSearch((), True, 1, clock() - start)
    ranking = first.sensitivity  # --edge-explain ranked it already
    if ranking is None:
        ranking = measurer.sensitivity(replace(case, precision=MIXED, keep_float=()))
    if not ranking:
        raise EdgeOptError(f"{case.label}: int8-mixed found no layer ranking for this runtime's INT8 file")
    sets = _float_sets(ranking)
    best: Tuple[float, Tuple[str, ...], List[str]] = (score, (), broken)
    tried, stopped = 1, f"the layer cap {max_layers}"
    for k in steps(len(sets), max_layers):
        if clock() - start > max_s:
            stopped = f"the time cap {max_s:g} s"
            break
        keep = tuple(_unique([name for chosen in sets[:k] for name in chosen]))
        score, broken = shortfall(measurer.measurement(replace(case, precision=MIXED, keep_float=keep)), goal)
        tried += 1
        if score < best[0]:
            best = (score, keep, broken)
        if score == 0:
            return MixedSearch(keep, True, tried, clock() - start)
    else:
        if len(sets) < max_layers:
            stopped = f"every one of the {len(sets)} ranked layers"
    return MixedSearch(best[1], False, tried, clock() - start, gap="; ".join(best[2]), stopped=stopped)


def _float_sets(ranking: Sequence[LayerError]) -> List[Tuple[str, ...]]:
    """Per ranked layer (worst first, each once), the nodes kept float with it: itself, and the
    readers of its output when its output's Q/DQ is the harm (LayerError.readers)."""
    seen: Dict[str, Tuple[str, ...]] = {}
    for error in ranking:
        seen.setdefault(error.name, error.float_set)
    return list(seen.values())


def _unique(names: Sequence[str]) -> List[str]:
    return list(dict.fromkeys(names))
