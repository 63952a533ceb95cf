"""Hooks other plugins implement to extend pytest-edgeopt without editing it.

Our own defaults are registered as `trylast` implementations, so a conftest.py or plugin that
implements the same hook is asked first (the pattern of pytest-xdist's newhooks.py). List hooks
merge every plugin's answer (the first to name a thing wins); `firstresult` hooks take the first
non-None answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

import pytest

if TYPE_CHECKING:
    from pytest_edgeopt.agent.power import PowerMeterSpec
    from pytest_edgeopt.platforms.profiles import Platform
    from pytest_edgeopt.platforms.transport import Transport
    from pytest_edgeopt.runtimes import RuntimeSpec


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


@pytest.hookspec
def pytest_edgeopt_runtimes(config: pytest.Config) -> "List[RuntimeSpec]":
    """Return runtimes to add; tests and profiles then name them like the built-in ones.

    A runtime is a class with the `pytest_edgeopt.runtimes.base.Runtime` protocol (load, inputs,
    outputs, run, info, close) in a module the agent can import where it runs: the local agent
    shares pytest's `sys.path`; for a device over SSH, the module's file is pushed with the agent
    when it is a single module. `format` names the artifact it loads: "onnx" and "tflite" reuse
    the built-in exporters and quantizers; `builder` ("module:attribute" of an
    `pytest_edgeopt.optimize.formats.ArtifactBuilder`) builds the precisions it owns itself, for a
    format of its own (ExecuTorch's .pte, see `pytest_edgeopt.plugins.executorch`) or its own INT8.

    Example, in a conftest.py::

        from pytest_edgeopt.runtimes import RuntimeSpec

        def pytest_edgeopt_runtimes(config):
            return [RuntimeSpec(name="ort-extended", module="my_runtimes", cls="ExtendedOrt",
                                package="onnxruntime", extra="", format="onnx")]
    """
    return []


@pytest.hookspec
def pytest_edgeopt_power_meters(config: pytest.Config) -> "List[PowerMeterSpec]":
    """Return power meters to add; a profile then selects one with `power = {kind = "<kind>"}`.

    The meter is made in the agent, where the model runs: `factory` names a callable in `module`
    that takes the profile's power table and returns an object with the
    `pytest_edgeopt.agent.power.PowerMeter` protocol (`track()` context manager and `energy()`).

    Example::

        from pytest_edgeopt.agent.power import PowerMeterSpec

        def pytest_edgeopt_power_meters(config):
            return [PowerMeterSpec(kind="joulescope", module="my_meters", factory="joulescope_meter")]
    """
    return []
