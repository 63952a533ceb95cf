"""pytest hooks and fixtures of pytest-edgeopt: each one a single call into the session.

The work lives in `session/` (syrupy's plugin -> session split): this module only tells pytest
where to find it, so a hook's behaviour is read and tested where it is implemented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generator, List, Optional

import pytest

from pytest_edgeopt import hookspecs
from pytest_edgeopt._fs import machine_lock_dir
from pytest_edgeopt.agent.power import PowerMeterSpec
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.platforms.profiles import BUILTIN, Platform
from pytest_edgeopt.platforms.select import make_transport
from pytest_edgeopt.platforms.transport import Transport
from pytest_edgeopt.runtimes import BUILTIN_RUNTIMES, RuntimeSpec
from pytest_edgeopt.session import fixtures
from pytest_edgeopt.session.configure import configure
from pytest_edgeopt.session.edge_session import edge, edge_session
from pytest_edgeopt.session.parametrize import MARKERS
from pytest_edgeopt.session.runner import EdgeRunner
from pytest_edgeopt.settings import add_options

if TYPE_CHECKING:
    from pluggy import Result


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    configure(config)


@pytest.hookimpl(trylast=True)
def pytest_edgeopt_platforms(config: pytest.Config) -> List[Platform]:
    return list(BUILTIN)


@pytest.hookimpl(trylast=True)
def pytest_edgeopt_runtimes(config: pytest.Config) -> List[RuntimeSpec]:
    return list(BUILTIN_RUNTIMES)


@pytest.hookimpl(trylast=True)
def pytest_edgeopt_power_meters(config: pytest.Config) -> List[PowerMeterSpec]:
    return []  # the built-in meters (agent/power.py KINDS) need no registration


@pytest.hookimpl(trylast=True)
def pytest_edgeopt_make_transport(config: pytest.Config, platform: Platform) -> Optional[Transport]:
    return make_transport(platform, lock_dir=machine_lock_dir())


def pytest_unconfigure(config: pytest.Config) -> None:
    current = edge(config)
    if current is not None:
        current.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    edge_session(metafunc.config).generate(metafunc)


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    edge_session(config).select(config, items)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    edge_session(session.config).collection_finished(session.items)


def pytest_itemcollected(item: pytest.Item) -> None:
    edge_session(item.config).collected_nodeids.append(item.nodeid)


@pytest.fixture
def edge_model(request: pytest.FixtureRequest) -> EdgeModel:
    """The model of this test case, from `@pytest.mark.edge_models(...)`."""
    return fixtures.model_fixture(request)


@pytest.fixture
def edge_precision(request: pytest.FixtureRequest) -> str:
    """The precision of this test case, from `@pytest.mark.edge_precisions(...)` or the ini default."""
    return str(request.param)


@pytest.fixture
def edge_runtime(request: pytest.FixtureRequest) -> str:
    """The runtime of this test case, from `@pytest.mark.edge_runtimes(...)`, else the one
    `edge_runner.measure` picks for the case's model (LiteRT for a .tflite file, else the platform's)."""
    return fixtures.runtime_fixture(request)


@pytest.fixture
def edge_runner(request: pytest.FixtureRequest, edge_runtime: str) -> EdgeRunner:
    """Measures models on the session's platform (`--edge-platform`); one per test. It depends on
    `edge_runtime` so `@pytest.mark.edge_runtimes` expands a test that only asks for the runner."""
    return fixtures.runner_fixture(request, edge_runtime)


@pytest.fixture(scope="session")
def edge_platform(pytestconfig: pytest.Config) -> Platform:
    """The platform profile this run measures on."""
    return edge_session(pytestconfig).platform


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> "Generator[None, Result[pytest.TestReport], None]":
    outcome = yield
    fixtures.shorten_report(outcome.get_result(), call)


def pytest_sessionfinish(session: pytest.Session) -> None:
    current = edge(session.config)
    if current is not None:
        current.finish(session)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """xdist controller: collect the rows and the collection each worker saw."""
    edge_session(node.config).node_down(node, error)  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    current = edge(config)
    if current is None or hasattr(config, "workerinput"):
        return
    width = config.get_terminal_writer().fullwidth
    for title, lines in current.summary(terminal_width=width, verbosity=terminalreporter.verbosity):
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)
