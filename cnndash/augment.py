"""Augmentation pipelines: a JSON spec <-> a torchvision ``v2.Compose`` <-> standalone Python code.

A spec is a list of steps ``{"op": NAME, **kwargs}`` where NAME is a ``torchvision.transforms.v2`` class
name from :data:`OPS` and kwargs are its constructor arguments (lists where torchvision takes tuples,
dtypes as strings such as ``"float32"``). The same spec drives the preview on the Data page, the saved
pipelines the trainer uses and the exported code, so the three never disagree.

- :func:`build_pipeline` validates a spec (naming the step and the argument in an :class:`AugmentError`)
  and builds the Compose.
- :func:`pipeline_code` writes standalone code that builds the same Compose: with the same
  ``torch.manual_seed`` both give identical outputs.
- :func:`augment_samples` runs a pipeline N times on one image from a seed (the preview grid).
- :func:`save_pipeline` / :func:`load_pipeline` / :func:`list_pipelines` keep named specs as JSON under
  ``data_dir()/pipelines/``.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import numbers
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from cnndash import paths

Spec = list[dict[str, Any]]


class AugmentError(ValueError):
    """A pipeline spec that torchvision would refuse or silently misuse; names the step and argument."""

    def __init__(self, message: str, *, step: int | None = None, argument: str | None = None) -> None:
        super().__init__(message)
        self.step = step  # 0-based index of the offending step, or None for the whole spec
        self.argument = argument


# --------------------------------------------------------------------------------------------------
# The catalogue of operations the app offers, with the defaults a new step starts from.


@dataclass(frozen=True)
class OpInfo:
    """One offered transform: what it does and the arguments a newly added step starts with."""

    group: str  # "geometry" | "colour" | "auto" | "tensor"
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


OPS: dict[str, OpInfo] = {
    "Resize": OpInfo("geometry", "Resize to a size (an int resizes the shorter side).", {"size": [224, 224]}),
    "CenterCrop": OpInfo("geometry", "Crop the centre to a size.", {"size": [224, 224]}),
    "RandomResizedCrop": OpInfo(
        "geometry",
        "Crop a random area (scale) and aspect ratio, then resize to size.",
        {"size": [224, 224], "scale": [0.08, 1.0], "ratio": [0.75, 1.3333333333333333]},
    ),
    "RandomCrop": OpInfo(
        "geometry", "Pad, then crop a random window of size.", {"size": [224, 224], "padding": 4}
    ),
    "RandomHorizontalFlip": OpInfo("geometry", "Mirror left-right with probability p.", {"p": 0.5}),
    "RandomVerticalFlip": OpInfo("geometry", "Flip upside down with probability p.", {"p": 0.5}),
    "RandomRotation": OpInfo("geometry", "Rotate by a random angle in degrees.", {"degrees": [-30.0, 30.0]}),
    "RandomAffine": OpInfo(
        "geometry",
        "Random rotation, translation (fraction of size), scale and shear.",
        {"degrees": [-15.0, 15.0], "translate": [0.1, 0.1], "scale": [0.9, 1.1]},
    ),
    "RandomPerspective": OpInfo(
        "geometry", "Random perspective warp with probability p.", {"distortion_scale": 0.5, "p": 0.5}
    ),
    "ColorJitter": OpInfo(
        "colour",
        "Random brightness, contrast, saturation and hue.",
        {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
    ),
    "RandomGrayscale": OpInfo("colour", "Convert to grayscale with probability p.", {"p": 0.1}),
    "GaussianBlur": OpInfo("colour", "Blur with a random sigma.", {"kernel_size": 5, "sigma": [0.1, 2.0]}),
    "RandomAutocontrast": OpInfo("colour", "Autocontrast with probability p.", {"p": 0.5}),
    "RandomEqualize": OpInfo("colour", "Histogram equalisation with probability p.", {"p": 0.5}),
    "RandomInvert": OpInfo("colour", "Invert colours with probability p.", {"p": 0.5}),
    "RandomPosterize": OpInfo(
        "colour", "Keep only `bits` bits per channel with probability p.", {"bits": 4, "p": 0.5}
    ),
    "RandomSolarize": OpInfo(
        "colour", "Invert pixels above threshold (0–255) with probability p.", {"threshold": 128.0, "p": 0.5}
    ),
    "RandomAdjustSharpness": OpInfo(
        "colour", "Sharpen (>1) or blur (<1) with probability p.", {"sharpness_factor": 2.0, "p": 0.5}
    ),
    "RandAugment": OpInfo(
        "auto", "num_ops random operations of a fixed magnitude.", {"num_ops": 2, "magnitude": 9}
    ),
    "TrivialAugmentWide": OpInfo("auto", "One random operation of a random magnitude.", {}),
    "AutoAugment": OpInfo("auto", "A learned policy (imagenet, cifar10 or svhn).", {"policy": "imagenet"}),
    "AugMix": OpInfo("auto", "Mix several augmentation chains.", {"severity": 3}),
    "RandomErasing": OpInfo(
        "tensor",
        "Erase a random rectangle with probability p (tensor images only).",
        {"p": 0.5, "scale": [0.02, 0.33], "ratio": [0.3, 3.3], "value": 0.0},
    ),
    "Grayscale": OpInfo(
        "colour", "Convert to grayscale (1 or 3 output channels).", {"num_output_channels": 1}
    ),
    "Pad": OpInfo("geometry", "Pad every border by `padding` pixels.", {"padding": 4}),
    "ToImage": OpInfo("tensor", "Convert a PIL image to a uint8 tensor image.", {}),
    "ToDtype": OpInfo(
        "tensor",
        "Convert to float in [0, 1] (scale=True) — needed before Normalize.",
        {"dtype": "float32", "scale": True},
    ),
    "Normalize": OpInfo(
        "tensor",
        "Subtract mean and divide by std per channel (needs a float image: ToDtype first).",
        {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
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
        raise AugmentError(f"Unknown operation {op!r}; choose one of {', '.join(OPS)}.")
    return {"op": op, **copy.deepcopy(OPS[op].defaults)}


def normalize_step(mean: Sequence[float], std: Sequence[float]) -> dict[str, Any]:
    """A Normalize step with the given per-channel statistics (e.g. a dataset's computed mean/std)."""
    return {"op": "Normalize", "mean": [float(m) for m in mean], "std": [float(s) for s in std]}


# --------------------------------------------------------------------------------------------------
# Validation


def _where(index: int, op: str, argument: str | None = None) -> str:
    place = f"Step {index + 1} ({op})"
    return f"{place}, argument '{argument}'" if argument else place


def _fail(index: int, op: str, argument: str | None, problem: str) -> AugmentError:
    return AugmentError(f"{_where(index, op, argument)}: {problem}", step=index, argument=argument)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_numbers(index: int, op: str, arg: str, value: Any, length: int | None = None) -> list[float]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values or not all(_is_number(v) for v in values):
        raise _fail(index, op, arg, f"expected numbers, got {value!r}.")
    if length is not None and len(values) != length:
        raise _fail(index, op, arg, f"expected {length} numbers, got {len(values)} ({value!r}).")
    return [float(v) for v in values]


def _check_range(
    index: int,
    op: str,
    arg: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    single_ok: bool = False,
) -> None:
    """``value`` is a [min, max] pair (or a single number when ``single_ok``) inside [low, high]."""
    if single_ok and _is_number(value):
        values = [float(value)]
    else:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            shape = "a number or " if single_ok else ""
            raise _fail(index, op, arg, f"expected {shape}a [min, max] pair, got {value!r}.")
        values = _check_numbers(index, op, arg, value, 2)
        if values[0] > values[1]:
            raise _fail(index, op, arg, f"min {values[0]:g} is larger than max {values[1]:g}; swap them.")
    for v in values:
        if low is not None and (v < low or (low_open and v == low)):
            bound = f"greater than {low:g}" if low_open else f"at least {low:g}"
            raise _fail(index, op, arg, f"{v:g} must be {bound}.")
        if high is not None and v > high:
            raise _fail(index, op, arg, f"{v:g} must be at most {high:g}.")


def _check_size(index: int, op: str, arg: str, value: Any) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not 1 <= len(values) <= 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise _fail(index, op, arg, f"expected a positive integer or [height, width], got {value!r}.")


def _check_step(index: int, step: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(step, dict):
        raise AugmentError(
            f"Step {index + 1} must be a dict like {{'op': 'RandomRotation', ...}}, got {step!r}.", step=index
        )
    if "op" not in step:
        raise AugmentError(f"Step {index + 1} has no 'op'; choose one of {', '.join(OPS)}.", step=index)
    op = step["op"]
    if op not in OPS:
        raise AugmentError(
            f"Step {index + 1}: unknown operation {op!r}; choose one of {', '.join(OPS)}.",
            step=index,
            argument="op",
        )
    kwargs = {k: v for k, v in step.items() if k != "op"}
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError):
        raise _fail(
            index, op, None, "arguments must be plain JSON values (numbers, strings, lists)."
        ) from None
    cls = getattr(v2, op)
    params = inspect.signature(cls.__init__).parameters
    allowed = [name for name in params if name not in ("self", "inplace")]
    for name in kwargs:
        if name not in allowed:
            raise _fail(
                index, op, name, f"unknown argument; {op} takes {', '.join(allowed) or 'no arguments'}."
            )
    missing = [
        name
        for name, p in params.items()
        if name in allowed and p.default is inspect.Parameter.empty and name not in kwargs
    ]
    if missing:
        raise _fail(index, op, missing[0], "is required.")

    for name, value in kwargs.items():
        if name == "p":
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise _fail(index, op, "p", f"probability must be between 0 and 1, got {value!r}.")
        elif name == "size":
            _check_size(index, op, name, value)
        elif name in CHOICES and value not in CHOICES[name]:
            raise _fail(index, op, name, f"use one of {', '.join(CHOICES[name])}, got {value!r}.")

    if op == "RandomResizedCrop":
        if "scale" in kwargs:
            _check_range(index, op, "scale", kwargs["scale"], low=0.0, high=1.0, low_open=True)
        if "ratio" in kwargs:
            _check_range(index, op, "ratio", kwargs["ratio"], low=0.0, low_open=True)
    elif op == "RandomErasing":
        if "scale" in kwargs:
            _check_range(index, op, "scale", kwargs["scale"], low=0.0, high=1.0, low_open=True)
        if "ratio" in kwargs:
            _check_range(index, op, "ratio", kwargs["ratio"], low=0.0, low_open=True)
        value = kwargs.get("value", 0.0)
        if not (_is_number(value) or value == "random" or isinstance(value, list)):
            raise _fail(index, op, "value", f"use a number, a list per channel, or 'random', got {value!r}.")
    elif op in ("RandomRotation", "RandomAffine"):
        degrees = kwargs.get("degrees")
        if _is_number(degrees):
            if degrees < 0:
                raise _fail(
                    index, op, "degrees", f"a single angle must be non-negative (means ±{-degrees:g})."
                )
        else:
            _check_range(index, op, "degrees", degrees)
        if op == "RandomAffine":
            if kwargs.get("translate") is not None:
                values = _check_numbers(index, op, "translate", kwargs["translate"], 2)
                if not all(0.0 <= v <= 1.0 for v in values):
                    raise _fail(index, op, "translate", "fractions of the size must be between 0 and 1.")
            if kwargs.get("scale") is not None:
                _check_range(index, op, "scale", kwargs["scale"], low=0.0, low_open=True)
            if kwargs.get("shear") is not None:
                shear = kwargs["shear"]
                if _is_number(shear):
                    if shear < 0:
                        raise _fail(index, op, "shear", "a single shear angle must be non-negative.")
                else:
                    values = _check_numbers(index, op, "shear", shear)
                    if (
                        len(values) not in (2, 4)
                        or values[0] > values[1]
                        or (len(values) == 4 and values[2] > values[3])
                    ):
                        raise _fail(
                            index, op, "shear", "use [min, max] or [xmin, xmax, ymin, ymax] with min ≤ max."
                        )
    elif op == "ColorJitter":
        for name in ("brightness", "contrast", "saturation"):
            if kwargs.get(name) is not None:
                _check_range(index, op, name, kwargs[name], low=0.0, single_ok=True)
        if kwargs.get("hue") is not None:
            hue = kwargs["hue"]
            if _is_number(hue):
                _check_range(index, op, "hue", hue, low=0.0, high=0.5, single_ok=True)
            else:
                _check_range(index, op, "hue", hue, low=-0.5, high=0.5)
    elif op == "GaussianBlur":
        ks = kwargs.get("kernel_size")
        values = ks if isinstance(ks, list) else [ks]
        if not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 and v % 2 == 1 for v in values
        ) or len(values) not in (1, 2):
            raise _fail(index, op, "kernel_size", f"must be a positive odd integer (e.g. 3, 5), got {ks!r}.")
        if "sigma" in kwargs:
            _check_range(index, op, "sigma", kwargs["sigma"], low=0.0, low_open=True, single_ok=True)
    elif op == "RandomPerspective":
        ds = kwargs.get("distortion_scale", 0.5)
        if not _is_number(ds) or not 0.0 <= ds <= 1.0:
            raise _fail(index, op, "distortion_scale", f"must be between 0 and 1, got {ds!r}.")
    elif op == "RandAugment":
        bins = kwargs.get("num_magnitude_bins", 31)
        magnitude = kwargs.get("magnitude", 9)
        num_ops = kwargs.get("num_ops", 2)
        if not isinstance(bins, int) or bins < 2:
            raise _fail(index, op, "num_magnitude_bins", f"must be an integer ≥ 2, got {bins!r}.")
        if not isinstance(magnitude, int) or not 0 <= magnitude < bins:
            raise _fail(
                index, op, "magnitude", f"must be an integer from 0 to {bins - 1}, got {magnitude!r}."
            )
        if not isinstance(num_ops, int) or num_ops < 0:
            raise _fail(index, op, "num_ops", f"must be a non-negative integer, got {num_ops!r}.")
    elif op == "TrivialAugmentWide":
        bins = kwargs.get("num_magnitude_bins", 31)
        if not isinstance(bins, int) or bins < 2:
            raise _fail(index, op, "num_magnitude_bins", f"must be an integer ≥ 2, got {bins!r}.")
    elif op == "Normalize":
        mean = _check_numbers(index, op, "mean", kwargs["mean"])
        std = _check_numbers(index, op, "std", kwargs["std"])
        if len(mean) != len(std):
            raise _fail(
                index, op, "std", f"has {len(std)} values but mean has {len(mean)}; give one per channel."
            )
        if any(s <= 0 for s in std):
            raise _fail(index, op, "std", f"every std must be positive, got {kwargs['std']!r}.")
    elif op == "RandomPosterize":
        bits = kwargs.get("bits")
        if not isinstance(bits, int) or not 1 <= bits <= 8:
            raise _fail(index, op, "bits", f"must be an integer from 1 to 8, got {bits!r}.")
    elif op == "RandomSolarize":
        threshold = kwargs.get("threshold")
        if not _is_number(threshold) or not 0 <= threshold <= 255:
            raise _fail(
                index, op, "threshold", f"must be between 0 and 255 (uint8 images), got {threshold!r}."
            )
    elif op == "RandomAdjustSharpness":
        factor = kwargs.get("sharpness_factor")
        if not _is_number(factor) or factor < 0:
            raise _fail(index, op, "sharpness_factor", f"must be a non-negative number, got {factor!r}.")
    elif op == "Grayscale":
        if kwargs.get("num_output_channels", 1) not in (1, 3):
            raise _fail(index, op, "num_output_channels", "must be 1 or 3.")
    elif op in ("RandomCrop", "Pad"):
        padding = kwargs.get("padding")
        if padding is not None:
            values = padding if isinstance(padding, list) else [padding]
            if len(values) not in (1, 2, 4) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values
            ):
                raise _fail(
                    index, op, "padding", f"use a non-negative integer or a list of 2 or 4, got {padding!r}."
                )
    return op, kwargs


