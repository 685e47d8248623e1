"""Preprocessing: the one path from pixels to what a model sees.

Every image that reaches a model — in training, evaluation, Grad-CAM, prediction — goes through here:

- :func:`convert_mode` turns any PIL mode into ``L`` or ``RGB`` with one compositing rule (transparent
  pixels become white, whatever the mode);
- :func:`image_to_uint8` / :func:`images_to_uint8` / :func:`array_to_uint8` give ``(N, C, S, S)`` uint8
  tensors at the model's size (antialiased bilinear resize);
- :func:`normalize_batch` turns uint8 into the float32 ``(x - mean) / std`` the model takes;
- :func:`channel_stats` over :func:`stats_indices` is the single definition of a dataset's mean/std,
  used by the Data page and by training alike;
- :func:`read_image` decodes any image file or upload — one image at a time, its size checked before a
  single pixel is decoded, large photos downscaled while decoding — and :func:`open_image` is that for
  uploaded bytes, refusing what PIL cannot read; :func:`open_preview_image` is an upload made ready for
  the augmentation preview.

Limits (each a named default here, overridable by an environment variable; see ``docs/security.md``):
``MAX_IMAGE_PIXELS`` (``CNNDASH_MAX_IMAGE_PIXELS``) and ``DECODE_MIN_SIDE``.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable, Sequence
from struct import error as struct_error
from typing import IO

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from cnndash.errors import UserError
from cnndash.text import N_, Phrase

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

# The most pixels (width × height) one image may have; checked from the header, before decoding.
# 64 MP: phones take 50 MP photos. Decoding such an image needs ~3 bytes per pixel (192 MB) for a moment.
MAX_IMAGE_PIXELS = 64_000_000
MAX_IMAGE_PIXELS_ENV = "CNNDASH_MAX_IMAGE_PIXELS"
# Large images are downscaled while decoding (JPEG: DCT scaling via ``Image.draft``; other formats:
# ``Image.reduce`` by an integer factor) to a shorter side of DECODE_MIN_SIDE..2*DECODE_MIN_SIDE-1 pixels.
# Every path decodes files this way, so training, evaluation and Grad-CAM see the same pixels; images
# whose shorter side is below 2 * DECODE_MIN_SIDE are decoded exactly as stored.
DECODE_MIN_SIDE = 1024
# PIL modes without colour: a folder of only these images is loaded as 1-channel (grayscale).
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})  # scaled to 8 bits (>> 8)
_REDUCIBLE_MODES = frozenset(
    {"L", "RGB", "RGBA", "LA", "I", "F", "CMYK", "YCbCr"}
)  # Image.reduce takes these


def limit_from_env(name: str, default: int) -> int:
    """A positive integer limit from environment variable ``name`` (``default`` when unset or empty)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(
            f"{name}={text!r} is not a positive whole number; fix or unset it (default {default})."
        )
    return value


def max_image_pixels() -> int:
    """``MAX_IMAGE_PIXELS``, or ``$CNNDASH_MAX_IMAGE_PIXELS`` when set."""
    return limit_from_env(MAX_IMAGE_PIXELS_ENV, MAX_IMAGE_PIXELS)


class ImageDecodeError(UserError):
    """A file or upload that is not an image this app can read; the message names the file and why."""


