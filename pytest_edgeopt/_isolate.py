"""Run the user's graph on the host in a child process, under the job's deadline.

A user's ONNX can hold a `Loop` of 1e12 iterations: run inside pytest (the FLOPs probe, a
quantizer's calibration) it hung the run while holding the key and timing locks, ignored Ctrl-C,
and a second run on the same cache waited on the lock. Here the graph runs in
`python -m pytest_edgeopt._isolate`, in its own session (so its process group holds every thread
and process the graph code starts), killed as a group when the deadline passes, on Ctrl-C or
SIGTERM (raised as KeyboardInterrupt by session/signals.py), and ending itself when pytest is
killed outright. Its temp files live in a scratch dir removed whatever way it ended.

The function and its arguments cross by pickle: a top-level function of an importable module, and
paths and numpy arrays (the child loads the model itself), never a large ModelProto.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Tuple, TypeVar

import pytest_edgeopt
from pytest_edgeopt.errors import EdgeOptError

T = TypeVar("T")

HOST_PID_VAR = "EDGEOPT_HOST_PID"  # as the local agent's: the child ends itself when pytest is gone


# The child runs ONNX and TFLite graphs, never torch; onnxruntime.tools imports torch merely
# because it is installed (quant_pre_process), which took 2-3 s of every calibration child here.
UNNEEDED = ("torch",)


class Deadline:
    """The job deadline (--edge-timeout), set by the session's configure; the default is
    settings.DEFAULT_TIMEOUT_S, for code that runs outside a session."""

    seconds: float = 900.0


class TimedOut(EdgeOptError):
    """The child outlived the deadline and was killed with its process group."""


class ChildDied(EdgeOptError):
    """The child ended without an answer: a crash in native code, an OOM kill."""


def run_isolated(what: str, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a child process; its exception is raised here. `what` names the step
    and the user's file for the one-line message ("FLOPs probe of model.onnx")."""
    seconds = Deadline.seconds
    payload = pickle.dumps((function, args), protocol=pickle.HIGHEST_PROTOCOL)
    scratch = tempfile.mkdtemp(prefix="edgeopt-child-")
    try:
        log = Path(scratch) / "stderr.log"  # a file, not a pipe: however much the graph code prints
        with log.open("wb") as stderr:
            child = subprocess.Popen(
                [sys.executable, "-m", "pytest_edgeopt._isolate"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=_child_env(scratch, seconds),
                start_new_session=True,
            )
        try:
            stdout, _ = child.communicate(payload, timeout=seconds)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            raise TimedOut(f"{what} did not finish within {seconds:g} s (raise --edge-timeout)") from None
        except BaseException:  # Ctrl-C, SIGTERM, pytest-timeout: never leave it running
            _kill_group(child)
            raise
        return _answer(what, child.returncode, stdout, _last_line(log), seconds)  # type: ignore[no-any-return]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _last_line(log: Path) -> str:
    """The child's last stderr line (why it died), read from the end of its log."""
    with log.open("rb") as stream:
        stream.seek(max(0, log.stat().st_size - 4096))
        lines = stream.read().decode(errors="replace").strip().splitlines()
    return lines[-1][:300] if lines else ""


def _child_env(scratch: str, seconds: float) -> Dict[str, str]:
    """This copy of the package importable (also when not installed), temp files in `scratch`."""
    env = dict(os.environ)
    root = str(Path(pytest_edgeopt.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["TMPDIR"] = env["TEMP"] = env["TMP"] = scratch
    env[HOST_PID_VAR] = str(os.getpid())
    env["EDGEOPT_CHILD_DEADLINE_S"] = repr(seconds)
    return env


def _answer(what: str, returncode: int, stdout: bytes, last_line: str, seconds: float) -> Any:
    if returncode == -signal.SIGALRM:  # its own deadline ended it (the parent's clock was late)
        raise TimedOut(f"{what} did not finish within {seconds:g} s (raise --edge-timeout)")
    try:
        ok, value = pickle.loads(stdout)
    except Exception:  # nothing, or a partial answer: it died on the way
        said = f": {last_line}" if last_line else ""
        raise ChildDied(f"{what} ended without an answer (exit code {returncode}){said}") from None
    if not ok:
        raise value
    return value


def _kill_group(child: "subprocess.Popen[bytes]") -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # gone already
        child.kill()
    child.communicate()  # reaped: no zombie, pipes closed


def _portable(error: BaseException) -> BaseException:
    """The exception as the parent can unpickle it; else an EdgeOptError with its text (our
    errors' message is the whole report; another type keeps its name)."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        text = str(error) if isinstance(error, EdgeOptError) else f"{type(error).__name__}: {error}"
        return EdgeOptError(text)


def _child_main() -> int:
    """Read (function, args) from stdin, answer (ok, value) on the original stdout; whatever the
    graph code prints on stdout goes to stderr instead, so it cannot corrupt the answer."""
    from pytest_edgeopt.agent.__main__ import _arm_deadline, _host_pid, _watch_parent

    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    for name in UNNEEDED:  # seen as not installed
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    _watch_parent(_host_pid())
    _arm_deadline(float(os.environ.get("EDGEOPT_CHILD_DEADLINE_S", "0")) + 1)
    function, args = pickle.load(sys.stdin.buffer)
    result: Tuple[bool, Any]
    try:
        result = (True, function(*args))
    except BaseException as error:
        result = (False, _portable(error))
    pickle.dump(result, answer, protocol=pickle.HIGHEST_PROTOCOL)
    answer.close()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
