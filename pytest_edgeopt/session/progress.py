"""Progress of long work (export, calibration, conversion, cache builds) in the terminal.

Exporting and quantizing an ImageNet model takes up to minutes with no sign of life otherwise.
The artifact cache calls this around every entry it really builds (a cached one prints nothing);
the lines go through pytest's terminal reporter with capture suspended, as `--setup-show` does,
so they appear while the test runs. Off with -q, when stdout is not a terminal (CI logs keep
their verdict lines as they were) or under an xdist worker, whose terminal nobody sees;
`--edge-progress=on` forces it, `off` silences it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

import pytest

from pytest_edgeopt.kinds import ProgressMode

PREFIX = "edgeopt: "


def shown(*, mode: ProgressMode, isatty: bool, verbosity: int, worker: bool) -> bool:
    """auto: in a terminal and not -q; on: also in a log; never from an xdist worker (nobody sees it)."""
    if mode == ProgressMode.OFF or worker:
        return False
    return mode == ProgressMode.ON or (isatty and verbosity >= 0)


class TerminalProgress:
    """`edgeopt: exporting efficientnet-lite0 to ONNX ...` then `... done in 41.2 s`."""

    def __init__(self, config: pytest.Config, *, mode: ProgressMode) -> None:
        self._config = config
        self._mode = mode

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        if not self._shown():
            yield
            return
        self._write(f"{PREFIX}{what} ...")
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self._write(f"{PREFIX}{what}: failed after {time.monotonic() - started:.1f} s")
            raise
        self._write(f"{PREFIX}{what}: done in {time.monotonic() - started:.1f} s")

    def _shown(self) -> bool:
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return False
        # bool(), not a call: TerminalReporter.isatty is a plain bool up to pytest 8.4 (the floor is 7.4)
        # and a callable bool from 9.0 on
        return shown(
            mode=self._mode,
            isatty=bool(reporter.isatty),
            verbosity=reporter.verbosity,
            worker=hasattr(self._config, "workerinput"),
        )

    def _write(self, line: str) -> None:
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        capture = self._config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.ensure_newline()
            reporter.write_line(line)
