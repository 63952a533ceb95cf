"""Per-op diagnosis: a regressed latency verdict says where the time went; --edge-profile on demand.

A real slowdown: the user's CNN made 8x wider (~50x the multiply-adds), so Conv time grows.
"""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.integration.test_paired_gate import GATED, _baseline, _project
from tests.pytester_helpers import QUICK, failures

CHANGE = re.compile(
    r"^\s+(\w+|[A-Z][\w ,()]+?): ([\d.]+) -> ([\d.]+) ms \(([+-]\d+%|new|gone)\), (\d+)( -> \d+)? nodes?$"
)


def _changes(reason: str) -> dict:
    return {m.group(1): m for line in reason.splitlines() if (m := CHANGE.match(line))}


def test_a_regressed_case_prints_its_top_op_changes_and_the_reports_carry_both_profiles(
    pytester: pytest.Pytester,
) -> None:
    _baseline(pytester, 8)
    (pytester.path / "width.txt").write_text("64")
    result = pytester.runpytest(*QUICK, "--edge-report", "out.json", "--edge-report", "out.html")
    result.assert_outcomes(failed=2)
    reason = failures(result)["test_gated"]
    print(reason)  # the example in the issue note
    assert "per-op profile, baseline -> now (kernel time per inference): " in reason
    conv = _changes(reason)["Conv"]
    assert float(conv.group(3)) > float(conv.group(2)) and conv.group(5) == "2"  # the two convolutions got slower
    rows = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))["rows"]
    gated = next(r for r in rows if r["measurement"]["nodeid"].endswith("test_gated"))
    profile = gated["measurement"]["paired"]["current_op_profile"]
    assert profile["runs"] == 10 and {n["provider"] for n in profile["nodes"]} == {"CPUExecutionProvider"}
    assert gated["measurement"]["paired"]["op_profile"]["ops"]  # the baseline's artifact, profiled too
    assert gated["judgement"]["diagnosis"][1].startswith("Conv: ")
    page = (pytester.path / "out.html").read_text(encoding="utf-8")
    assert "<h2>Per-op diagnosis</h2>" in page and "CPUExecutionProvider" in page


def test_edge_profile_stores_the_per_op_summary_and_a_later_run_diffs_against_it(pytester: pytest.Pytester) -> None:
    _baseline(pytester, 8, "--edge-profile")
    stored = json.loads((pytester.path / "baselines" / "host" / "test_x.json").read_text(encoding="utf-8"))
    ops = stored["entries"]["test_gated::net/fp32/onnxruntime/b1"]["op_profile"]["ops"]
    assert ops["Conv"][1] == 2 and ops["Conv"][0] > 0
    (pytester.path / "width.txt").write_text("64")
    result = pytester.runpytest(*QUICK, "--edge-profile", "--edge-cache-dir=fresh-clone-cache")  # no baseline artifact
    result.assert_outcomes(failed=2)
    reason = failures(result)["test_gated"]
    assert "per-op profile, stored baseline -> now" in reason and "Conv" in _changes(reason)


def test_a_baseline_file_without_the_summary_still_loads(pytester: pytest.Pytester) -> None:
    _baseline(pytester, 8)  # written without --edge-profile: no op_profile key, as every older file
    stored = json.loads((pytester.path / "baselines" / "host" / "test_x.json").read_text(encoding="utf-8"))
    assert all("op_profile" not in entry for entry in stored["entries"].values())
    result = pytester.runpytest(*QUICK, "--edge-profile")
    result.assert_outcomes(passed=2)


def test_a_regressed_litert_case_says_which_xnnpack_ops_got_slower(pytester: pytest.Pytester) -> None:
    """The same slowdown on runtime="tflite": both sides profiled by LiteRT's C profiler."""
    pytest.importorskip("litert_torch")
    gated = GATED.split("def test_checked")[0].replace('precision="fp32"', 'precision="fp32", runtime="tflite"')
    _project(pytester, 8)
    pytester.makepyfile(test_x=gated)
    pytester.runpytest(*QUICK, "--update-baselines").assert_outcomes(passed=1)
    (pytester.path / "width.txt").write_text("64")
    result = pytester.runpytest(*QUICK, "--edge-report", "out.json")
    result.assert_outcomes(failed=1)
    reason = failures(result)["test_gated"]
    assert "per-op profile, baseline -> now (kernel time per inference): " in reason and "no per-op" not in reason
    conv = _changes(reason)["Convolution (NHWC, F32) IGEMM"]  # XNNPACK's op, as LiteRT names it
    assert float(conv.group(3)) > float(conv.group(2)) and conv.group(5) == "2"
    row = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))["rows"][0]
    paired = row["measurement"]["paired"]
    assert {n["provider"] for n in paired["current_op_profile"]["nodes"]} == {"XNNPACK"}
    assert paired["op_profile"]["runs"] == 10 and paired["op_profile"]["ops"]
