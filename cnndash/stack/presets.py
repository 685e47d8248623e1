"""Ready-made layer stacks from the tutorials (LeNet-5, AlexNet, VGG-16, a ResNet and a MobileNet block),
written as the rows a person would type into the layer-stack editor (see :mod:`cnndash.stack`).

The numbers are the published architectures' own (channels, kernel sizes, strides); each preset's note
says where they come from and what the stack shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnndash.text import N_

__all__ = ["PRESETS", "Preset"]


@dataclass(frozen=True)
class Preset:
    """A ready-made stack from the tutorials, with the input it was designed for."""

    name: str
    input_shape: tuple[int, int, int]
    layers: tuple[Mapping[str, Any], ...]
    residual: bool = False
    note: str = ""


def _conv(
    cin: int, cout: int, k: Any, s: Any = None, p: Any = None, groups: int | None = None, bias: bool = True
):
    return {
        "layer": "Conv2d",
        "in": cin,
        "out": cout,
        "kernel": str(k),
        "stride": s,
        "padding": p,
        "groups": groups,
        "bias": bias,
    }


def _pool(kind: str, k: int, s: int | None = None) -> dict[str, Any]:
    return {"layer": kind, "kernel": str(k), "stride": None if s is None else str(s)}


def _linear(cin: int, cout: int) -> dict[str, Any]:
    return {"layer": "Linear", "in": cin, "out": cout, "bias": True}


def _simple(kind: str, **values: Any) -> dict[str, Any]:
    return {"layer": kind, **values}


def _vgg16() -> tuple[dict[str, Any], ...]:
    rows: list[dict[str, Any]] = []
    cin = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            rows.append(_pool("MaxPool2d", 2, 2))
        else:
            rows += [_conv(cin, int(v), 3, p="1"), _simple("ReLU")]
            cin = int(v)
    rows += [
        _simple("AdaptiveAvgPool2d", out="7"),
        _simple("Flatten"),
        _linear(512 * 7 * 7, 4096),
        _simple("ReLU"),
        _simple("Dropout", p=0.5),
        _linear(4096, 4096),
        _simple("ReLU"),
        _simple("Dropout", p=0.5),
        _linear(4096, 1000),
    ]
    return tuple(rows)


_RELU = _simple("ReLU")
PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "LeNet-5 (1×28×28)",
            (1, 28, 28),
            (
                _conv(1, 6, 5, p="2"),
                _RELU,
                _pool("AvgPool2d", 2, 2),
                _conv(6, 16, 5),
                _RELU,
                _pool("AvgPool2d", 2, 2),
                _simple("Flatten"),
                _linear(400, 120),
                _RELU,
                _linear(120, 84),
                _RELU,
                _linear(84, 10),
            ),
            note=N_("LeNet-5 for MNIST: padding 2 keeps 28×28 so the classifier sees 16×5×5 = 400 features."),
        ),
        Preset(
            "LeNet-5 (3×32×32)",
            (3, 32, 32),
            (
                _conv(3, 6, 5),
                _RELU,
                _pool("MaxPool2d", 2, 2),
                _conv(6, 16, 5),
                _RELU,
                _pool("MaxPool2d", 2, 2),
                _simple("Flatten"),
                _linear(400, 120),
                _RELU,
                _linear(120, 84),
                _RELU,
                _linear(84, 10),
            ),
            note=N_("LeNet-5 for CIFAR-10 (the PyTorch tutorial's net): 32 → 28 → 14 → 10 → 5."),
        ),
        Preset(
            "AlexNet (3×224×224)",
            (3, 224, 224),
            (
                _conv(3, 64, 11, s="4", p="2"),
                _RELU,
                _pool("MaxPool2d", 3, 2),
                _conv(64, 192, 5, p="2"),
                _RELU,
                _pool("MaxPool2d", 3, 2),
                _conv(192, 384, 3, p="1"),
                _RELU,
                _conv(384, 256, 3, p="1"),
                _RELU,
                _conv(256, 256, 3, p="1"),
                _RELU,
                _pool("MaxPool2d", 3, 2),
                _simple("AdaptiveAvgPool2d", out="6"),
                _simple("Flatten"),
                _simple("Dropout", p=0.5),
                _linear(256 * 6 * 6, 4096),
                _RELU,
                _simple("Dropout", p=0.5),
                _linear(4096, 4096),
                _RELU,
                _linear(4096, 1000),
            ),
            note=N_("torchvision's AlexNet (61.1 M parameters): 224 → 55 → 27 → 13 → 6."),
        ),
        Preset(
            "VGG-16 (3×224×224)",
            (3, 224, 224),
            _vgg16(),
            note=N_(
                "torchvision's VGG-16 (138.4 M parameters): 13 3×3 convolutions, 5 pools, 4096-wide head."
            ),
        ),
        Preset(
            "ResNet basic block (64×56×56)",
            (64, 56, 56),
            (
                _conv(64, 64, 3, p="1", bias=False),
                _simple("BatchNorm2d", **{"in": 64}),
                _RELU,
                _conv(64, 64, 3, p="1", bias=False),
                _simple("BatchNorm2d", **{"in": 64}),
            ),
            residual=True,
            note=N_("ResNet-18's first block: two 3×3 convolutions, output = ReLU(stack(x) + x)."),
        ),
        Preset(
            "MobileNet depthwise-separable block (32×112×112)",
            (32, 112, 112),
            (
                _conv(32, 32, 3, p="1", groups=32, bias=False),
                _simple("BatchNorm2d", **{"in": 32}),
                _RELU,
                _conv(32, 64, 1, bias=False),
                _simple("BatchNorm2d", **{"in": 64}),
                _RELU,
            ),
            note=N_(
                "A 3×3 depthwise convolution (groups = channels) then a 1×1 pointwise one: "
                "32·9 + 32·64 weights instead of 32·64·9."
            ),
        ),
    )
}
