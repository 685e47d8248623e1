"""The built-in datasets: ``digits`` and ``shapes`` (offline), and torchvision's files placed on disk.

- ``digits``: scikit-learn's 8×8 handwritten digits (1797 images, 10 classes), scaled to 0–255.
- ``shapes``: generated circles, squares and triangles on a noisy background, each with an object mask
  (Grad-CAM compares its maps to them). Options go in the name: ``"shapes:count=300,size=32,seed=1"``.
- ``mnist``, ``fashion_mnist``, ``cifar10``: torchvision's datasets, read from files placed under
  ``data_dir()/torchvision`` (nothing is downloaded); their official test split is the val split.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cnndash import paths
from cnndash.data.images import DatasetError, ImageList, ImageSet
from cnndash.data.names import BUILTIN_DATASETS
from cnndash.data.splits import split_in_memory, stratified_split

SHAPE_CLASSES = ["circle", "square", "triangle"]
SHAPES_DEFAULTS = {"count": 3000, "size": 64, "seed": 0}  # fewer and small CNNs overfit (50–60 % val)
MAX_SHAPES_BYTES = 2**30  # generated shapes are held in memory
SHAPES_COUNT_RANGE = (3, 100_000)  # at least one image per class
SHAPES_SIZE_RANGE = (16, 512)  # pixels per side: smaller leaves no room for a recognisable shape
_RADIUS_RANGE = (0.18, 0.38)  # shape radius as a fraction of the image side
_MIN_COLOUR_DISTANCE = 200  # summed |RGB difference| below which the shape would blend into the background
_NOISE_STD = 18.0  # std of the Gaussian pixel noise (0–255 scale), so the task is not trivial
_DIGITS_MAX = 16.0  # scikit-learn's digits pixels run 0..16

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


def parse_builtin(text: str) -> tuple[str | None, dict[str, str]]:
    """``"shapes:count=300,size=32"`` -> ("shapes", {"count": "300", "size": "32"}); (None, {}) if not a built-in."""
    head, _, tail = text.partition(":")
    head = head.strip().lower()
    if head not in BUILTIN_DATASETS:
        return None, {}
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in tail.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise DatasetError(
                "Dataset option {part} in {text} must look like key=value.", part=repr(part), text=repr(text)
            )
        options[key.strip()] = value.strip()
    return head, options


def load_builtin(
    text: str, name: str, options: dict[str, str], *, base: Path, val_fraction: float, seed: int
) -> ImageSet:
    """The built-in ``name`` (parsed from ``text`` by :func:`parse_builtin`) with its train/val split."""
    if name == "shapes":
        images, masks, targets = generate_shapes(**shapes_options(options))
        return split_in_memory(
            text, SHAPE_CLASSES, images, targets, masks=masks, val_fraction=val_fraction, seed=seed
        )
    if options:
        raise DatasetError(
            "The {name} dataset takes no options; remove {options}.",
            name=repr(name),
            options=", ".join(options),
        )
    if name == "digits":
        return split_in_memory(text, *digits_arrays(), val_fraction=val_fraction, seed=seed)
    return _torchvision_dataset(name, base)


def shapes_options(options: dict[str, str]) -> dict[str, int]:
    out = dict(SHAPES_DEFAULTS)
    for key, value in options.items():
        if key not in out:
            raise DatasetError(
                "Unknown shapes option {key}; use {shapes_defaults} (e.g. shapes:count=300,size=32).",
                key=repr(key),
                shapes_defaults=", ".join(SHAPES_DEFAULTS),
            )
        try:
            out[key] = int(value)
        except ValueError:
            raise DatasetError(
                "shapes option {key}={value} must be an integer.", key=key, value=repr(value)
            ) from None
    return out


@functools.lru_cache(maxsize=1)
def digits_arrays() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The whole ``digits`` built-in, unsplit and in scikit-learn's order: ``(classes, uint8 images (N, 8,
    8, 1) scaled to 0–255, targets)``. That order defines the built-in's file paths (K-fold, versions)."""
    # Imported here, not at the top: scikit-learn takes about a second to import and only this
    # built-in and the sample photos need it.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.clip(np.rint(bunch.images * (255.0 / _DIGITS_MAX)), 0, 255).astype(np.uint8)[..., None]
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
    (min_count, max_count), (min_size, max_size) = SHAPES_COUNT_RANGE, SHAPES_SIZE_RANGE
    if not min_count <= count <= max_count:
        raise DatasetError(
            "shapes count must be between {min_count} and {max_count}, got {count}.",
            min_count=min_count,
            max_count=max_count,
            count=count,
        )
    if not min_size <= size <= max_size:
        raise DatasetError(
            "shapes size must be between {min_size} and {max_size} pixels, got {size}.",
            min_size=min_size,
            max_size=max_size,
            size=size,
        )
    if count * size * size * 3 > MAX_SHAPES_BYTES:
        raise DatasetError(
            "shapes with count={count} and size={size} would take {count2:.1f} GiB of memory (limit "
            "{max_shapes_bytes:.0f} GiB); lower count or size.",
            count=count,
            size=size,
            count2=count * size * size * 3 / 2**30,
            max_shapes_bytes=MAX_SHAPES_BYTES / 2**30,
        )
    rng = np.random.default_rng(seed)
    targets = np.arange(count, dtype=np.int64) % len(SHAPE_CLASSES)
    rng.shuffle(targets)
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    masks = np.empty((count, size, size), dtype=bool)
    for i, cls in enumerate(targets):
        images[i], masks[i] = _draw_shape(rng, SHAPE_CLASSES[cls], size)
    for arr in (images, masks, targets):
        arr.flags.writeable = False
    return images, masks, targets


