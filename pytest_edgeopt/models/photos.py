"""Label-free ImageNet-style images from the photos scikit-learn and scikit-image ship.

No ImageNet validation set can be had offline, so the zoo judges INT8 by its agreement with
FP32 on random crops of these bundled photos. They travel inside the wheels (nothing is
fetched), so every machine and every run sees the same pixels.
"""

from __future__ import annotations

import functools
import math
from types import MappingProxyType, ModuleType
from typing import Callable, Dict, Mapping, Sequence, Tuple, Union

import numpy as np

from pytest_edgeopt.errors import EdgeOptError, MissingDependency

PURPOSE = "the photos the ImageNet zoo models are evaluated on"

# Object photos first, so small crop counts still see the ones ImageNet has classes for.
SKLEARN_PHOTOS: Tuple[str, ...] = ("china.jpg", "flower.jpg")
SKIMAGE_PHOTOS: Tuple[str, ...] = (
    "coffee",
    "chelsea",
    "rocket",
    "stereo_motorcycle",
    "astronaut",
    "hubble_deep_field",
    "immunohistochemistry",
)
PHOTO_NAMES: Tuple[str, ...] = SKLEARN_PHOTOS + SKIMAGE_PHOTOS

MIN_SCALE = 0.5  # smallest crop side, as a fraction of the photo's short side

Channels = Union[float, Sequence[float]]


def photo_crops(*, count: int, size: int = 224, seed: int) -> np.ndarray:
    """Random square crops, uint8 (count, size, size, 3), the same for a seed on every machine.

    The array is cached per process and shared between models, so it is read-only.
    Crops take the photos round robin, and a shorter run's crops are a prefix of a longer one's.
    """
    if count < 1 or size < 1:
        raise EdgeOptError(f"photo_crops needs count >= 1 and size >= 1, got count={count}, size={size}")
    return _cached_crops(int(count), int(size), int(seed))


def to_nchw(images: np.ndarray, *, mean: Channels, std: Channels) -> np.ndarray:
    """float32 NCHW `(x - mean) / std` per channel: the layout and scaling the torch models take."""
    if images.ndim != 4:
        raise EdgeOptError(f"to_nchw takes a batch (N, H, W, C), got shape {images.shape}")
    shift = _per_channel(mean, channels=images.shape[-1], what="mean")
    scale = _per_channel(std, channels=images.shape[-1], what="std")
    planar = images.astype(np.float32).transpose(0, 3, 1, 2)
    return np.ascontiguousarray((planar - shift) / scale, dtype=np.float32)


def load_photo(name: str) -> np.ndarray:
    """One bundled photo as uint8 RGB (H, W, 3), for checks on whole images rather than crops."""
    photos = bundled_photos()
    if name not in photos:
        raise EdgeOptError(f"unknown bundled photo {name!r}; choose one of {', '.join(PHOTO_NAMES)}")
    return photos[name]


def centre_crop(image: np.ndarray, *, short_side: int = 256, size: int = 224) -> np.ndarray:
    """The standard ImageNet eval view: resize the short side, then cut the centre square."""
    height, width = image.shape[:2]
    ratio = short_side / min(height, width)
    resized = _resize(image, (max(size, round(width * ratio)), max(size, round(height * ratio))))
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    return np.ascontiguousarray(resized[top : top + size, left : left + size])


@functools.lru_cache(maxsize=None)
def bundled_photos() -> Mapping[str, np.ndarray]:
    """Every bundled photo by name; cached because decoding them costs more than cropping."""
    loaders = {**_sklearn_loaders(), **_skimage_loaders()}
    photos = {name: _rgb_uint8(loaders[name]()) for name in PHOTO_NAMES}
    for photo in photos.values():
        photo.setflags(write=False)
    return MappingProxyType(photos)


@functools.lru_cache(maxsize=None)
def _cached_crops(count: int, size: int, seed: int) -> np.ndarray:
    photos = [bundled_photos()[name] for name in PHOTO_NAMES]
    rng = np.random.default_rng(seed)
    crops = np.stack([_random_crop(photos[i % len(photos)], rng=rng, size=size) for i in range(count)])
    crops.setflags(write=False)
    return crops


def _random_crop(photo: np.ndarray, *, rng: np.random.Generator, size: int) -> np.ndarray:
    height, width = photo.shape[:2]
    short = min(height, width)
    side = int(rng.integers(math.ceil(MIN_SCALE * short), short + 1))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    return _resize(photo[top : top + side, left : left + side], (size, size))


def _resize(image: np.ndarray, width_height: Tuple[int, int]) -> np.ndarray:
    """Pillow's bilinear filter widens with the scale factor, so downsizing is anti-aliased."""
    image_class = _pillow_image()
    resized = image_class.fromarray(np.ascontiguousarray(image)).resize(
        width_height, resample=image_class.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.uint8)


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] < 3:
        raise EdgeOptError(f"bundled photo has shape {image.shape}, dtype {image.dtype}; expected uint8 RGB")
    return np.ascontiguousarray(image[..., :3])


def _per_channel(values: Channels, *, channels: int, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32).reshape(-1)
    if array.size not in (1, channels):
        raise EdgeOptError(f"to_nchw {what} has {array.size} values for {channels} channels")
    return array.reshape(1, -1, 1, 1)


def _sklearn_loaders() -> Dict[str, Callable[[], np.ndarray]]:
    try:
        from sklearn.datasets import load_sample_image
    except ImportError as error:
        raise MissingDependency(package="scikit-learn", extra="zoo", purpose=PURPOSE) from error
    return {name: functools.partial(load_sample_image, name) for name in SKLEARN_PHOTOS}


def _skimage_loaders() -> Dict[str, Callable[[], np.ndarray]]:
    """Only images inside the scikit-image wheel: the others need pooch and the network."""
    try:
        import skimage.data as skdata
    except ImportError as error:
        raise MissingDependency(package="scikit-image", extra="zoo", purpose=PURPOSE) from error
    loaders = {name: getattr(skdata, name) for name in SKIMAGE_PHOTOS}
    loaders["stereo_motorcycle"] = lambda: skdata.stereo_motorcycle()[0]  # left view of the pair
    return loaders


def _pillow_image() -> ModuleType:
    try:
        from PIL import Image
    except ImportError as error:  # a scikit-image dependency, so normally present with it
        raise MissingDependency(package="pillow", extra="zoo", purpose=PURPOSE) from error
    return Image
