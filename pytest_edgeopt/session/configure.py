"""Configure time: settings, platform, runtimes, power meters and transport decided once, and the
EdgeSession built from them into `config.stash`; a conflict is a UsageError before any test runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Sequence, Set

import pytest

from pytest_edgeopt._isolate import Deadline
from pytest_edgeopt.agent.power import KINDS, PowerMeterSpec
from pytest_edgeopt.optimize.precisions import unknown_precision
from pytest_edgeopt.platforms.profiles import platform_table
from pytest_edgeopt.platforms.select import PlatformRequest, choose_platform
from pytest_edgeopt.runtimes import RuntimeSpec, registry
from pytest_edgeopt.session.edge_session import EdgeSession, OutcomeRecorder, session_key
from pytest_edgeopt.session.progress import TerminalProgress
from pytest_edgeopt.session.signals import end_like_sigint
from pytest_edgeopt.settings import Settings, tool_budgets


def configure(config: pytest.Config) -> EdgeSession:
    """Settings, platform, runtimes and transport, decided once; a conflict is a UsageError."""
    settings = Settings.from_config(config)
    runtimes = registry(config.hook.pytest_edgeopt_runtimes(config=config))
    meters = meter_registry(config.hook.pytest_edgeopt_power_meters(config=config))
    _check_filters(settings, runtimes)
    platform = choose_platform(
        platform_table(config.hook.pytest_edgeopt_platforms(config=config)),
        PlatformRequest(
            name=settings.platform,
            entries=settings.platform_entries,
            devices=settings.devices,
            on_host=settings.on_host,
        ),
        runtimes=tuple(runtimes),
        meters=KINDS + tuple(meters),
    )
    settings = settings.with_budgets(tool_budgets(config, settings, platform))
    transport = config.hook.pytest_edgeopt_make_transport(config=config, platform=platform)
    if transport is None:
        raise pytest.UsageError(f"no plugin provides the {platform.transport!r} transport of {platform.name!r}")
    session = EdgeSession(settings=settings, platform=platform, transport=transport, runtimes=runtimes, meters=meters)
    session.measurer.cache.progress = TerminalProgress(config, mode=settings.progress)
    session.collection.narrowed = _modules_named_by_node_id(config)
    session.restore_signals = end_like_sigint()
    Deadline.seconds = settings.timeout_s  # the user's graph run on the host (FLOPs probe, calibration) obeys it too
    config.stash[session_key] = session
    config.pluginmanager.register(OutcomeRecorder(session), "edgeopt-outcomes")
    return session


def meter_registry(groups: Sequence[Sequence[PowerMeterSpec]]) -> Dict[str, PowerMeterSpec]:
    table: Dict[str, PowerMeterSpec] = {}
    for group in groups:
        for spec in group:
            table.setdefault(spec.kind, spec)
    return table


def _check_filters(settings: Settings, runtimes: Dict[str, RuntimeSpec]) -> None:
    for name in (settings.precisions or ()) + settings.default_precisions:
        why = unknown_precision(name)
        if why is not None:
            raise pytest.UsageError(why)
    for name in settings.runtimes or ():
        if name not in runtimes:
            raise pytest.UsageError(f"--edge-runtime: unknown runtime {name!r}; choose from {', '.join(runtimes)}")


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
