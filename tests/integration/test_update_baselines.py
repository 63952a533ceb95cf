"""--update-baselines[=new], relative budgets against the stored file, stale entries, fingerprints.

The file is `baselines/<platform>/<module path>.json`; these runs check what lands in it, what a
later run compares with, and what never gets touched.
"""

from __future__ import annotations

import json
import os
import re
import stat
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.integration.test_budgets import USER_MODEL, WARNINGS_SHOWN
from tests.pytester_helpers import QUICK, assert_gate_failed, failures, notes, table

BASELINES = "pytest-edgeopt: baselines"

TWO_TESTS = """
import pytest

RELATIVE = dict(max_size_regression="0%", max_storage_regression="0%", max_top1_regression=0.0,
                max_agreement_regression=0.0, max_latency_regression="300%")

@pytest.mark.edge_budget(**RELATIVE)
def test_a(edge_runner):
    edge_runner.measure("digits-cnn", precision="fp32")

@pytest.mark.edge_budget(**RELATIVE)
def test_b(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")
"""
KEY_A = "test_a::digits-cnn/fp32/onnxruntime/b1"
KEY_B = "test_b::digits-cnn/int8/onnxruntime/b1"


def baseline_file(pytester: pytest.Pytester, module: str = "test_x") -> Path:
    return pytester.path / "baselines" / "host" / f"{module}.json"


def schema_errors(data: Any) -> list:
    import jsonschema

    text = resources.files("pytest_edgeopt").joinpath("schemas/baseline.schema.json").read_text(encoding="utf-8")
    return list(jsonschema.Draft202012Validator(json.loads(text)).iter_errors(data))


def load(path: Path) -> Dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert schema_errors(data) == []
    return data


