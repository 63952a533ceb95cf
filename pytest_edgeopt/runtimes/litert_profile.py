"""LiteRT's per-op profile: reachable only through the C profiler API of the wheel's libLiteRt.so.

ai-edge-litert 2.3.0 has no profiling in its Python API; its libLiteRt.so exports the LiteRT C
profiler (LiteRtCompiledModelGetProfiler, LiteRtStartProfiler, LiteRtGetProfileSummary, ...),
which worked by ctypes before the project started (+2-4% on MobileNetV2). That ABI is
undocumented (its event struct was 104 bytes where the header says 88, and a wrong layout crashed
the process), so everything about it stays in this one module: finding the library and checking
the symbols, with a reason that says what is missing. Driving the profiled run itself is not
wired yet: a LiteRT row says why it has no per-op profile instead of guessing at the ABI.
"""

from __future__ import annotations

import ctypes
from importlib import util
from pathlib import Path
from typing import Optional, Tuple

LIBRARY = "libLiteRt.so"
SYMBOLS: Tuple[str, ...] = (
    "LiteRtCreateEnvironment",
    "LiteRtCreateModelFromBuffer",
    "LiteRtCreateCompiledModel",
    "LiteRtCompiledModelGetProfiler",
    "LiteRtStartProfiler",
    "LiteRtStopProfiler",
    "LiteRtGetProfileSummary",
)


def library_path(package: str = "ai_edge_litert") -> Optional[Path]:
    """The wheel's libLiteRt.so, found next to the package without importing it."""
    spec = util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / LIBRARY
    return path if path.is_file() else None


def missing_symbols(path: Path) -> Tuple[str, ...]:
    """The profiler symbols the library does not export (all of them when it cannot be loaded)."""
    try:
        library = ctypes.CDLL(str(path), mode=ctypes.RTLD_LOCAL)
    except OSError:
        return SYMBOLS
    return tuple(name for name in SYMBOLS if not hasattr(library, name))


def unavailable_reason(version: str) -> str:
    """Why a LiteRT row has no per-op profile here, naming what is missing."""
    path = library_path()
    if path is None:
        return f"ai-edge-litert {version} ships no {LIBRARY}: LiteRT's per-op profile needs its C profiler API"
    missing = missing_symbols(path)
    if missing:
        return f"{LIBRARY} of ai-edge-litert {version} lacks {', '.join(missing)}: no per-op profile for LiteRT"
    return (
        f"{LIBRARY} of ai-edge-litert {version} exports the C profiler API, but pytest-edgeopt does not "
        "drive it yet (an undocumented ABI): no per-op profile for LiteRT rows"
    )
