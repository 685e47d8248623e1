"""Image-folder datasets on disk: finding the root, scanning classes and files, loading with a split.

Accepted layouts: ``class_name/*.png`` or ``train/class_name/…`` + ``val/class_name/…`` (``valid/`` and
``validation/`` work too), optionally wrapped in single top-level folders. Images may sit in subfolders
of a class folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cnndash.data.images import (
    IMAGE_EXTENSIONS,
    DatasetError,
    ImageList,
    ImageSet,
    is_image_file,
    is_visible,
)
from cnndash.data.splits import split_images
from cnndash.preprocess import GRAY_MODES, ImageDecodeError, image_header

VAL_DIR_NAMES = ("val", "valid", "validation")
MAX_WRAPPER_DEPTH = 8  # single wrapper folders looked through (a zip of a folder of a folder …)

# One split's files: (file, class index) in class order, then file order.
Items = list[tuple[Path, int]]


def _class_images(class_dir: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = sorted(d for d in dirnames if is_visible(Path(d)))
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            if is_image_file(path):
                out.append(path)
    return out


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and is_visible(p))


def find_dataset_root(path: Path) -> Path:
    """The folder holding the class folders (or ``train/``), looking through single wrapper folders."""
    path = Path(path)
    for _ in range(MAX_WRAPPER_DEPTH):
        entries = [p for p in path.iterdir() if is_visible(p)]
        dirs = [p for p in entries if p.is_dir()]
        has_images = any(is_image_file(p) for p in entries)
        # Descend only when the single folder itself contains folders (a wrapper), not images.
        if len(dirs) == 1 and not has_images and dirs[0].name.lower() != "train" and _subdirs(dirs[0]):
            path = dirs[0]
            continue
        break
    return path


def _split_dirs(root: Path) -> tuple[Path | None, Path | None]:
    names = {p.name.lower(): p for p in _subdirs(root)}
    train = names.get("train")
    val = next((names[n] for n in VAL_DIR_NAMES if n in names), None)
    return train, val


def scan_image_folder(root: Path, *, shown_as: str | None = None) -> tuple[list[str], dict[str, Items]]:
    """Classes and files of an image-folder dataset: ``(classes, {"all"|"train"|"val": [(file, label)]})``.

    Raises :class:`DatasetError` for fewer than two classes or a class folder without images.
    ``shown_as`` names the dataset in messages (folders are then shown relative to ``root``).
    """
    given = Path(root)
    root = find_dataset_root(given)

    def shown(folder: Path) -> str:
        """Folder name for messages: relative to the archive when scanning an upload."""
        if shown_as is None:
            return str(folder)
        rel = folder.relative_to(given).as_posix()
        return shown_as if rel == "." else f"{rel}/ in {shown_as}"

    train_dir, val_dir = _split_dirs(root)
    if train_dir is None and val_dir is not None:
        raise DatasetError(
            "{shown} has a {val_dir_name}/ folder but no train/ folder; add train/<class>/ images or put "
            "the class folders at the top level.",
            shown=shown(root),
            val_dir_name=val_dir.name,
        )
    folders = {"train": train_dir, "val": val_dir} if train_dir is not None else {"all": root}
    folders = {part: folder for part, folder in folders.items() if folder is not None}
    found = {part: {d.name: _class_images(d) for d in _subdirs(folder)} for part, folder in folders.items()}
    classes = sorted(found.get("train", found.get("all", {})))
    _check_classes(classes, found, {part: shown(folder) for part, folder in folders.items()})
    index = {c: i for i, c in enumerate(classes)}
    return classes, {
        part: [(f, index[c]) for c in sorted(by_class) for f in by_class[c]]
        for part, by_class in found.items()
    }


def _check_classes(
    classes: list[str], found: dict[str, dict[str, list[Path]]], shown: dict[str, str]
) -> None:
    """At least two classes, no empty class folder, no val class that train lacks."""
    if len(classes) < 2:
        raise DatasetError(
            "{folder} has {n_classes} class folder(s) ({classes}); an image classifier needs at least 2 — put "
            "each class's images in its own folder (e.g. cats/*.jpg, dogs/*.jpg).",
            folder=shown.get("train", shown.get("all")),
            n_classes=len(classes),
            classes=", ".join(classes) or "none",
        )
    for part, by_class in found.items():
        empty = [c for c, files in by_class.items() if not files]
        if empty:
            raise DatasetError(
                "Class folder(s) {empty} in {shown} contain no images ({image_extensions}); add images or "
                "remove the folder(s).",
                empty=", ".join(empty),
                shown=shown[part],
                image_extensions=", ".join(IMAGE_EXTENSIONS),
            )
    extra = sorted(set(found.get("val", {})) - set(classes))
    if extra:
        raise DatasetError(
            "val/ has class folder(s) {extra} that train/ lacks; every val class needs training images too.",
            extra=", ".join(extra),
        )


def image_properties(files: Sequence[Path]) -> tuple[int, tuple[int, int] | None]:
    """(channels, common (h, w) or None), reading only the image headers."""
    gray = True
    sizes: set[tuple[int, int]] = set()
    for path in files:
        try:
            width, height, mode = image_header(path)
        except ImageDecodeError as exc:
            raise DatasetError("{exc} Remove or replace it.", exc=exc) from None
        sizes.add((height, width))
        gray = gray and mode in GRAY_MODES
    return (1 if gray else 3), (sizes.pop() if len(sizes) == 1 else None)


def _image_list(items: Items, mode: str) -> ImageList:
    return ImageList([t for _, t in items], files=[f for f, _ in items], mode=mode)


def load_image_folder(
    path: Path, *, name: str | None = None, val_fraction: float = 0.2, seed: int = 0
) -> ImageSet:
    """Load an image-folder directory (see the module docstring for the layouts it accepts).

    A ``val/`` folder is the val split; otherwise ``val_fraction`` of every class is split off with
    ``seed`` (:func:`cnndash.data.splits.stratified_split`).
    """
    check_val_fraction(val_fraction)
    path = Path(path)
    if not path.is_dir():
        raise DatasetError("{path} is not a folder.", path=path)
    root = find_dataset_root(path)
    classes, parts = scan_image_folder(root)
    return image_set(name or path.name, root, classes, parts, val_fraction=val_fraction, seed=seed)


def check_val_fraction(val_fraction: float) -> None:
    if not isinstance(val_fraction, (int, float)) or not 0.0 < float(val_fraction) < 1.0:
        raise DatasetError(
            "val_fraction must be between 0 and 1 (exclusive), got {val_fraction}.",
            val_fraction=repr(val_fraction),
        )


def image_set(
    name: str, root: Path, classes: list[str], parts: dict[str, Items], *, val_fraction: float, seed: int
) -> ImageSet:
    """The :class:`ImageSet` of image files already sorted into ``parts`` (``all`` | ``train`` + ``val``):
    a ``val`` part is the val split; otherwise ``val_fraction`` of every class is split off with ``seed``."""
    channels, image_size = image_properties([f for items in parts.values() for f, _ in items])
    mode = "L" if channels == 1 else "RGB"
    if parts.get("val"):
        train, val = _image_list(parts["train"], mode), _image_list(parts["val"], mode)
    else:  # one folder of classes, or train/ without val/: split it
        train, val = split_images(_image_list(parts.get("all") or parts["train"], mode), val_fraction, seed)
    return ImageSet(
        name=name, classes=classes, channels=channels, image_size=image_size, train=train, val=val, root=root
    )
