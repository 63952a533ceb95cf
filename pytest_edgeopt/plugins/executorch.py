"""The `edgeopt-executorch` plugin: `runtime="executorch"`, registered through the runtime hook.

ExecuTorch is not a built-in runtime. Its wheel declares 20 dependencies, most of them unused by
export or run (pandas, coremltools, hypothesis, ...), and it is installed with `--no-deps`; keeping
it a plugin also proves that `pytest_edgeopt_runtimes` is enough to add a runtime with its own
artifact format and build (`RuntimeSpec.builder`), as TensorRT or QNN will need.
`-p no:edgeopt-executorch` turns it off: `runtime="executorch"` is then an unknown runtime.
"""

from __future__ import annotations

from typing import List

import pytest

from pytest_edgeopt.runtimes import RuntimeSpec

EXECUTORCH = RuntimeSpec(
    name="executorch",
    module="pytest_edgeopt.runtimes.executorch",
    cls="ExecuTorch",
    package="executorch",
    extra="executorch",
    format="pte",
    builder="pytest_edgeopt.optimize.executorch:BUILDER",
)


def pytest_edgeopt_runtimes(config: pytest.Config) -> List[RuntimeSpec]:
    return [EXECUTORCH]
