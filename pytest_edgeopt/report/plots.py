"""The trade-off a reader chooses by: accuracy against latency per model, size as marker area.

People pick an optimization by looking at these three at once, which a table does not show. One
point per precision and runtime (and platform, in the stored-baselines table); the Pareto front
(nothing both faster and more accurate) is joined and ringed; absolute budgets are limit lines.
matplotlib draws it (a well-kept library, not hand-written SVG), imported only here and only when
an HTML report is written, so `import pytest_edgeopt` stays light. The SVG goes inline into the
page: text as paths, no external file, so the page works offline.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pytest_edgeopt.judge.types import Row

Axes = Any  # matplotlib.axes.Axes: matplotlib is imported only when a plot is drawn
PLOT_INSTALL = 'pip install "pytest-edgeopt[report]"'
MIN_AREA, MAX_AREA = 40.0, 900.0  # marker area in points^2 for the smallest and the largest model file


@dataclass(frozen=True)
class Point:
    """One case on the plot: where it sits and what it is called."""

    label: str
    latency_ms: float
    accuracy: float  # percent: top-1, or agreement with FP32 for label-free models
    storage_mb: float
    failed: bool
    estimated: bool


@dataclass(frozen=True)
class ModelPlot:
    """The points of one model, its accuracy signal and the limits its budgets set."""

    model: str
    signal: str  # "Top-1 (%)" or "Agreement with FP32 (%)"
    points: Tuple[Point, ...]
    max_latency_ms: Optional[float] = None
    min_accuracy: Optional[float] = None  # percent, in the plot's signal


def model_plots(rows: Sequence[Row]) -> List[ModelPlot]:
    """One plot per model, in the table's order of first appearance."""
    by_model: Dict[str, List[Row]] = {}
    for row in rows:
        by_model.setdefault(row.measurement.model, []).append(row)
    return [_model_plot(model, group) for model, group in by_model.items()]


def pareto_front(points: Sequence[Point]) -> List[Point]:
    """The points no other point beats on both latency (lower) and accuracy (higher), fastest first."""
    front: List[Point] = []
    for point in sorted(points, key=lambda p: (p.latency_ms, -p.accuracy)):
        if not front or point.accuracy > front[-1].accuracy:
            front.append(point)
    return front


def svg(plot: ModelPlot) -> str:
    """The plot as an inline `<svg>` element (raises ImportError without matplotlib)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=96, layout="constrained")
    axes = figure.add_subplot()
    _draw_points(axes, plot)
    _draw_front(axes, plot)
    _draw_limits(axes, plot)
    axes.set_xscale("log" if _spread(plot) > 20 else "linear")
    axes.margins(x=0.15, y=0.15)  # room for the labels of the outermost points
    axes.set_xlabel("Latency (ms, p50)" + (" - est. on a microcontroller" if _any_estimated(plot) else ""))
    axes.set_ylabel(plot.signal)
    axes.set_title(f"{plot.model}: accuracy vs latency (area: storage MB)")
    axes.grid(True, alpha=0.3)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


SIGNALS: Tuple[Tuple[str, str, float, str], ...] = (  # attribute, axis label, scale, the budget drawn
    ("top1", "Top-1 (%)", 100.0, "min_top1"),
    ("metric", "{metric}", 1.0, "min_metric"),
    ("agreement", "Agreement with FP32 (%)", 100.0, "min_agreement"),
    ("min_cosine", "Cosine similarity with FP32 (worst output)", 1.0, "min_cosine"),
)


def _signal(rows: Sequence[Row]) -> Tuple[str, str, float, str]:
    """The first accuracy signal every row has: top-1, the task metric, agreement, fidelity."""
    for attribute, label, scale, budget in SIGNALS:
        if all(getattr(r.measurement, attribute) is not None for r in rows):
            return attribute, label.format(metric=rows[0].measurement.metric_name), scale, budget
    return SIGNALS[-1]


def _model_plot(model: str, rows: Sequence[Row]) -> ModelPlot:
    attribute, label, scale, budget = _signal(rows)
    platforms = {r.measurement.platform for r in rows}
    points = tuple(
        _point(r, accuracy=(getattr(r.measurement, attribute) or 0.0) * scale, with_platform=len(platforms) > 1)
        for r in rows
    )
    limits: Dict[str, float] = {}
    for row in rows:
        limits.update(row.judgement.limits)
    minimum = limits.get(budget)
    return ModelPlot(
        model=model,
        signal=label,
        points=points,
        max_latency_ms=limits.get("max_latency_ms"),
        min_accuracy=minimum * scale if minimum is not None else None,
    )


def _point(row: Row, *, accuracy: float, with_platform: bool) -> Point:
    m = row.measurement
    label = f"{m.precision} {m.runtime}" + (f" ({m.platform})" if with_platform else "")
    return Point(
        label=label,
        latency_ms=m.latency.median_ms,
        accuracy=accuracy,
        storage_mb=m.storage_mb,
        failed=not row.passed,
        estimated="latency_ms" in m.estimates,
    )


def _areas(points: Sequence[Point]) -> List[float]:
    """Marker area proportional to the file's size, between MIN_AREA and MAX_AREA."""
    largest = max(p.storage_mb for p in points) or 1.0
    return [max(MIN_AREA, MAX_AREA * p.storage_mb / largest) for p in points]


