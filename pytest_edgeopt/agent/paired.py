"""Paired A/B latency in one process: is B slower than A by more than the limit allows?

Why paired, and why in one process: on a shared VM the same file ran 59.6 ms and 74.5 ms a few
minutes apart, so comparing processes (or a stored baseline) pools that drift. Timing A and B in
alternating blocks inside one process (A B B A, then again) hits both with the same drift; the
ratio of the two sides' times in each A B B A quad cancels it (a linear drift exactly), and it held
a 0.23% CV quiet and 1.1% (CPU time) with both cores oversubscribed.

The verdict is on the median of the quad ratios, with an exact, distribution-free interval from
order statistics (the number of ratios below the true median is Binomial(n, 1/2)): no bootstrap, no
normality, valid for any continuous ratio distribution of independent quads.

Sequential stopping keeps the false-alarm rate at the stated confidence by a fixed look schedule
and Bonferroni alpha spending: at most `len(LOOKS)` looks, each one-sided at (1 - confidence) /
len(LOOKS), so the chance that any look calls an unchanged model regressed stays at most
1 - confidence. A clear case stops at the first look (12 quads); a hard one keeps sampling until a
look decides or the time cap, whose look is one of the scheduled ones.

Stdlib and numpy only: this runs in the device agent, and the host judges with the same functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import List, Optional, Sequence, Tuple

LOOKS: Tuple[int, ...] = (12, 16, 24, 32, 48, 64, 96, 128, 192, 256)  # quads at which a verdict may be called
MAX_QUADS = LOOKS[-1]


class LookVerdict(str, Enum):
    """What one scheduled look says about the ratios so far."""

    PASS = "pass"
    REGRESSED = "regressed"
    INCONCLUSIVE = "inconclusive"  # sample on, until the next look or the time cap

    def __str__(self) -> str:
        return str(self.value)


PASS, REGRESSED, INCONCLUSIVE = LookVerdict.PASS, LookVerdict.REGRESSED, LookVerdict.INCONCLUSIVE


@dataclass(frozen=True)
class Decision:
    verdict: LookVerdict
    ratio: float  # median quad ratio B / A
    low: float  # the interval of the median, at this look's share of the error
    high: float
    quads: int
    looks: int  # looks made so far, this one included


def quad_ratio(a_first: float, b_first: float, b_second: float, a_second: float) -> float:
    """A B B A: a drift linear in time adds the same to both sums, so their ratio keeps it out."""
    return (b_first + b_second) / (a_first + a_second)


def look_error(confidence: float) -> float:
    """The one-sided error each look may spend (Bonferroni over the fixed schedule)."""
    return (1.0 - confidence) / len(LOOKS)


def decide(ratios: Sequence[float], *, limit: float, confidence: float, looks: int) -> Decision:
    """The verdict on the ratios so far, at one look's share of the error."""
    ordered = sorted(ratios)
    n = len(ordered)
    ratio = _median(ordered)
    rank = order_statistic_rank(n, look_error(confidence))
    if rank is None:  # too few quads for any interval at this error
        return Decision(INCONCLUSIVE, ratio, -math.inf, math.inf, n, looks)
    low, high = ordered[rank - 1], ordered[n - rank]
    verdict = REGRESSED if low > limit else PASS if high <= limit else INCONCLUSIVE
    return Decision(verdict, ratio, low, high, n, looks)


def order_statistic_rank(n: int, error: float) -> Optional[int]:
    """The largest r with P(Binomial(n, 1/2) <= r - 1) <= error: then the r-th smallest ratio is
    below the true median with probability >= 1 - error (and the r-th largest above it)."""
    rank, cumulative = 0, 0.0
    for k in range(n):
        cumulative += _binomial_half_pmf(n, k)
        if cumulative > error:
            break
        rank = k + 1
    return rank if rank >= 1 and rank <= n - rank + 1 else None


def next_look(quads: int, made: int) -> bool:
    """Whether `quads` quads is the next scheduled look."""
    return made < len(LOOKS) and quads >= LOOKS[made]


def _binomial_half_pmf(n: int, k: int) -> float:
    return math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2.0))


def _median(ordered: List[float]) -> float:
    n = len(ordered)
    if n == 0:
        return math.nan
    middle = n // 2
    return ordered[middle] if n % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])
