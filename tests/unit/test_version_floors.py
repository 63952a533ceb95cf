"""The ranges promise only what CI runs: every floor of the host stack in pyproject is the version the
floor job installs (constraints-floor.txt), and docs/versions.md states the versions both jobs pin."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict

import pytest

pytest.importorskip("tomllib")
from packaging.requirements import Requirement
from packaging.version import Version

from tests.deps_helpers import extras, normal

ROOT = Path(__file__).resolve().parents[2]
FLOOR_EXTRAS = ("onnx", "torch", "test")  # what the floor job installs beside the core dependencies
ROW = re.compile(r"^\| ([A-Za-z0-9_.-]+) \| ([0-9][^ |]*)", re.M)


def pins(name: str) -> Dict[str, Version]:
    text = (ROOT / name).read_text(encoding="utf-8")
    found = (line.split("==") for line in text.splitlines() if "==" in line and not line.startswith("#"))
    return {normal(package): Version(version) for package, version in found}


def floors() -> Dict[str, Version]:
    """The `>=` bound of every core dependency and of the floor job's extras (this Python's markers)."""
    import tomllib

    core = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    declared = extras()
    found = {}
    for text in [*core, *(t for extra in FLOOR_EXTRAS for t in declared[extra])]:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        bound = next((s.version for s in requirement.specifier if s.operator == ">="), None)
        assert bound is not None, f"{text}: no floor"
        found[normal(requirement.name)] = Version(bound)
    return found


def _release(version: Version) -> tuple:
    return (*version.release, 0, 0)[:3]


def test_every_host_stack_floor_is_the_version_the_floor_job_installs() -> None:
    pinned = pins("constraints-floor.txt")
    for package, floor in floors().items():
        assert package in pinned, f"constraints-floor.txt does not pin {package} (pyproject: >={floor})"
        assert _release(pinned[package]) == _release(floor), (package, str(floor), str(pinned[package]))


def test_the_versions_page_states_what_both_jobs_pin() -> None:
    page = (ROOT / "docs" / "versions.md").read_text(encoding="utf-8")
    floor_part, newest_part = page.split("## The newest", 1)
    floor_rows = {normal(p): Version(v) for p, v in ROW.findall(floor_part)}
    newest_rows = {normal(p): Version(v) for p, v in ROW.findall(newest_part.split("## The agent", 1)[0])}
    floor_pins = pins("constraints-floor.txt")
    assert set(floors()) <= set(floor_rows)
    assert {p: floor_pins[p].base_version for p in floor_rows} == {p: v.base_version for p, v in floor_rows.items()}
    newest_pins = pins("constraints.txt")
    assert {"torch", "onnxruntime", "pytest", "numpy"} <= set(newest_rows)
    assert {p: newest_pins[p] for p in newest_rows} == newest_rows