def _draw_points(axes: Axes, plot: ModelPlot) -> None:
    points = plot.points
    colors = ["#d62728" if p.failed else "#1f77b4" for p in points]
    axes.scatter(
        [p.latency_ms for p in points],
        [p.accuracy for p in points],
        s=_areas(points),
        c=colors,
        alpha=0.6,
        edgecolors="black",
        linewidths=0.5,
        gid="edgeopt-points",
        zorder=3,
    )
    for index, point in enumerate(points):
        axes.annotate(
            f"{point.label}, {point.storage_mb:.3g} MB" + (" (fail)" if point.failed else ""),
            (point.latency_ms, point.accuracy),
            textcoords="offset points",
            xytext=_LABEL_OFFSETS[index % len(_LABEL_OFFSETS)],
            fontsize=7,
        )


# points of one model often sit close together (fp32 and int8 at the same accuracy): stagger the labels
_LABEL_OFFSETS = ((6, 6), (6, -12), (6, 16), (6, -22))


def _draw_front(axes: Axes, plot: ModelPlot) -> None:
    front = pareto_front(plot.points)
    axes.plot(
        [p.latency_ms for p in front],
        [p.accuracy for p in front],
        drawstyle="steps-post",
        color="#2ca02c",
        linewidth=1.5,
        marker="o",
        markersize=12,
        markerfacecolor="none",
        label="Pareto front",
        gid="edgeopt-pareto",
        zorder=4,
    )
    axes.legend(loc="lower right", fontsize=8)


def _draw_limits(axes: Axes, plot: ModelPlot) -> None:
    if plot.max_latency_ms is not None:
        axes.axvline(
            plot.max_latency_ms, color="#d62728", linestyle="--", label="max_latency_ms", gid="edgeopt-limit-latency"
        )
    if plot.min_accuracy is not None:
        axes.axhline(
            plot.min_accuracy, color="#ff7f0e", linestyle="--", label="minimum accuracy", gid="edgeopt-limit-accuracy"
        )
    if plot.max_latency_ms is not None or plot.min_accuracy is not None:
        axes.legend(loc="lower right", fontsize=8)


def _spread(plot: ModelPlot) -> float:
    latencies = [p.latency_ms for p in plot.points if p.latency_ms > 0]
    return max(latencies) / min(latencies) if latencies else 1.0


def _any_estimated(plot: ModelPlot) -> bool:
    return any(p.estimated for p in plot.points)