def _to_python(value: Any) -> Any:
    """JSON value -> the value torchvision gets (lists become tuples, nested)."""
    if isinstance(value, list):
        return tuple(_to_python(v) for v in value)
    return value


def _constructor_kwargs(op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in kwargs.items():
        if op == "ToDtype" and name == "dtype":
            out[name] = DTYPES[value]
        elif op == "AutoAugment" and name == "policy":
            out[name] = POLICIES[value]
        elif op == "Normalize" and name in ("mean", "std"):
            out[name] = [float(v) for v in value]
        else:
            out[name] = _to_python(value)
    return out


def validate_spec(spec: Any) -> Spec:
    """Check a spec without building it; return it as a list of plain dicts (a deep copy)."""
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence):
        raise AugmentError(f"A pipeline spec must be a list of steps, got {type(spec).__name__}.")
    steps = [copy.deepcopy(dict(step)) if isinstance(step, dict) else step for step in spec]
    float_seen = False
    for index, step in enumerate(steps):
        op, kwargs = _check_step(index, step)
        if op == "ToDtype":
            float_seen = kwargs["dtype"] != "uint8"
            if float_seen and not kwargs.get("scale", False):
                raise _fail(
                    index,
                    op,
                    "scale",
                    "set scale=True: without it uint8 pixels stay 0–255 as floats and Normalize misbehaves.",
                )
        elif op == "Normalize" and not float_seen:
            raise _fail(
                index,
                op,
                None,
                "Normalize needs a float image: add a ToDtype step (dtype 'float32', scale=True) before it.",
            )
        elif float_seen and OPS[op].group == "auto":
            raise _fail(index, op, None, "auto-augment policies need uint8 images: move it before ToDtype.")
    return steps


