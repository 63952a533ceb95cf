"""Microcontroller rows of the comparison table: does the INT8 model fit the board, and how fast and
how costly in energy would one inference be there?

One command per board: `pytest suites/test_mcu.py --edge-platform=cortex-m4` (also cortex-m7,
esp32-s3; `mcu` names cortex-m4). TFLite Micro runs the INT8 model on this machine for top-1
and the exact arena; latency, throughput and energy are estimated from the graph and the
profile's calibrated cycles per MAC, and every such cell says "est.". A row whose arena exceeds
the board's SRAM, or whose model and code exceed its flash, fails by default. On other platforms
the suite skips. Refresh the baselines with `--update-baselines`.
"""

import pytest

from pytest_edgeopt import BudgetExceeded


@pytest.fixture(autouse=True)
def _on_a_microcontroller(edge_platform):
    if edge_platform.mcu is None:
        pytest.skip("an MCU suite: run it with --edge-platform=cortex-m4 (or cortex-m7, esp32-s3)")


@pytest.mark.edge_models("digits-cnn")
@pytest.mark.edge_precisions("int8")
@pytest.mark.edge_budget(
    max_accuracy_drop=1.0, min_top1=0.95, max_arena_kb=16, max_flash_kb=256, max_latency_regression="5%"
)
def test_digits_fits(edge_model, edge_precision, edge_runner):
    edge_runner.measure(edge_model, precision=edge_precision)


@pytest.mark.edge_models("efficientnet-lite0")
@pytest.mark.xfail(
    raises=BudgetExceeded,
    strict=True,
    reason="EfficientNet-Lite0 INT8 needs a 1.7 MB arena and 5.2 MB of flash: more than these boards have",
)
def test_efficientnet_lite0_does_not_fit(edge_model, edge_runner):
    m = edge_runner.measure(edge_model, precision="int8")  # fails here: arena > SRAM, flash > flash
    m.check(min_agreement=0.9)
