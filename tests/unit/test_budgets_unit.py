"""budgets.py and baselines/: pure code, synthetic measurements, no runtime."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict

import pytest

from pytest_edgeopt.agent.contract import DeviceFacts
from pytest_edgeopt.baselines import entry as entry_module  # its test_name() must not be collected
from pytest_edgeopt.baselines.entry import (
    MUST_MATCH,
    BaselineEntry,
    case_key,
    changed,
    entry_from_measurement,
    mismatch_reason,
    module_of,
    must_match,
)
from pytest_edgeopt.baselines.store import (
    SCHEMA_VERSION,
    BaselineFileError,
    BaselineStore,
    NewerBaselineFile,
    dumps,
    validate,
)
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.judge.budgets import BUDGET_NAMES, validate_budgets
from pytest_edgeopt.judge.checks import check, raise_if_failed
from pytest_edgeopt.judge.latency import pooled
from pytest_edgeopt.judge.types import BudgetExceeded, Context, Judgement, Row
from pytest_edgeopt.measure.compare import INCONCLUSIVE, PASS, REGRESSED, LatencyVerdict
from pytest_edgeopt.measure.result import LatencyStats, Measurement
from pytest_edgeopt.runtimes.base import RuntimeInfo
from tests.unit.test_result import make_measurement

FACTS = DeviceFacts(arch="x86_64", cpu_model="Test CPU")
RUNTIME = RuntimeInfo(name="onnxruntime", version="1.0")
NODEID = "suites/test_x.py::test_a[int8]"
CHANGED = "fedcba98765432100000"  # the artifact of a changed model (the same artifact is not timed)
STORED = "cpu, vs stored samples (weaker: the baseline's artifact is not in the cache)"


def measurement(**overrides: Any) -> Measurement:
    values: Dict[str, Any] = {"facts": FACTS, "runtime_info": RUNTIME, "nodeid": NODEID}
    values.update(overrides)
    return make_measurement(**values)


def entries(data: Dict[str, Any]) -> Dict[str, BaselineEntry]:
    return {key: BaselineEntry.from_dict(entry) for key, entry in data["entries"].items()}


def with_samples(m: Measurement, samples: tuple) -> Measurement:
    stats = LatencyStats.from_values(samples)
    return m.replace(samples_ms=samples, cpu_samples_ms=samples, latency=stats, cpu_latency=stats)


def baseline_file(*entries: Measurement) -> Dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "platform": "host",
        "module": "suites/test_x.py",
        "entries": {case_key(m.nodeid, m): entry_from_measurement(m).to_dict() for m in entries},
    }


# -- validate_budgets -------------------------------------------------------------------------------


def test_validate_budgets_accepts_every_kind_and_returns_a_copy() -> None:
    budgets = {
        "max_storage_mb": 5,
        "min_top1": 0.95,
        "max_latency_regression": "10%",
        "max_size_regression": 0.0,
        "max_top1_regression": 1.0,
        "max_latency_ratio_vs": {"fp32": 0.8},
    }
    validated = validate_budgets(budgets, where="here")
    assert validated == budgets and validated is not budgets
    assert validate_budgets({"max_latency_ratio_vs": "fp32"}, where="here")


def test_unknown_budget_names_where_it_came_from_and_every_known_name() -> None:
    with pytest.raises(EdgeOptError) as raised:
        validate_budgets({"max_storage_mbb": 5, "bogus": 1}, where="test_x.py::t: @pytest.mark.edge_budget")
    message = str(raised.value)
    assert message.startswith("test_x.py::t: @pytest.mark.edge_budget: unknown budget bogus, max_storage_mbb; known: ")
    for name in BUDGET_NAMES:
        assert name in message


@pytest.mark.parametrize(
    ("budgets", "expected"),
    [
        ({"max_storage_mb": "five"}, "max_storage_mb='five': expected a number"),
        ({"min_top1": None}, "min_top1=None: expected a number"),
        ({"max_size_regression": "ten%"}, "max_size_regression='ten%': expected a percentage like '10%'"),
        ({"max_latency_ratio_vs": 0.8}, "max_latency_ratio_vs=0.8: expected a precision name like 'fp32'"),
        ({"max_latency_ratio_vs": {"fp32": 0.8, "fp16": 1.0}}, "max_latency_ratio_vs="),
        ({"max_latency_ratio_vs": "fp64"}, "max_latency_ratio_vs: unknown precision 'fp64'; choose from fp32, fp16, "),
        ({"max_latency_ratio_vs": {"int4": 2.0}}, "max_latency_ratio_vs: unknown precision 'int4'; choose from "),
        ({"max_latency_ratio_vs": {"fp32": 0}}, "the ratio must be a number above 0, got 0"),
        ({"max_latency_ratio_vs": {"fp32": "fast"}}, "the ratio must be a number above 0, got 'fast'"),
    ],
)
def test_malformed_budget_values_say_where_and_what_is_expected(budgets: Dict[str, Any], expected: str) -> None:
    with pytest.raises(EdgeOptError) as raised:
        validate_budgets(budgets, where="test_x.py::t: @pytest.mark.edge_budget")
    assert str(raised.value).startswith("test_x.py::t: @pytest.mark.edge_budget: ")
    assert expected in str(raised.value)


# -- check: absolute, relative, points ----------------------------------------------------------------


def test_absolute_budgets_pass_at_the_limit_and_fail_past_it_with_units() -> None:
    m = measurement()
    _, judgement = check(m, {"max_storage_mb": 0.6, "min_top1": 0.95, "max_params": 1000}, Context(baseline=None))
    assert (judgement.verdict, judgement.violations) == (PASS, ())
    _, judgement = check(
        m,
        {"max_storage_mb": 0.5, "min_top1": 0.96, "max_params": 999, "max_peak_rss_mb": 10, "max_accuracy_drop": 1.0},
        Context(baseline=None),
    )
    assert judgement.verdict == "fail"
    assert judgement.violations == (
        "max_storage_mb: measured 0.6 MB, limit <= 0.5 MB",
        "min_top1: measured 0.95, limit >= 0.96",
        "max_params: measured 1,000, limit <= 999",
        "max_peak_rss_mb: measured 50 MB, limit <= 10 MB",
        "max_accuracy_drop: measured 2 pp, limit <= 1 pp",
    )


def test_top1_budget_on_a_label_free_model_says_to_gate_on_agreement() -> None:
    _, judgement = check(measurement(top1=None, reference_top1=None), {"min_top1": 0.5}, Context(baseline=None))
    assert judgement.verdict == "fail"
    assert "gate on agreement" in judgement.violations[0]


def test_no_budgets_no_verdict() -> None:
    _, judgement = check(measurement(), {}, Context(baseline=None))
    assert (judgement.verdict, judgement.violations) == ("-", ())


def test_relative_budget_without_baseline_fails_with_the_missing_message() -> None:
    missing = "no baseline for test_a[int8]::m/int8/onnxruntime/b2 on host: run with --update-baselines"
    _, judgement = check(measurement(), {"max_size_regression": "0%"}, Context(baseline=None, missing=missing))
    assert judgement.violations == (f"max_size_regression: {missing}",)
    assert judgement.verdict == "fail"


def test_relative_budget_with_a_note_and_no_baseline_is_not_compared() -> None:
    _, judgement = check(
        measurement(),
        {"max_size_regression": "0%"},
        Context(baseline=None, note="baseline measured under a different cpu_model"),
    )
    assert judgement.verdict == PASS
    assert judgement.baseline_note == "baseline measured under a different cpu_model"


def test_relative_budgets_are_one_sided_and_report_baseline_and_delta() -> None:
    stored = entry_from_measurement(measurement(size_mb=0.4, storage_mb=0.6))
    _, bigger = check(measurement(size_mb=0.5), {"max_size_regression": "10%"}, Context(baseline=stored))
    assert bigger.violations == ("max_size_regression: measured 0.5 MB, baseline 0.4 MB (+25.0%), limit +10%",)
    _, within = check(measurement(size_mb=0.44), {"max_size_regression": "10%"}, Context(baseline=stored))
    assert within.verdict == PASS
    _, smaller = check(
        measurement(size_mb=0.1, storage_mb=0.2),
        {"max_size_regression": "0%", "max_storage_regression": 0.0},
        Context(baseline=stored),
    )
    assert smaller.verdict == PASS  # an improvement never fails


def test_point_regressions_are_percentage_points() -> None:
    stored = entry_from_measurement(measurement(top1=0.97))
    _, judgement = check(measurement(top1=0.95), {"max_top1_regression": 1.0}, Context(baseline=stored))
    assert judgement.violations == ("max_top1_regression: measured 95.00%, baseline 97.00% (-2.00 pp), limit -1 pp",)
    _, judgement = check(measurement(top1=0.95), {"max_top1_regression": 2.5}, Context(baseline=stored))
    assert judgement.verdict == PASS
    _, judgement = check(measurement(top1=0.99), {"max_top1_regression": 0.0}, Context(baseline=stored))
    assert judgement.verdict == PASS


def test_an_unchanged_measurement_passes_zero_tolerance_against_its_rounded_baseline() -> None:
    """The file keeps 6 decimals: 0.98055555 is stored as 0.980556, which must not read as a drop."""
    m = measurement(top1=353 / 360, agreement=359 / 360, peak_rss_mb=66.12890625, size_mb=0.1531284)
    stored = entries(json.loads(dumps(baseline_file(m))))[case_key(m.nodeid, m)]
    assert stored.metrics.top1 != m.top1  # rounded
    budgets = {
        "max_top1_regression": 0.0,
        "max_agreement_regression": 0,
        "max_peak_rss_regression": "0%",
        "max_size_regression": "0%",
    }
    _, judgement = check(m, budgets, Context(baseline=stored))
    assert (judgement.verdict, judgement.violations) == (PASS, ())
    _, judgement = check(m.replace(top1=352 / 360), budgets, Context(baseline=stored))
    assert judgement.violations == ("max_top1_regression: measured 97.78%, baseline 98.06% (-0.28 pp), limit -0 pp",)


def test_latency_regression_against_stored_samples() -> None:
    base = with_samples(measurement(), tuple(2.0 + 0.01 * (i % 7) for i in range(200)))
    stored = entry_from_measurement(base)
    slow = with_samples(measurement(artifact_sha=CHANGED), tuple(4.0 + 0.01 * (i % 7) for i in range(200)))
    _, judgement = check(slow, {"max_latency_regression": "10%"}, Context(baseline=stored))
    assert judgement.verdict == REGRESSED
    assert judgement.latency is not None and judgement.latency.signal == STORED
    assert judgement.baseline_latency_ms == pytest.approx(2.03)
    assert judgement.violations[0].startswith("max_latency_regression: 4.030 ms vs baseline 2.030 ms")
    assert judgement.violations[0].endswith(": regressed")
    _, same = check(base, {"max_latency_regression": "10%"}, Context(baseline=stored))
    assert same.verdict == PASS


def test_inconclusive_latency_is_remeasured_a_bounded_number_of_times() -> None:
    noisy = with_samples(measurement(artifact_sha=CHANGED), (1.0, 3.0, 2.2, 1.2, 3.1))
    stored = entry_from_measurement(with_samples(measurement(), (1.0, 3.0, 2.0, 1.1, 2.9)))
    calls = []

    def remeasure() -> Measurement:
        calls.append(1)
        return noisy

    pooled_m, judgement = check(
        noisy, {"max_latency_regression": "10%"}, Context(baseline=stored, remeasure=remeasure, attempts=3)
    )
    assert judgement.verdict == INCONCLUSIVE
    assert len(calls) == 3
    assert len(pooled_m.samples_ms) == 4 * len(noisy.samples_ms)
    _, judgement = check(
        noisy, {"max_latency_regression": "10%"}, Context(baseline=stored, remeasure=remeasure, attempts=0)
    )
    assert judgement.verdict == INCONCLUSIVE and len(calls) == 3


def test_a_failed_baseline_pairing_falls_back_to_the_stored_samples() -> None:
    base = with_samples(measurement(), tuple(2.0 + 0.01 * (i % 7) for i in range(200)))
    changed_model = replace(base, artifact_sha=CHANGED)
    _, judgement = check(
        changed_model,
        {"max_latency_regression": "10%"},
        Context(
            baseline=entry_from_measurement(base), pair_baseline=lambda limit: None, remeasure=lambda: changed_model
        ),
    )
    assert judgement.verdict == PASS
    assert judgement.latency is not None and judgement.latency.signal == STORED


def test_paired_gate_against_another_precision_of_the_session() -> None:
    int8 = with_samples(measurement(), tuple(2.0 + 0.01 * (i % 5) for i in range(100)))
    fp32 = with_samples(measurement(precision="fp32"), tuple(1.0 + 0.01 * (i % 5) for i in range(100)))
    context = Context(baseline=None, reference=lambda precision: fp32)
    _, judgement = check(int8, {"max_latency_ratio_vs": "fp32"}, context)
    assert judgement.verdict == REGRESSED and "vs fp32" in judgement.violations[0]
    _, judgement = check(int8, {"max_latency_ratio_vs": {"fp32": 2.5}}, context)
    assert judgement.verdict == PASS
    assert judgement.latency is not None and judgement.latency.signal == "cpu, vs fp32"
    _, judgement = check(fp32, {"max_latency_ratio_vs": "fp32"}, context)
    assert (judgement.verdict, judgement.latency) == (PASS, None)  # never against itself


def test_raise_if_failed_lists_every_violation_and_follows_the_inconclusive_policy() -> None:
    m = measurement()
    failed = Judgement(verdict="fail", violations=("a: one", "b: two"))
    with pytest.raises(BudgetExceeded) as raised:
        raise_if_failed(m, failed, inconclusive_fails=False)
    assert str(raised.value) == "m [int8, onnxruntime] on host broke 2 budget(s):\n  a: one\n  b: two"
    inconclusive = Judgement(verdict=INCONCLUSIVE, violations=("max_latency_regression: x: inconclusive",))
    raise_if_failed(m, inconclusive, inconclusive_fails=False)
    with pytest.raises(BudgetExceeded):
        raise_if_failed(m, inconclusive, inconclusive_fails=True)
    raise_if_failed(m, Judgement(verdict=PASS), inconclusive_fails=True)


# -- Judgement, Row, pooled ---------------------------------------------------------------------------


def test_judgement_and_row_round_trip_through_json() -> None:
    verdict = LatencyVerdict(
        verdict=REGRESSED, signal="cpu, vs stored samples", ratio=1.3, low=1.2, high=1.4, limit=1.1, processes=3
    )
    judgement = Judgement(
        verdict=REGRESSED,
        violations=("max_latency_regression: slow",),
        latency=verdict,
        baseline_latency_ms=2.0,
        baseline_note="note",
    )
    again = Judgement.from_dict(json.loads(json.dumps(judgement.to_dict())))
    assert again == judgement
    row = Row(measurement=measurement(), judgement=judgement)
    assert Row.from_dict(json.loads(json.dumps(row.to_dict()))) == row
    plain = Row(measurement=measurement())
    assert Row.from_dict(json.loads(json.dumps(plain.to_dict()))) == plain


def test_pooled_keeps_every_sample_of_every_process() -> None:
    first = with_samples(measurement(), (1.0, 2.0, 3.0))
    second = with_samples(measurement(), (4.0, 5.0))
    assert pooled([first]) is first
    both = pooled([first, second])
    assert both.samples_ms == (1.0, 2.0, 3.0, 4.0, 5.0) and both.cpu_samples_ms == both.samples_ms
    assert both.latency.rounds == 5 and both.latency.median_ms == 3.0
    assert (both.model, both.size_mb) == (first.model, first.size_mb)


@pytest.mark.parametrize(
    ("first", "second", "worst"),
    [
        (PASS, "fail", "fail"),
        ("fail", PASS, "fail"),
        (REGRESSED, INCONCLUSIVE, REGRESSED),
        (INCONCLUSIVE, PASS, INCONCLUSIVE),
        ("-", PASS, PASS),
        (PASS, "-", PASS),
    ],
)
def test_row_merge_keeps_the_worst_verdict_and_every_violation(first: str, second: str, worst: str) -> None:
    row = Row(measurement=measurement())
    row.merge(measurement(), Judgement(verdict=first, violations=(f"{first}: a",), baseline_note="n1"))
    row.merge(measurement(size_mb=0.7), Judgement(verdict=second, violations=(f"{second}: b",)))
    assert row.judgement.verdict == worst
    assert row.judgement.violations == (f"{first}: a", f"{second}: b")
    assert row.judgement.baseline_note == "n1"
    assert row.measurement.size_mb == 0.7


# -- baseline entries ---------------------------------------------------------------------------------


def test_case_key_names_test_and_case() -> None:
    m = measurement()
    assert case_key(NODEID, m) == "test_a[int8]::m/int8/onnxruntime/b2"
    assert case_key("t.py::TestK::test_b", m) == "TestK::test_b::m/int8/onnxruntime/b2"
    assert (module_of(NODEID), entry_module.test_name(NODEID)) == ("suites/test_x.py", "test_a[int8]")


def test_must_match_is_the_fingerprint_that_makes_numbers_comparable() -> None:
    assert must_match(measurement()) == {
        "platform": "host",
        "arch": "x86_64",
        "cpu_model": "Test CPU",
        "runtime": "onnxruntime",
        "runtime_version": "1.0",
        "threads": 1,
        "precision": "int8",
    }
    assert tuple(must_match(measurement())) == MUST_MATCH


def test_mismatch_reason_names_each_difference() -> None:
    entry = entry_from_measurement(measurement())
    assert mismatch_reason(entry, measurement()) is None
    other_cpu = measurement(facts=replace(FACTS, cpu_model="Other CPU"))
    assert (
        mismatch_reason(entry, other_cpu) == "baseline measured under a different cpu_model 'Test CPU' -> 'Other CPU'"
    )
    reason = mismatch_reason(
        entry, measurement(threads=4, runtime_version="2.0", runtime_info=replace(RUNTIME, version="2.0"))
    )
    assert reason == "baseline measured under a different runtime_version '1.0' -> '2.0', threads 1 -> 4"


def test_a_baseline_from_another_vector_isa_is_not_compared() -> None:
    """A VM names an AVX2 and an AVX-512 part both "AMD EPYC": the flags tell them apart."""
    avx2 = entry_from_measurement(measurement(facts=replace(FACTS, cpu_flags=("avx2", "fma"))))
    avx512 = measurement(facts=replace(FACTS, cpu_flags=("avx2", "avx512_vnni", "avx512f", "fma")))
    assert mismatch_reason(avx2, avx512) == (
        "baseline measured under a different CPU flags avx2 fma -> avx2 avx512_vnni avx512f fma"
    )
    assert mismatch_reason(avx2, measurement(facts=replace(FACTS, cpu_flags=("fma", "avx2")))) is None
    unrecorded = entry_from_measurement(measurement(facts=replace(FACTS, cpu_flags=())))
    assert mismatch_reason(unrecorded, avx512) is None  # an entry without flags: compared on the rest


def test_changed_rules() -> None:
    old = entry_from_measurement(with_samples(measurement(), (2.0, 2.0, 2.0)))
    assert not changed(old, old)
    assert not changed(old, entry_from_measurement(with_samples(measurement(), (2.05, 2.05, 2.05))))  # 2.5%: noise
    assert changed(old, entry_from_measurement(with_samples(measurement(), (2.1, 2.1, 2.1))))  # 5%
    assert changed(old, entry_from_measurement(with_samples(measurement(size_mb=0.51), (2.0, 2.0, 2.0))))
    assert changed(old, entry_from_measurement(with_samples(measurement(top1=0.9), (2.0, 2.0, 2.0))))
    assert changed(
        old, entry_from_measurement(with_samples(measurement(artifact_sha="fedcba9876543210fedc"), (2.0, 2.0, 2.0)))
    )
    assert changed(
        old, entry_from_measurement(with_samples(measurement(facts=replace(FACTS, cpu_model="X")), (2.0, 2.0, 2.0)))
    )
    assert not changed(old, entry_from_measurement(with_samples(measurement(peak_rss_mb=80.0), (2.0, 2.0, 2.0))))


def test_stored_samples_are_bounded_and_rounded() -> None:
    m = with_samples(measurement(), tuple(1.0 + i / 3e4 for i in range(3000)))
    entry = entry_from_measurement(m)
    assert len(entry.samples.wall_ms) == 400
    assert entry.samples.wall_ms[0] == 1.0 and entry.samples.wall_ms[-1] == round(m.samples_ms[-1], 4)
    assert all(len(str(s).split(".")[-1]) <= 4 for s in entry.samples.cpu_ms)


# -- the file: schema, dumps, store -------------------------------------------------------------------


def test_validate_accepts_what_the_plugin_writes() -> None:
    data = baseline_file(measurement(), measurement(precision="fp32", nodeid="suites/test_x.py::test_b"))
    assert validate(data) is None
    assert validate(json.loads(dumps(data))) is None


@pytest.mark.parametrize(
    ("damage", "where"),
    [
        (lambda d: d.update(schema_version=2), "at $.schema_version: 1 was expected"),
        (lambda d: d.pop("entries"), "at $: 'entries' is a required property"),
        (
            lambda d: next(iter(d["entries"].values())).pop("metrics"),
            "at $.entries['test_a[int8]::m/int8/onnxruntime/b2']: 'metrics' is a required property",
        ),
        (
            lambda d: next(iter(d["entries"].values()))["metrics"].update(size_mb="big"),
            "at $.entries['test_a[int8]::m/int8/onnxruntime/b2'].metrics.size_mb: 'big' is not of type 'number'",
        ),
        (
            lambda d: next(iter(d["entries"].values()))["samples"].update(wall_ms=[]),
            # jsonschema's own words follow: "should be non-empty" from 4.21, "is too short" before (the floor)
            "at $.entries['test_a[int8]::m/int8/onnxruntime/b2'].samples.wall_ms: [] ",
        ),
        (lambda d: d.update(extra=1), "Additional properties are not allowed ('extra' was unexpected)"),
    ],
)
def test_validate_names_the_json_path_of_the_first_problem(damage: Any, where: str) -> None:
    data = baseline_file(measurement())
    damage(data)
    problem = validate(data)
    assert problem is not None and problem.startswith("schema violation at $")
    assert where in problem


def test_dumps_sorts_keys_keeps_number_lists_on_one_line_and_round_trips() -> None:
    data = baseline_file(
        with_samples(measurement(), (1.5, 2.25, 0.0001, 3.0)), measurement(nodeid="suites/test_x.py::test_p[1-2]")
    )
    data["entries"]["test_a[int8]::m/int8/onnxruntime/b2"]["samples"]["reference_ms"] = [1e-05, 2.5e20]
    text = dumps(data)
    assert text.endswith("}\n")
    assert json.loads(text) == data
    assert '"wall_ms": [1.5, 2.25, 0.0001, 3.0]' in text
    assert '"reference_ms": [1e-05, 2.5e+20]' in text
    assert '"reference_ms": []' in text
    assert '"reason": null' in text
    assert '"test_p[1-2]::m/int8/onnxruntime/b2"' in text

    def keys_sorted(node: Any) -> bool:
        if isinstance(node, dict):
            return list(node) == sorted(node) and all(keys_sorted(v) for v in node.values())
        return all(keys_sorted(v) for v in node) if isinstance(node, list) else True

    assert keys_sorted(json.loads(text))
    assert dumps(json.loads(text)) == text  # stable: rewriting an unchanged file changes no byte


def test_store_writes_merges_and_removes(tmp_path: Path) -> None:
    store = BaselineStore(root=tmp_path, platform="host")
    path = store.path_for("suites/test_x.py")
    assert path == tmp_path / "host" / "suites" / "test_x.json"
    assert store.entries("suites/test_x.py") == {}
    a, b = measurement(), measurement(nodeid="suites/test_x.py::test_b")
    update = store.write("suites/test_x.py", new=entries(baseline_file(a, b)), remove=set(), regenerate=False)
    assert sorted(update.added) == [case_key(a.nodeid, a), case_key(b.nodeid, b)] and not update.changed
    fresh = BaselineStore(root=tmp_path, platform="host")
    assert sorted(fresh.entries("suites/test_x.py")) == sorted(update.added)
    assert validate(json.loads(path.read_text())) is None
    update = fresh.write("suites/test_x.py", new={}, remove={case_key(b.nodeid, b), "not-there"}, regenerate=False)
    assert update.removed == [case_key(b.nodeid, b)]
    assert list(BaselineStore(root=tmp_path, platform="host").entries("suites/test_x.py")) == [case_key(a.nodeid, a)]
    assert fresh.write("suites/test_x.py", new={}, remove=set(), regenerate=False).empty


def test_a_damaged_file_raises_with_path_and_fix_and_only_a_whole_module_update_replaces_it(tmp_path: Path) -> None:
    store = BaselineStore(root=tmp_path, platform="host")
    path = store.path_for("m.py")
    path.parent.mkdir(parents=True)
    text = '{"schema_version": 1,\n  "entries": {'
    path.write_text(text)
    expected = r"not valid JSON \(line 2, column 15: .*\); regenerate it with --update-baselines"
    with pytest.raises(BaselineFileError, match=re.escape(str(path)) + ": " + expected):
        store.entry("m.py", "k")
    new = entries(baseline_file(measurement()))
    with pytest.raises(BaselineFileError, match="it was not rewritten: only --update-baselines over the whole module"):
        store.write("m.py", new=new, remove=set(), regenerate=False)
    assert path.read_text() == text
    store.write("m.py", new=new, remove=set(), regenerate=True)
    assert validate(json.loads(path.read_text())) is None


def test_a_file_from_a_newer_plugin_is_never_rewritten(tmp_path: Path) -> None:
    store = BaselineStore(root=tmp_path, platform="host")
    path = store.path_for("m.py")
    path.parent.mkdir(parents=True)
    text = '{"schema_version": 2, "platform": "host", "module": "m.py", "entries": {}, "new_field": 1}'
    path.write_text(text)
    message = r"written by a newer pytest-edgeopt \(schema_version 2; this one reads and writes 1\): upgrade"
    with pytest.raises(NewerBaselineFile, match=message):
        store.entry("m.py", "k")
    with pytest.raises(NewerBaselineFile):
        store.write("m.py", new=entries(baseline_file(measurement())), remove=set(), regenerate=True)
    assert path.read_text() == text


def test_a_case_gated_by_two_tests_shows_once_with_both_broken_cells_marked() -> None:
    from pytest_edgeopt.report.table import table_cells

    m = measurement()
    storage = Row(measurement=m, judgement=Judgement(verdict="fail", violations=("max_storage_mb: too big",)))
    top1 = Row(
        measurement=replace(m, nodeid="suites/test_x.py::test_b"),
        judgement=Judgement(verdict="fail", violations=("min_top1: too low",)),
    )
    headers, body, _ = table_cells([storage, top1, Row(measurement=m)])
    [cells] = body
    row = dict(zip(headers, cells))
    assert row["Storage (MB)"].endswith(" !") and row["Top-1 (%)"].endswith(" !")
    assert row["Verdict"] == "fail" and not row["Size (MB)"].endswith("!")


def test_a_stored_sample_regression_says_how_the_machine_itself_moved() -> None:
    fast_samples = tuple(2.0 + 0.01 * (i % 7) for i in range(200))
    slow_samples = tuple(4.0 + 0.01 * (i % 7) for i in range(200))
    base = with_samples(measurement(), fast_samples).replace(reference_cpu_ms=(1.0,) * 20)
    slow = with_samples(measurement(artifact_sha=CHANGED), slow_samples).replace(reference_cpu_ms=(1.5,) * 20)
    _, judgement = check(slow, {"max_latency_regression": "10%"}, Context(baseline=entry_from_measurement(base)))
    assert judgement.verdict == REGRESSED
    assert judgement.violations[0].endswith(": regressed; the reference workload ran +50.0% vs baseline time")


def _with_reference(m: Measurement, reference_ms: float) -> Measurement:
    return m.replace(reference_cpu_ms=tuple(reference_ms + 0.01 * (i % 5) for i in range(20)))


def test_a_stored_sample_regression_the_machine_explains_is_inconclusive_not_a_failure() -> None:
    """The reference workload ran 2x slower too: the machine, not the model, may be the cause."""
    base = _with_reference(with_samples(measurement(), tuple(2.0 + 0.01 * (i % 7) for i in range(200))), 1.0)
    stored = entry_from_measurement(base)
    slow = with_samples(measurement(artifact_sha=CHANGED), tuple(4.0 + 0.01 * (i % 7) for i in range(200)))
    _, on_a_slow_machine = check(
        _with_reference(slow, 2.0), {"max_latency_regression": "25%"}, Context(baseline=stored)
    )
    assert on_a_slow_machine.verdict == INCONCLUSIVE
    assert "the reference workload ran +98.0% vs baseline time" in on_a_slow_machine.violations[0]
    _, same_machine = check(_with_reference(slow, 1.0), {"max_latency_regression": "25%"}, Context(baseline=stored))
    assert same_machine.verdict == REGRESSED
    much_slower = with_samples(measurement(artifact_sha=CHANGED), tuple(8.0 + 0.01 * (i % 7) for i in range(200)))
    _, beyond = check(_with_reference(much_slower, 2.0), {"max_latency_regression": "25%"}, Context(baseline=stored))
    assert beyond.verdict == REGRESSED  # 4x slower on a machine only 2x slower: still the model
