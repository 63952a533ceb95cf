"""pytest hooks and fixtures of pytest-edgeopt; the work happens in EdgeSession and EdgeRunner."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Generator, List, Optional, Set

import pytest

from pytest_edgeopt import hookspecs
from pytest_edgeopt.errors import EdgeOptError, EdgeOptWarning, MissingDependency
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.models.zoo import ZOO, unknown_model_message
from pytest_edgeopt.optimize.precisions import PRECISIONS
from pytest_edgeopt.platforms.profiles import BUILTIN, Platform, platform_table
from pytest_edgeopt.platforms.select import choose_platform, make_transport
from pytest_edgeopt.platforms.transport import Transport
from pytest_edgeopt.budgets import validate_budgets
from pytest_edgeopt.report.files import write_report
from pytest_edgeopt.report.table import baseline_lines, device_lines, table_lines
from pytest_edgeopt.runner import MODEL_FILE_SUFFIXES, EdgeRunner, resolve_model
from pytest_edgeopt.runtimes import RUNTIMES, artifact_format
from pytest_edgeopt.session import EdgeSession, session_key
from pytest_edgeopt.settings import (
    INI_OPTIONS, Settings, device_address, inconclusive_policy, non_negative_float, non_negative_int, parse_name_list,
    positive_float, positive_int, tool_budgets, update_mode)

MARKERS = (
    "edge_models(*names): measure the test for each zoo model name or .onnx/.tflite path (edge_model fixture)",
    "edge_precisions(*names): run the test for each precision, e.g. fp32, int8 (edge_precision fixture)",
    "edge_runtimes(*names): run the test for each runtime, e.g. onnxruntime, tflite (edge_runtime fixture; "
    "edge_runner.measure uses it unless given runtime=)",
    "edge_budget(**budgets): budgets checked after every edge_runner.measure in the test, "
    "e.g. max_storage_mb=5, max_latency_regression='10%'",
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgeopt", "edge-AI optimization budgets (pytest-edgeopt)")
    group.addoption("--edge-platform", metavar="NAME", default=None,
                    help="platform profile to measure on (default: host)")
    group.addoption("--edge-device", metavar="URL", action="append", type=device_address, default=None,
                    help="measure on this device: ssh://USER@HOST[:PORT], or local (pytest runs on the "
                    "device); repeat it with -n N for a fleet, one device per worker")
    group.addoption("--edge-on-host", action="store_true", default=False,
                    help="measure a device profile (e.g. pi) on this machine: its runtime and threads, "
                    "not its hardware; rows say so")
    group.addoption("--edge-precision", metavar="LIST", type=parse_name_list, default=None,
                    help="only run these precisions, e.g. int8,fp32")
    group.addoption("--edge-runtime", metavar="LIST", type=parse_name_list, default=None,
                    help="only run these runtimes, e.g. tflite,onnxruntime")
    group.addoption("--edge-threads", metavar="N", type=positive_int, default=None,
                    help="inference threads (default: the platform's, 1 on host)")
    group.addoption("--edge-cache-dir", metavar="DIR", default=None,
                    help="artifact cache (default .edgeopt_cache under the rootdir; or $EDGEOPT_CACHE_DIR)")
    group.addoption("--edge-min-runs", metavar="N", type=positive_int, default=None,
                    help="minimum timed inferences per case")
    group.addoption("--edge-min-time", metavar="S", type=non_negative_float, default=None,
                    help="minimum seconds of timed inferences per case")
    group.addoption("--edge-max-time", metavar="S", type=positive_float, default=None,
                    help="cap on seconds of timed inferences per case")
    group.addoption("--edge-warmup-runs", metavar="N", type=non_negative_int, default=None,
                    help="minimum warm-up inferences")
    group.addoption("--edge-warmup-time", metavar="S", type=non_negative_float, default=None,
                    help="minimum warm-up seconds")
    group.addoption("--edge-quick", action="store_true", default=False,
                    help="short sampling (5 runs, 2 s cap): smoke runs, not numbers to keep")
    group.addoption("--edge-timeout", metavar="S", type=positive_float, default=None,
                    help="seconds one measurement may take before the agent is killed")
    group.addoption("--no-edge-table", dest="edge_table", action="store_false", default=True,
                    help="do not print the comparison table")
    group.addoption("--update-baselines", nargs="?", const="all", default=None, type=update_mode,
                    metavar="all|new", help="write new and changed baseline entries of the tests that ran "
                    "and drop stale ones (=new: only add missing entries)")
    group.addoption("--edge-baselines-dir", metavar="DIR", default=None,
                    help="baseline directory (default: baselines/ under the rootdir)")
    group.addoption("--edge-inconclusive", metavar="warn|fail", default=None, type=inconclusive_policy,
                    help="what a latency verdict that stays inconclusive does (default: warn)")
    group.addoption("--edge-remeasure", metavar="N", type=non_negative_int, default=None,
                    help="re-measurements of an inconclusive latency (default 2)")
    group.addoption("--edge-report", metavar="PATH", default=None,
                    help="also write the table to PATH: .md (fits $GITHUB_STEP_SUMMARY), .json or .html")
    for name, (text, default) in INI_OPTIONS.items():
        parser.addini(name, text, default=default)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    settings = Settings.from_config(config)
    _check_precision_filter(settings)
    platform = _platform(config, settings)
    settings = settings.with_budgets(tool_budgets(config, settings, platform))
    transport = config.hook.pytest_edgeopt_make_transport(config=config, platform=platform)
    if transport is None:
        raise pytest.UsageError(f"no plugin provides the {platform.transport!r} transport of {platform.name!r}")
    session = EdgeSession(settings=settings, platform=platform, transport=transport)
    session.narrowed = _modules_named_by_node_id(config)
    config.stash[session_key] = session
    config.pluginmanager.register(_OutcomeRecorder(session), "edgeopt-outcomes")


@pytest.hookimpl(trylast=True)
def pytest_edgeopt_platforms(config: pytest.Config) -> List[Platform]:
    return list(BUILTIN)


@pytest.hookimpl(trylast=True)
def pytest_edgeopt_make_transport(config: pytest.Config, platform: Platform) -> Optional[Transport]:
    return make_transport(platform, lock_dir=config.stash[_settings_key].cache_dir)


def pytest_unconfigure(config: pytest.Config) -> None:
    edge = config.stash.get(session_key, None)
    if edge is not None:
        edge.transport.close()


_settings_key = pytest.StashKey[Settings]()


def _modules_named_by_node_id(config: pytest.Config) -> Set[str]:
    """Module node ids of `path::name` arguments: only some of their tests are collected, so their
    other baseline entries are neither stale nor to be removed."""
    root, here = Path(config.rootpath), Path(config.invocation_params.dir)
    modules = set()
    for arg in config.args:
        if "::" in arg:
            path = os.path.abspath(here / arg.split("::", 1)[0])  # as pytest does: no symlink resolution
            modules.add(Path(os.path.relpath(path, root)).as_posix())
    return modules


def _platform(config: pytest.Config, settings: Settings) -> Platform:
    config.stash[_settings_key] = settings
    table = platform_table(config.hook.pytest_edgeopt_platforms(config=config))
    return choose_platform(table, settings)


def _check_precision_filter(settings: Settings) -> None:
    for name in (settings.precisions or ()) + settings.default_precisions:
        if name not in PRECISIONS:
            raise pytest.UsageError(f"unknown precision {name!r}; choose from {', '.join(PRECISIONS)}")
    for name in settings.runtimes or ():
        if name not in RUNTIMES:
            raise pytest.UsageError(f"--edge-runtime: unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    session = metafunc.config.stash[session_key]
    if "edge_model" in metafunc.fixturenames:
        _parametrize_models(metafunc, session)
    if "edge_precision" in metafunc.fixturenames:
        _parametrize_precisions(metafunc, session)
    if "edge_runtime" in metafunc.fixturenames:
        _parametrize_runtimes(metafunc, session)


def _parametrize_models(metafunc: pytest.Metafunc, session: EdgeSession) -> None:
    marker = metafunc.definition.get_closest_marker("edge_models")
    if marker is None:
        return
    base = Path(str(metafunc.definition.fspath)).parent
    models = [_model_param(name, base, session, metafunc.definition.nodeid) for name in marker.args]
    metafunc.parametrize("edge_model", models, indirect=True, ids=[_model_id(m) for m in models])


def _model_param(name: Any, base: Path, session: EdgeSession, nodeid: str) -> Any:
    if isinstance(name, EdgeModel) or name in ZOO:
        return name
    if isinstance(name, (str, Path)) and str(name).endswith(MODEL_FILE_SUFFIXES):
        return base / name
    session.usage_errors.append(f"{nodeid}: @pytest.mark.edge_models: {unknown_model_message(str(name))}")
    return name


def _model_id(model: Any) -> str:
    return model.name if isinstance(model, EdgeModel) else Path(model).stem if isinstance(model, Path) else str(model)


def _parametrize_precisions(metafunc: pytest.Metafunc, session: EdgeSession) -> None:
    marker = metafunc.definition.get_closest_marker("edge_precisions")
    names = marker.args if marker else session.settings.default_precisions
    for name in names:
        if name not in PRECISIONS:
            session.usage_errors.append(
                f"{metafunc.definition.nodeid}: @pytest.mark.edge_precisions: unknown precision "
                f"{name!r}; choose from {', '.join(PRECISIONS)}")
    metafunc.parametrize("edge_precision", list(names), ids=[str(n) for n in names])


def _parametrize_runtimes(metafunc: pytest.Metafunc, session: EdgeSession) -> None:
    """Without the marker the fixture is the platform's runtime and the ids stay as they were."""
    marker = metafunc.definition.get_closest_marker("edge_runtimes")
    if marker is None:
        return
    for name in marker.args:
        if name not in RUNTIMES:
            session.usage_errors.append(
                f"{metafunc.definition.nodeid}: @pytest.mark.edge_runtimes: unknown runtime "
                f"{name!r}; choose from {', '.join(RUNTIMES)}")
    metafunc.parametrize("edge_runtime", list(marker.args), ids=[str(n) for n in marker.args])


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    session = config.stash[session_key]
    for item in items:
        _check_budget_marker(item, session)
    if session.usage_errors:
        raise pytest.UsageError("\n".join(dict.fromkeys(session.usage_errors)))
    filters = {"edge_precision": session.settings.precisions, "edge_runtime": session.settings.runtimes}
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        unwanted = any(wanted is not None and name in params and params[name] not in wanted
                       for name, wanted in filters.items())
        (drop if unwanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _check_budget_marker(item: pytest.Item, session: EdgeSession) -> None:
    where = f"{item.nodeid}: @pytest.mark.edge_budget"
    if any(mark.args for mark in item.iter_markers("edge_budget")):
        session.usage_errors.append(f"{where} takes keyword budgets only, e.g. edge_budget(max_storage_mb=5)")
        return
    try:
        validate_budgets(marker_budgets(item), where=where)
    except EdgeOptError as error:
        session.usage_errors.append(str(error))


def marker_budgets(item: pytest.Item) -> Dict[str, Any]:
    """All edge_budget markers of the item; the closest (the function's) wins per budget."""
    budgets: Dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers("edge_budget"))):
        budgets.update(mark.kwargs)
    return budgets


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    edge = session.config.stash[session_key]
    selected = {item.nodeid for item in session.items}
    for nodeid in edge.collected_nodeids:
        edge.note_collected(nodeid, selected=nodeid in selected)


