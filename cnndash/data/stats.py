"""A dataset split's per-channel mean/std: the numbers training normalises with.

There is one definition, in :mod:`cnndash.preprocess`: :func:`~cnndash.preprocess.channel_stats` of the
images at :func:`~cnndash.preprocess.stats_indices`, decoded to uint8 at the training size. Training
computes exactly that on its decoded training split; :func:`compute_mean_std` computes it for the Data
page from an :class:`ImageList`, so for the same split and size both give the same numbers.
"""

from __future__ import annotations

import numpy as np
import torch

from cnndash.data.images import DatasetError, ImageList
from cnndash.preprocess import (
    ImageDecodeError,
    array_to_uint8,
    channel_stats,
    image_header,
    images_to_uint8,
    stats_indices,
)


def compute_mean_std(
    images: ImageList, *, channels: int | None = None, size: int | None = None
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of pixel values scaled to [0, 1] (what ``v2.Normalize`` wants).

    Measured like training does: the images at ``stats_indices(len(images))`` decoded as ``channels``
    (default: the list's own, 1 for "L", 3 for "RGB") at ``size``×``size`` pixels, then
    ``channel_stats``. ``size=None`` measures the images at their own size, which needs them to share
    one square size; otherwise pass the training image size.
    """
    if len(images) == 0:
        raise DatasetError("Cannot compute mean/std of an empty image list.")
    channels = images.channels if channels is None else channels
    if channels not in (1, 3):
        raise DatasetError(
            "channels must be 1 (grayscale) or 3 (RGB), got {channels}.", channels=repr(channels)
        )
    picks = stats_indices(len(images))
    if size is None:
        size = _own_size(images, picks)
    return channel_stats(_decode(images, picks, channels=channels, size=size))


def _decode(images: ImageList, picks: np.ndarray, *, channels: int, size: int) -> torch.Tensor:
    """The picked images as ``(N, C, size, size)`` uint8, decoded the way training decodes a split."""
    array = images.uint8_array()
    if array is not None and array.shape[-1] == channels:
        return array_to_uint8(array[picks], size=size)
    # One file decoded at a time, straight into the output (never the whole list at full size).
    lazy = (images[int(i)][0] for i in picks)
    return images_to_uint8(lazy, channels=channels, size=size, count=len(picks))


def _own_size(images: ImageList, picks: np.ndarray) -> int:
    """The side of the picked images when they share one square size, else DatasetError."""
    array = images.uint8_array()
    if array is not None:
        sizes = {(int(array.shape[1]), int(array.shape[2]))}
    else:
        files = images.files or []
        sizes = set()
        for i in picks:
            try:
                width, height, _ = image_header(files[int(i)])  # the header is enough
            except ImageDecodeError as exc:
                raise DatasetError(str(exc)) from None
            sizes.add((height, width))
    if len(sizes) > 1:
        shown = " and ".join(f"{height}×{width}" for h, w in sorted(sizes)[:2])
        raise DatasetError(
            "The images have different sizes (e.g. {shown} pixels); pass size= (the training image size) to "
            "measure them resized as training resizes them.",
            shown=shown,
        )
    (h, w) = sizes.pop()
    if h != w:
        raise DatasetError(
            "The images are {height}×{width} pixels, not square; pass size= (the training image size) to measure "
            "them resized as training resizes them.",
            height=h,
            width=w,
        )
    return h