def _draw_shape(rng: np.random.Generator, kind: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One ``shapes`` image (uint8 ``(size, size, 3)``) and its mask; draws from ``rng`` in a fixed order."""
    background = rng.integers(0, 256, size=3)
    colour = rng.integers(0, 256, size=3)
    # Keep the shape visible: push its colour away from the background where they are close.
    if np.abs(colour.astype(int) - background.astype(int)).sum() < _MIN_COLOUR_DISTANCE:
        colour = 255 - background
    radius = rng.uniform(*_RADIUS_RANGE) * size
    cx, cy = rng.uniform(radius, size - radius, size=2)
    angle = rng.uniform(0, 2 * math.pi)
    mask_img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask_img)
    if kind == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    else:
        corners = 4 if kind == "square" else 3
        points = [
            (
                cx + radius * math.cos(angle + 2 * math.pi * k / corners),
                cy + radius * math.sin(angle + 2 * math.pi * k / corners),
            )
            for k in range(corners)
        ]
        draw.polygon(points, fill=255)
    mask = np.asarray(mask_img) > 127  # the drawing is 0 or 255; anything in between is an edge pixel
    noise = rng.normal(0.0, _NOISE_STD, size=(size, size, 3))
    pixels = np.where(mask[..., None], colour[None, None, :], background[None, None, :]) + noise
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mask


def sample_photos() -> dict[str, Image.Image]:
    """scikit-learn's two real sample photos (``china.jpg``, ``flower.jpg``, 427×640 RGB), by name."""
    from sklearn.datasets import load_sample_images  # slow import, see digits_arrays

    bunch = load_sample_images()
    names = [Path(f).name for f in bunch.filenames]
    return {
        name: Image.fromarray(np.asarray(img, dtype=np.uint8), "RGB")
        for name, img in zip(names, bunch.images, strict=True)
    }


def torchvision_root(data_dir: Path | None = None) -> Path:
    """Folder under which torchvision's dataset files are expected (``data_dir()/torchvision``)."""
    return (Path(data_dir) if data_dir is not None else paths.data_dir()) / "torchvision"


def _torchvision_dataset(name: str, base: Path) -> ImageSet:
    import torchvision.datasets as tvd  # slow import, and only these three built-ins need it

    cls_name, folder, files = _TORCHVISION[name]
    root = torchvision_root(base)
    cls = getattr(tvd, cls_name)
    try:
        train = cls(root=str(root), train=True, download=False)
        test = cls(root=str(root), train=False, download=False)
    except RuntimeError:
        raise DatasetError(
            "The {name} files are not on this machine and cnndash does not download them. Put {files} into "
            "{root} (as torchvision's {cls_name}(root={root_repr}, download=True) would), or pick an offline "
            "dataset such as 'digits' or 'shapes'.",
            name=name,
            files=files,
            root=root / folder,
            cls_name=cls_name,
            root_repr=repr(str(root)),
        ) from None

    def as_array(ds) -> np.ndarray:
        data = np.asarray(ds.data, dtype=np.uint8)
        return data[..., None] if data.ndim == 3 else data

    train_array = as_array(train)
    return ImageSet(
        name=name,
        classes=[str(c) for c in train.classes],
        channels=int(train_array.shape[-1]),
        image_size=(int(train_array.shape[1]), int(train_array.shape[2])),
        train=ImageList(list(map(int, train.targets)), array=train_array),
        val=ImageList(list(map(int, test.targets)), array=as_array(test)),
    )


# --------------------------------------------------------------------------------------------------
# Built-ins as files: every image has a path, ``class_name/<index>.png``, where ``<index>`` is its position
# in the built-in's own order (scikit-learn's for digits, generation order for shapes, the training then
# the test files for torchvision's), so versions, label checks and K-fold splits name built-in images
# the way they name uploaded ones.


def builtin_arrays(text: str, *, base: Path | None = None) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """``(classes, images (N, H, W, C) uint8, targets (N,))`` of a built-in in its own order; None when
    ``text`` is not a built-in name."""
    name, options = parse_builtin(text)
    if name is None:
        return None
    if name == "digits":
        if options:
            raise DatasetError(
                "The 'digits' dataset takes no options; remove {options}.", options=", ".join(options)
            )
        classes, images, targets = digits_arrays()
        return list(classes), images, targets
    if name == "shapes":
        images, _, targets = generate_shapes(**shapes_options(options))
        return list(SHAPE_CLASSES), images, targets
    root = base if base is not None else paths.data_dir()
    imageset = load_builtin(text, name, options, base=root, val_fraction=0.2, seed=0)
    train, val = imageset.train.uint8_array(), imageset.val.uint8_array()
    assert train is not None and val is not None  # torchvision's datasets are held in memory
    targets = np.asarray(imageset.train.targets + imageset.val.targets, dtype=np.int64)
    return list(imageset.classes), np.concatenate([train, val]), targets


def builtin_path(classes: list[str], target: int, index: int) -> str:
    """The path of built-in image ``index``: ``class_name/<index>.png`` (``/`` in a class name -> ``_``)."""
    return f"{class_folder(classes[target])}/{index}.png"


def class_folder(name: str) -> str:
    """A class name as a folder name: path separators and a leading dot replaced by ``_``."""
    folder = re.sub(r"[/\\]", "_", name)
    return "_" + folder[1:] if folder.startswith(".") else folder


def builtin_key(text: str) -> str:
    """The built-in ``text`` as one stable key (``"Shapes:count=300"`` -> ``"shapes_count=300"``)."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text.strip().lower())


def builtin_val_indices(text: str, val_fraction: float, seed: int) -> list[int]:
    """Indices (built-in order) of the validation images of ``load_dataset(text, val_fraction, seed)``."""
    arrays = builtin_arrays(text)
    if arrays is None:
        raise DatasetError("{text} is not a built-in dataset.", text=repr(text))
    _, _, targets = arrays
    name, _ = parse_builtin(text)
    if name in ("digits", "shapes"):
        return stratified_split(targets, val_fraction, seed)[1]
    # torchvision: the official test files are the val split, after the training files
    n_val = len(load_builtin(text, str(name), {}, base=paths.data_dir(), val_fraction=0.2, seed=0).val)
    return list(range(len(targets) - n_val, len(targets)))


def builtin_val_paths(text: str, val_fraction: float, seed: int) -> list[str]:
    """The paths (built-in scheme) of the validation images of ``load_dataset(text, val_fraction, seed)``,
    in the split's order — how a run's validation predictions map back to images."""
    val = builtin_val_indices(text, val_fraction, seed)  # refuses a name that is not a built-in
    classes, _, targets = builtin_arrays(text)  # type: ignore[misc]
    return [builtin_path(classes, int(targets[i]), int(i)) for i in val]
