"""The documentation names what the code offers: every option, ini key, budget, extra and hook.

A name the plugin registers but no page mentions is a feature nobody can find; the site's build
(`mkdocs build --strict`, in .ci/run) checks links and the nav, these tests check the names.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Set

import pytest

from pytest_edgeopt import hookspecs
from pytest_edgeopt.judge.budgets import BUDGET_NAMES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
OPTION = re.compile(r"(?<![\w-])(--(?:edge-|no-edge-)[a-z0-9-]+|--update-baselines|--add-baselines)\b")
INI_KEY = re.compile(r"^\s*(edgeopt_\w+) \(", re.MULTILINE)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def code_names(text: str) -> Set[str]:
    """Everything written as `code` on a page, split at spaces and slashes (`--edge-x N` / `ini_key`)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    spans = re.findall(r"`([^`\n]+)`", prose)
    return {word for span in spans for word in re.split(r"[\s/=]+", span) if word}


@pytest.fixture(scope="module")
def help_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`pytest --help` in a fresh project, as a user sees it: the options and ini keys the plugin registers."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider", "-p", "no:anyio"],
        cwd=tmp_path_factory.mktemp("help"),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_option_the_plugin_registers_is_in_the_options_page(help_text: str) -> None:
    registered = set(OPTION.findall(help_text))
    assert {"--edge-platform", "--update-baselines", "--no-edge-table"} <= registered, help_text
    documented = code_names(page("options.md"))
    assert sorted(registered - documented) == []


def test_every_ini_key_the_plugin_registers_is_in_the_options_page(help_text: str) -> None:
    registered = set(INI_KEY.findall(help_text))
    assert {"edgeopt_platform", "edgeopt_table_columns"} <= registered, help_text
    documented = code_names(page("options.md"))
    assert sorted(registered - documented) == []


def test_every_budget_is_in_the_budgets_page() -> None:
    documented = code_names(page("budgets.md"))
    assert sorted(set(BUDGET_NAMES) - documented) == []


def test_every_extra_is_in_getting_started() -> None:
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    documented = code_names(page("getting-started.md"))
    assert sorted(set(extras) - documented) == []


def test_every_hook_is_in_the_extending_page() -> None:
    hooks = {name for name in vars(hookspecs) if name.startswith("pytest_edgeopt_")}
    assert len(hooks) >= 4
    documented = " ".join(code_names(page("extending.md")))
    assert sorted(hook for hook in hooks if f"{hook}(" not in documented) == []


def test_the_readme_starts_with_the_two_commands_and_links_to_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    assert lines[0] == "# pytest-edgeopt" and lines[2] == "```bash"
    assert lines[3].endswith("-m pytest suites") and lines[4].endswith("-m pytest tests -n 2"), lines[:5]
    targets = LINK.findall(readme)
    assert any(target.startswith("docs/") for target in targets)
    assert sorted(target for target in targets if not (ROOT / target).exists()) == []
