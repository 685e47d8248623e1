"""Kernel playground: classic image kernels applied with ``F.conv2d`` to a photo, with stride/padding/dilation.

Images are ``uint8`` arrays, ``(H, W)`` grayscale or ``(H, W, 3)`` RGB; each colour channel is convolved
with the same kernel (a depthwise convolution, ``groups = channels``). Output sizes follow
:func:`cnndash.arith.conv_output_size`, so a stride of 2 halves the picture exactly as a layer would.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cnndash import arith
from cnndash.errors import UserError
from cnndash.preprocess import convert_mode, open_image
from cnndash.text import N_

__all__ = [
    "KERNELS",
    "KernelError",
    "apply_kernel",
    "kernel_array",
    "load_image",
    "sample_photo",
    "to_display",
]

# Names are English keys, marked (N_) so the calculator page shows them translated.
KERNELS: dict[str, list[list[float]]] = {
    N_("identity"): [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    N_("box blur"): [[1 / 9] * 3] * 3,
    N_("Gaussian blur"): [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    N_("sharpen"): [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    N_("Sobel x"): [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    N_("Sobel y"): [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    N_("Laplacian edge"): [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    N_("emboss"): [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}
MAX_KERNEL = 15
SAMPLE_PHOTOS = ("china.jpg", "flower.jpg")


class KernelError(UserError):
    """A kernel or image that cannot be used; the message says what to change."""

    domain = "calculator"  # the kernel playground's messages: ui.user_errors translates them there


def kernel_array(kernel: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The kernel as a float32 ``(kh, kw)`` array; raises KernelError for ragged, empty or non-finite input."""
    try:
        array = np.asarray(kernel, dtype=np.float32)
    except (TypeError, ValueError):
        raise KernelError("the kernel must be a rectangular table of numbers") from None
    if array.ndim != 2 or array.size == 0:
        raise KernelError("the kernel must be a 2-D table of numbers, got shape {shape}", shape=array.shape)
    if max(array.shape) > MAX_KERNEL:
        raise KernelError(
            "the kernel can be at most {most}×{most}, got {h}×{w}",
            most=MAX_KERNEL,
            h=array.shape[0],
            w=array.shape[1],
        )
    if not np.all(np.isfinite(array)):
        raise KernelError("every kernel cell needs a number (empty or non-finite cells found)")
    return array


def _shrink(image, max_side: int):
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR
        )
    return image


def sample_photo(name: str = "china.jpg", max_side: int = 320, *, grayscale: bool = False) -> np.ndarray:
    """One of scikit-learn's bundled sample photos (offline), downscaled to at most ``max_side`` pixels;
    an ``(H, W, 3)`` RGB array, or ``(H, W)`` with ``grayscale=True``.

    The JPEG is read straight from scikit-learn's package folder: importing scikit-learn takes seconds.
    """
    if name not in SAMPLE_PHOTOS:
        raise KernelError(
            "unknown sample photo {name}; choose one of {photos}",
            name=repr(name),
            photos=", ".join(SAMPLE_PHOTOS),
        )
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "images" / name if spec and spec.origin else None
    if path is not None and path.is_file():
        with Image.open(path) as image:
            photo = image.convert("RGB")
    else:  # an unusual scikit-learn layout: let it find its own file
        from sklearn.datasets import load_sample_image

        photo = Image.fromarray(load_sample_image(name))
    return _pixels(_shrink(photo, max_side), grayscale)


def load_image(
    data: bytes, max_side: int = 320, name: str = "upload", *, grayscale: bool = False
) -> np.ndarray:
    """An uploaded image file as an RGB ``uint8`` array (``(H, W)`` with ``grayscale=True``), shrunk to at
    most ``max_side`` pixels with PIL's ``thumbnail`` (bilinear; aspect ratio kept, never enlarged).

    Decoded by :func:`cnndash.preprocess.open_image` (pixel limit, bombs and truncated files refused with
    an :class:`~cnndash.preprocess.ImageDecodeError` naming the file); transparency is composited on white
    (:func:`cnndash.preprocess.convert_mode`)."""
    image = convert_mode(open_image(data, name), "RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return _pixels(image, grayscale)


def _pixels(image: Image.Image, grayscale: bool) -> np.ndarray:
    """The ``(H, W)`` or ``(H, W, 3)`` uint8 array the kernels take."""
    return np.asarray(convert_mode(image, "L") if grayscale else image)


def apply_kernel(
    image: np.ndarray,
    kernel: Sequence[Sequence[float]] | np.ndarray,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
) -> np.ndarray:
    """Convolve every channel of ``image`` with ``kernel`` (``F.conv2d``, cross-correlation as in PyTorch).

    Returns float32 values on the image's 0–255 scale, ``(H', W')`` or ``(H', W', C)`` like the input,
    with ``H', W'`` given by :func:`cnndash.arith.conv_output_size`. Raises ShapeError/KernelError.
    """
    weights = kernel_array(kernel)
    pixels = np.asarray(image)
    if pixels.ndim not in (2, 3):
        raise KernelError("expected an (H, W) or (H, W, C) image, got shape {shape}", shape=pixels.shape)
    planar = pixels[..., None] if pixels.ndim == 2 else pixels
    height, width, channels = planar.shape
    arith.conv_output_size((height, width), weights.shape, stride, padding, dilation)  # ShapeError first
    x = torch.from_numpy(np.ascontiguousarray(planar, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    w = torch.from_numpy(weights).expand(channels, 1, *weights.shape).contiguous()
    with torch.no_grad():
        out = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=channels)
    result = out[0].permute(1, 2, 0).numpy()
    return result[..., 0] if pixels.ndim == 2 else result


def to_display(output: np.ndarray, kernel: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Map a convolution result to ``uint8`` for display.

    Kernels whose weights sum to about 1 (blur, sharpen, emboss, identity) keep the brightness scale and
    are clipped to 0–255; edge detectors (weights summing to about 0) show the edge strength ``|output|``
    stretched so the strongest edge is white.
    """
    weights = kernel_array(kernel)
    if abs(float(weights.sum())) < 1e-3:
        magnitude = np.abs(output)
        peak = float(magnitude.max()) if magnitude.size else 0.0
        scaled = magnitude * (255.0 / peak) if peak > 0 else magnitude
        return np.clip(scaled, 0, 255).astype(np.uint8)
    return np.clip(output, 0, 255).astype(np.uint8)
