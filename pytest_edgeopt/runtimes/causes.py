"""One line for a third-party tool's failure, and warning filters of its own.

The tools (torch's exporter, ORT's and NNCF's quantizers, litert-torch, OpenVINO, the runtimes)
wrap the error that matters: torch's exporter said "Failed to decompose the FX graph for ONNX
compatibility... Next steps:" while the cause, a FutureWarning turned into an error by the user's
`filterwarnings = error`, was two exceptions down the chain. Standard library only: the agent and
the runtimes (which run on a device) use it as the host side does.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from typing import Iterator, List

LIMIT = 400


def first_line(text: str, *, limit: int = 300) -> str:
    """The first non-blank line, without terminal colours, cut at `limit` characters; a line
    that ends in a colon ("Next steps:") brings the line it announces, the tool's hint."""
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    if not lines:
        return ""
    head = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return head[:limit]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def chain(error: BaseException) -> List[BaseException]:
    """The error and what caused it: `raise ... from` first, else the exception being handled."""
    found: List[BaseException] = []
    current: "BaseException | None" = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return found


def cause_line(error: BaseException, *, limit: int = LIMIT) -> str:
    """`<the tool's own first line, its hint>; cause: <type>: <the deepest error's first line>`,
    one line; just the first line when the error has no cause with a message of its own."""
    head = first_line(str(error), limit=limit) or type(error).__name__
    deeper = [e for e in chain(error)[1:] if str(e).strip()]
    if not deeper:
        return head
    root = deeper[-1]
    line = f"{head}; cause: {type(root).__name__}: {first_line(str(root), limit=limit)}"
    return " ".join(line.split())[: 2 * limit]


@contextlib.contextmanager
def own_warning_filters() -> Iterator[None]:
    """A third-party call runs with the default warning action, not the user's: a project with
    `filterwarnings = error` turned torch's FutureWarning inside the exporter into a failed export.
    The warnings still reach pytest's summary (it records them); they no longer raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        yield
