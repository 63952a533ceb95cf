"""The built-in model zoo: names a test can put in `@pytest.mark.edge_models(...)`.

Every entry loads offline: weights ship in this package or in a pip package; nothing downloads.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module
from typing import Dict, Tuple

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.models.base import EdgeModel

# name -> (module, loader function, keyword arguments)
ZOO: Dict[str, Tuple[str, str, Tuple[Tuple[str, str], ...]]] = {
    "digits-cnn": ("pytest_edgeopt.models.digits", "load_digits_cnn", ()),
    "efficientnet-lite0": ("pytest_edgeopt.models.imagenet", "load_efficientnet_lite0", ()),
    "resnet50": ("pytest_edgeopt.models.imagenet", "load_torchvision", (("name", "resnet50"),)),
    "mobilenet_v2": ("pytest_edgeopt.models.imagenet", "load_torchvision", (("name", "mobilenet_v2"),)),
}


def zoo_names() -> Tuple[str, ...]:
    return tuple(ZOO)


def unknown_model_message(name: str) -> str:
    return f"unknown model {name!r}; the zoo has {', '.join(ZOO)} (or pass an EdgeModel or a .onnx path)"


@lru_cache(maxsize=None)
def load_zoo_model(name: str) -> EdgeModel:
    """Load once per process: building the eval crops and weights costs seconds."""
    if name not in ZOO:
        raise EdgeOptError(unknown_model_message(name))
    module, function, kwargs = ZOO[name]
    model: EdgeModel = getattr(import_module(module), function)(**dict(kwargs))
    return model
