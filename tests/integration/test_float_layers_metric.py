"""The float layers of an INT8 file are a registry metric: `m.float_layers` (0 for plain INT8, the
count keep_float= or int8-mixed left float), its budget `max_float_layers`, its JUnit property,
and the Bit-width cell a broken cap marks."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.integration.test_keep_float import MODEL
from tests.pytester_helpers import QUICK, assert_gate_failed, failures, table

TESTS = """
import pytest
from sens_model import sensitive

@pytest.mark.parametrize("kept", [[], ["fc1"]], ids=["plain", "fc1"])
def test_int8(edge_runner, kept):
    m = edge_runner.measure(sensitive(), precision="int8", keep_float=kept or None)
    assert m.float_layers == len(kept)
    m.check(max_float_layers=0)

def test_fp32(edge_runner):
    assert edge_runner.measure(sensitive(), precision="fp32").float_layers is None
"""


def test_float_layers_are_counted_capped_and_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(sens_model=MODEL, test_x=TESTS)
    result = pytester.runpytest(*QUICK, "-p", "no:randomly", "--junitxml=out.xml")
    assert_gate_failed(result, failed=1, passed=2)
    assert "max_float_layers: measured 1, limit <= 0" in failures(result)["test_int8[fc1]"]
    counts = [
        p.get("value")
        for p in ET.parse(pytester.path / "out.xml").iter("property")
        if p.get("name", "") == "edgeopt.sensitive-mlp.int8.float_layers"
    ]
    assert sorted(counts) == ["0", "1"], counts
    cells = [row["Bit-width (W/A)"] for row in table(result)]
    assert any(cell.startswith("INT8 mixed, 1 layers float") and cell.endswith("!") for cell in cells), cells
