"""Eval data for the shipped third-party models, made offline from photos scikit-image ships and
labelled by construction."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

THIRD_PARTY = Path(__file__).parent / "data" / "third_party"
MTCNN_ONET = THIRD_PARTY / "mtcnn_onet.onnx"


def _onet_input(crop: np.ndarray) -> np.ndarray:
    """MTCNN's normalization, 48x48, with O-Net's W,H order (facenet-pytorch permutes before it)."""
    from skimage import transform

    resized = transform.resize(crop, (48, 48), anti_aliasing=True, preserve_range=True).astype(np.float32)
    return ((resized - 127.5) * 0.0078125).transpose(2, 1, 0)


def face_crops(count: int = 48, *, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Half jittered crops of the astronaut's face (label 1, FP32 O-Net: face prob > 0.9), half
    patches of coffee, rocket, brick and grass photos (label 0)."""
    from skimage import data

    rng = np.random.default_rng(seed)
    astronaut = data.astronaut()
    faces = []
    for _ in range(count // 2):
        size, y, x = 110 + int(rng.integers(-6, 7)), 65 + int(rng.integers(-6, 7)), 175 + int(rng.integers(-6, 7))
        faces.append(_onet_input(astronaut[y : y + size, x : x + size]))
    scenes = [data.coffee(), data.rocket(), np.stack([data.brick()] * 3, -1), np.stack([data.grass()] * 3, -1)]
    others = []
    while len(others) < count - len(faces):
        image = scenes[len(others) % len(scenes)]
        size = int(rng.integers(60, 150))
        y, x = int(rng.integers(0, image.shape[0] - size)), int(rng.integers(0, image.shape[1] - size))
        others.append(_onet_input(image[y : y + size, x : x + size]))
    return np.stack(faces + others).astype(np.float32), np.array([1] * len(faces) + [0] * len(others))
