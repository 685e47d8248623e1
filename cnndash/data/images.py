"""Labelled images: :class:`ImageList` (one split) and :class:`ImageSet` (a dataset ready for training).

An :class:`ImageList` holds its images either in memory as one ``(N, H, W, C)`` uint8 array (the
built-ins) or as files on disk, decoded on access — one at a time, size-checked and, when large, downscaled
while decoding — by :func:`cnndash.preprocess.read_image`, then :func:`cnndash.preprocess.convert_mode`,
the one rule for turning any PIL mode into ``L`` or ``RGB`` (transparent pixels become white, 16-bit
grayscale is scaled to 8 bits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cnndash.data.names import is_visible
from cnndash.errors import UserError
from cnndash.preprocess import ImageDecodeError, convert_mode, read_image


class DatasetError(UserError):
    """A dataset a user asked for or supplied that cannot be used; the message says how to fix it."""


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def is_image_file(path: Path) -> bool:
    """A visible regular file with an image extension (see ``IMAGE_EXTENSIONS``)."""
    return path.is_file() and is_visible(path) and path.suffix.lower() in IMAGE_EXTENSIONS


def open_image_file(path: Path, mode: str) -> Image.Image:
    """Decode an image file's first frame (animated GIFs) as ``mode`` (``"L"`` or ``"RGB"``).

    A file that does not decode, or has more pixels than allowed, raises :class:`DatasetError` naming it.
    """
    try:
        return convert_mode(read_image(path), mode)
    except ImageDecodeError as exc:
        raise DatasetError(exc.template, **exc.params) from None  # the same words, said in any language


class ImageList:
    """A labelled list of images, indexable: ``images[i] -> (PIL image, class index)``.

    Held either in memory as a ``(N, H, W, C)`` uint8 array (built-ins) or as image files on disk that
    are decoded on access and converted to ``mode`` ("L" or "RGB").
    """

    def __init__(
        self,
        targets: Sequence[int],
        *,
        array: np.ndarray | None = None,
        files: Sequence[Path] | None = None,
        mode: str = "RGB",
        masks: np.ndarray | None = None,
    ) -> None:
        if (array is None) == (files is None):
            raise TypeError("ImageList needs exactly one of array= or files=")
        self.targets: list[int] = [int(t) for t in targets]
        self.masks: np.ndarray | None = masks
        self._array = array
        self._files = [Path(f) for f in files] if files is not None else None
        if array is not None:
            if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] not in (1, 3):
                raise TypeError("array must be uint8 of shape (N, H, W, 1|3)")
            mode = "L" if array.shape[-1] == 1 else "RGB"
        if mode not in ("L", "RGB"):
            raise TypeError(f"mode must be 'L' or 'RGB', not {mode!r}")
        self.mode = mode
        n = len(array) if array is not None else len(self._files or [])
        if n != len(self.targets):
            raise TypeError(f"{n} images but {len(self.targets)} targets")
        if masks is not None and len(masks) != n:
            raise TypeError(f"{n} images but {len(masks)} masks")

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"image index {i} out of range for {n} images")
        i %= n
        if self._array is not None:
            pixels = self._array[i]
            image = Image.fromarray(pixels[..., 0] if self.mode == "L" else pixels, self.mode)
        else:
            assert self._files is not None
            image = open_image_file(self._files[i], self.mode)
        return image, self.targets[i]

    @property
    def channels(self) -> int:
        """1 for grayscale ("L"), 3 for RGB."""
        return 1 if self.mode == "L" else 3

    @property
    def files(self) -> list[Path] | None:
        """The image files, when the images live on disk (else None)."""
        return list(self._files) if self._files is not None else None

    def uint8_array(self) -> np.ndarray | None:
        """``(N, H, W, C)`` uint8 pixels when the images are held in memory, else None."""
        return self._array

    def subset(self, indices: Sequence[int]) -> ImageList:
        """A new list with the images at ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        targets = [self.targets[i] for i in idx]
        masks = self.masks[idx] if self.masks is not None else None
        if self._array is not None:
            return ImageList(targets, array=self._array[idx], masks=masks)
        assert self._files is not None
        return ImageList(targets, files=[self._files[i] for i in idx], mode=self.mode, masks=masks)

    def class_counts(self, num_classes: int) -> list[int]:
        """Number of images of each class index ``0..num_classes-1``."""
        counts = np.bincount(np.asarray(self.targets, dtype=np.int64), minlength=num_classes)
        return [int(c) for c in counts[:num_classes]]

    def first_of_classes(self, classes: Iterable[int], per_class: int) -> dict[int, list[int]]:
        """The indices of the first ``per_class`` images of each class index in ``classes``, in list order
        (an empty list for a class without images)."""
        by_class: dict[int, list[int]] = {int(c): [] for c in classes}
        for index, target in enumerate(self.targets):
            if target in by_class and len(by_class[target]) < per_class:
                by_class[target].append(index)
        return by_class

    def __repr__(self) -> str:
        where = "memory" if self._array is not None else "files"
        return f"ImageList({len(self)} images, mode={self.mode}, in {where})"


@dataclass
class ImageSet:
    """A dataset ready for training: class names, what the model takes, and the train/val split."""

    name: str  # built-in name (with options) or uploaded dataset name or path
    classes: list[str]  # index -> class name, sorted folder names or fixed names for built-ins
    channels: int  # 1 (grayscale) or 3 (RGB): the model's in_channels
    image_size: tuple[int, int] | None  # (h, w) when all images share one size, else None
    train: ImageList
    val: ImageList
    root: Path | None = None  # folder the images live in (folder datasets only)

    @property
    def num_classes(self) -> int:
        return len(self.classes)