def has_transparency(image: Image.Image) -> bool:
    """An alpha channel (``RGBA``, ``LA``, ``PA``, …) or a transparent colour (PNG ``tRNS``, GIF)."""
    return "A" in image.mode.upper() or "transparency" in image.info


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) grayscale -> ``L``, scaled (high byte), not clipped at 255."""
    pixels = np.asarray(image)
    if pixels.dtype != np.uint16:
        pixels = np.clip(pixels, 0, 65535)
    return Image.fromarray((pixels >> 8).astype(np.uint8), "L")


def lone_image_mode(mode: str) -> str:
    """The mode an image of PIL ``mode`` is decoded to on its own (a one-image folder): ``L`` for the
    grayscale modes, ``RGB`` for every other (a folder of mixed modes is ``RGB`` throughout)."""
    return "L" if mode in GRAY_MODES else "RGB"


def convert_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` as ``mode`` (``"L"`` or ``"RGB"``), one rule for every PIL mode.

    Transparent pixels (alpha channel or transparent colour) are composited on white; 16-bit grayscale is
    scaled to 8 bits (65535 -> 255); everything else is PIL's own conversion.
    """
    if image.mode in SIXTEEN_BIT_MODES:
        image = _sixteen_to_eight(image)  # has no alpha; its tRNS colour is in 16-bit units: dropped
    if has_transparency(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == mode else image.convert(mode)


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


def images_to_uint8(
    images: Iterable[Image.Image], *, channels: int, size: int, count: int | None = None
) -> torch.Tensor:
    """PIL images -> ``(N, C, size, size)`` uint8, the model's input before normalisation.

    ``images`` may be lazy (a generator decoding one file at a time, with ``count`` its length): each image
    is resized straight into the preallocated output and dropped, so memory holds one decoded image at a
    time, never the whole list at full size.
    """
    if count is None:
        images = list(images)
        count = len(images)
    out = torch.empty((count, channels, size, size), dtype=torch.uint8)
    filled = 0
    for i, image in enumerate(images):
        out[i] = image_to_uint8(image, channels=channels, size=size)
        filled = i + 1
    if filled != count:
        raise ValueError(f"images_to_uint8 got {filled} images, expected {count}")
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


def _reason(exc: BaseException) -> str:
    """What went wrong decoding a file, in words (a truncated file says so): PIL's own first line, inside a
    :class:`~cnndash.text.Phrase` of ours when the file is truncated."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return Phrase(N_("the file is truncated: it ends before the image does ({text})"), text=text)
    return text


def _check_pixels(image: Image.Image, name: str) -> None:
    limit = max_image_pixels()
    if image.width * image.height > limit:
        raise ImageDecodeError(
            "{name} is {width}×{height} pixels ({mp:.0f} MP), more than the {limit:g} megapixels allowed "
            "({env}); downscale it.",
            name=name, width=image.width, height=image.height, mp=image.width * image.height / 1e6,
            limit=limit / 1e6, env=MAX_IMAGE_PIXELS_ENV,
        )  # fmt: skip


def _reduction(width: int, height: int) -> int:
    """The integer factor large images are reduced by while decoding (1: decoded as stored)."""
    return max(1, min(width, height) // DECODE_MIN_SIDE)


def _decode_reduced(image: Image.Image) -> Image.Image:
    """Load ``image`` (size already checked), downscaled while decoding when it is large."""
    factor = _reduction(image.width, image.height)
    if factor > 1:  # JPEG decodes at 1/2, 1/4 or 1/8 scale directly; other formats ignore draft
        image.draft(image.mode, (image.width // factor, image.height // factor))
    image.load()
    factor = _reduction(image.width, image.height)
    if factor == 1:
        return image
    if image.mode not in _REDUCIBLE_MODES:  # P, 1, 16-bit: convert with the one rule first
        image = convert_mode(image, "L" if image.mode in GRAY_MODES else "RGB")
    return image.reduce(factor)


def read_image(source: str | os.PathLike | bytes | IO[bytes], name: str | None = None) -> Image.Image:
    """Decode an image file, bytes or binary stream (first frame), refusing anything unsafe or unreadable.

    Width × height is checked from the header before any pixel is decoded (``MAX_IMAGE_PIXELS``); a
    decompression bomb or a file PIL cannot decode raises :class:`ImageDecodeError` naming ``name`` and
    the reason (a truncated file says "truncated"). Large images come back reduced (``DECODE_MIN_SIDE``);
    the mode is the file's own unless reduction needed a conversion to ``L``/``RGB``.
    """
    if name is None:
        name = str(source) if isinstance(source, (str, os.PathLike)) else "image"
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                _check_pixels(image, name)
                image.seek(0)
                # Leaving the block closes the file only; the decoded pixels stay with the image.
                return _decode_reduced(image)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(
            "{name} is a decompression bomb ({reason}); images are limited to {limit:g} megapixels ({env}).",
            name=name, reason=_reason(exc), limit=max_image_pixels() / 1e6, env=MAX_IMAGE_PIXELS_ENV,
        ) from None  # fmt: skip
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct_error) as exc:
        raise ImageDecodeError(
            "{name} does not decode as an image: {reason}.", name=name, reason=_reason(exc)
        ) from None


def image_header(path: str | os.PathLike) -> tuple[int, int, str]:
    """``(width, height, mode)`` of an image file, read from its header only."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.width, image.height, image.mode
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            "{path} is a decompression bomb ({reason}).", path=str(path), reason=_reason(exc)
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(
            "{path} is not a readable image: {reason}.", path=str(path), reason=_reason(exc)
        ) from None


def open_image(data: bytes, name: str = "image") -> Image.Image:
    """Decode an uploaded image file (:func:`read_image`); an unreadable one raises :class:`ImageDecodeError`.

    The message names the file and the reason, and says which formats are accepted when the bytes are
    not an image at all.
    """
    try:
        return read_image(data, repr(name))
    except ImageDecodeError as exc:
        if "cannot identify image file" in str(exc):
            raise ImageDecodeError(
                "{name} is not an image PIL can read; upload a PNG, JPEG, BMP, GIF or WebP.", name=repr(name)
            ) from None
        raise


def open_preview_image(data: bytes, name: str, max_side: int) -> Image.Image:
    """An uploaded image to preview augmentations on: decoded by :func:`open_image`, converted by
    :func:`convert_mode` to :func:`lone_image_mode` (``L`` or ``RGB``, transparency on white), and shrunk in
    place so that its long side is at most ``max_side`` pixels (never enlarged)."""
    image = open_image(data, name)
    if image.mode not in ("L", "RGB"):
        image = convert_mode(image, lone_image_mode(image.mode))
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    return image
