"""The plugin's exception and warning types.

A measurement that cannot be made is a property of the user's input (a corrupt file, a wrong
shape), not a bug in the plugin: the test fails with the one line these carry, never a traceback.
"""

from __future__ import annotations

import pytest

from pytest_edgeopt.runtimes.install import install_command


class EdgeOptError(Exception):
    """Bad input or a failed measurement; the message is the whole report, so it names the fix."""


class BudgetExceeded(EdgeOptError):
    """At least one budget is broken; the message lists every violation with its numbers."""


class MissingDependency(EdgeOptError):
    """An optional package is absent; tests that need it are skipped with the install hint."""

    def __init__(self, *, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f"{package} is not installed ({purpose}): {install_command(extra)}")


class EdgeOptWarning(pytest.PytestWarning):
    """The one warning class of pytest-edgeopt, so users can filter all of ours at once."""


class NotOnPlatform(EdgeOptError):
    """The platform cannot run this case at all (an FP32 model on a microcontroller): it skips
    with the reason, as a missing runtime does, instead of failing."""


class DeviceUnreachable(EdgeOptError):
    """The device cannot run the job: not reachable, or it lacks Python, numpy or the runtime.
    It fails the test unless the platform's `on_unreachable = "skip"`: a skip would turn CI green
    with nothing measured."""

    def __init__(self, message: str, *, skip: bool) -> None:
        self.skip = skip
        super().__init__(message)


class MissingOnDevice(DeviceUnreachable):
    """The device lacks a package the agent needs there; the message says what to install."""

    def __init__(
        self, *, package: str, device: str, python: str = "python3", message: str = "", skip: bool = False
    ) -> None:
        self.package = package
        super().__init__(
            message
            or f"{package} is not installed on the device {device}: there, run {python} -m pip install {package}",
            skip=skip,
        )
