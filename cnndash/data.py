"""Datasets: the built-ins, image-folder directories and uploaded zips, and their train/val split.

Everything a page, the trainer or the CLI needs to turn a dataset name into labelled images goes through
:func:`load_dataset`, which returns an :class:`ImageSet` (class names, channel count, and a train and a
val :class:`ImageList`). Built-ins work offline:

- ``digits``: scikit-learn's 8×8 handwritten digits (1797 images, 10 classes), scaled to 0–255.
- ``shapes``: generated images of circles, squares and triangles on a noisy background, each with an
  object mask (Grad-CAM compares its maps to them). Options go in the name:
  ``"shapes:count=300,size=32,seed=1"`` (defaults: 3000 images, 64×64 RGB, seed 0).
- ``mnist``, ``fashion_mnist``, ``cifar10``: torchvision's datasets, read from files placed under
  ``data_dir()/torchvision`` (nothing is downloaded); their official test split is the val split.

Any other name is an uploaded dataset stored under ``data_dir()/datasets/<name>``, or a path to an
image-folder directory (``class_name/*.png`` or ``train/class_name/…`` + ``val/class_name/…``) or zip.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import math
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cnndash import paths


class DatasetError(ValueError):
    """A dataset a user asked for or supplied that cannot be used; the message says how to fix it."""


BUILTIN_DATASETS: dict[str, str] = {
    "digits": "scikit-learn's handwritten digits: 1797 grayscale 8×8 images, 10 classes (offline)",
    "shapes": "generated circles, squares and triangles with object masks, 64×64 RGB (offline)",
    "mnist": "MNIST handwritten digits, 28×28 grayscale, 10 classes (files under the data folder)",
    "fashion_mnist": "Fashion-MNIST clothing, 28×28 grayscale, 10 classes (files under the data folder)",
    "cifar10": "CIFAR-10 photos, 32×32 RGB, 10 classes (files under the data folder)",
}

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SHAPE_CLASSES = ["circle", "square", "triangle"]
SHAPES_DEFAULTS = {"count": 3000, "size": 64, "seed": 0}  # fewer and small CNNs overfit (50–60 % val)
MAX_SHAPES_BYTES = 2**30  # generated shapes are held in memory
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_VAL_DIR_NAMES = ("val", "valid", "validation")


# --------------------------------------------------------------------------------------------------
# Containers


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
            image = _open_image(self._files[i], self.mode)
        return image, self.targets[i]

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


def _open_image(path: Path, mode: str) -> Image.Image:
    with Image.open(path) as img:
        img.seek(0)  # first frame of animated GIFs
        if mode == "RGB" and img.mode in ("RGBA", "LA", "P", "PA"):
            # Composite transparency on white so transparent areas do not turn black.
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        return img.convert(mode)


# --------------------------------------------------------------------------------------------------
# Entry point


def load_dataset(
    name_or_path: str | os.PathLike,
    *,
    data_dir: Path | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> ImageSet:
    """Load a dataset by built-in name, uploaded-dataset name, or image-folder directory / zip path.

    The train/val split is deterministic for the same arguments: datasets with a ``val/`` folder (and
    torchvision's datasets, via their test split) keep theirs; the others get a stratified split with
    ``val_fraction`` of every class in val, shuffled with ``seed``.
    """
    if not isinstance(val_fraction, (int, float)) or not 0.0 < float(val_fraction) < 1.0:
        raise DatasetError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}.")
    base = Path(data_dir) if data_dir is not None else paths.data_dir()
    text = os.fspath(name_or_path)
    builtin, options = _parse_builtin(text)
    if builtin == "digits":
        _no_options(builtin, options)
        return _split_in_memory(text, *_digits(), val_fraction=val_fraction, seed=seed)
    if builtin == "shapes":
        opts = _shapes_options(options)
        images, masks, targets = generate_shapes(**opts)
        return _split_in_memory(
            text, SHAPE_CLASSES, images, targets, masks=masks, val_fraction=val_fraction, seed=seed
        )
    if builtin in ("mnist", "fashion_mnist", "cifar10"):
        _no_options(builtin, options)
        return _torchvision_dataset(builtin, base)

    stored = base / "datasets" / text
    if _is_plain_name(text) and stored.is_dir():
        return load_image_folder(stored, name=text, val_fraction=val_fraction, seed=seed)
    path = Path(text).expanduser()
    if path.is_dir():
        return load_image_folder(path, name=text, val_fraction=val_fraction, seed=seed)
    if path.is_file() and path.suffix.lower() == ".zip":
        root = _extract_cached_zip(path, base)
        return load_image_folder(root, name=text, val_fraction=val_fraction, seed=seed)
    if path.is_file():
        raise DatasetError(f"{text} is a file but not a .zip archive; give an image-folder zip or directory.")
    known = ", ".join(BUILTIN_DATASETS)
    uploaded = list_datasets(base)
    hint = f" Uploaded datasets: {', '.join(uploaded)}." if uploaded else ""
    raise DatasetError(
        f"Unknown dataset {text!r}: not a built-in ({known}), not an uploaded dataset under "
        f"{base / 'datasets'}, and not an existing folder or .zip path.{hint}"
    )


def _is_plain_name(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", text))


def _parse_builtin(text: str) -> tuple[str | None, dict[str, str]]:
    """``"shapes:count=300,size=32"`` -> ("shapes", {"count": "300", "size": "32"})."""
    head, _, tail = text.partition(":")
    head = head.strip().lower()
    if head not in BUILTIN_DATASETS:
        return None, {}
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in tail.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise DatasetError(f"Dataset option {part!r} in {text!r} must look like key=value.")
        options[key.strip()] = value.strip()
    return head, options


def _no_options(name: str, options: dict[str, str]) -> None:
    if options:
        raise DatasetError(f"The {name!r} dataset takes no options; remove {', '.join(options)}.")


def _shapes_options(options: dict[str, str]) -> dict[str, int]:
    out = dict(SHAPES_DEFAULTS)
    for key, value in options.items():
        if key not in out:
            raise DatasetError(
                f"Unknown shapes option {key!r}; use {', '.join(SHAPES_DEFAULTS)} (e.g. shapes:count=300,size=32)."
            )
        try:
            out[key] = int(value)
        except ValueError:
            raise DatasetError(f"shapes option {key}={value!r} must be an integer.") from None
    return out


# --------------------------------------------------------------------------------------------------
# Splits


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


def _split_in_memory(
    name: str,
    classes: list[str],
    images: np.ndarray,
    targets: np.ndarray,
    *,
    masks: np.ndarray | None = None,
    val_fraction: float,
    seed: int,
) -> ImageSet:
    everything = ImageList(targets.tolist(), array=images, masks=masks)
    train_idx, val_idx = stratified_split(everything.targets, val_fraction, seed)
    return ImageSet(
        name=name,
        classes=list(classes),
        channels=int(images.shape[-1]),
        image_size=(int(images.shape[1]), int(images.shape[2])),
        train=everything.subset(train_idx),
        val=everything.subset(val_idx),
    )


# --------------------------------------------------------------------------------------------------
# Built-ins


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[list[str], np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # sklearn's pixels are 0..16; scale to the usual 0..255 uint8 range.
    pixels = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[..., None]
    pixels.flags.writeable = False
    targets = np.asarray(bunch.target, dtype=np.int64)
    return [str(i) for i in range(10)], pixels, targets


@functools.lru_cache(maxsize=4)
def generate_shapes(
    count: int = 3000, size: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate the ``shapes`` dataset: ``(images (N,H,W,3) uint8, masks (N,H,W) bool, targets (N,))``.

    Classes are balanced (``SHAPE_CLASSES``, one after the other, then shuffled); every image has a
    random background colour with pixel noise and one shape of random colour, size, position and
    rotation. The mask marks the shape's pixels. Deterministic for the same arguments.
    """
    if not 3 <= count <= 100_000:
        raise DatasetError(f"shapes count must be between 3 and 100000, got {count}.")
    if not 16 <= size <= 512:
        raise DatasetError(f"shapes size must be between 16 and 512 pixels, got {size}.")
    if count * size * size * 3 > MAX_SHAPES_BYTES:
        raise DatasetError(
            f"shapes with count={count} and size={size} would take {count * size * size * 3 / 2**30:.1f} GiB "
            f"of memory (limit {MAX_SHAPES_BYTES / 2**30:.0f} GiB); lower count or size."
        )
    rng = np.random.default_rng(seed)
    n_classes = len(SHAPE_CLASSES)
    targets = np.arange(count, dtype=np.int64) % n_classes
    rng.shuffle(targets)
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    masks = np.empty((count, size, size), dtype=bool)
    for i, cls in enumerate(targets):
        background = rng.integers(0, 256, size=3)
        colour = rng.integers(0, 256, size=3)
        # Keep the shape visible: push its colour away from the background where they are close.
        if np.abs(colour.astype(int) - background.astype(int)).sum() < 200:
            colour = 255 - background
        radius = rng.uniform(0.18, 0.38) * size
        cx, cy = rng.uniform(radius, size - radius, size=2)
        angle = rng.uniform(0, 2 * math.pi)
        mask_img = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(mask_img)
        if SHAPE_CLASSES[cls] == "circle":
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
        else:
            corners = 4 if SHAPE_CLASSES[cls] == "square" else 3
            points = [
                (
                    cx + radius * math.cos(angle + 2 * math.pi * k / corners),
                    cy + radius * math.sin(angle + 2 * math.pi * k / corners),
                )
                for k in range(corners)
            ]
            draw.polygon(points, fill=255)
        mask = np.asarray(mask_img) > 127
        noise = rng.normal(0.0, 18.0, size=(size, size, 3))
        pixels = np.where(mask[..., None], colour[None, None, :], background[None, None, :]) + noise
        images[i] = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        masks[i] = mask
    for arr in (images, masks, targets):
        arr.flags.writeable = False
    return images, masks, targets


def sample_photos() -> dict[str, Image.Image]:
    """scikit-learn's two real sample photos (``china.jpg``, ``flower.jpg``, 427×640 RGB), by name."""
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    names = [Path(f).name for f in bunch.filenames]
    return {
        name: Image.fromarray(np.asarray(img, dtype=np.uint8), "RGB")
        for name, img in zip(names, bunch.images, strict=True)
    }


_TORCHVISION = {
    # name: (torchvision class, folder under root, files to place)
    "mnist": (
        "MNIST",
        "MNIST/raw",
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte",
    ),
    "fashion_mnist": (
        "FashionMNIST",
        "FashionMNIST/raw",
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte",
    ),
    "cifar10": (
        "CIFAR10",
        "cifar-10-batches-py",
        "the extracted cifar-10-python.tar.gz (data_batch_1..5, test_batch, batches.meta)",
    ),
}


def torchvision_root(data_dir: Path | None = None) -> Path:
    """Folder under which torchvision's dataset files are expected (``data_dir()/torchvision``)."""
    return (Path(data_dir) if data_dir is not None else paths.data_dir()) / "torchvision"


def _torchvision_dataset(name: str, base: Path) -> ImageSet:
    import torchvision.datasets as tvd

    cls_name, folder, files = _TORCHVISION[name]
    root = torchvision_root(base)
    cls = getattr(tvd, cls_name)
    try:
        train = cls(root=str(root), train=True, download=False)
        test = cls(root=str(root), train=False, download=False)
    except RuntimeError:
        raise DatasetError(
            f"The {name} files are not on this machine and cnndash does not download them. Put {files} "
            f"into {root / folder} (as torchvision's {cls_name}(root={str(root)!r}, download=True) would), "
            f"or pick an offline dataset such as 'digits' or 'shapes'."
        ) from None

    def as_array(ds) -> np.ndarray:
        data = np.asarray(ds.data, dtype=np.uint8)
        return data[..., None] if data.ndim == 3 else data

    train_list = ImageList(list(map(int, train.targets)), array=as_array(train))
    val_list = ImageList(list(map(int, test.targets)), array=as_array(test))
    arr = train_list.uint8_array()
    assert arr is not None
    return ImageSet(
        name=name,
        classes=[str(c) for c in train.classes],
        channels=int(arr.shape[-1]),
        image_size=(int(arr.shape[1]), int(arr.shape[2])),
        train=train_list,
        val=val_list,
    )


# --------------------------------------------------------------------------------------------------
# Image folders


def _visible(path: Path) -> bool:
    return not (path.name.startswith(".") or path.name == "__MACOSX" or path.name.startswith("._"))


def is_image_file(path: Path) -> bool:
    return path.is_file() and _visible(path) and path.suffix.lower() in IMAGE_EXTENSIONS


def _class_images(class_dir: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = sorted(d for d in dirnames if _visible(Path(d)))
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            if is_image_file(path):
                out.append(path)
    return out


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and _visible(p))


def find_dataset_root(path: Path) -> Path:
    """The folder holding the class folders (or ``train/``), looking through single wrapper folders."""
    path = Path(path)
    for _ in range(8):
        entries = [p for p in path.iterdir() if _visible(p)]
        dirs = [p for p in entries if p.is_dir()]
        has_images = any(is_image_file(p) for p in entries)
        if len(dirs) == 1 and not has_images and dirs[0].name.lower() != "train":
            inner = dirs[0]
            inner_dirs = _subdirs(inner)
            # Descend only when the single folder itself contains folders (a wrapper), not images.
            if inner_dirs:
                path = inner
                continue
        break
    return path


def _split_dirs(root: Path) -> tuple[Path | None, Path | None]:
    names = {p.name.lower(): p for p in _subdirs(root)}
    train = names.get("train")
    val = next((names[n] for n in _VAL_DIR_NAMES if n in names), None)
    return train, val


def scan_image_folder(
    root: Path, *, shown_as: str | None = None
) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """Classes and files of an image-folder dataset: ``(classes, {"all"|"train"|"val": [(file, label)]})``.

    Raises :class:`DatasetError` for fewer than two classes or a class folder without images.
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
            f"{shown(root)} has a {val_dir.name}/ folder but no train/ folder; add train/<class>/ images "
            "or put the class folders at the top level."
        )
    parts = {"train": train_dir, "val": val_dir} if train_dir is not None else {"all": root}
    found: dict[str, dict[str, list[Path]]] = {}
    for part, folder in parts.items():
        if folder is None:
            continue
        found[part] = {d.name: _class_images(d) for d in _subdirs(folder)}
    folder_of = {part: folder for part, folder in parts.items() if folder is not None}
    main = found.get("train", found.get("all", {}))
    classes = sorted(main)
    where = train_dir or root
    if len(classes) < 2:
        raise DatasetError(
            f"{shown(where)} has {len(classes)} class folder(s) ({', '.join(classes) or 'none'}); an image "
            "classifier needs at least 2 — put each class's images in its own folder "
            "(e.g. cats/*.jpg, dogs/*.jpg)."
        )
    for part, by_class in found.items():
        empty = [c for c, files in by_class.items() if not files]
        if empty:
            raise DatasetError(
                f"Class folder(s) {', '.join(empty)} in {shown(folder_of[part])} contain no images "
                f"({', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder(s)."
            )
    if "val" in found:
        extra = sorted(set(found["val"]) - set(classes))
        if extra:
            raise DatasetError(
                f"val/ has class folder(s) {', '.join(extra)} that train/ lacks; every val class needs "
                "training images too."
            )
    index = {c: i for i, c in enumerate(classes)}
    return classes, {
        part: [(f, index[c]) for c in sorted(by_class) for f in by_class[c]]
        for part, by_class in found.items()
    }


def _image_properties(files: Sequence[Path]) -> tuple[int, tuple[int, int] | None]:
    """(channels, common (h, w) or None), reading only the image headers."""
    gray = True
    sizes: set[tuple[int, int]] = set()
    for path in files:
        try:
            with Image.open(path) as img:
                sizes.add((img.height, img.width))
                gray = gray and img.mode in _GRAY_MODES
        except OSError as exc:
            raise DatasetError(f"{path} is not a readable image ({exc}); remove or replace it.") from None
    return (1 if gray else 3), (sizes.pop() if len(sizes) == 1 else None)


def load_image_folder(
    path: Path, *, name: str | None = None, val_fraction: float = 0.2, seed: int = 0
) -> ImageSet:
    """Load an image-folder directory (see the module docstring for the layouts it accepts)."""
    if not 0.0 < float(val_fraction) < 1.0:
        raise DatasetError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}.")
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path} is not a folder.")
    root = find_dataset_root(path)
    classes, parts = scan_image_folder(root)
    all_files = [f for items in parts.values() for f, _ in items]
    channels, image_size = _image_properties(all_files)
    mode = "L" if channels == 1 else "RGB"
    if "all" in parts:
        items = parts["all"]
        everything = ImageList([t for _, t in items], files=[f for f, _ in items], mode=mode)
        train_idx, val_idx = stratified_split(everything.targets, val_fraction, seed)
        train, val = everything.subset(train_idx), everything.subset(val_idx)
    else:
        train_items = parts["train"]
        train = ImageList([t for _, t in train_items], files=[f for f, _ in train_items], mode=mode)
        val_items = parts.get("val")
        if val_items:
            val = ImageList([t for _, t in val_items], files=[f for f, _ in val_items], mode=mode)
        else:  # train/ without val/: split train
            train_idx, val_idx = stratified_split(train.targets, val_fraction, seed)
            train, val = train.subset(train_idx), train.subset(val_idx)
    return ImageSet(
        name=name or path.name,
        classes=classes,
        channels=channels,
        image_size=image_size,
        train=train,
        val=val,
        root=root,
    )


# --------------------------------------------------------------------------------------------------
# Stored (uploaded) datasets


def datasets_dir(data_dir: Path | None = None) -> Path:
    """Folder holding uploaded datasets: ``data_dir()/datasets``."""
    return (Path(data_dir) if data_dir is not None else paths.data_dir()) / "datasets"


def list_datasets(data_dir: Path | None = None) -> list[str]:
    """Names of the uploaded datasets, sorted."""
    folder = datasets_dir(data_dir)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and _visible(p))


# --------------------------------------------------------------------------------------------------
# Safe extraction of uploaded zips

# Limits for untrusted archives (keyword arguments of extract_image_zip override them).
MAX_ZIP_FILES = 50_000  # entries in the archive
MAX_ZIP_TOTAL_BYTES = 4 * 2**30  # uncompressed bytes of everything extracted
MAX_ZIP_ENTRY_BYTES = 256 * 2**20  # uncompressed bytes of one entry
MAX_ZIP_RATIO = 200  # uncompressed / compressed size of one entry (checked beyond RATIO_FLOOR bytes)
RATIO_FLOOR = 2**20  # small entries (a flat-colour BMP) may compress well without being a bomb
MAX_IMAGE_PIXELS = 64_000_000  # one decoded image
_CHUNK = 2**16
IMPORT_RECORD = ".cnndash-import.json"  # hidden file in a stored dataset: skipped files from the upload


@dataclass(frozen=True)
class SkippedFile:
    """A file of an uploaded archive that is not part of the dataset, and why."""

    path: str
    reason: str


def _is_zip_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _is_special(info: zipfile.ZipInfo) -> bool:
    kind = stat.S_IFMT(info.external_attr >> 16)
    return kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def _safe_parts(name: str) -> list[str]:
    """Path components of an archive entry name, or DatasetError for names that could escape."""
    if "\x00" in name:
        raise DatasetError(
            f"Archive entry {name!r} has a NUL byte in its name; the zip is not safe to extract."
        )
    normal = name.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        raise DatasetError(
            f"Archive entry {name!r} has an absolute path; refusing to extract it. Zip the folder with "
            "relative paths (e.g. `zip -r data.zip cats dogs`)."
        )
    parts = [p for p in normal.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DatasetError(
            f"Archive entry {name!r} contains '..' (it would be written outside the dataset folder); "
            "refusing to extract it."
        )
    return parts


def _skip_reason(parts: list[str]) -> str | None:
    if any(p == "__MACOSX" for p in parts):
        return "macOS metadata (__MACOSX)"
    if any(p.startswith(".") for p in parts):
        return "hidden file"
    if Path(parts[-1]).suffix.lower() not in IMAGE_EXTENSIONS:
        suffix = Path(parts[-1]).suffix.lower() or "no extension"
        return f"not an image ({suffix})"
    return None


def _copy_bounded(
    source, target: Path, info: zipfile.ZipInfo, *, budget: int, max_entry: int, max_ratio: float
) -> int:
    """Stream one entry to ``target`` without trusting the sizes in its header; return bytes written."""
    written = 0
    compressed = max(info.compress_size, 1)
    with open(target, "xb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > max_entry:
                raise DatasetError(
                    f"Archive entry {info.filename!r} unpacks to more than {max_entry // 2**20} MiB; "
                    "refusing it as a possible zip bomb."
                )
            if written > budget:
                raise DatasetError(
                    "The archive unpacks to more than the allowed total size; refusing it as a possible "
                    "zip bomb. Split the dataset or remove large files."
                )
            if written > RATIO_FLOOR and written / compressed > max_ratio:
                raise DatasetError(
                    f"Archive entry {info.filename!r} is compressed more than {max_ratio:g}:1, which "
                    "is typical of a zip bomb; refusing the archive."
                )
            out.write(chunk)
    return written


def _check_images(root: Path) -> None:
    """Decode every image fully: a file that does not decode rejects the upload, naming the file."""
    for path in sorted(root.rglob("*")):
        if not is_image_file(path) or any(not _visible(Path(p)) for p in path.relative_to(root).parts):
            continue
        rel = path.relative_to(root).as_posix()
        try:
            with Image.open(path) as img:
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    raise DatasetError(
                        f"{rel} is {img.width}×{img.height} pixels, more than the "
                        f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels allowed; downscale it."
                    )
                img.load()
        except DatasetError:
            raise
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"{rel} does not decode as an image ({exc}); remove or replace it.") from None


def _extract_to(
    zip_path: Path,
    target: Path,
    *,
    max_files: int,
    max_total_bytes: int,
    max_entry_bytes: int,
    max_ratio: float,
) -> list[SkippedFile]:
    skipped: list[SkippedFile] = []
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise DatasetError(
            f"{Path(zip_path).name} is not a zip archive (or it is corrupt); upload a .zip of class folders."
        ) from None
    except OSError as exc:
        raise DatasetError(f"Cannot read {zip_path}: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > max_files:
            raise DatasetError(
                f"The archive has {len(infos)} entries, more than the {max_files} allowed; split it into "
                "smaller datasets."
            )
        declared = sum(max(i.file_size, 0) for i in infos)
        if declared > max_total_bytes:
            raise DatasetError(
                f"The archive would unpack to {declared / 2**20:.0f} MiB, more than the "
                f"{max_total_bytes / 2**20:.0f} MiB allowed; split it or remove large files."
            )
        # Check every name before writing anything.
        plan: list[tuple[zipfile.ZipInfo, list[str]]] = []
        seen: set[str] = set()
        for info in infos:
            parts = _safe_parts(info.filename)
            if _is_zip_symlink(info) or _is_special(info):
                raise DatasetError(
                    f"Archive entry {info.filename!r} is a symbolic link or special file; refusing the "
                    "archive. Zip real files only."
                )
            if not parts:
                continue
            key = "/".join(parts).lower()
            if key in seen and not info.is_dir():
                raise DatasetError(f"Archive entry {info.filename!r} appears twice; remove the duplicate.")
            seen.add(key)
            plan.append((info, parts))
        budget = max_total_bytes
        for info, parts in plan:
            if info.is_dir():
                if _skip_reason([*parts, "x.png"]) is None:
                    target.joinpath(*parts).mkdir(parents=True, exist_ok=True)
                continue
            reason = _skip_reason(parts)
            if reason is not None:
                skipped.append(SkippedFile("/".join(parts), reason))
                if reason.startswith("not an image") and len(parts) > 1:
                    # Keep its folder, so a class holding only non-images is reported as empty.
                    target.joinpath(*parts[:-1]).mkdir(parents=True, exist_ok=True)
                continue
            if info.flag_bits & 0x1:
                raise DatasetError(
                    f"Archive entry {info.filename!r} is encrypted; upload an unencrypted zip."
                )
            out_path = target.joinpath(*parts)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as source:
                    budget -= _copy_bounded(
                        source,
                        out_path,
                        info,
                        budget=budget,
                        max_entry=max_entry_bytes,
                        max_ratio=max_ratio,
                    )
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise DatasetError(
                    f"Archive entry {info.filename!r} is corrupt ({exc}); re-create the zip."
                ) from None
            except FileExistsError:
                raise DatasetError(
                    f"Archive entry {info.filename!r} collides with another entry; rename one of them."
                ) from None
    return skipped


def extract_image_zip(
    zip_path: str | os.PathLike,
    dest_dir: str | os.PathLike,
    *,
    max_files: int = MAX_ZIP_FILES,
    max_total_bytes: int = MAX_ZIP_TOTAL_BYTES,
    max_entry_bytes: int = MAX_ZIP_ENTRY_BYTES,
    max_ratio: float = MAX_ZIP_RATIO,
) -> Path:
    """Safely extract an uploaded image-folder archive into ``dest_dir``; return the dataset root.

    The archive is untrusted: entries with absolute paths, ``..`` or symlinks, too many entries, too many
    bytes or a suspicious compression ratio, a corrupt or non-zip file, images that do not decode, fewer
    than 2 classes or an empty class raise :class:`DatasetError`. ``__MACOSX/``, hidden files and
    non-images are skipped (listed in ``<dest_dir>/.cnndash-import.json``). Everything is unpacked into
    a temporary folder inside ``dest_dir`` and moved into place only once it validates; on error nothing
    is left behind (``dest_dir`` is removed again if this call created it).
    """
    dest = Path(dest_dir)
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        skipped = _extract_to(
            Path(zip_path),
            staging,
            max_files=max_files,
            max_total_bytes=max_total_bytes,
            max_entry_bytes=max_entry_bytes,
            max_ratio=max_ratio,
        )
        if not any(is_image_file(p) for p in staging.rglob("*")):
            raise DatasetError(
                "The archive contains no images (.png, .jpg, .jpeg, .bmp, .gif, .webp); it needs one "
                "folder per class with images inside."
            )
        _check_images(staging)
        root_in_staging = find_dataset_root(staging)
        _, parts = scan_image_folder(staging, shown_as="the archive")
        used = {f.resolve() for items in parts.values() for f, _ in items}
        for path in sorted(staging.rglob("*")):
            if is_image_file(path) and path.resolve() not in used:
                rel = path.relative_to(staging).as_posix()
                skipped.append(SkippedFile(rel, "not inside a class folder"))
        clashes = [p.name for p in staging.iterdir() if (dest / p.name).exists()]
        if clashes:
            raise DatasetError(f"{dest} already contains {', '.join(clashes)}; extract into an empty folder.")
        for entry in staging.iterdir():
            os.replace(entry, dest / entry.name)
        root = dest / root_in_staging.relative_to(staging)
        record = {"zip": Path(zip_path).name, "skipped": [[s.path, s.reason] for s in skipped]}
        (dest / IMPORT_RECORD).write_text(json.dumps(record, indent=1))
        return root
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_cached_zip(zip_path: Path, base: Path) -> Path:
    """Extract a zip given by path (CLI) once, into ``data_dir()/cache/zips/<content hash>``."""
    digest = hashlib.sha256()
    with open(zip_path, "rb") as fh:
        while chunk := fh.read(2**20):
            digest.update(chunk)
    dest = base / "cache" / "zips" / digest.hexdigest()[:16]
    if (dest / IMPORT_RECORD).is_file():
        return find_dataset_root(dest)
    shutil.rmtree(dest, ignore_errors=True)
    return extract_image_zip(zip_path, dest)


# --------------------------------------------------------------------------------------------------
# Stored datasets: import, report, delete

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def dataset_name_from(filename: str) -> str:
    """A valid dataset name derived from an upload's file name (``"My Pets!.zip"`` -> ``"My-Pets"``)."""
    stem = Path(filename).stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:64]
    return name or "dataset"


