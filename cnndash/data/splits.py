"""Train/val splits: a stratified, seeded split and the in-memory :class:`ImageSet` built from one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnndash.data.images import ImageList, ImageSet


def stratified_split(targets: Sequence[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, val): ``round(n * val_fraction)`` of each class in val (at least 1 of a class with
    two or more images), shuffled with ``seed``. Both index lists are returned sorted."""
    rng = np.random.default_rng(seed)
    targets_arr = np.asarray(targets, dtype=np.int64)
    train: list[int] = []
    val: list[int] = []
    for cls in np.unique(targets_arr):
        idx = np.flatnonzero(targets_arr == cls)
        rng.shuffle(idx)
        n_val = round(len(idx) * val_fraction)
        if len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        else:
            n_val = 0
        val.extend(int(i) for i in idx[:n_val])
        train.extend(int(i) for i in idx[n_val:])
    return sorted(train), sorted(val)


def split_images(images: ImageList, val_fraction: float, seed: int) -> tuple[ImageList, ImageList]:
    """``images`` split into (train, val) with :func:`stratified_split`."""
    train_idx, val_idx = stratified_split(images.targets, val_fraction, seed)
    return images.subset(train_idx), images.subset(val_idx)


def split_in_memory(
    name: str,
    classes: Sequence[str],
    images: np.ndarray,
    targets: np.ndarray,
    *,
    masks: np.ndarray | None = None,
    val_fraction: float,
    seed: int,
) -> ImageSet:
    """An :class:`ImageSet` of ``(N, H, W, C)`` uint8 ``images``, split with :func:`stratified_split`."""
    train, val = split_images(ImageList(targets.tolist(), array=images, masks=masks), val_fraction, seed)
    return ImageSet(
        name=name,
        classes=list(classes),
        channels=int(images.shape[-1]),
        image_size=(int(images.shape[1]), int(images.shape[2])),
        train=train,
        val=val,
    )
