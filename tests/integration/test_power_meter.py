"""Energy columns from a platform's power meter: a real sampled command, and a labelled estimate."""

from __future__ import annotations

import sys

import pytest

from tests.pytester_helpers import QUICK, failures, table

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

# A real meter process: watts from the machine's CPU utilisation over 20 ms (/proc/stat), so the
# timed loop reads higher than idle and every sample is a fresh process.
WATTS_FROM_LOAD = """
import time
def busy():
    values = [int(v) for v in open("/proc/stat").readline().split()[1:8]]
    return sum(values) - values[3] - values[4], sum(values)
b0, t0 = busy(); time.sleep(0.02); b1, t1 = busy()
print(f"{2.0 + 10.0 * (b1 - b0) / max(t1 - t0, 1):.4f}")
"""

MEASURE = """
import pytest

@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("fp32")
def test_energy(edge_model, edge_precision, edge_runner):
    m = edge_runner.measure(edge_model, precision=edge_precision)
    assert m.energy_w is not None and m.energy_w >= 0
    assert m.energy_mj == pytest.approx(m.energy_w * m.latency_ms)
    print("SOURCE", m.energy_source)
"""


def _profile(power: str) -> str:
    return f'[tool.edgeopt.platforms.metered]\nextends = "host"\npower = {power}\n'


def test_command_meter_fills_both_energy_columns(pytester: pytest.Pytester) -> None:
    script = pytester.path / "watts.py"
    script.write_text(WATTS_FROM_LOAD)
    command = f'["{sys.executable}", "{script}"]'
    pytester.makefile(
        ".toml", pyproject=_profile(f'{{kind = "command", command = {command}, interval_s = 0.05, idle_s = 0.3}}')
    )
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, "-s", "--edge-platform=metered", "--edge-min-time=0.5")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SOURCE command"])
    row = table(result)[0]
    assert row["Energy (W)"].endswith("(command)") and row["Energy (mJ/inf)"].endswith("(command)")


def test_estimate_is_labelled_est_and_scales_with_latency(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject=_profile('{kind = "estimate", watts = 6.4}'))
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, "-s", "--edge-platform=metered")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SOURCE estimate est."])
    assert table(result)[0]["Energy (W)"] == "6.4 (estimate est.)"


def test_an_energy_budget_fails_with_numbers(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject=_profile('{kind = "estimate", watts = 6.4}'))
    pytester.makepyfile(
        test_x=MEASURE
        + """
def test_budget(edge_runner):
    edge_runner.measure("digits-cnn", precision="fp32").check(max_energy_mj=1e-6)
"""
    )
    result = pytester.runpytest(*QUICK, "--edge-platform=metered")
    result.assert_outcomes(passed=1, failed=1)
    assert "max_energy_mj: measured" in failures(result)["test_budget"]


def test_an_energy_budget_without_a_meter_says_how_to_add_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="""
def test_budget(edge_runner):
    edge_runner.measure("digits-cnn", precision="fp32").check(max_energy_w=5)
"""
    )
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(failed=1)
    assert (
        "has no power meter (set power = {kind = ...} in [tool.edgeopt.platforms.host])"
        in failures(result)["test_budget"]
    )


def test_a_failing_meter_command_fails_the_case_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        pyproject=_profile(f'{{kind = "command", command = ["{sys.executable}", "-c", "import sys; sys.exit(3)"]}}'),
    )
    pytester.makepyfile(test_x=MEASURE)
    result = pytester.runpytest(*QUICK, "--edge-platform=metered")
    result.assert_outcomes(failed=1)
    reason = failures(result)["test_energy[digits-cnn-fp32]"]
    assert "command" in reason and "\n" not in reason