def build_steps(spec: Spec) -> list[v2.Transform]:
    """The validated spec's transforms, one per step (what :func:`build_pipeline` composes)."""
    steps = validate_spec(spec)
    transforms = []
    for index, step in enumerate(steps):
        op = step["op"]
        kwargs = _constructor_kwargs(op, {k: v for k, v in step.items() if k != "op"})
        try:
            transforms.append(getattr(v2, op)(**kwargs))
        except (TypeError, ValueError) as exc:
            raise _fail(index, op, None, f"torchvision refuses these arguments: {exc}") from None
    return transforms


def build_pipeline(spec: Spec) -> v2.Compose:
    """Validate ``spec`` and build its ``torchvision.transforms.v2.Compose``."""
    return v2.Compose(build_steps(spec))


# --------------------------------------------------------------------------------------------------
# Code export


def _literal(op: str, name: str, value: Any) -> str:
    if op == "ToDtype" and name == "dtype":
        return f"torch.{value}"
    if op == "AutoAugment" and name == "policy":
        return f"v2.AutoAugmentPolicy.{POLICIES[value].name}"
    if op == "Normalize" and name in ("mean", "std"):
        return repr([float(v) for v in value])
    return repr(_to_python(value))


def pipeline_code(spec: Spec) -> str:
    """Standalone Python source defining ``transform``, equal in effect to ``build_pipeline(spec)``."""
    steps = validate_spec(spec)
    build_steps(steps)  # refuse to export what would not build
    lines = [
        "# Augmentation pipeline exported from cnndash.",
        "# transform(image) takes a PIL image or a uint8 tensor (C, H, W); with the same",
        "# torch.manual_seed it gives the same outputs as the cnndash preview.",
        "import torch",
        "from torchvision.transforms import v2",
        "",
        "transform = v2.Compose(",
        "    [",
    ]
    for step in steps:
        op = step["op"]
        args = ", ".join(f"{k}={_literal(op, k, v)}" for k, v in step.items() if k != "op")
        lines.append(f"        v2.{op}({args}),")
    lines += ["    ]", ")", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Preview

_RNG_LOCK = threading.Lock()  # the preview seeds torch's global generator; one preview at a time


def to_image_tensor(image: Image.Image | torch.Tensor) -> torch.Tensor:
    """A PIL image (any mode) or a (C, H, W) uint8 tensor as a ``tv_tensors.Image``."""
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        return v2.functional.to_image(image)
    if isinstance(image, torch.Tensor) and image.ndim == 3:
        return tv_tensors.Image(image)
    raise TypeError("expected a PIL image or a (C, H, W) tensor")


def _display(out: Any, norm: tuple[list[float], list[float]] | None) -> Image.Image:
    """A transform output as a viewable PIL image (floats clamped; Normalize undone)."""
    if isinstance(out, Image.Image):
        return out
    tensor = torch.as_tensor(out).detach()
    if tensor.is_floating_point():
        tensor = tensor.float()
        if norm is not None:
            mean = torch.tensor(norm[0]).view(-1, 1, 1)
            std = torch.tensor(norm[1]).view(-1, 1, 1)
            tensor = tensor * std + mean
        tensor = (tensor.clamp(0, 1) * 255).round().to(torch.uint8)
    array = tensor.permute(1, 2, 0).numpy()
    if array.shape[-1] == 1:
        return Image.fromarray(np.ascontiguousarray(array[..., 0]), "L")
    return Image.fromarray(np.ascontiguousarray(array[..., :3]), "RGB")


def augment_samples(
    spec: Spec, image: Image.Image | torch.Tensor, n: int = 8, seed: int = 0
) -> list[Image.Image]:
    """Apply the pipeline ``n`` times to ``image`` after ``torch.manual_seed(seed)``; return viewable images.

    Sample ``k`` equals the ``k``-th call of ``build_pipeline(spec)`` (or the exported code) on
    ``to_image_tensor(image)`` after ``torch.manual_seed(seed)``. An error while running a step (e.g. a
    crop larger than the image) becomes an :class:`AugmentError` naming the step. torch's global random
    state is restored afterwards.
    """
    if not 1 <= n <= 256:
        raise AugmentError(f"Number of samples must be between 1 and 256, got {n}.")
    steps = validate_spec(spec)
    transforms = build_steps(steps)
    norm = next(((s["mean"], s["std"]) for s in reversed(steps) if s["op"] == "Normalize"), None)
    source = to_image_tensor(image)
    outputs = []
    with _RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(n):
            x: Any = source
            for index, (step, transform) in enumerate(zip(steps, transforms, strict=True)):
                _check_fits(index, step, x)
                try:
                    x = transform(x)
                except (ValueError, TypeError, RuntimeError) as exc:
                    raise _fail(index, step["op"], None, f"cannot be applied to this image: {exc}") from None
            outputs.append(_display(x, norm))
    return outputs


def _check_fits(index: int, step: dict[str, Any], x: Any) -> None:
    """Refuse what torchvision would silently misuse on this image: a CenterCrop larger than the image
    (padded with black), a Normalize whose mean/std do not match the channels (broadcast)."""
    if step["op"] == "Normalize" and isinstance(x, torch.Tensor):
        channels = x.shape[-3]
        if len(step["mean"]) != channels:
            raise _fail(
                index,
                "Normalize",
                "mean",
                f"has {len(step['mean'])} values but the image has {channels} channel(s); give one per channel.",
            )
        return
    if step["op"] not in ("CenterCrop", "RandomCrop") or step.get("pad_if_needed"):
        return
    h, w = v2.functional.get_size(x)
    size = step["size"]
    ch, cw = (size, size) if isinstance(size, int) else (size[0], size[-1])
    if step["op"] == "RandomCrop" and step.get("padding") is not None:
        return  # torchvision reports the padded size itself
    if ch > h or cw > w:
        raise _fail(
            index,
            step["op"],
            "size",
            f"crop {ch}×{cw} is larger than the image ({h}×{w}); make it smaller or Resize first.",
        )


def spec_summary(spec: Spec) -> str:
    """One line for people: ``"RandomRotation(degrees=[-30, 30]) → ColorJitter(...)"``."""
    parts = []
    for step in spec:
        args = ", ".join(f"{k}={v}" for k, v in step.items() if k != "op")
        parts.append(f"{step.get('op')}({args})")
    return " → ".join(parts) if parts else "(no augmentation)"


# --------------------------------------------------------------------------------------------------
# Named pipelines on disk

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def pipelines_dir(data_dir: Path | None = None) -> Path:
    return (Path(data_dir) if data_dir is not None else paths.data_dir()) / "pipelines"


def _pipeline_path(name: str, data_dir: Path | None) -> Path:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise AugmentError(
            f"Pipeline name {name!r} is not allowed: use 1–64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return pipelines_dir(data_dir) / f"{name}.json"


def save_pipeline(name: str, spec: Spec, *, data_dir: Path | None = None) -> Path:
    """Validate ``spec`` and store it as ``data_dir()/pipelines/<name>.json`` (replacing that name)."""
    path = _pipeline_path(name, data_dir)
    steps = validate_spec(spec)
    build_steps(steps)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(steps, indent=2))
    tmp.replace(path)
    return path


def load_pipeline(name: str, *, data_dir: Path | None = None) -> Spec:
    """The spec saved under ``name`` (validated)."""
    path = _pipeline_path(name, data_dir)
    if not path.is_file():
        available = ", ".join(list_pipelines(data_dir=data_dir)) or "none saved yet"
        raise AugmentError(f"No saved pipeline named {name!r} (available: {available}).")
    try:
        spec = json.loads(path.read_text())
    except ValueError as exc:
        raise AugmentError(f"Saved pipeline {name!r} ({path}) is not valid JSON: {exc}") from None
    return validate_spec(spec)


def list_pipelines(*, data_dir: Path | None = None) -> list[str]:
    """Names of the saved pipelines, sorted."""
    folder = pipelines_dir(data_dir)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if _NAME_RE.fullmatch(p.stem))


def delete_pipeline(name: str, *, data_dir: Path | None = None) -> None:
    path = _pipeline_path(name, data_dir)
    if not path.is_file():
        raise AugmentError(f"No saved pipeline named {name!r}; nothing deleted.")
    path.unlink()
