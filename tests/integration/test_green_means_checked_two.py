"""Green means checked, part two: the cached artifact is the model under test, and nothing a file,
a device or a signal says can switch the gate off (issue 24).

One section per numbered reproduction of the issue; each test failed on the code before the fix.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.pytester_helpers import QUICK

OWN_CACHE = "--edge-cache-dir=cache"

# -- 1. two different models never share one cached artifact ---------------------------------------------------

# Labels come from each model's own forward: top-1 is 100% exactly when the measured artifact is that model.
TWO_MODELS = """
import numpy as np
import pytest
import torch

from pytest_edgeopt import EdgeModel

CLASSES


def own_labels(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x)).argmax(1).numpy()


@pytest.mark.parametrize("arg", ARGS)
def test_net(edge_runner, arg):
    x = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    net = Net(arg)
    model = EdgeModel.from_torch(net, name="net", example_input=x[:1], eval_data=(x, own_labels(net, x)))
    assert edge_runner.measure(model, precision="fp32").top1 == 1.0
"""

NET = """
class Net(torch.nn.Module):
    def __init__(self, arg):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(16, 4)
        HOLD

    def forward(self, x):
        return FORWARD
"""
# a plain attribute: not a parameter, not a buffer, not in repr()
SCALED = NET.replace("HOLD", "self.k = arg").replace("FORWARD", "self.k * self.fc(x)")
# a buffer that is not in state_dict()
NORMED = NET.replace("HOLD", 'self.register_buffer("mean", torch.full((16,), arg), persistent=False)').replace(
    "FORWARD", "self.fc(x - self.mean)"
)
HELPED = "from helpers import act\n" + NET.replace("HOLD", "").replace("FORWARD", "act(self.fc(x))")


def _two_models(classes: str, args: str) -> str:
    return TWO_MODELS.replace("CLASSES", classes).replace("ARGS", args)


def test_a_plain_attribute_is_part_of_the_cache_key(pytester: pytest.Pytester) -> None:
    """Scaled(1.0) then Scaled(-1.0): the attribute-parts of the key tell them apart."""
    pytester.makepyfile(test_net=_two_models(SCALED, "[1.0, -1.0]"))
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=2)


def test_a_non_persistent_buffer_is_part_of_the_cache_key(pytester: pytest.Pytester) -> None:
    """Normed(mean=0.0) then Normed(mean=3.0): the buffer-parts of the key tell them apart."""
    pytester.makepyfile(test_net=_two_models(NORMED, "[0.0, 3.0]"))
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=2)


def test_an_edited_helper_in_another_module_is_exported_again(pytester: pytest.Pytester) -> None:
    """act() lives in helpers.py; editing it changes the graph, and the reached-code part of the key."""
    pytester.makepyfile(test_net=_two_models(HELPED, "[0]"))
    pytester.makepyfile(helpers="import torch\n\ndef act(x):\n    return torch.relu(x) + x\n")
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=1)
    pytester.makepyfile(helpers="import torch\n\ndef act(x):\n    return -x\n")
    pytester.runpytest(*QUICK, OWN_CACHE).assert_outcomes(passed=1)