def pytest_itemcollected(item: pytest.Item) -> None:
    item.config.stash[session_key].collected_nodeids.append(item.nodeid)


class _OutcomeRecorder:
    """Test outcomes decide which baseline entries are stale (reports reach the xdist controller too)."""

    def __init__(self, session: EdgeSession) -> None:
        self._session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            self._session.note_outcome(report.nodeid, report.outcome)


@pytest.fixture
def edge_model(request: pytest.FixtureRequest) -> EdgeModel:
    """The model of this test case, from `@pytest.mark.edge_models(...)`."""
    if not hasattr(request, "param"):
        pytest.fail("edge_model needs @pytest.mark.edge_models('digits-cnn', ...) on the test", pytrace=False)
    try:
        return resolve_model(request.param)
    except MissingDependency as missing:
        pytest.skip(str(missing))


@pytest.fixture
def edge_precision(request: pytest.FixtureRequest) -> str:
    """The precision of this test case, from `@pytest.mark.edge_precisions(...)` or the ini default."""
    return request.param


@pytest.fixture
def edge_runtime(request: pytest.FixtureRequest) -> str:
    """The runtime of this test case, from `@pytest.mark.edge_runtimes(...)`, else the one
    `edge_runner.measure` picks for the case's model (LiteRT for a .tflite file, else the platform's)."""
    if getattr(request, "param", None):
        return request.param
    platform = request.config.stash[session_key].platform
    model = getattr(getattr(request.node, "callspec", None), "params", {}).get("edge_model")
    tflite = (isinstance(model, EdgeModel) and model.kind == "tflite") or str(model).endswith(".tflite")
    return "tflite" if tflite and artifact_format(platform.runtime) != "tflite" else platform.runtime


