"""SIGTERM and SIGHUP end a run as Ctrl-C does.

A cancelled CI job or `timeout` sends SIGTERM, a closed terminal SIGHUP; their default action
ends pytest on the spot, so no `finally` runs: the agent (in its own process group) kept timing
at 100% CPU, the timing lock was freed while it ran, and the session's temp dirs stayed. Raised
as KeyboardInterrupt they take SIGINT's path: the agent's group is killed, locks are released,
the session closes and pytest reports "Interrupted".
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable, Dict

TERMINATING = ("SIGTERM", "SIGHUP")


def end_like_sigint() -> Callable[[], None]:
    """Install the handlers where nobody else has (a handler of the user's or another plugin's
    is left alone); returns what puts the previous ones back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: Dict[int, Any] = {}
    for name in TERMINATING:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is signal.SIG_DFL:
            previous[number] = signal.signal(number, _interrupt)

    def restore() -> None:
        for number, handler in previous.items():
            if signal.getsignal(number) is _interrupt:
                signal.signal(number, handler)

    return restore


def _interrupt(number: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(number).name)
