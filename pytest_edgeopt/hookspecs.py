"""Hooks other plugins implement to extend pytest-edgeopt without editing it.

Our own defaults are registered as `trylast` implementations, so a conftest.py or plugin that
implements the same hook is asked first (the pattern of pytest-xdist's newhooks.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

import pytest

if TYPE_CHECKING:
    from pytest_edgeopt.platforms.profiles import Platform
    from pytest_edgeopt.platforms.transport import Transport


@pytest.hookspec
def pytest_edgeopt_platforms(config: pytest.Config) -> "List[Platform]":
    """Return platform profiles to add; all lists are merged and the first plugin to name one wins.

    Example, in a conftest.py::

        from pytest_edgeopt import Platform

        def pytest_edgeopt_platforms(config):
            return [Platform(name="host-2t", description="host, 2 threads", threads=2)]
    """
    return []


@pytest.hookspec(firstresult=True)
def pytest_edgeopt_make_transport(config: pytest.Config, platform: "Platform") -> "Optional[Transport]":
    """Return the Transport that carries agent jobs to `platform`; the first non-None wins.

    Example::

        def pytest_edgeopt_make_transport(config, platform):
            if platform.transport == "adb":
                return MyAdbTransport(serial=platform.name)
    """
    return None
