"""The preview grid: a pipeline run N times on one image from a seed, as viewable PIL images."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from cnndash.augment.build import build_steps
from cnndash.augment.checks import step_error, validate_spec
from cnndash.augment.ops import AugmentError, Spec
from cnndash.preprocess import convert_mode, lone_image_mode
from cnndash.text import N_

MAX_SAMPLES = 256  # previews per call: a grid larger than this is no longer a preview
_RNG_LOCK = threading.Lock()  # the preview seeds torch's global generator; one preview at a time


def to_image_tensor(image: Image.Image | torch.Tensor) -> torch.Tensor:
    """A PIL image (any mode) or a (C, H, W) uint8 tensor as a ``tv_tensors.Image``; a PIL image is converted
    as training decodes a lone image (:func:`cnndash.preprocess.lone_image_mode`: grayscale modes to ``L``,
    every other to ``RGB``, transparency on white), which is also what the exported code does."""
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB"):
            image = convert_mode(image, lone_image_mode(image.mode))
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
    if not 1 <= n <= MAX_SAMPLES:
        raise AugmentError(
            "Number of samples must be between 1 and {max_samples}, got {n}.", max_samples=MAX_SAMPLES, n=n
        )
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
                    raise step_error(  # torchvision's own words (library output) stay as they are
                        index, step["op"], None, N_("cannot be applied to this image: {exc}"), exc=exc
                    ) from None
            outputs.append(_display(x, norm))
    return outputs


def _check_fits(index: int, step: dict[str, Any], x: Any) -> None:
    """Refuse what torchvision would silently misuse on this image: a CenterCrop larger than the image
    (padded with black), a Normalize whose mean/std do not match the channels (broadcast)."""
    if step["op"] == "Normalize" and isinstance(x, torch.Tensor):
        channels = x.shape[-3]
        if len(step["mean"]) != channels:
            raise step_error(
                index,
                "Normalize",
                "mean",
                N_("has {count} values but the image has {channels} channel(s); give one per channel."),
                count=len(step["mean"]),
                channels=channels,
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
        raise step_error(
            index,
            step["op"],
            "size",
            N_("crop {crop_h}×{crop_w} is larger than the image ({h}×{w}); make it smaller or Resize first."),
            crop_h=ch, crop_w=cw, h=h, w=w,
        )  # fmt: skip
