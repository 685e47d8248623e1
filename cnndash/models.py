"""Model factory: the CNNs cnndash can train, each adapted to the data's channels, classes and size.

``build_model(name, num_classes=…, in_channels=…, image_size=…)`` returns a fresh ``nn.Module``:

- ``lenet``       — LeNet-5 (two 5×5 convolutions, three fully connected layers), ReLU + max-pooling;
- ``simplecnn``   — the tutorials' two-block CNN (3×3 conv → ReLU → 2×2 pool, twice, then two Linear);
- ``vgg``         — a small VGG: three blocks of two 3×3 conv + BatchNorm + ReLU, global average pooling;
- ``resnet18``    — torchvision's ResNet-18; inputs of at most 64 px get a 3×3 stride-1 stem without the
  max-pool (the CIFAR variant), larger inputs keep the standard 7×7 stride-2 stem;
- ``mobilenet_v2`` — torchvision's MobileNetV2 (first convolution at stride 1 for inputs of at most 64 px).

Own models name their parts ``features`` (convolutions) and ``classifier`` (head), so the Grad-CAM layer
(:func:`default_cam_layer`) and the transfer-learning split (:func:`head_prefix`) are stable names.
Pretrained ImageNet weights come from the local torch hub cache only; cnndash never downloads them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cnndash.errors import UserError
from cnndash.text import N_, Phrase
from cnndash.training.choices import MODEL_DESCRIPTIONS, MODEL_NAMES, TRANSFER_MODES  # noqa: F401 (re-exported)

# Smallest square input each model accepts, and the size it is trained at by default when the dataset's
# own size is smaller (tiny 8×8 digits are upsampled to LeNet's classic 28×28).
MIN_IMAGE_SIZE = {"lenet": 12, "simplecnn": 4, "vgg": 8, "resnet18": 8, "mobilenet_v2": 8}
DEFAULT_MIN_SIZE = {"lenet": 28, "simplecnn": 28, "vgg": 32, "resnet18": 32, "mobilenet_v2": 32}
DEFAULT_MAX_SIZE = {"lenet": 64, "simplecnn": 64, "vgg": 64, "resnet18": 224, "mobilenet_v2": 224}
SMALL_INPUT_MAX = 64  # ResNet/MobileNet switch to the small-input stem at or below this size

_PRETRAINED = {"resnet18": "ResNet18_Weights", "mobilenet_v2": "MobileNet_V2_Weights"}


class ModelError(UserError):
    """A model request that cannot be built (unknown name, input too small, weights not available)."""


def _check_name(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    if key not in MODEL_NAMES:
        raise ModelError(
            "Unknown model {name}; choose one of {models}.", name=repr(name), models=", ".join(MODEL_NAMES)
        )
    return key


def default_image_size(model_name: str, dataset_size: tuple[int, int] | int | None) -> int:
    """Square side a model is trained at when the user does not choose one.

    The dataset's own size (the larger side) clamped into the model's comfortable range, so small
    images are upsampled to what the architecture expects and large ones are not trained at full size.
    """
    name = _check_name(model_name)
    if dataset_size is None:
        return DEFAULT_MIN_SIZE[name]
    side = max(dataset_size) if isinstance(dataset_size, tuple | list) else int(dataset_size)
    return int(min(max(side, DEFAULT_MIN_SIZE[name]), DEFAULT_MAX_SIZE[name]))


# Pipeline steps whose ``size`` fixes the side of what they output (a crop, or a resize to a pair).
SIZED_STEPS = ("RandomResizedCrop", "CenterCrop", "RandomCrop", "Resize")


def pipeline_output_size(spec: list[dict]) -> int | None:
    """The square side an augmentation pipeline's images come out at, or None when it leaves the size
    alone (the last sized step decides; ``Resize`` to one int sets only the shorter side: None)."""
    side = None
    for step in spec:
        if step.get("op") not in SIZED_STEPS or "size" not in step:
            continue
        size = step["size"]
        if isinstance(size, int | float):
            side = None if step["op"] == "Resize" else int(size)
        elif isinstance(size, list | tuple) and size:
            side = int(max(size))
    return side


def auto_image_size(
    model_name: str, dataset_size: tuple[int, int] | int | None, spec: list[dict] | None = None
) -> tuple[int, str]:
    """The side training uses when the user leaves the image size automatic, and why, in one sentence.

    A pipeline that crops or resizes to a fixed size decides (the crop is what the user asked the model
    to see), raised to the model's minimum; otherwise :func:`default_image_size` from the dataset.
    """
    name = _check_name(model_name)
    crop = pipeline_output_size(spec or [])
    if crop is not None:
        side = max(crop, MIN_IMAGE_SIZE[name])
        if side != crop:
            return side, Phrase(
                N_("the pipeline crops to {crop} px, raised to {name}'s minimum of {side} px"),
                crop=crop,
                name=name,
                side=side,
            )
        return side, Phrase(N_("the augmentation pipeline outputs {crop}×{crop} px"), crop=crop)
    side = default_image_size(name, dataset_size)
    if dataset_size is None:
        return side, Phrase(
            N_("the images have mixed sizes, so {name}'s default of {side} px is used"), name=name, side=side
        )
    own = max(dataset_size) if isinstance(dataset_size, tuple | list) else int(dataset_size)
    if own == side:
        return side, Phrase(N_("the dataset's images are {own} px"), own=own)
    if own < side:
        return side, Phrase(
            N_("the dataset's {own} px images are upsampled to {name}'s range ({side} px)"),
            own=own,
            name=name,
            side=side,
        )
    return side, Phrase(
        N_("the dataset's {own} px images are downscaled to {name}'s range ({side} px)"),
        own=own,
        name=name,
        side=side,
    )


def suggest_model(
    dataset_size: tuple[int, int] | int | None, channels: int, num_images: int
) -> tuple[str, str]:
    """A model that suits the data, and why: tiny grayscale sets -> LeNet; small colour images -> the
    small VGG, or ResNet-18 with its small-input stem when there are enough of them; larger photos ->
    ResNet-18 (pretrained weights help most there)."""
    side = None
    if dataset_size is not None:
        side = max(dataset_size) if isinstance(dataset_size, tuple | list) else int(dataset_size)
    if channels == 1 and side is not None and side <= 32:
        return "lenet", Phrase(
            N_("small grayscale images ({side} px): LeNet is enough and trains in seconds"), side=side
        )
    if side is not None and side <= 40:
        if num_images >= 5000:
            return "resnet18", Phrase(
                N_("many small images ({side} px): ResNet-18 with its small stem"), side=side
            )
        return "vgg", Phrase(N_("small colour images ({side} px): the small VGG"), side=side)
    if side is None or side <= SMALL_INPUT_MAX * 2:
        return "resnet18", N_("photos: ResNet-18 (at 64 px or less it uses its small-input stem)")
    return "resnet18", Phrase(
        N_("larger photos ({side} px): ResNet-18 (tick 'pretrained' if its weights are cached)"), side=side
    )


class LeNet(nn.Module):
    """LeNet-5 with ReLU and max-pooling (padding 2 on the first conv, as for 28×28 MNIST)."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = (image_size // 2 - 4) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SimpleCNN(nn.Module):
    """The tutorials' SimpleCNN, with the flatten size computed from the input size instead of 32*7*7."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * side * side, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SmallVGG(nn.Module):
    """VGG-style: [conv-BN-ReLU ×2, max-pool] × 3 (32/64/128 channels), global average pool, MLP head."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width in (32, 64, 128):
            for _ in range(2):
                layers += [
                    nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(),
                ]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def pretrained_weights_path(model_name: str) -> Path:
    """Where torch's hub cache keeps the ImageNet weights file for ``model_name``."""
    import torchvision.models as tvm

    name = _check_name(model_name)
    if name not in _PRETRAINED:
        raise ModelError(
            "No pretrained weights exist for {name}; pretrained weights are available for {models}.",
            name=name,
            models=", ".join(_PRETRAINED),
        )
    weights = getattr(tvm, _PRETRAINED[name]).IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def _load_pretrained(model_name: str) -> dict[str, torch.Tensor]:
    path = pretrained_weights_path(model_name)
    if not path.is_file():
        raise ModelError(
            "Pretrained weights for {model} are not in the local torch cache ({path}) and cnndash does not "
            "download them (offline). Import the file downloaded elsewhere (`python -m cnndash weights import "
            "{file}`, or the Training page's weights uploader), or untick 'pretrained'.",
            model=model_name,
            path=path,
            file=path.name,
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def _adapt_first_conv(old: nn.Conv2d, in_channels: int, **overrides) -> nn.Conv2d:
    """A copy of ``old`` taking ``in_channels``; pretrained RGB weights are averaged for one channel."""
    kwargs = dict(
        kernel_size=old.kernel_size, stride=old.stride, padding=old.padding, bias=old.bias is not None
    )
    kwargs.update(overrides)
    new = nn.Conv2d(in_channels, old.out_channels, **kwargs)
    same_kernel = new.weight.shape[2:] == old.weight.shape[2:]
    if same_kernel:
        with torch.no_grad():
            if in_channels == old.in_channels:
                new.weight.copy_(old.weight)
            elif in_channels == 1:
                new.weight.copy_(old.weight.mean(dim=1, keepdim=True))
            if old.bias is not None and new.bias is not None:
                new.bias.copy_(old.bias)
    return new


def _resnet18(num_classes: int, in_channels: int, image_size: int, pretrained: bool) -> nn.Module:
    import torchvision.models as tvm

    model = tvm.resnet18(weights=None)
    if pretrained:
        model.load_state_dict(_load_pretrained("resnet18"))
    if image_size <= SMALL_INPUT_MAX:
        # CIFAR-style stem: a 7×7/2 conv plus max-pool would shrink 32 px to 8 px before any residual block.
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        model.conv1 = _adapt_first_conv(model.conv1, in_channels)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def _mobilenet_v2(num_classes: int, in_channels: int, image_size: int, pretrained: bool) -> nn.Module:
    import torchvision.models as tvm

    model = tvm.mobilenet_v2(weights=None)
    if pretrained:
        model.load_state_dict(_load_pretrained("mobilenet_v2"))
    first: nn.Conv2d = model.features[0][0]
    stride = (1, 1) if image_size <= SMALL_INPUT_MAX else first.stride
    if in_channels != 3 or stride != first.stride:
        model.features[0][0] = _adapt_first_conv(first, in_channels, stride=stride)
    model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    return model


def build_model(
    name: str, *, num_classes: int, in_channels: int, image_size: int, pretrained: bool = False
) -> nn.Module:
    """A freshly initialised model (or ImageNet-initialised when ``pretrained``) for square inputs."""
    key = _check_name(name)
    if num_classes < 2:
        raise ModelError("A classifier needs at least 2 classes, got {num_classes}.", num_classes=num_classes)
    if in_channels not in (1, 3):
        raise ModelError(
            "in_channels must be 1 (grayscale) or 3 (RGB), got {in_channels}.", in_channels=in_channels
        )
    if image_size < MIN_IMAGE_SIZE[key]:
        raise ModelError(
            "{model} needs inputs of at least {side}×{side} px, got {image_size}; raise the image size.",
            model=key,
            side=MIN_IMAGE_SIZE[key],
            image_size=image_size,
        )
    if pretrained and key not in _PRETRAINED:
        raise ModelError(
            "{model} has no pretrained weights; untick 'pretrained' or pick {models}.",
            model=key,
            models=" or ".join(_PRETRAINED),
        )
    if key == "lenet":
        return LeNet(num_classes, in_channels, image_size)
    if key == "simplecnn":
        return SimpleCNN(num_classes, in_channels, image_size)
    if key == "vgg":
        return SmallVGG(num_classes, in_channels, image_size)
    if key == "resnet18":
        return _resnet18(num_classes, in_channels, image_size, pretrained)
    return _mobilenet_v2(num_classes, in_channels, image_size, pretrained)


def default_cam_layer(model_name: str) -> str:
    """Dotted name (as in ``named_modules()``) of the last convolutional stage, the usual Grad-CAM target."""
    key = _check_name(model_name)
    return {
        "lenet": "features.3",
        "simplecnn": "features.3",
        "vgg": "features.19",
        "resnet18": "layer4",
        "mobilenet_v2": "features.18",
    }[key]


def head_prefix(model_name: str) -> str:
    """Name prefix of the classification head; everything else is the backbone for transfer modes."""
    key = _check_name(model_name)
    return "fc" if key == "resnet18" else "classifier"


def parameter_groups(
    model: nn.Module, model_name: str, *, lr: float, transfer: str = "all", backbone_lr_factor: float = 0.1
) -> list[dict]:
    """Optimizer parameter groups for a transfer mode.

    ``all`` trains every parameter at ``lr``; ``freeze`` trains only the head (the backbone gets
    ``requires_grad=False``); ``lower_lr`` trains the backbone at ``lr * backbone_lr_factor``.
    """
    if transfer not in TRANSFER_MODES:
        raise ModelError(
            "Unknown transfer mode {transfer}; choose one of {modes}.",
            transfer=repr(transfer),
            modes=", ".join(TRANSFER_MODES),
        )
    prefix = head_prefix(model_name) + "."
    head, backbone = [], []
    for pname, param in model.named_parameters():
        (head if pname.startswith(prefix) else backbone).append(param)
    if transfer == "all":
        return [{"params": head + backbone, "lr": lr}]
    if transfer == "freeze":
        for param in backbone:
            param.requires_grad_(False)
        return [{"params": head, "lr": lr}]
    return [{"params": backbone, "lr": lr * backbone_lr_factor}, {"params": head, "lr": lr}]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
