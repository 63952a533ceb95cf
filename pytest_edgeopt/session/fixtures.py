"""The plugin's fixtures and its report hook, each reading the EdgeSession from `config.stash`."""

from __future__ import annotations

import pytest

from pytest_edgeopt.errors import EdgeOptError, EdgeOptWarning, MissingDependency
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.session import parametrize
from pytest_edgeopt.session.edge_session import edge_session
from pytest_edgeopt.session.runner import EdgeRunner, default_runtime, resolve_model


def model_fixture(request: pytest.FixtureRequest) -> EdgeModel:
    if not hasattr(request, "param"):
        pytest.fail("edge_model needs @pytest.mark.edge_models('digits-cnn', ...) on the test", pytrace=False)
    try:
        return resolve_model(request.param)
    except MissingDependency as missing:
        pytest.skip(str(missing))


def runtime_fixture(request: pytest.FixtureRequest) -> str:
    """The marker's runtime, else the one `edge_runner.measure` picks for the case's model
    (LiteRT for a .tflite file, else the platform's)."""
    if getattr(request, "param", None):
        return str(request.param)
    session = edge_session(request.config)
    model = getattr(getattr(request.node, "callspec", None), "params", {}).get("edge_model")
    return default_runtime(model, session.platform, session.runtimes)


def runner_fixture(request: pytest.FixtureRequest, edge_runtime: str) -> EdgeRunner:
    session = edge_session(request.config)
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    # user_properties directly, as record_property does: that fixture warns on every test under
    # --junitxml's default junit_family (xunit2), an error wherever filterwarnings = error.
    return EdgeRunner(
        session,
        nodeid=request.node.nodeid,
        budgets=parametrize.marker_budgets(request.node),
        runtime=edge_runtime if "edge_runtime" in params else None,
        record=lambda name, value: request.node.user_properties.append((name, value)),
    )


def shorten_report(report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
    """EdgeOptError is the user's input, not our bug: show its one line instead of a traceback."""
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance((EdgeOptError, EdgeOptWarning)):
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"
