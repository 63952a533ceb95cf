"""Which installed distributions an extra of this checkout's pyproject brings (pip's view, read from
the installed packages' metadata): for the start-up test and the install hints' test."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Set

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
OWN = "pytest-edgeopt"


def extras() -> Dict[str, List[str]]:
    import tomllib

    return dict(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"])


def normal(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _extras(declared: Dict[str, List[str]], name: str) -> List[Requirement]:
    found: List[Requirement] = []
    for text in declared[name]:
        requirement = Requirement(text)
        if normal(requirement.name) == OWN:
            found += [r for extra in sorted(requirement.extras) for r in _extras(declared, extra)]
        elif requirement.marker is None or requirement.marker.evaluate():
            found.append(requirement)
    return found


def closure(extra: str) -> Set[str]:
    """The installed distributions `pip install pytest-edgeopt[extra]` brings, read from this
    checkout's pyproject and the installed packages' own requirements."""
    todo, seen = list(_extras(extras(), extra)), set()
    while todo:
        requirement = todo.pop()
        name = normal(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            nested = Requirement(text)
            env = {"extra": next(iter(requirement.extras), "")}
            if nested.marker is None or nested.marker.evaluate(env):
                todo.append(nested)
    return seen


def not_installed(extra: str) -> List[str]:
    """The packages `extra` names directly that this venv lacks: without them closure() cannot
    follow their requirements (the floor job's venv has the host stack only)."""
    missing = []
    for requirement in _extras(extras(), extra):
        try:
            metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(requirement.name)
    return missing
