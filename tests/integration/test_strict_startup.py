"""What [all] installs never breaks a user's pytest start-up under `filterwarnings = error`.

anyio's pytest plugin (litert-torch -> transformers -> huggingface-hub -> httpx -> anyio) imports
pytest 9.2's deprecated CallSpec2 when pytest loads it: INTERNALERROR before collecting. [all]
constrains anyio below 4.13 (tflite-torch); this test holds it for every pytest plugin [all] brings."""

from __future__ import annotations

from importlib import metadata
from typing import List, Set

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("tomllib")

from tests.deps_helpers import OWN, closure, normal


def plugins_outside(allowed: Set[str]) -> List[str]:
    """The pytest11 entry points of installed distributions that [all] does not bring."""
    own = {OWN, "pytest", "pluggy"}
    return sorted(
        ep.name
        for ep in metadata.entry_points(group="pytest11")
        if ep.dist is not None and normal(ep.dist.name) not in allowed | own
    )


STRICT = """
def test_x(edge_runner):
    edge_runner.measure("digits-cnn", precision="int8")
"""


def test_a_strict_project_starts_collects_and_exports_with_the_readme_install(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subprocess loads entry-point plugins as a user's pytest does; the plugins installed here
    that [all] does not bring (this venv also has the test and tflite-torch extras) are blocked."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)  # the suite's own `-p no:anyio`
    blocked = [arg for name in plugins_outside(closure("all")) for arg in ("-p", f"no:{name}")]
    assert "anyio" in closure("all")  # its pytest plugin loads: the constraint in tflite-torch keeps it quiet
    pytester.makepyfile(test_x=STRICT)
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n')
    result = pytester.runpytest_subprocess("--edge-quick", "-p", "no:cacheprovider", *blocked, timeout=600)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