def check_dataset_name(name: str) -> str:
    """Return ``name`` if it can name a stored dataset, else raise :class:`DatasetError` saying why."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise DatasetError(
            f"Dataset name {name!r} is not allowed: use 1–64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    if name.lower() in BUILTIN_DATASETS:
        raise DatasetError(f"{name!r} is the name of a built-in dataset; choose another name.")
    return name


@dataclass
class ValidationReport:
    """What an uploaded dataset contains, for people: shown on the page after an upload."""

    name: str
    root: Path
    classes: list[str]
    counts: dict[str, int]  # images per class (train + val)
    split_counts: dict[str, dict[str, int]]  # {"train": {...}, "val": {...}} or {"all": {...}}
    sizes: dict[tuple[int, int], int]  # (h, w) -> number of images
    modes: dict[str, int]  # PIL mode -> number of images
    skipped: list[SkippedFile]
    warnings: list[str]

    @property
    def num_images(self) -> int:
        return sum(self.counts.values())


FEW_IMAGES = 10  # a class with fewer images than this gets a warning
IMBALANCE_RATIO = 3.0  # largest / smallest class above this gets a warning


def validate_image_folder(root: Path, *, name: str | None = None) -> ValidationReport:
    """Scan an image-folder dataset and report classes, counts, sizes, modes, skipped files, warnings."""
    root = Path(root)
    data_root = find_dataset_root(root)
    classes, parts = scan_image_folder(data_root)
    split_counts = {
        part: {c: sum(1 for _, t in items if t == i) for i, c in enumerate(classes)}
        for part, items in parts.items()
    }
    counts = {c: sum(sc.get(c, 0) for sc in split_counts.values()) for c in classes}
    sizes: collections.Counter[tuple[int, int]] = collections.Counter()
    modes: collections.Counter[str] = collections.Counter()
    for items in parts.values():
        for path, _ in items:
            with Image.open(path) as img:
                sizes[(img.height, img.width)] += 1
                modes[img.mode] += 1
    skipped: list[SkippedFile] = []
    for folder in (data_root, root):
        record = folder / IMPORT_RECORD
        if record.is_file():
            try:
                data = json.loads(record.read_text())
                skipped = [SkippedFile(str(p), str(r)) for p, r in data.get("skipped", [])]
            except (ValueError, TypeError):
                skipped = []
            break
    warnings: list[str] = []
    few = [f"{c} ({n})" for c, n in counts.items() if n < FEW_IMAGES]
    if few:
        warnings.append(
            f"Very few images in {', '.join(few)}: fewer than {FEW_IMAGES} per class gives unreliable "
            "training and validation; add more images."
        )
    largest = max(counts, key=lambda c: counts[c])
    smallest = min(counts, key=lambda c: counts[c])
    if counts[smallest] and counts[largest] / counts[smallest] > IMBALANCE_RATIO:
        warnings.append(
            f"Class imbalance: {largest!r} has {counts[largest]} images but {smallest!r} only "
            f"{counts[smallest]} ({counts[largest] / counts[smallest]:.1f}×); accuracy will favour the "
            "large classes — add images or watch per-class accuracy."
        )
    families = {_mode_family(m) for m in modes}
    if len(families) > 1:
        listed = ", ".join(f"{m}: {n}" for m, n in sorted(modes.items()))
        warnings.append(
            f"Mixed image modes ({listed}): every image will be converted to "
            f"{'RGB' if families != {'grayscale'} else 'grayscale'} (transparent areas become white)."
        )
    return ValidationReport(
        name=name or root.name,
        root=data_root,
        classes=classes,
        counts=counts,
        split_counts=split_counts,
        sizes=dict(sizes),
        modes=dict(modes),
        skipped=skipped,
        warnings=warnings,
    )


def _mode_family(mode: str) -> str:
    if mode in ("RGBA", "LA", "PA") or mode.endswith("A"):
        return "with transparency"
    if mode in _GRAY_MODES:
        return "grayscale"
    return "colour"


def import_dataset_zip(
    zip_path: str | os.PathLike,
    name: str | None = None,
    *,
    data_dir: Path | None = None,
    on_exists: str = "error",
) -> ValidationReport:
    """Extract an uploaded zip into ``data_dir()/datasets/<name>`` and return its validation report.

    ``name`` defaults to the zip's file name. When a dataset of that name exists, ``on_exists="error"``
    raises :class:`DatasetError` and ``"suffix"`` stores it as ``<name>-2``, ``<name>-3``, …
    (never overwriting).
    """
    if on_exists not in ("error", "suffix"):
        raise ValueError("on_exists must be 'error' or 'suffix'")
    name = check_dataset_name(name if name is not None else dataset_name_from(Path(zip_path).name))
    folder = datasets_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    chosen = name
    number = 2
    while (folder / chosen).exists():
        if on_exists == "error":
            raise DatasetError(
                f"A dataset named {name!r} already exists; choose another name or delete it first."
            )
        chosen = f"{name[:60]}-{number}"
        number += 1
    extract_image_zip(zip_path, folder / chosen)
    return validate_image_folder(folder / chosen, name=chosen)


def dataset_report(name: str, *, data_dir: Path | None = None) -> ValidationReport:
    """Validation report of a stored dataset."""
    path = datasets_dir(data_dir) / check_dataset_name(name)
    if not path.is_dir():
        raise DatasetError(f"No uploaded dataset named {name!r} under {path.parent}.")
    return validate_image_folder(path, name=name)


def delete_dataset(name: str, *, data_dir: Path | None = None) -> None:
    """Delete a stored dataset folder."""
    path = datasets_dir(data_dir) / check_dataset_name(name)
    if not path.is_dir():
        raise DatasetError(f"No uploaded dataset named {name!r} under {path.parent}; nothing deleted.")
    shutil.rmtree(path)


# --------------------------------------------------------------------------------------------------
# Statistics


def compute_mean_std(images: ImageList, *, max_images: int = 2000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of pixel values scaled to [0, 1] (what ``v2.Normalize`` wants).

    Uses at most ``max_images`` images, evenly spaced through the list, so it stays quick on large
    datasets; the result is deterministic.
    """
    if len(images) == 0:
        raise DatasetError("Cannot compute mean/std of an empty image list.")
    count = min(len(images), max_images)
    picks = np.unique(np.linspace(0, len(images) - 1, count).round().astype(np.int64))
    array = images.uint8_array()
    if array is not None:
        pixels = array[picks].astype(np.float64) / 255.0
        flat = pixels.reshape(-1, pixels.shape[-1])
        return flat.mean(axis=0).tolist(), flat.std(axis=0).tolist()
    total = total_sq = None
    n = 0
    for i in picks:
        image, _ = images[int(i)]
        pixels = np.asarray(image, dtype=np.float64) / 255.0
        flat = pixels.reshape(-1, 1 if pixels.ndim == 2 else pixels.shape[-1])
        total = flat.sum(axis=0) if total is None else total + flat.sum(axis=0)
        total_sq = (flat**2).sum(axis=0) if total_sq is None else total_sq + (flat**2).sum(axis=0)
        n += flat.shape[0]
    assert total is not None and total_sq is not None
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
    return mean.tolist(), std.tolist()
