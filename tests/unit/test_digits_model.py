"""The shipped digits-cnn weights and split: the zoo's one model with real labels and accuracy."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.models.digits import load_digits_cnn

TEST_COUNT = 360  # 20% of sklearn's 1797 digits, stratified
CALIBRATION_COUNT = 128


@pytest.fixture(scope="module")
def model() -> EdgeModel:
    return load_digits_cnn()


def _logits(model: EdgeModel, inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.module(torch.from_numpy(inputs)).numpy()


def test_model_emits_ten_logits_per_sample(model: EdgeModel) -> None:
    logits = _logits(model, model.eval_inputs[:5])
    assert logits.shape == (5, 10)


def test_fp32_top1_on_shipped_split_is_at_least_97_percent(model: EdgeModel) -> None:
    predicted = _logits(model, model.eval_inputs).argmax(axis=1)
    assert float((predicted == model.eval_labels).mean()) >= 0.97


def test_eval_set_is_the_labelled_held_out_split(model: EdgeModel) -> None:
    assert model.name == "digits-cnn"
    assert model.labelled
    assert model.eval_inputs.shape == (TEST_COUNT, 1, 8, 8)
    assert model.eval_inputs.dtype == np.float32
    assert set(np.unique(model.eval_labels)) == set(range(10))
    assert 0.0 <= model.eval_inputs.min() and model.eval_inputs.max() <= 1.0


def test_calibration_is_separate_from_the_eval_set(model: EdgeModel) -> None:
    assert model.calibration_inputs is not None
    assert model.calibration_inputs.shape == (CALIBRATION_COUNT, 1, 8, 8)
    assert model.calibration is model.calibration_inputs
    assert model.example_input.shape == (1, 1, 8, 8)


def test_content_hash_is_stable_across_loads(model: EdgeModel) -> None:
    assert load_digits_cnn().content_hash() == model.content_hash()


def test_split_matches_sklearn_stratified_split(model: EdgeModel) -> None:
    """Guards the shipped npz against drifting from the split the training script documents."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, _, y_test = train_test_split(
        digits.images, digits.target, test_size=0.2, stratify=digits.target, random_state=0
    )
    np.testing.assert_array_equal(model.eval_labels, y_test)
    np.testing.assert_allclose(model.eval_inputs[:, 0], x_test / 16.0, rtol=0, atol=1e-7)
    np.testing.assert_allclose(model.calibration_inputs[:, 0], x_train[:CALIBRATION_COUNT] / 16.0, atol=1e-7)
