"""Preprocessing: the one path from pixels to what a model sees.

Every image that reaches a model — in training, evaluation, Grad-CAM, prediction — goes through here:

- :func:`convert_mode` turns any PIL mode into ``L`` or ``RGB`` with one compositing rule (transparent
  pixels become white, whatever the mode);
- :func:`image_to_uint8` / :func:`images_to_uint8` / :func:`array_to_uint8` give ``(N, C, S, S)`` uint8
  tensors at the model's size (antialiased bilinear resize);
- :func:`normalize_batch` turns uint8 into the float32 ``(x - mean) / std`` the model takes;
- :func:`channel_stats` over :func:`stats_indices` is the single definition of a dataset's mean/std,
  used by the Data page and by training alike;
- :func:`open_image` decodes an uploaded file, refusing what PIL cannot read.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import functional as TF

# ImageNet statistics: pretrained torchvision weights expect inputs normalised with these.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
# For a grayscale model on ImageNet weights: the average of the three channels' statistics.
IMAGENET_GRAY_MEAN = [round(sum(IMAGENET_MEAN) / 3, 3)]
IMAGENET_GRAY_STD = [round(sum(IMAGENET_STD) / 3, 3)]
# Mean/std are measured on at most this many training images, evenly spaced: quick on big datasets and
# within ~0.001 of the full-set value on the built-ins.
STATS_MAX_IMAGES = 2000
_STATS_CHUNK = 4096  # images per float64 chunk when summing statistics (bounds the temporary memory)
_ARRAY_CHUNK = 1024  # images per resize call in array_to_uint8


class ImageDecodeError(ValueError):
    """An uploaded file that is not an image PIL can read; the message names the file."""


def convert_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` as ``mode`` (``"L"`` or ``"RGB"``); transparency is composited on white in every mode."""
    if image.mode == mode:
        return image
    if "A" in image.mode or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert(mode)


def resize_uint8(batch: torch.Tensor, size: int) -> torch.Tensor:
    """``(…, C, H, W)`` uint8 -> ``(…, C, size, size)`` with antialiased bilinear resizing."""
    if batch.shape[-2:] == (size, size):
        return batch
    return TF.resize(batch, [size, size], antialias=True)


def image_to_uint8(image: Image.Image, *, channels: int, size: int) -> torch.Tensor:
    """One PIL image -> ``(C, size, size)`` uint8 (grayscale/RGB conversion, antialiased bilinear)."""
    image = convert_mode(image, "L" if channels == 1 else "RGB")
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True))
    pixels = pixels.unsqueeze(0) if pixels.ndim == 2 else pixels.permute(2, 0, 1)
    return resize_uint8(pixels.contiguous(), size)


def images_to_uint8(images: Sequence[Image.Image], *, channels: int, size: int) -> torch.Tensor:
    """PIL images -> ``(N, C, size, size)`` uint8, the model's input before normalisation."""
    out = torch.empty((len(images), channels, size, size), dtype=torch.uint8)
    for i, image in enumerate(images):
        out[i] = image_to_uint8(image, channels=channels, size=size)
    return out


def array_to_uint8(array: np.ndarray, *, size: int) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 array -> ``(N, C, size, size)`` uint8 (same resize as :func:`image_to_uint8`)."""
    pixels = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2)
    out = torch.empty((len(array), pixels.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, len(array), _ARRAY_CHUNK):
        chunk = pixels[start : start + _ARRAY_CHUNK].contiguous()
        out[start : start + _ARRAY_CHUNK] = resize_uint8(chunk, size)
    return out


def normalize_batch(
    batch: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """uint8 (0–255) or float (0–1) images -> float32 ``(x - mean) / std`` per channel, on batch's device."""
    x = batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch.float()
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


def stats_indices(n: int, limit: int = STATS_MAX_IMAGES) -> np.ndarray:
    """The images (by index, evenly spaced, deterministic) that a dataset's mean/std are measured on."""
    if n <= limit:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0–1 scale) of ``(N, C, H, W)`` uint8 images, as ``v2.Normalize`` wants.

    The std is floored at 0.001 so a constant channel cannot divide by zero.
    """
    if len(images) == 0:
        raise ValueError("Cannot compute mean/std of no images; the dataset split is empty.")
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    count = 0
    for start in range(0, len(images), _STATS_CHUNK):
        x = images[start : start + _STATS_CHUNK].to("cpu", torch.float64).div_(255.0)
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def open_image(data: bytes, name: str = "image") -> Image.Image:
    """Decode an uploaded image file; an unreadable one raises :class:`ImageDecodeError` naming it."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageDecodeError(
            f"{name!r} is not an image PIL can read ({reason}); upload a PNG, JPEG, BMP, GIF or WebP."
        ) from exc
    return image
