"""Third-party tools run with their own warning filters, and their failures say the cause.

A project with `filterwarnings = ["error"]` turned a FutureWarning inside torch's exporter into a
failed export ("Failed to decompose the FX graph... Next steps:" and nothing more)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.pytester_helpers import QUICK, failures, table

MODELS = """
import warnings
import numpy as np
import torch
from pytest_edgeopt import EdgeModel

torch.manual_seed(0)
X = np.random.default_rng(0).standard_normal((32, 8)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 32)


class Warns(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 3)

    def forward(self, x):
        if torch.compiler.is_exporting():  # as torch's own FutureWarning did, inside the exporter only
            warnings.warn("a warning raised while exporting", FutureWarning)
        return self.linear(x)


class DataDependent(Warns):
    def forward(self, x):
        if x.sum() > 0:  # control flow on a value: eager runs it, the exporter cannot trace it
            return self.linear(x)
        return -self.linear(x)


def test_warns(edge_runner):
    model = EdgeModel.from_torch(Warns(), name="warns", example_input=X[:1], eval_data=(X, Y))
    edge_runner.measure(model, precision="int8")


def test_fails(edge_runner):
    model = EdgeModel.from_torch(DataDependent(), name="fails", example_input=X[:1], eval_data=(X, Y))
    edge_runner.measure(model, precision="fp32")
"""


def test_a_strict_project_exports_and_a_failure_names_its_cause(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=MODELS)
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n')
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=1, failed=1)
    assert [row["Model"] for row in table(result)][:1] == ["warns"]  # exported and quantized under "error"
    reason = failures(result)["test_fails"]
    line = next(line for line in reason.splitlines() if "ONNX export failed" in line)
    assert "; cause: " in line, reason  # the exporter's own line, then the deepest error in its chain
    assert "\x1b" not in line and "GuardOnDataDependentSymNode" in line