def edit(path: Path, change: Callable[[Dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def keys_sorted(node: Any) -> bool:
    if isinstance(node, dict):
        return list(node) == sorted(node) and all(keys_sorted(v) for v in node.values())
    return all(keys_sorted(v) for v in node) if isinstance(node, list) else True


def update(pytester: pytest.Pytester, *args: str, passed: int = 2) -> pytest.RunResult:
    result = pytester.runpytest(*QUICK, "--update-baselines", *args)
    result.assert_outcomes(passed=passed)
    return result


# -- writing, then comparing ----------------------------------------------------------------------------


def test_update_writes_a_valid_sorted_file_and_a_rerun_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_TESTS)
    result = update(pytester)
    path = baseline_file(pytester)
    result.stdout.fnmatch_lines(
        [f"*= {BASELINES} =*", "File * Entry * Change *", f"{path} * {KEY_A} * added*", f"{path} * {KEY_B} * added*"]
    )
    assert "baseline being rewritten (--update-baselines)" in "\n".join(notes(result))

    text = path.read_text(encoding="utf-8")
    data = load(path)
    assert (data["schema_version"], data["platform"], data["module"]) == (1, "host", "test_x.py")
    assert sorted(data["entries"]) == [KEY_A, KEY_B]
    assert keys_sorted(data)
    assert re.search(r'^ +"wall_ms": \[\d[^\n]*\d\],?$', text, re.MULTILINE)  # one line per number list
    entry = data["entries"][KEY_B]
    assert entry["fingerprint"]["must_match"]["precision"] == "int8"
    assert entry["metrics"]["size_mb"] > 0 and entry["provenance"]["date"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # like any file the user writes

    result = pytester.runpytest(*QUICK, *WARNINGS_SHOWN)
    result.assert_outcomes(passed=2)
    assert BASELINES not in result.stdout.str()
    assert path.read_text(encoding="utf-8") == text  # a plain run never writes
    for row in table(result):
        assert float(row["Baseline (ms)"]) > 0
        assert row["Verdict"] in ("pass", "inconclusive")  # never "regressed": the same model, 300% allowed
        assert "!" not in "".join(row.values())


def test_a_larger_model_fails_with_size_numbers_and_a_much_slower_one_regresses(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        usermodel=textwrap.dedent(USER_MODEL),
        test_x="""
        import pytest
        from usermodel import user_model

        @pytest.mark.edge_budget(max_size_regression="0%")
        def test_size(edge_runner):
            edge_runner.measure(user_model(), precision="fp32")

        def test_latency(edge_runner):
            m = edge_runner.measure(user_model(), precision="fp32")
            m.check(max_latency_regression="10%")
    """,
    )
    (pytester.path / "width.txt").write_text("8")
    update(pytester)
    (pytester.path / "width.txt").write_text("64")  # 45x the parameters, ~50x the multiply-adds
    result = pytester.runpytest(*QUICK)
    assert_gate_failed(result, failed=2, passed=0)
    found = failures(result)

    size = re.search(
        r"^  max_size_regression: measured ([\d.]+) MB, baseline ([\d.]+) MB \(\+([\d.]+)%\), "
        r"limit \+0%$",
        found["test_size"],
        re.MULTILINE,
    )
    assert size, found["test_size"]
    now, before, delta = map(float, size.groups())
    assert now > 10 * before and delta > 1000
    assert found["test_size"].startswith("BudgetExceeded: net [fp32, onnxruntime] on host broke 1 budget(s):")

    latency = found["test_latency"]
    assert re.search(
        r"^  max_latency_regression: [\d.]+ ms vs baseline [\d.]+ ms \(.*\): ratio [\d.]+ "
        r"\(99% CI [\d.]+\.\.[\d.]+\), limit 1\.100: regressed$",
        latency,
        re.MULTILINE,
    ), latency
    # the latency check pooled more processes into its row, so the case may show twice
    rows = table(result)
    assert {row["Verdict"] for row in rows} <= {"fail", "regressed"}
    assert any(row["Size (MB)"].endswith(" !") for row in rows)
    slow = next(row for row in rows if row["Latency (ms, p50)"].endswith(" !"))
    assert slow["Verdict"] in ("fail", "regressed")
    assert float(slow["Baseline (ms)"]) > 0
    assert re.fullmatch(r"\+\d+\.\d% \((cpu|wall), (vs .*|paired A/B vs baseline, \d+ pairs)\)", slow["Delta"])


def test_a_changed_input_shape_is_compared_with_the_stored_samples(pytester: pytest.Pytester) -> None:
    """The baseline's cached artifact cannot run today's smaller inputs: no error, the stored
    samples are the baseline."""
    pytester.makepyfile(
        usermodel=textwrap.dedent(USER_MODEL),
        test_x="""
        from usermodel import user_model

        def test_latency(edge_runner):
            m = edge_runner.measure(user_model(), precision="fp32")
            m.check(max_latency_regression="10%", max_size_regression="0%")
    """,
    )
    (pytester.path / "width.txt").write_text("8")
    update(pytester, passed=1)
    (pytester.path / "side.txt").write_text("16")  # a quarter of the pixels: faster
    result = pytester.runpytest(*QUICK, *WARNINGS_SHOWN)
    result.assert_outcomes(passed=1)
    [row] = table(result)
    assert row["Verdict"] == "pass"
    assert row["Delta"].startswith("-") and "vs stored samples" in row["Delta"]


def test_without_a_baseline_a_relative_budget_fails_naming_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.edge_budget(max_size_regression="0%")
        def test_b(edge_runner):
            edge_runner.measure("digits-cnn", precision="int8")
    """
    )
    result = pytester.runpytest(*QUICK)
    assert_gate_failed(result, failed=1, passed=0)
    path = baseline_file(pytester)
    assert (
        f"  max_size_regression: no baseline for {KEY_B} on host in {path}: run with --update-baselines"
        in failures(result)["test_b"]
    )
    assert not path.exists()


# -- what an update touches ------------------------------------------------------------------------------


def test_update_new_only_adds_missing_entries(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_TESTS.split("@pytest.mark.edge_budget(**RELATIVE)\ndef test_b")[0])
    update(pytester, passed=1)
    path = baseline_file(pytester)

    def stale_numbers(data: Dict[str, Any]) -> None:  # what a full update would rewrite
        data["entries"][KEY_A]["provenance"]["date"] = "2000-01-01T00:00:00+00:00"
        data["entries"][KEY_A]["metrics"]["size_mb"] = 9.0

    edit(path, stale_numbers)
    old_a = load(path)["entries"][KEY_A]
    pytester.makepyfile(test_x=TWO_TESTS.replace("@pytest.mark.edge_budget(**RELATIVE)\n", ""))
    result = pytester.runpytest(*QUICK, "--add-baselines")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*{KEY_B} * added*"])
    assert KEY_A not in result.stdout.str().split(BASELINES)[1]
    assert "new baseline entry (--add-baselines)" in "\n".join(notes(result))
    data = load(path)
    assert sorted(data["entries"]) == [KEY_A, KEY_B]
    assert data["entries"][KEY_A] == old_a  # the date and the numbers stay as they were


@pytest.mark.parametrize("selection", [("-k", "test_b"), ("test_x.py::test_b",)], ids=["-k", "node id"])
def test_selecting_one_test_keeps_the_other_tests_entries(pytester: pytest.Pytester, selection: tuple) -> None:
    pytester.makepyfile(test_x=TWO_TESTS)
    update(pytester)
    path = baseline_file(pytester)
    edit(path, lambda data: data["entries"][KEY_B]["metrics"].update(size_mb=9.0))  # so test_b gets rewritten
    old_a = load(path)["entries"][KEY_A]

    result = pytester.runpytest(*QUICK, *selection, "--update-baselines")  # paths before the flag
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*{KEY_B} * changed * 9 -> 0.04*"])
    assert "removed" not in result.stdout.str()
    data = load(path)
    assert data["entries"][KEY_A] == old_a
    assert data["entries"][KEY_B]["metrics"]["size_mb"] < 1

    result = pytester.runpytest(*QUICK, *selection)
    result.assert_outcomes(passed=1)
    assert "stale baseline entr" not in result.stdout.str()


def test_a_deleted_test_is_reported_stale_and_removed_by_a_whole_module_update(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_TESTS)
    update(pytester)
    path = baseline_file(pytester)
    text = path.read_text(encoding="utf-8")
    pytester.makepyfile(test_x=TWO_TESTS.replace("def test_a(", "def _gone("))

    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"*= {BASELINES} =*",
            "1 stale baseline entry (their tests are gone or no longer measure them); --update-baselines removes them:",
            f"  test_x.py: {KEY_A}",
        ]
    )
    assert path.read_text(encoding="utf-8") == text

    result = update(pytester, passed=1)
    result.stdout.fnmatch_lines([f"{path} * {KEY_A} * removed*"])
    assert sorted(load(path)["entries"]) == [KEY_B]
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1)
    assert "stale baseline entr" not in result.stdout.str()


# -- fingerprints and xdist ------------------------------------------------------------------------------


def test_a_baseline_from_another_cpu_is_not_compared_and_the_table_says_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TWO_TESTS)
    update(pytester)
    path = baseline_file(pytester)

    def elsewhere(data: Dict[str, Any]) -> None:
        entry = data["entries"][KEY_B]
        entry["fingerprint"]["must_match"]["cpu_model"] = "Imaginary CPU 9000"

    edit(path, elsewhere)
    result = pytester.runpytest(*QUICK, *WARNINGS_SHOWN)
    result.assert_outcomes(passed=2)
    rows = {row["Bit-width (W/A)"].split("/")[0]: row for row in table(result)}
    note = next(line for line in notes(result) if "Imaginary" in line)
    assert re.fullmatch(
        r"\[(\d+)\] baseline measured under a different cpu_model 'Imaginary CPU 9000' -> '.+'", note
    ), note
    number = re.match(r"\[(\d+)\]", note).group(1)
    assert number in rows["INT8"]["Notes"].split(",")
    assert number not in rows["FP32"]["Notes"].split(",")
    assert rows["INT8"]["Baseline (ms)"] == "-"
    assert float(rows["FP32"]["Baseline (ms)"]) > 0  # the other entry is still compared


def test_xdist_update_writes_every_entry_into_one_valid_file(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.parametrize("precision", ["fp32", "int8", "fp16", "int8-dynamic"])
        def test_p(edge_runner, precision):
            edge_runner.measure("digits-cnn", precision=precision)
    """
    )
    result = pytester.runpytest(*QUICK, "-n", "2", "--update-baselines")
    result.assert_outcomes(passed=4)
    data = load(baseline_file(pytester))
    assert sorted(data["entries"]) == sorted(
        f"test_p[{p}]::digits-cnn/{p}/onnxruntime/b1" for p in ("fp32", "int8", "fp16", "int8-dynamic")
    )
    assert sorted(p.name for p in baseline_file(pytester).parent.iterdir()) == ["test_x.json"]
