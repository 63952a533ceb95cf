"""run_isolated: the user's graph runs in a child process, its answer or error comes back, and a
child past the deadline is killed with everything it started, leaving no temp dir (real children)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List

import pytest

from pytest_edgeopt._isolate import ChildDied, Deadline, TimedOut, run_isolated
from pytest_edgeopt.errors import EdgeOptError


@pytest.fixture(autouse=True)
def own_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_the_childs_answer_and_its_errors_come_back_as_they_were(tmp_path: Path) -> None:
    assert run_isolated("counting", len, (1, 2, 3)) == 3
    with pytest.raises(ValueError, match="invalid literal"):
        run_isolated("parsing", int, "seven")
    (tmp_path / "notes.onnx").write_bytes(b"not a graph")
    from pytest_edgeopt.inspect.onnx_stats import artifact_stats

    with pytest.raises(EdgeOptError, match=r"notes\.onnx"):
        run_isolated("reading", artifact_stats, tmp_path / "notes.onnx")
    assert list(tmp_path.glob("edgeopt-child-*")) == []


def test_a_crash_in_the_child_is_one_line_not_a_dead_pytest(tmp_path: Path) -> None:
    with pytest.raises(ChildDied, match=r"the probe of m.onnx ended without an answer \(exit code -6\)"):
        run_isolated("the probe of m.onnx", os.abort)
    assert list(tmp_path.glob("edgeopt-child-*")) == []


def _sleepers(tag: str) -> List[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == f"sleep\0{tag}\0".encode():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the grandchild")
def test_past_the_deadline_the_child_and_what_it_started_are_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Deadline, "seconds", 1.0)
    tag = str(3000 + os.getpid() % 1000)  # `sleep <tag>`: a process the graph code started
    with pytest.raises(TimedOut, match=r"^the probe of m.onnx did not finish within 1 s \(raise --edge-timeout\)$"):
        run_isolated("the probe of m.onnx", subprocess.call, ["sleep", tag])
    deadline = time.monotonic() + 10
    while _sleepers(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _sleepers(tag)
    for pid in left:
        os.kill(pid, 9)
    assert left == [], "the child's own child outlived the deadline"
    assert list(tmp_path.glob("edgeopt-child-*")) == []
