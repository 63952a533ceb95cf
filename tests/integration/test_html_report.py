"""The HTML report in a real browser: headless Chromium renders the page and its plots.

Skips without Chromium (`.ci/run` installs Debian's `chromium` when it runs as root).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pytest_edgeopt.cli import main
from tests.pytester_helpers import QUICK, assert_gate_failed

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# the points' fills, drawn at 60% opacity on white: passing (#1f77b4) and failing (#d62728)
POINT_COLOURS = ((31, 119, 180), (214, 39, 40))
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium here: apt-get install chromium")

SUITE_LIKE = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32", "int8")
@pytest.mark.edge_budget(min_top1=0.95, max_latency_ms=50, max_storage_mb=0.1)
def test_digits(edge_model, edge_precision, edge_runner):
    edge_runner.measure(edge_model, precision=edge_precision)
"""


def chromium(page: Path, tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    done = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def assert_renders_plots(page: Path, tmp_path: Path, *, models: int) -> None:
    """The browser's DOM has one plot per model with its points, and the screenshot shows them."""
    dom = chromium(page, tmp_path, "--dump-dom")
    figures = re.findall(r'<figure class="plot" data-model="[^"]+" data-points="(\d+)">', dom)
    assert len(figures) == models, dom[:2000]
    painted = [group.count("<path ") for group in re.findall(r'<g id="edgeopt-points">(.*?)</g>', dom, re.S)]
    assert painted == [int(n) for n in figures]  # one marker per case in each model's plot
    assert dom.count('id="edgeopt-pareto"') == models
    image = pytest.importorskip("PIL.Image")
    shot = tmp_path / "shot.png"
    chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1400,2400")
    pixels = np.asarray(image.open(shot).convert("RGB"), dtype=int).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50  # not blank
    fills = [0.6 * np.array(colour) + 0.4 * 255 for colour in POINT_COLOURS]  # a marker's fill on the white page
    painted = sum(int((np.abs(pixels - fill).max(axis=1) <= 12).sum()) for fill in fills)
    assert painted > 100 * models  # the points were painted


@needs_chromium
def test_the_committed_baselines_report_renders_its_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "seed.html"
    assert main(["table", str(REPO / "baselines"), "--report", str(page)]) == 0
    capsys.readouterr()
    models = len(set(re.findall(r'data-model="([^"]+)"', page.read_text(encoding="utf-8"))))
    assert models >= 4  # digits-cnn, efficientnet-lite0, mobilenet_v2, resnet50
    assert_renders_plots(page, tmp_path, models=models)


@needs_chromium
def test_a_run_writes_markdown_and_html_and_the_page_renders(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytester.makepyfile(test_suite=SUITE_LIKE)
    result = pytester.runpytest(*QUICK, "--edge-report", "summary.md", "--edge-report", "report.html")
    assert_gate_failed(result, failed=1, passed=1)  # fp32 is larger than 0.1 MB
    assert "digits-cnn" in (pytester.path / "summary.md").read_text(encoding="utf-8")
    page = pytester.path / "report.html"
    text = page.read_text(encoding="utf-8")
    assert 'id="edgeopt-limit-latency"' in text and 'id="edgeopt-limit-accuracy"' in text  # the budgets
    assert "<h2>Broken budgets</h2>" in text and "max_storage_mb: measured" in text
    assert_renders_plots(page, tmp_path, models=1)
