"""Two JSON reports side by side, outside pytest: per case the change of every number both have,
and a verdict against `--fail-on METRIC:LIMIT` limits, as pytest-benchmark's `compare --fail-on`
does for its saved runs. Pure functions: the CLI reads the files and prints the lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

from tabulate import tabulate

from pytest_edgeopt.judge.types import Row
from pytest_edgeopt.measure.registry import BY_ID
from pytest_edgeopt.measure.result import Measurement
from pytest_edgeopt.measure.values import higher_is_better, measured_values


@dataclass(frozen=True)
class Limit:
    """`latency_p50_ms:10%` (relative) or `top1:0.01` (absolute, in the metric's unit): how much
    worse a number may get before the comparison fails."""

    metric: str
    amount: float
    relative: bool

    def breached(self, old: float, new: float, *, higher_better: bool) -> bool:
        worse = (old - new) if higher_better else (new - old)
        allowed = abs(old) * self.amount if self.relative else self.amount
        return worse > allowed

    def __str__(self) -> str:
        return f"{self.metric}:{self.amount * 100:g}%" if self.relative else f"{self.metric}:{self.amount:g}"


ALIASES = {"latency_p50_ms": "latency_ms", "latency_median_ms": "latency_ms"}


def parse_limit(text: str) -> Limit:
    """argparse `type=`: a bad limit is one line naming the syntax and the known metrics."""
    name, sep, amount = text.partition(":")
    metric = ALIASES.get(name.strip(), name.strip())
    if not sep or metric not in BY_ID:
        known = ", ".join(sorted({*BY_ID, *ALIASES}))
        raise ValueError(f"{text!r}: expected METRIC:LIMIT, e.g. latency_ms:10% or top1:0.01; metrics: {known}")
    relative = amount.strip().endswith("%")
    try:
        value = float(amount.strip().rstrip("%"))
    except ValueError:
        raise ValueError(f"{text!r}: the limit must be a number or a percentage, e.g. 10% or 0.01") from None
    if value < 0:
        raise ValueError(f"{text!r}: the limit must be >= 0")
    return Limit(metric, value / 100.0 if relative else value, relative)


def read_report(path: Path) -> List[Row]:
    """The rows of a `--edge-report x.json` file; ValueError says in one line what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [Row.from_dict(row) for row in data["rows"]]
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror or error})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{path}: not a pytest-edgeopt JSON report ({type(error).__name__}: {error}); "
            "write one with pytest --edge-report PATH.json"
        ) from None


Key = Tuple[str, str, str, str, int]


def _key(m: Measurement) -> Key:
    return (m.model, m.precision, m.runtime, m.platform, m.batch)


def _label(key: Key) -> str:
    model, precision, runtime, platform, batch = key
    return f"{model}/{precision}/{runtime}@{platform}" + (f" b{batch}" if batch != 1 else "")


def compare_lines(old: Sequence[Row], new: Sequence[Row], limits: Sequence[Limit]) -> Tuple[List[str], int]:
    """The table of changes (every metric with a limit, else latency, top-1, agreement, size) and
    the number of breaches; a case in only one report is named, never a breach."""
    before = {_key(r.measurement): r.measurement for r in old}
    after = {_key(r.measurement): r.measurement for r in new}
    shown = [lim.metric for lim in limits] or ["latency_ms", "top1", "agreement", "storage_mb", "peak_rss_mb"]
    body: List[Tuple[str, ...]] = []
    breaches = 0
    for key in sorted(before.keys() & after.keys()):
        a, b = measured_values(before[key]), measured_values(after[key])
        for metric in dict.fromkeys(shown):
            if metric not in a or metric not in b:
                continue
            broken = [
                lim
                for lim in limits
                if lim.metric == metric
                and lim.breached(a[metric], b[metric], higher_better=higher_is_better(metric, after[key]))
            ]
            breaches += bool(broken)
            verdict = f"FAIL ({', '.join(map(str, broken))})" if broken else ("ok" if limits else "")
            body.append(
                (_label(key), metric, f"{a[metric]:.4g}", f"{b[metric]:.4g}", _delta(a[metric], b[metric]), verdict)
            )
    lines = (
        tabulate(
            body, headers=("Case", "Metric", "Old", "New", "Delta", "Verdict"), tablefmt="simple", disable_numparse=True
        ).splitlines()
        if body
        else ["no case is in both reports"]
    )
    lines += [f"only in the old report: {_label(k)}" for k in sorted(before.keys() - after.keys())]
    lines += [f"only in the new report: {_label(k)}" for k in sorted(after.keys() - before.keys())]
    if limits:
        lines.append(f"{breaches} breach{'es' if breaches != 1 else ''} of {', '.join(map(str, limits))}")
    return lines, breaches


def _delta(old: float, new: float) -> str:
    if old == 0:
        return f"{new - old:+.4g}"
    return f"{new - old:+.4g} ({(new / old - 1) * 100:+.1f}%)"
