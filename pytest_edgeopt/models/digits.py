"""The `digits-cnn` zoo entry: a small CNN on scikit-learn's bundled 8x8 digits.

It ships with its weights and held-out split so the plugin can demonstrate real accuracy drop
and INT8 calibration offline, with no download and in well under a second of inference.
Torch is imported lazily: importing this module (say, to list the zoo) must work on installs
without the torch extra; only loading the model needs it.
The weights and split are produced by scripts/train_digits_cnn.py; retrain there, not here.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Tuple

import numpy as np

from pytest_edgeopt.errors import MissingDependency
from pytest_edgeopt.models.base import EdgeModel

NAME = "digits-cnn"
DATA_DIR = Path(__file__).parent / "data"
WEIGHTS_PATH = DATA_DIR / "digits_cnn.pt"
SPLIT_PATH = DATA_DIR / "digits_split.npz"
TFLITE_PATH = DATA_DIR / "digits_cnn.tflite"  # scripts/convert_digits_tflite.py; batch 1, NCHW input
PIXEL_MAX = 16.0  # load_digits pixels are counts 0..16; stored raw as uint8 to keep the file small
NUM_CLASSES = 10


def _import_torch() -> Any:
    """Torch is an optional extra; name the extra to install instead of a bare ImportError."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency(package="torch", extra="torch", purpose="the digits-cnn zoo model") from exc
    return torch


@lru_cache(maxsize=None)
def _digits_cnn_class() -> type:
    """Defined on first use so the class exists only where torch does; cached so it is one type."""
    torch = _import_torch()
    nn = torch.nn

    class DigitsCNN(nn.Module):  # type: ignore[misc,name-defined]  # torch is imported at run time
        """Two 3x3 convs and one pool: enough for >97% on 8x8 digits at ~38k parameters."""

        __qualname__ = "DigitsCNN"  # resolvable through the module __getattr__, so it pickles

        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 16, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.Conv2d(16, 32, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )
            self.classifier = nn.Sequential(
                nn.Flatten(),
                nn.Linear(32 * 4 * 4, 64),
                nn.ReLU(),
                nn.Linear(64, NUM_CLASSES),
            )

        def forward(self, x: Any) -> Any:
            return self.classifier(self.features(x))

    DigitsCNN.__module__ = __name__
    return DigitsCNN


def __getattr__(name: str) -> Any:
    """`from pytest_edgeopt.models.digits import DigitsCNN` works, but only costs torch when used."""
    if name == "DigitsCNN":
        return _digits_cnn_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _build_module() -> Any:
    """A fresh, untrained DigitsCNN; the training script and the loader share this one definition."""
    return _digits_cnn_class()()


def scale_pixels(raw: np.ndarray) -> np.ndarray:
    """Raw 0..16 counts to float32 (N, 1, 8, 8) in [0, 1], the layout and range the CNN trained on."""
    images = np.asarray(raw, dtype=np.float32).reshape(-1, 1, 8, 8)
    return images / np.float32(PIXEL_MAX)


def _load_split() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(SPLIT_PATH) as split:
        return scale_pixels(split["x_test"]), split["y_test"].astype(np.int64), scale_pixels(split["x_calib"])


def _load_weights(module: Any) -> Any:
    """weights_only=True: the file ships in a wheel, so never unpickle arbitrary objects from it."""
    torch = _import_torch()
    state = torch.load(WEIGHTS_PATH, map_location="cpu", weights_only=True)
    module.load_state_dict(state)
    return module


def load_digits_cnn() -> EdgeModel:
    """The zoo entry: trained weights plus the held-out test split and train-split calibration."""
    module = _load_weights(_build_module())
    x_test, y_test, x_calib = _load_split()
    model = EdgeModel.from_torch(
        module,
        name=NAME,
        example_input=x_test[:1],
        eval_data=(x_test, y_test),
        calibration_data=x_calib,
        classifier=True,
    )
    return replace(model, tflite_path=TFLITE_PATH) if TFLITE_PATH.is_file() else model