@pytest.fixture
def edge_runner(request: pytest.FixtureRequest, edge_runtime: str) -> EdgeRunner:
    """Measures models on the session's platform (`--edge-platform`); one per test. It depends on
    `edge_runtime` so `@pytest.mark.edge_runtimes` expands a test that only asks for the runner."""
    session = request.config.stash[session_key]
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    # user_properties directly, as record_property does: that fixture warns on every test under
    # --junitxml's default junit_family (xunit2), an error wherever filterwarnings = error.
    return EdgeRunner(session, nodeid=request.node.nodeid, budgets=marker_budgets(request.node),
                      runtime=edge_runtime if "edge_runtime" in params else None,
                      record=lambda name, value: request.node.user_properties.append((name, value)))


@pytest.fixture(scope="session")
def edge_platform(pytestconfig: pytest.Config) -> Platform:
    """The platform profile this run measures on."""
    return pytestconfig.stash[session_key].platform


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, Any, None]:
    """EdgeOptError is the user's input, not our bug: show its one line instead of a traceback."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance((EdgeOptError, EdgeOptWarning)):
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Workers hand their rows to the controller; the controller alone writes baselines and reports."""
    edge = session.config.stash.get(session_key, None)
    if edge is None:
        return
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput.update(edge.worker_payload())
        workeroutput[_USAGE_ERRORS_KEY] = list(dict.fromkeys(edge.usage_errors))
        return
    edge.write_baselines()
    if edge.settings.report is not None:
        write_report(edge.settings.report, edge.rows, platform=edge.platform.name)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect the rows and the collection each worker saw."""
    payload = getattr(node, "workeroutput", None)
    if payload and payload.get(_USAGE_ERRORS_KEY):
        # the worker's UsageError never reaches the user: xdist only sees a worker that collected
        # items and ran none, and ends the run with an INTERNALERROR; raise it here instead
        raise pytest.UsageError("\n".join(payload[_USAGE_ERRORS_KEY]))
    if payload:
        node.config.stash[session_key].merge_worker(payload)


_USAGE_ERRORS_KEY = "edgeopt_usage_errors"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    edge = config.stash.get(session_key, None)
    if edge is None or hasattr(config, "workerinput"):
        return
    sections = [("pytest-edgeopt: comparison table", table_lines(edge.rows) if edge.settings.table else []),
                ("pytest-edgeopt: devices", device_lines(edge.rows) if edge.platform.remote or edge.platform.fingerprint else []),
                ("pytest-edgeopt: baselines", baseline_lines(edge.updates, edge.stale_report(),
                                                             updating=edge.settings.update_baselines))]
    if edge.settings.report is not None and edge.rows:
        sections.append(("pytest-edgeopt: report", [f"wrote {edge.settings.report}"]))
    for title, lines in sections:
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)
