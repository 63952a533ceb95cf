"""The HTML report's content: the accuracy-vs-latency plot per model, its Pareto front and limits."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from pytest_edgeopt.judge.types import Judgement, Row
from pytest_edgeopt.measure.result import LatencyStats
from pytest_edgeopt.report.html import html_page
from pytest_edgeopt.report.plots import Point, model_plots, pareto_front
from tests.unit.test_result import make_measurement


def case(precision: str, latency_ms: float, top1: float, storage_mb: float, **judged: object) -> Row:
    m = make_measurement(
        precision=precision,
        latency=LatencyStats.from_values([latency_ms]),
        top1=top1,
        storage_mb=storage_mb,
        artifact_sha=precision,
    )
    return Row(measurement=m, judgement=Judgement(**judged))  # type: ignore[arg-type]


ROWS = [
    case("fp32", 4.0, 0.98, 0.16),
    case("int8", 2.0, 0.97, 0.05, verdict="pass", limits={"max_latency_ms": 3.0, "min_top1": 0.95}),
    case("fp16", 5.0, 0.96, 0.09, verdict="fail", violations=("max_latency_ms: measured 5 ms, limit <= 3 ms",)),
]


def test_the_pareto_front_is_what_nothing_beats_on_both() -> None:
    points = [
        Point(f"p{i}", latency, accuracy, 1.0, False, False)
        for i, (latency, accuracy) in enumerate([(4.0, 98.0), (2.0, 97.0), (5.0, 96.0), (2.0, 90.0), (1.0, 80.0)])
    ]
    assert [p.label for p in pareto_front(points)] == ["p4", "p1", "p0"]


def test_one_plot_per_model_with_its_budgets_as_limits() -> None:
    other = ROWS[0].measurement.replace(model="other", top1=None, agreement=0.99)
    plots = model_plots([*ROWS, Row(measurement=other)])
    assert [(p.model, len(p.points)) for p in plots] == [("m", 3), ("other", 1)]
    first = plots[0]
    assert first.signal == "Top-1 (%)" and first.max_latency_ms == 3.0 and first.min_accuracy == pytest.approx(95.0)
    assert [p.failed for p in first.points] == [False, False, True]
    assert plots[1].signal == "Agreement with FP32 (%)" and plots[1].points[0].accuracy == pytest.approx(99.0)


def test_the_page_is_self_contained_with_an_svg_plot_per_model() -> None:
    pytest.importorskip("matplotlib")
    page = html_page(ROWS, platform="host")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched: works offline
    assert "<script" not in page
    figure = re.search(r'<figure class="plot" data-model="m" data-points="3">(.*?)</figure>', page, re.S)
    assert figure and "<svg" in figure.group(1)
    assert 'id="edgeopt-points"' in page and 'id="edgeopt-pareto"' in page
    assert 'id="edgeopt-limit-latency"' in page and 'id="edgeopt-limit-accuracy"' in page
    assert "Pareto front: int8 onnxruntime, fp32 onnxruntime" in page
    assert "<h2>Broken budgets</h2>" in page and "max_latency_ms: measured 5 ms" in page
    assert '<td class="fail">5.000 !</td>' in page  # the broken budget's cell


def test_without_matplotlib_the_page_says_how_to_get_the_plots() -> None:
    probe = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from tests.unit.test_html_report import ROWS\n"
        "from pytest_edgeopt.report.html import html_page\n"
        "print(html_page(ROWS, platform='host'))"
    )
    page = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert 'The plots need matplotlib: pip install "pytest-edgeopt[report]"' in page.replace("&quot;", '"')
    assert "<table>" in page
