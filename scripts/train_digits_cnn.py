"""Train the `digits-cnn` zoo model and write its package data.

The weights and split are committed, so this only runs when the architecture or recipe changes.
Seeds, one thread and an explicit shuffle generator make a rerun reproduce the same accuracy,
so a reviewer can check that the shipped files came from this script.

    python scripts/train_digits_cnn.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Tuple

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# Runnable from a plain checkout: the package need not be installed to regenerate its own data.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pytest_edgeopt.models.digits import SPLIT_PATH, WEIGHTS_PATH, _build_module, scale_pixels

SEED = 0
EPOCHS = 20
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
CALIBRATION_COUNT = 128
MIN_ACCURACY = 0.97


def load_split() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw uint8 images (0..16) so the shipped npz stays a few KB; scaling happens on load."""
    digits = load_digits()
    images = digits.images.astype(np.uint8)
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, stratify=labels, random_state=SEED
    )
    return x_train, x_test, y_train, y_test


def train(module: Any, x_train: np.ndarray, y_train: np.ndarray) -> Any:
    """Plain Adam on full mini-batches; a dedicated generator keeps shuffling off the global RNG."""
    inputs = torch.from_numpy(scale_pixels(x_train))
    targets = torch.from_numpy(y_train)
    optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(SEED)
    module.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(inputs), generator=shuffle)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            optimizer.zero_grad()
            loss_fn(module(inputs[batch]), targets[batch]).backward()
            optimizer.step()
    return module.eval()


def accuracy(module: Any, x_raw: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        predicted = module(torch.from_numpy(scale_pixels(x_raw))).argmax(dim=1).numpy()
    return float((predicted == y).mean())


def save(module: Any, x_test: np.ndarray, y_test: np.ndarray, x_calib: np.ndarray) -> None:
    WEIGHTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), WEIGHTS_PATH)
    np.savez_compressed(SPLIT_PATH, x_test=x_test, y_test=y_test, x_calib=x_calib)


def main() -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    x_train, x_test, y_train, y_test = load_split()
    module = train(_build_module(), x_train, y_train)
    top1 = accuracy(module, x_test, y_test)
    params = sum(p.numel() for p in module.parameters())
    print(f"digits-cnn: {params} params, test top-1 {top1:.4f} on {len(y_test)} samples")
    if top1 < MIN_ACCURACY:
        raise SystemExit(f"test top-1 {top1:.4f} is below {MIN_ACCURACY}; not writing package data")
    save(module, x_test, y_test, x_train[:CALIBRATION_COUNT])
    for path in (WEIGHTS_PATH, SPLIT_PATH):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
