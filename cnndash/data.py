"""Datasets: the built-ins, image-folder directories and uploaded zips, and their train/val split.

Everything a page, the trainer or the CLI needs to turn a dataset name into labelled images goes through
:func:`load_dataset`, which returns an :class:`ImageSet` (class names, channel count, and a train and a
val :class:`ImageList`). Built-ins work offline:

- ``digits``: scikit-learn's 8×8 handwritten digits (1797 images, 10 classes), scaled to 0–255.
- ``shapes``: generated images of circles, squares and triangles on a noisy background, each with an
  object mask (Grad-CAM compares its maps to them). Options go in the name:
  ``"shapes:count=300,size=32,seed=1"`` (defaults: 600 images, 64×64 RGB, seed 0).
- ``mnist``, ``fashion_mnist``, ``cifar10``: torchvision's datasets, read from files placed under
  ``data_dir()/torchvision`` (nothing is downloaded); their official test split is the val split.

Any other name is an uploaded dataset stored under ``data_dir()/datasets/<name>``, or a path to an
image-folder directory (``class_name/*.png`` or ``train/class_name/…`` + ``val/class_name/…``) or zip.
"""

from __future__ import annotations

import functools
import math
import os
import re
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
SHAPES_DEFAULTS = {"count": 600, "size": 64, "seed": 0}
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
    count: int = 600, size: int = 64, seed: int = 0
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


def scan_image_folder(root: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """Classes and files of an image-folder dataset: ``(classes, {"all"|"train"|"val": [(file, label)]})``.

    Raises :class:`DatasetError` for fewer than two classes or a class folder without images.
    """
    root = find_dataset_root(Path(root))
    train_dir, val_dir = _split_dirs(root)
    if train_dir is None and val_dir is not None:
        raise DatasetError(
            f"{root} has a {val_dir.name}/ folder but no train/ folder; add train/<class>/ images "
            "or put the class folders at the top level."
        )
    parts = {"train": train_dir, "val": val_dir} if train_dir is not None else {"all": root}
    found: dict[str, dict[str, list[Path]]] = {}
    for part, folder in parts.items():
        if folder is None:
            continue
        found[part] = {d.name: _class_images(d) for d in _subdirs(folder)}
    main = found.get("train", found.get("all", {}))
    classes = sorted(main)
    where = train_dir or root
    if len(classes) < 2:
        raise DatasetError(
            f"{where} has {len(classes)} class folder(s) ({', '.join(classes) or 'none'}); an image "
            "classifier needs at least 2 — put each class's images in its own folder "
            "(e.g. cats/*.jpg, dogs/*.jpg)."
        )
    for part, by_class in found.items():
        empty = [c for c, files in by_class.items() if not files]
        if empty:
            raise DatasetError(
                f"Class folder(s) {', '.join(empty)} in {parts[part]} contain no images "
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


def _extract_cached_zip(zip_path: Path, base: Path) -> Path:
    raise DatasetError(
        f"Loading {zip_path} directly is not available yet; unzip it and pass the folder instead."
    )
