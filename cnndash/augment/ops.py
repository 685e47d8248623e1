"""The catalogue of operations the app offers, the defaults a new step starts from, and the spec types."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torchvision.transforms import v2

from cnndash.errors import UserError
from cnndash.preprocess import IMAGENET_MEAN, IMAGENET_STD
from cnndash.text import N_

Spec = list[dict[str, Any]]


class AugmentError(UserError):
    """A pipeline spec that torchvision would refuse or silently misuse; names the step and argument."""

    def __init__(
        self, message: str, /, *, step: int | None = None, argument: str | None = None, **params: object
    ) -> None:
        super().__init__(message, **params)
        self.step = step  # 0-based index of the offending step, or None for the whole spec
        self.argument = argument


@dataclass(frozen=True)
class OpInfo:
    """One offered transform: what it does and the arguments a newly added step starts with."""

    group: str  # "geometry" | "colour" | "auto" | "tensor" (GROUPS: as a page names them)
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


GROUPS = {"geometry": N_("geometry"), "colour": N_("colour"), "auto": N_("auto"), "tensor": N_("tensor")}
OPS: dict[str, OpInfo] = {
    "Resize": OpInfo(
        "geometry", N_("Resize to a size (an int resizes the shorter side)."), {"size": [224, 224]}
    ),
    "CenterCrop": OpInfo("geometry", N_("Crop the centre to a size."), {"size": [224, 224]}),
    "RandomResizedCrop": OpInfo(
        "geometry",
        N_("Crop a random area (scale) and aspect ratio, then resize to size."),
        {"size": [224, 224], "scale": [0.08, 1.0], "ratio": [0.75, 1.3333333333333333]},
    ),
    "RandomCrop": OpInfo(
        "geometry", N_("Pad, then crop a random window of size."), {"size": [224, 224], "padding": 4}
    ),
    "RandomHorizontalFlip": OpInfo("geometry", N_("Mirror left-right with probability p."), {"p": 0.5}),
    "RandomVerticalFlip": OpInfo("geometry", N_("Flip upside down with probability p."), {"p": 0.5}),
    "RandomRotation": OpInfo(
        "geometry", N_("Rotate by a random angle in degrees."), {"degrees": [-30.0, 30.0]}
    ),
    "RandomAffine": OpInfo(
        "geometry",
        N_("Random rotation, translation (fraction of size), scale and shear."),
        {"degrees": [-15.0, 15.0], "translate": [0.1, 0.1], "scale": [0.9, 1.1]},
    ),
    "RandomPerspective": OpInfo(
        "geometry", N_("Random perspective warp with probability p."), {"distortion_scale": 0.5, "p": 0.5}
    ),
    "ColorJitter": OpInfo(
        "colour",
        N_("Random brightness, contrast, saturation and hue."),
        {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
    ),
    "RandomGrayscale": OpInfo("colour", N_("Convert to grayscale with probability p."), {"p": 0.1}),
    "GaussianBlur": OpInfo(
        "colour", N_("Blur with a random sigma."), {"kernel_size": 5, "sigma": [0.1, 2.0]}
    ),
    "RandomAutocontrast": OpInfo("colour", N_("Autocontrast with probability p."), {"p": 0.5}),
    "RandomEqualize": OpInfo("colour", N_("Histogram equalisation with probability p."), {"p": 0.5}),
    "RandomInvert": OpInfo("colour", N_("Invert colours with probability p."), {"p": 0.5}),
    "RandomPosterize": OpInfo(
        "colour", N_("Keep only `bits` bits per channel with probability p."), {"bits": 4, "p": 0.5}
    ),
    "RandomSolarize": OpInfo(
        "colour",
        N_("Invert pixels above threshold (0–255) with probability p."),
        {"threshold": 128.0, "p": 0.5},
    ),
    "RandomAdjustSharpness": OpInfo(
        "colour", N_("Sharpen (>1) or blur (<1) with probability p."), {"sharpness_factor": 2.0, "p": 0.5}
    ),
    "RandAugment": OpInfo(
        "auto", N_("num_ops random operations of a fixed magnitude."), {"num_ops": 2, "magnitude": 9}
    ),
    "TrivialAugmentWide": OpInfo("auto", N_("One random operation of a random magnitude."), {}),
    "AutoAugment": OpInfo(
        "auto", N_("A learned policy (imagenet, cifar10 or svhn)."), {"policy": "imagenet"}
    ),
    "AugMix": OpInfo("auto", N_("Mix several augmentation chains."), {"severity": 3}),
    "RandomErasing": OpInfo(
        "tensor",
        N_("Erase a random rectangle with probability p (tensor images only)."),
        {"p": 0.5, "scale": [0.02, 0.33], "ratio": [0.3, 3.3], "value": 0.0},
    ),
    "Grayscale": OpInfo(
        "colour", N_("Convert to grayscale (1 or 3 output channels)."), {"num_output_channels": 1}
    ),
    "Pad": OpInfo("geometry", N_("Pad every border by `padding` pixels."), {"padding": 4}),
    "ToImage": OpInfo("tensor", N_("Convert a PIL image to a uint8 tensor image."), {}),
    "ToDtype": OpInfo(
        "tensor",
        N_("Convert to float in [0, 1] (scale=True) — needed before Normalize."),
        {"dtype": "float32", "scale": True},
    ),
    "Normalize": OpInfo(
        "tensor",
        N_("Subtract mean and divide by std per channel (needs a float image: ToDtype first)."),
        {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
    ),
}

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "uint8": torch.uint8,
}
INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic")
POLICIES = {p.value: p for p in v2.AutoAugmentPolicy}
PADDING_MODES = ("constant", "edge", "reflect", "symmetric")
CHOICES: dict[str, Sequence[str]] = {
    "interpolation": INTERPOLATIONS,
    "padding_mode": PADDING_MODES,
    "dtype": list(DTYPES),
    "policy": list(POLICIES),
}


def default_step(op: str) -> dict[str, Any]:
    """A new step of ``op`` with the catalogue's default arguments."""
    if op not in OPS:
        raise AugmentError("Unknown operation {op}; choose one of {ops}.", op=repr(op), ops=", ".join(OPS))
    return {"op": op, **copy.deepcopy(OPS[op].defaults)}


def normalize_step(mean: Sequence[float], std: Sequence[float]) -> dict[str, Any]:
    """A Normalize step with the given per-channel statistics (e.g. a dataset's computed mean/std)."""
    return {"op": "Normalize", "mean": [float(m) for m in mean], "std": [float(s) for s in std]}


def steps_to_add(
    op: str, spec: Sequence[dict], stats: tuple[Sequence[float], Sequence[float]] | None = None
) -> list[dict[str, Any]]:
    """The steps to append to ``spec`` when a person adds ``op``: ``op`` with its default arguments.

    A Normalize gets ``stats`` (a dataset's mean and std) when given, else the catalogue's ImageNet
    statistics, and is preceded by a ToDtype when ``spec`` has none (Normalize needs a float image).
    """
    if op != "Normalize":
        return [default_step(op)]
    steps = [] if any(step.get("op") == "ToDtype" for step in spec) else [default_step("ToDtype")]
    steps.append(normalize_step(*stats) if stats is not None else default_step(op))
    return steps
