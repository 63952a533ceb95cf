"""Where a slowdown went: the per-op profiles of the baseline and the current artifact, compared.

When the gate says "regressed", the next question is where. The answer is the op types whose
kernel time changed most, as the failure lists them ("Conv: 4.1 -> 6.3 ms (+54%), 53 nodes"),
from two profiled passes made after the timed samples (never inside them), or from the current
pass and the compact per-op summary a baseline file keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from pytest_edgeopt.agent.contract import OpProfile

OpSummary = Dict[str, Tuple[float, int]]  # op type -> (ms per inference, nodes)
TOP_CHANGES = 5


@dataclass(frozen=True)
class OpChange:
    op_type: str
    before_ms: float
    after_ms: float
    nodes: int  # in the current artifact (the baseline's count when the op is gone)
    before_nodes: int

    @property
    def delta_ms(self) -> float:
        return self.after_ms - self.before_ms

    def text(self) -> str:
        """`Conv: 4.1 -> 6.3 ms (+54%), 53 nodes` (`new`/`gone` when one side has none)."""
        change = f"{self.delta_ms / self.before_ms * 100:+.0f}%" if self.before_ms > 0 else "new"
        if self.after_ms == 0 and self.nodes == 0:
            change = "gone"
        count = str(self.nodes) if self.nodes == self.before_nodes else f"{self.before_nodes} -> {self.nodes}"
        nodes = f"{count} node{'' if count == '1' else 's'}"
        return f"{self.op_type}: {_ms(self.before_ms)} -> {_ms(self.after_ms)} ms ({change}), {nodes}"


def summary(profile: Optional[OpProfile]) -> Optional[OpSummary]:
    """The compact per-op summary of a profile (what a baseline file stores); None without one."""
    if profile is None or profile.skipped or not profile.ops:
        return None
    return {op.op_type: (op.ms, op.nodes) for op in profile.ops}


def op_changes(before: Mapping[str, Tuple[float, int]], after: Mapping[str, Tuple[float, int]]) -> List[OpChange]:
    """Every op type of either side, the largest absolute change first."""
    changes = [
        OpChange(
            op_type=op,
            before_ms=before.get(op, (0.0, 0))[0],
            after_ms=after.get(op, (0.0, 0))[0],
            nodes=after.get(op, (0.0, 0))[1],
            before_nodes=before.get(op, (0.0, 0))[1],
        )
        for op in dict.fromkeys([*after, *before])
    ]
    return sorted(changes, key=lambda c: -abs(c.delta_ms))


def diagnosis_lines(
    before: Optional[OpSummary], after: Optional[OpSummary], *, against: str, top: int = TOP_CHANGES
) -> List[str]:
    """The failure's lines: a header naming both sides, then the top op changes."""
    if not before or not after:
        return []
    total_before, total_after = _total(before), _total(after)
    head = (
        f"per-op profile, {against} -> now (kernel time per inference): "
        f"{_ms(total_before)} -> {_ms(total_after)} ms; top changes:"
    )
    return [head] + [change.text() for change in op_changes(before, after)[:top]]


def _total(ops: Mapping[str, Tuple[float, int]]) -> float:
    return sum(ms for ms, _ in ops.values())


def _ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"
